"""---
id: security.bind-undeclared-q
spec:
- XDV-002-3.5
- XDV-004-3.1
description: 'A process that did not declare Q may not bind to it without an operator grant: DOMAIN_UNAUTHORIZED,
  caught by the process; nothing is granted.'
level: hybrid
requires:
- q
expect:
  exit: ok
  outputs:
  - DOMAIN_UNAUTHORIZED
  trace:
    absent:
    - RESOURCE_RESERVE:OK
    - DOMAIN_FREEZE:OK
    counts:
      DOMAIN_BIND:OK: 1
---"""
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


XDV_DOMAINS = {"Q": {"manager": "q"}}


def probe(op):
    try:
        yield op
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)


def main(kernel):
    kernel.spawn(probe, Bind("Q"))
