"""---
id: kernel.preempt-at-quantum
spec:
- XDV-012-4.2
- XDV-082-6.2
description: 'Two processes of 30 busy steps each: with the default quantum of 8 each is preempted at
  the end of its slices, so they finish in turn.'
level: core
expect:
  exit: ok
  outputs:
  - a done
  - b done
  trace:
    at_least:
      PREEMPT: 4
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def busy(name):
    for _ in range(30):
        yield Now()
    yield Emit(f"{name} done")


def main(kernel):
    kernel.spawn(busy, "a")
    kernel.spawn(busy, "b")
