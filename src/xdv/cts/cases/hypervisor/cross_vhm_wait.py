"""---
id: hypervisor.cross-vhm-wait-refused
spec:
- XDV-014-7
- XDV-083-3.2
description: 'A process may not wait on a process of another VHM: refused with VHM_ISOLATION; within its
  own VHM it may.'
level: core
expect:
  exit: ok
  outputs_include:
  - VHM_ISOLATION
  trace:
    counts:
      VHM_CREATE: 2
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def target():
    yield Sleep(20)


def prober(other):
    try:
        yield Wait(other)
        yield Emit("waited across VHMs")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(target, vhm=right)
    kernel.spawn(prober, other, vhm=left)
