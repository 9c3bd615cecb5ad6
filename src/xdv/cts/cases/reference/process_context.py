"""---
id: reference.process-context
spec:
- XDV-081-4.1
- XDV-081-7
description: The kernel holds each process's context and shows it in its snapshot. While a process
  holds a K lane its record is ACTIVE, bound to K, with that one contract (id 1); its
  capabilities are the three K-to-K ones granted at creation (EXECUTE, ALLOCATE, TRANSITION),
  each with its operation; after the release the contract is gone from the record. A child holds
  its own three capabilities, and only a Delegate of the parent's EXECUTE capability gives it a
  second EXECUTE one.
level: core
expect:
  exit: ok
  outputs:
  - {state: ACTIVE, bindings: [K], contracts: [1]}
  - [ALLOCATE, EXECUTE, TRANSITION]
  - {state: ACTIVE, bindings: [K], contracts: []}
  - [ALLOCATE, EXECUTE, TRANSITION]
  - [ALLOCATE, EXECUTE, EXECUTE, TRANSITION]
  trace:
    counts:
      RESOURCE_RESERVE:OK: 1
      RESOURCE_RELEASE:OK: 1
---"""

from xdv.syscalls import *  # noqa: F403


def main(kernel):
    def held(pid):
        capabilities = kernel.snapshot()["capabilities"]
        return sorted(c["op"] for c in capabilities if c["holder"] == pid)

    def child():
        yield Sleep(2)

    def holder():
        info = yield Self()
        lane = yield Reserve("K", "lane", 1)
        yield Emit(kernel.snapshot()["processes"][info.pid])
        yield Emit(held(info.pid))
        yield Release(lane)
        yield Emit(kernel.snapshot()["processes"][info.pid])
        pid = yield Spawn(child)
        before = held(pid)
        execute = next(
            c["id"]
            for c in kernel.snapshot()["capabilities"]
            if c["holder"] == info.pid and c["op"] == "EXECUTE"
        )
        yield Delegate(execute, pid)
        yield Emit(before)
        yield Emit(held(pid))
        yield Wait(pid)

    kernel.spawn(holder)
