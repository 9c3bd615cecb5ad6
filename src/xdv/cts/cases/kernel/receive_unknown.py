"""---
id: kernel.receive-unknown
spec:
- XDV-021-8
description: Receiving on a channel that does not exist is refused, with CHANNEL_UNKNOWN; the process
  catches the typed error and goes on.
level: core
expect:
  exit: ok
  outputs:
  - CHANNEL_UNKNOWN
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
    kernel.spawn(probe, Receive(5))
