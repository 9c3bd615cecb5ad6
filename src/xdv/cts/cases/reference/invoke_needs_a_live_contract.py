"""---
id: reference.invoke-needs-a-live-contract
spec:
- XDV-081-6
- XDV-081-12
- XDV-080-11
- XDV-081-9.2
description: An invocation under a live K lane contract runs (DOMAIN_INVOKE then DOMAIN_RESULT);
  after the release, the released contract, a string and an integer are each refused with
  CONTRACT_INVALID, and a contract past its expiry with CONTRACT_EXPIRED, without the manager
  being called (one DOMAIN_RESULT in all). The process catches each error and continues; every
  reservation, invocation and release is recorded, and an inject-mode replay, feeding the
  recorded outcome back, gives the same bytes.
level: core
expect:
  exit: ok
  outputs:
  - len 3
  - CONTRACT_INVALID
  - CONTRACT_INVALID
  - CONTRACT_INVALID
  - CONTRACT_EXPIRED
  - still running
  trace:
    order:
    - DISPATCH
    - RESOURCE_RESERVE:OK
    - DOMAIN_INVOKE:OK
    - DOMAIN_RESULT:OK
    - RESOURCE_RELEASE:OK
    - DOMAIN_INVOKE:CONTRACT_INVALID
    - DOMAIN_INVOKE:CONTRACT_EXPIRED
    counts:
      DOMAIN_INVOKE:CONTRACT_INVALID: 3
      DOMAIN_INVOKE:CONTRACT_EXPIRED: 1
      DOMAIN_RESULT: 1
  replay: both
---"""

from xdv.errors import XdvError
from xdv.syscalls import *  # noqa: F403


def caller():
    lane = yield Reserve("K", "lane", 1)
    done = yield Invoke(lane, "call", (len, "abc"))
    yield Emit(f"len {done}")
    yield Release(lane)
    for handle in (lane, "lane", 1):
        try:
            yield Invoke(handle, "call", (len, "abc"))
            yield Emit("accepted")
        except XdvError as error:
            yield Emit(error.code.name)
    soon = yield Reserve("K", "lane", 1, duration=1)
    yield Sleep(3)
    try:
        yield Invoke(soon, "call", (len, "abc"))
        yield Emit("accepted")
    except XdvError as error:
        yield Emit(error.code.name)
    yield Emit("still running")


def main(kernel):
    kernel.spawn(caller)
