"""---
id: security.freeze-without-right
spec:
- XDV-015-8.2
- XDV-015-7
description: 'A process without FREEZE(K→Q) may not freeze the Q domain: DOMAIN_UNAUTHORIZED, caught by
  the process; nothing is granted.'
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
    kernel.spawn(probe, Freeze("Q"))
