"""---
id: hypervisor.nested-quota-bound
spec:
- XDV-014-6.1
- XDV-083-6.1
description: 'A nested VHM whose quota exceeds its parent''s is refused (VHM_NESTING_INVALID) when the
  setup creates it: only the parent VHM exists and no process starts.'
level: core
expect:
  exit: runtime
  trace:
    counts:
      VHM_CREATE: 1
      PROCESS_CREATE: 0
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def main(kernel):
    parent = kernel.create_vhm("parent", quotas={"processes": 2})
    kernel.create_vhm("child", quotas={"processes": 5}, parent=parent)
