"""---
id: reference.isolated-worker
spec:
- XDV-081-13
- XDV-081-8
description: Run isolated, the workload's code executes in a worker process that holds no kernel
  object; its system calls (a channel, its sharing, sends, receives and a refused Q
  reservation) reach the kernel as data and are checked and recorded as in process, so the trace
  replays, in process, to the same bytes. Every send is a CHANNEL_SEND entry in the one order.
level: core
options:
  isolate: true
expect:
  exit: ok
  outputs:
  - got 1
  - got 4
  - got 9
  - DOMAIN_UNAVAILABLE
  trace:
    counts:
      CHANNEL_SEND:OK: 3
      CHANNEL_RECEIVE:OK: 3
    absent:
    - RESOURCE_RESERVE:OK
---"""

from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def producer(channel):
    for value in (1, 2, 3):
        yield Send(channel, value * value)
    yield Close(channel)


def consumer():
    channel = yield Channel(2, name="squares")
    pid = yield Spawn(producer, (channel,))
    yield Share(channel, pid, send=True)
    yield Close(channel)
    for _ in range(3):
        message = yield Receive(channel)
        yield Emit(f"got {message.payload}")
    try:
        yield Reserve("Q", "qubits", 1)
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(consumer)
