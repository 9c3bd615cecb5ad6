"""---
id: kernel.sleep-wakes-in-logical-order
spec:
- XDV-005-7
- XDV-082-2
- XDV-082-6.2
description: Processes sleeping 9, 1 and 4 logical steps wake in order of their wake-up time, not of creation.
level: core
expect:
  exit: ok
  outputs:
  - b
  - c
  - a
  trace:
    counts:
      SLEEP: 3
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def sleeper(name, steps):
    yield Sleep(steps)
    yield Emit(name)


def main(kernel):
    kernel.spawn(sleeper, "a", 9)
    kernel.spawn(sleeper, "b", 1)
    kernel.spawn(sleeper, "c", 4)
