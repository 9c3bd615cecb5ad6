"""---
id: kernel.reserve-then-release
spec:
- XDV-011-8
- XDV-011-5.2
description: A K reservation is granted as a contract, used, and released; both are recorded in that order.
level: core
expect:
  exit: ok
  outputs:
  - 9
  trace:
    order:
    - RESOURCE_RESERVE
    - DOMAIN_INVOKE
    - DOMAIN_RESULT
    - RESOURCE_RELEASE
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def square(value):
    return value * value


def worker():
    contract = yield Reserve("K", "lane", 1)
    value = yield Invoke(contract, "call", (square, 3))
    yield Emit(value)
    yield Release(contract)


def main(kernel):
    kernel.spawn(worker)
