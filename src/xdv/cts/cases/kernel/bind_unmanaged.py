"""---
id: kernel.bind-unmanaged
spec:
- XDV-011-5.2
- XDV-002-3.1
description: Binding to a domain with no manager (Q not declared) is refused, with DOMAIN_UNAVAILABLE;
  the process catches the typed error and goes on.
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
    kernel.spawn(probe, Bind("Q"))
