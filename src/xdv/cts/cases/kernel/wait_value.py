"""---
id: kernel.wait-returns-exit-value
spec:
- XDV-020-7
- XDV-020-6
description: A parent waiting on a child gets the child's return value (6 * 7) once it has ended; both
  exits are recorded.
level: core
expect:
  exit: ok
  outputs:
  - 42
  trace:
    present:
    - WAIT
    counts:
      PROCESS_EXIT: 2
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def child(a, b):
    yield Sleep(3)
    return a * b


def parent():
    pid = yield Spawn(child, (6, 7))
    status = yield Wait(pid)
    yield Emit(status.value)


def main(kernel):
    kernel.spawn(parent)
