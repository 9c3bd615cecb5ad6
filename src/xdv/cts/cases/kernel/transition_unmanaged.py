"""---
id: kernel.transition-unmanaged
spec:
- XDV-022-2.1
- XDV-022-6.1
- XDV-003-7
description: A transition into a domain with no manager is refused, with DOMAIN_UNAVAILABLE; the process
  catches the typed error and goes on.
level: core
expect:
  exit: ok
  outputs:
  - DOMAIN_UNAVAILABLE
  trace:
    absent:
    - TRANSITION_COMMIT
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def probe(op):
    try:
        yield op
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(probe, Transition("K", "Q", "run"))
