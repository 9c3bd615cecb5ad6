"""---
id: hypervisor.process-quota
spec:
- XDV-014-4.1
- XDV-083-8.2
description: A VHM with a quota of 2 live processes refuses a third spawn with VHM_QUOTA_EXCEEDED.
level: core
expect:
  exit: ok
  outputs:
  - VHM_QUOTA_EXCEEDED
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def idle():
    yield Sleep(10)


def parent():
    yield Spawn(idle)
    try:
        yield Spawn(idle)
        yield Emit("third process admitted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    tenant = kernel.create_vhm("tenant", quotas={"processes": 2})
    kernel.spawn(parent, vhm=tenant)
