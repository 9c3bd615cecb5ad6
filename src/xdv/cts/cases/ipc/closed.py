"""---
id: ipc.closed-channel
spec:
- XDV-021-8
description: Once every sender has closed a channel and it is drained, a receive fails with CHANNEL_CLOSED.
level: core
expect:
  exit: ok
  outputs:
  - first
  - CHANNEL_CLOSED
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def solo():
    channel = yield Channel(1)
    yield Send(channel, "first")
    yield Close(channel)
    message = yield Receive(channel)
    yield Emit(message.payload)
    try:
        yield Receive(channel)
        yield Emit("received from a closed channel")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(solo)
