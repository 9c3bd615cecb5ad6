"""Virtual hybrid machines: creation, nesting, membership, quotas, isolation, termination,
snapshots, and the Spawn rights rule (a child never holds more than its parent)."""

from __future__ import annotations

from typing import Any

import pytest

from xdv.core import Kernel, Operation
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Emit, Reserve, Self, Sleep, Spawn, Wait
from xdv.trace import EventType, TraceEntry, read_trace


def entries(result: Any) -> list[TraceEntry]:
    return read_trace(result.trace_bytes).entries


def of_type(items: list[TraceEntry], event: EventType) -> list[TraceEntry]:
    return [entry for entry in items if entry.event_type is event]


def sleeper(rounds: int) -> Any:
    for _ in range(rounds):
        yield Sleep(1)
    return rounds


# ---------------------------------------------------------------- creation and membership


def test_create_vhm_records_it_and_its_processes_carry_its_id_in_every_header() -> None:
    """[XDV-014 §3.1] [XDV-083 §3.1]"""

    def parent() -> Any:
        child = yield Spawn(sleeper, (2,))
        me = yield Self()
        yield Emit(me.vhm)
        return (yield Wait(child)).value

    kernel = Kernel(3)
    tenant = kernel.create_vhm("tenant", quotas={"processes": 4}, weight=3)
    pid = kernel.spawn(parent, vhm=tenant)
    other = kernel.spawn(sleeper, 1)
    result = kernel.run()
    assert result.ok and result.outputs == [(pid, tenant)]
    items = entries(result)
    (create,) = of_type(items, EventType.VHM_CREATE)
    assert create.vhm == tenant
    assert create.metadata == {
        "id": tenant,
        "name": "tenant",
        "weight": 3,
        "parent": 0,
        "quotas": {"processes": 4},
    }
    child = pid + 2  # the operator's two spawns come first
    assert kernel.vhms.vhm_of(child) == tenant
    for entry in items:
        if entry.process in (pid, child):
            assert entry.vhm == tenant, entry
        elif entry.process == other:
            assert entry.vhm == 0, entry
    info = kernel.vhms.get(tenant)
    assert info.weight == 3 and info.parent == 0 and info.processes == ()
    assert info.usage["processes"] == 0 and info.usage["steps"] > 0


def test_unknown_or_destroyed_vhm_is_refused_at_spawn() -> None:
    kernel = Kernel()
    with pytest.raises(XdvError) as unknown:
        kernel.spawn(sleeper, 1, vhm=9)
    assert unknown.value.code is ErrorCode.VHM_UNKNOWN
    tenant = kernel.create_vhm("t")
    kernel.destroy_vhm(tenant)
    with pytest.raises(XdvError) as destroyed:
        kernel.spawn(sleeper, 1, vhm=tenant)
    assert destroyed.value.code is ErrorCode.VHM_UNKNOWN


def test_destroy_refuses_a_vhm_with_processes_or_children_and_never_cascades() -> None:
    kernel = Kernel()
    outer = kernel.create_vhm("outer")
    inner = kernel.create_vhm("inner", parent=outer)
    with pytest.raises(XdvError) as nested:
        kernel.destroy_vhm(outer)
    assert nested.value.code is ErrorCode.VHM_NOT_EMPTY
    kernel.spawn(sleeper, 1, vhm=inner)
    with pytest.raises(XdvError) as busy:
        kernel.destroy_vhm(inner)
    assert busy.value.code is ErrorCode.VHM_NOT_EMPTY
    with pytest.raises(XdvError) as root:
        kernel.destroy_vhm(0)
    assert root.value.code is ErrorCode.VHM_INVALID
    assert kernel.run().ok


def test_nested_quota_must_fit_inside_every_ancestor() -> None:
    """[XDV-014 §6.1] [XDV-083 §6.1]"""
    kernel = Kernel()
    outer = kernel.create_vhm("outer", quotas={"steps": 100, "qubits": 5})
    middle = kernel.create_vhm("middle", parent=outer, quotas={"processes": 3})
    with pytest.raises(XdvError) as error:
        kernel.create_vhm("inner", parent=middle, quotas={"qubits": 6})
    assert error.value.code is ErrorCode.VHM_NESTING_INVALID
    kernel.create_vhm("inner", parent=middle, quotas={"qubits": 5, "processes": 2})
    with pytest.raises(XdvError) as bad:
        kernel.create_vhm("x", quotas={"cpus": 1})
    assert bad.value.code is ErrorCode.VHM_INVALID


# ---------------------------------------------------------------- termination


def test_terminate_vhm_ends_only_that_vhms_processes() -> None:
    """[XDV-014 §9]"""
    kernel = Kernel()
    doomed = kernel.create_vhm("doomed")
    nested = kernel.create_vhm("nested", parent=doomed)
    survivor = kernel.create_vhm("survivor")
    a = kernel.spawn(sleeper, 50, vhm=doomed)
    b = kernel.spawn(sleeper, 50, vhm=nested)
    c = kernel.spawn(sleeper, 5, vhm=survivor)
    d = kernel.spawn(sleeper, 5)
    assert kernel.terminate_vhm(doomed, reason="test") == [a, b]
    result = kernel.run()
    assert result.exits[a].code == "VHM_TERMINATED" and result.exits[b].code == "VHM_TERMINATED"
    assert result.exits[c].ok and result.exits[d].ok
    (entry,) = of_type(entries(result), EventType.VHM_TERMINATE)
    assert entry.vhm == doomed and entry.metadata["processes"] == [a, b]
    assert entry.status == ErrorCode.VHM_TERMINATED
    kernel_vhms = kernel.vhms
    assert kernel_vhms.get(doomed).processes == () and kernel_vhms.get(doomed).live


# ---------------------------------------------------------------- Spawn never amplifies rights


def q_child() -> Any:
    contract = yield Reserve("K", "lane")
    return contract.id


def test_a_child_never_receives_rights_its_parent_lacks() -> None:
    """A parent whose ALLOCATE(K→K) the operator revoked spawns a child: the child's Reserve is
    refused, as the parent's is (issue: rights escalation through Spawn)."""

    def parent() -> Any:
        child = yield Spawn(q_child)
        return (yield Wait(child)).code

    kernel = Kernel()
    pid = kernel.spawn(parent)
    allocate = next(
        capability
        for capability in kernel.authority.held_by(pid)
        if capability.operation is Operation.ALLOCATE
    )
    kernel.revoke(allocate.id)
    result = kernel.run()
    assert result.exits[pid].value == "DOMAIN_UNAUTHORIZED"
    child = pid + 1
    assert not result.exits[child].ok and result.exits[child].code == "DOMAIN_UNAUTHORIZED"
    granted = [
        e for e in of_type(entries(result), EventType.CAPABILITY_GRANT) if e.process == child
    ]
    assert all(e.metadata["op"] != "ALLOCATE" for e in granted)
    assert any(e.metadata["op"] == "EXECUTE" for e in granted)


def test_an_operator_spawn_and_a_holding_parent_still_grant_as_before() -> None:
    def parent() -> Any:
        child = yield Spawn(q_child)
        return (yield Wait(child)).value

    kernel = Kernel()
    pid = kernel.spawn(parent)
    result = kernel.run()
    assert result.ok and result.exits[pid].value == 1
