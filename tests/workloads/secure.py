"""A workload that exercises the capability authority: derivation, a refused widening,
delegation, revocation through the lineage, and an emergency freeze of the Φ domain."""

from __future__ import annotations

from typing import Any

from xdv.core import Kernel, Operation
from xdv.errors import XdvError
from xdv.syscalls import (
    Attenuate,
    Delegate,
    Emit,
    Freeze,
    Reserve,
    Revoke,
    Self,
    Sleep,
    Spawn,
    Wait,
)


def worker(kernel: Kernel) -> Any:
    me = yield Self()
    # Drop the ALLOCATE(K→K) every process starts with: work only through the delegated one.
    own = next(
        c.id
        for c in kernel.authority.held_by(me.pid)
        if c.operation is Operation.ALLOCATE and not c.detail
    )
    yield Revoke(own)
    for attempt in range(3):
        try:
            yield Reserve("K", "lane", 1)
            yield Emit(f"reserved {attempt}")
        except XdvError as error:
            yield Emit(f"refused {attempt}: {error.code.name}")
        yield Sleep(4)


def lead(kernel: Kernel) -> Any:
    me = yield Self()
    allocate = next(
        c.id for c in kernel.authority.held_by(me.pid) if c.operation is Operation.ALLOCATE
    )
    try:
        yield Attenuate(allocate, [{"op": "FREEZE", "from": "K", "to": "K"}])
    except XdvError as error:
        yield Emit(f"widening refused: {error.code.name}")
    narrowed = yield Attenuate(
        allocate, [{"op": "ALLOCATE", "from": "K", "to": "K", "resource": "lane"}], 40
    )
    child = yield Spawn(worker, (kernel,))
    yield Delegate(narrowed, child)
    yield Sleep(6)
    yield Revoke(narrowed)
    yield Freeze("Φ", "drill")
    try:
        yield Freeze("Φ", "again")
    except XdvError as error:
        yield Emit(f"second freeze: {error.code.name}")
    yield Wait(child)


def main(kernel: Kernel) -> None:
    pid = kernel.spawn(lead, kernel)
    kernel.grant(pid, Operation.FREEZE, "K", "Φ")
