"""---
id: reference.lifecycle-entries
spec:
- XDV-081-4.2
- XDV-080-4.2
- XDV-081-4.1
description: Each process moves CREATED, BOUND, INITIALIZED, ACTIVE, then terminates and is
  RELEASED, every change an entry (PROCESS_STATE, PROCESS_EXIT at termination) in the one order;
  a child its parent suspends and resumes records SUSPENDED and ACTIVE again, and its line comes
  only after the resume; capabilities granted at creation are revoked at exit.
level: core
expect:
  exit: ok
  outputs:
  - parent suspends 2
  - parent resumes 2
  - child runs
  trace:
    order:
    - PROCESS_CREATE
    - CAPABILITY_GRANT
    - DOMAIN_BIND
    - PROCESS_STATE
    - DISPATCH
    - PROCESS_EXIT
    - CAPABILITY_REVOKE
    - PROCESS_STATE
    counts:
      PROCESS_CREATE: 2
      PROCESS_EXIT: 2
      PROCESS_STATE:OK: 10
      RUN_START: 1
      RUN_END: 1
  replay: both
---"""

from xdv.syscalls import *  # noqa: F403


def child():
    yield Emit("child runs")


def parent():
    pid = yield Spawn(child)
    yield Suspend(pid)
    yield Emit(f"parent suspends {pid}")
    yield Sleep(2)
    yield Emit(f"parent resumes {pid}")
    yield Resume(pid)
    yield Wait(pid)


def main(kernel):
    kernel.spawn(parent)
