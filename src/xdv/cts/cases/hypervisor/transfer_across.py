"""---
id: hypervisor.contract-not-transferred-across-vhms
spec:
- XDV-083-3.2
- XDV-014-7
description: 'A contract can be handed only within a VHM: a transfer to a process of another VHM is refused
  with VHM_ISOLATION and the contract stays with its holder, who releases it.'
level: core
expect:
  exit: ok
  outputs:
  - VHM_ISOLATION
  - released
  trace:
    absent:
    - RESOURCE_TRANSFER:OK
    present:
    - RESOURCE_TRANSFER:VHM_ISOLATION
    counts:
      RESOURCE_RELEASE:OK: 1
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def idle():
    yield Sleep(30)


def tenant(other):
    contract = yield Reserve("K", "lane", 1)
    try:
        yield Transfer(contract, other)
        yield Emit("transferred")
    except XdvError as error:
        yield Emit(error.code.name)
    yield Release(contract)
    yield Emit("released")


def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(idle, vhm=right)
    kernel.spawn(tenant, other, vhm=left)
