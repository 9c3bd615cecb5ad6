"""---
id: security.attenuate-unknown
spec:
- XDV-015-3.4
- XDV-030-6
description: 'Deriving from a capability id nobody was given (a forged parent) is refused: CAPABILITY_INVALID,
  caught by the process; nothing is granted.'
level: hybrid
requires:
- q
expect:
  exit: ok
  outputs:
  - CAPABILITY_INVALID
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
    kernel.spawn(probe, Attenuate(9999))
