"""---
id: reference.capability-before-boundary
spec:
- XDV-080-6
- XDV-081-7
- XDV-081-12
description: A process declared for K only binds to Q without an ALLOCATE capability from K to Q
  and is refused with DOMAIN_UNAUTHORIZED before the Q manager is called; after it revokes its own
  K ALLOCATE capability, a K reservation is refused with CAPABILITY_REVOKED. Both refusals are the
  statuses of the refused entries, at their place in the order; the process catches each typed
  error and goes on, and the run replays byte for byte in both modes.
level: hybrid
requires:
- q
expect:
  exit: ok
  outputs:
  - DOMAIN_UNAUTHORIZED
  - CAPABILITY_REVOKED
  trace:
    order:
    - DOMAIN_BIND:DOMAIN_UNAUTHORIZED
    - CAPABILITY_REVOKE:OK
    - RESOURCE_RESERVE:CAPABILITY_REVOKED
    counts:
      DOMAIN_BIND:DOMAIN_UNAUTHORIZED: 1
      RESOURCE_RESERVE:CAPABILITY_REVOKED: 1
      DOMAIN_INVOKE: 0
    absent:
    - RESOURCE_RESERVE:OK
  replay: both
---"""

from xdv.core import Operation
from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403

XDV_DOMAINS = {"Q": {"manager": "q"}}


def main(kernel):
    def prober():
        info = yield Self()
        try:
            yield Bind("Q")  # no ALLOCATE capability from K to Q
            yield Emit("accepted")
        except XdvError as error:
            yield Emit(error.code.name)
        allocate = next(
            c for c in kernel.authority.held_by(info.pid) if c.operation is Operation.ALLOCATE
        )
        yield Revoke(allocate.id)
        try:
            yield Reserve("K", "lane", 1)
            yield Emit("accepted")
        except XdvError as error:
            yield Emit(error.code.name)

    kernel.spawn(prober)
