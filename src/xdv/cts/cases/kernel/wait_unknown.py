"""---
id: kernel.wait-unknown
spec:
- XDV-020-6
description: Waiting on a process id that was never created is refused, with PROCESS_UNKNOWN; the process
  catches the typed error and goes on.
level: core
expect:
  exit: ok
  outputs:
  - PROCESS_UNKNOWN
  trace:
    absent:
    - TRANSITION_COMMIT
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def probe(op):
    try:
        yield op
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(probe, Wait(99))
