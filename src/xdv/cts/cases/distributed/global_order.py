"""---
id: distributed.global-order-twice
spec:
- XDV-005-3.2
description: A two-node workload run twice gives the same global logical order (runs on a cluster).
level: distributed
requires:
- cluster
expect:
  exit: ok
  outputs:
  - a 0
  - b 0
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def worker(name):
    yield Emit(f"{name} 0")


def main(kernel):
    kernel.spawn(worker, "a")
    kernel.spawn(worker, "b")
