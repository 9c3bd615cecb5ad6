"""---
id: hypervisor.channel-not-shared-across-vhms
spec:
- XDV-021-2
- XDV-014-7
description: 'A channel belongs to its opener''s VHM: sharing it with a process of another VHM is refused
  with CHANNEL_ISOLATED.'
level: core
expect:
  exit: ok
  outputs:
  - CHANNEL_ISOLATED
  trace:
    absent:
    - CHANNEL_SHARE:OK
    present:
    - CHANNEL_SHARE:CHANNEL_ISOLATED
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def idle():
    yield Sleep(30)


def tenant(other):
    channel = yield Channel(1)
    try:
        yield Share(channel, other, send=True)
        yield Emit("shared")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    left = kernel.create_vhm("left")
    right = kernel.create_vhm("right")
    other = kernel.spawn(idle, vhm=right)
    kernel.spawn(tenant, other, vhm=left)
