"""---
id: ipc.payload-copied
spec:
- XDV-021-4.4
description: 'A payload is copied when sent: changing the sender''s list afterwards does not change what
  the receiver gets.'
level: core
expect:
  exit: ok
  outputs:
  - - 1
    - 2
    - 3
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def solo():
    channel = yield Channel(1)
    data = [1, 2, 3]
    yield Send(channel, data)
    data.append(4)
    message = yield Receive(channel)
    yield Emit(list(message.payload))


def main(kernel):
    kernel.spawn(solo)
