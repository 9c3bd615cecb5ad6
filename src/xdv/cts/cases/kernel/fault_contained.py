"""---
id: kernel.fault-ends-only-its-process
spec:
- XDV-010-12
- XDV-020-7
description: A process whose anchor raises ends alone (PROCESS_FAULT); its neighbour emits all its lines;
  the run fails.
level: core
expect:
  exit: runtime
  code: PROCESS_FAULT
  outputs:
  - steady 0
  - steady 1
  - steady 2
  trace:
    present:
    - FAULT
    counts:
      PROCESS_EXIT: 2
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def faulty():
    yield Sleep(1)
    raise ValueError("broken on purpose")


def steady():
    for index in range(3):
        yield Emit(f"steady {index}")
        yield Sleep(1)


def main(kernel):
    kernel.spawn(faulty)
    kernel.spawn(steady)
