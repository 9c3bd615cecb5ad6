"""---
id: kernel.pids-in-creation-order
spec:
- XDV-004-2.1
description: Process ids are 1, 2, 3 in creation order; a child spawned later gets the next id, 4.
level: core
expect:
  exit: ok
  outputs:
  - 1
  - 2
  - 3
  - 4
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def child():
    me = yield Self()
    yield Emit(me.pid)


def parent(spawn):
    me = yield Self()
    yield Emit(me.pid)
    if spawn:
        yield Sleep(5)
        pid = yield Spawn(child)
        yield Wait(pid)


def main(kernel):
    kernel.spawn(parent, True)
    kernel.spawn(parent, False)
    kernel.spawn(parent, False)
