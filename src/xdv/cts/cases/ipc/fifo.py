"""---
id: ipc.channel-fifo
spec:
- XDV-021-3.3
- XDV-021-7
- XDV-021-9
description: Five messages through a channel of capacity 2 arrive in the order sent, the sender blocking
  while it is full.
level: core
expect:
  exit: ok
  outputs:
  - 1
  - 2
  - 3
  - 4
  - 5
  trace:
    counts:
      CHANNEL_SEND: 5
      CHANNEL_RECEIVE: 5
      CHANNEL_CREATE: 1
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def producer(channel):
    for number in range(1, 6):
        yield Send(channel, number)
    yield Close(channel)


def consumer():
    channel = yield Channel(2, name="numbers")
    pid = yield Spawn(producer, (channel,))
    yield Share(channel, pid, send=True)
    yield Close(channel)
    for _ in range(5):
        message = yield Receive(channel)
        yield Emit(message.payload)


def main(kernel):
    kernel.spawn(consumer)
