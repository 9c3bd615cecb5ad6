"""Virtual hybrid machines: creation, nesting, membership, quotas, isolation, termination,
snapshots, and the Spawn rights rule (a child never holds more than its parent)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import KDomainManager, Kernel, Operation, ResourceRequest
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import (
    Emit,
    Invoke,
    LoadState,
    Release,
    Reserve,
    SaveState,
    Self,
    Sleep,
    Spawn,
    Wait,
)
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


@pytest.mark.spec("XDV-014-3.1")
@pytest.mark.spec("XDV-083-3.1")
def test_create_vhm_records_it_and_its_processes_carry_its_id_in_every_header() -> None:

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


@pytest.mark.spec("XDV-083-3.1")
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


@pytest.mark.spec("XDV-083-6.1")
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


@pytest.mark.spec("XDV-014-6.1")
@pytest.mark.spec("XDV-083-6.1")
def test_nested_quota_must_fit_inside_every_ancestor() -> None:
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


@pytest.mark.spec("XDV-014-9")
def test_terminate_vhm_ends_only_that_vhms_processes() -> None:

    def holder() -> Any:
        yield Reserve("K", "lane")
        yield Sleep(50)

    kernel = Kernel()
    doomed = kernel.create_vhm("doomed", quotas={"processes": 5})
    nested = kernel.create_vhm("nested", parent=doomed)
    survivor = kernel.create_vhm("survivor")
    a = kernel.spawn(holder, vhm=doomed)
    b = kernel.spawn(sleeper, 50, vhm=nested)
    c = kernel.spawn(sleeper, 5, vhm=survivor)
    d = kernel.spawn(sleeper, 5)
    result_holder: list[Any] = []

    def terminator() -> Any:
        lane = yield Reserve("K", "lane")
        yield Sleep(3)
        ended = yield Invoke(lane, "call", (lambda: kernel.terminate_vhm(doomed, reason="test"),))
        result_holder.append(ended)

    kernel.spawn(terminator)
    result = kernel.run()
    assert result_holder == [[a, b]]
    assert result.exits[a].code == "VHM_TERMINATED" and result.exits[b].code == "VHM_TERMINATED"
    assert result.exits[c].ok and result.exits[d].ok
    (entry,) = of_type(entries(result), EventType.VHM_TERMINATE)
    assert entry.vhm == doomed and entry.metadata["processes"] == [a, b]
    assert entry.status == ErrorCode.VHM_TERMINATED
    kernel_vhms = kernel.vhms
    assert kernel_vhms.get(doomed).processes == () and kernel_vhms.get(doomed).live
    assert kernel_vhms.get(doomed).usage["processes"] == 0
    released = [e for e in of_type(entries(result), EventType.RESOURCE_RELEASE) if e.process == a]
    assert [e.metadata["reason"] for e in released] == ["exit"]


# ---------------------------------------------------------------- Spawn never amplifies rights


def q_child() -> Any:
    contract = yield Reserve("K", "lane")
    return contract.id


@pytest.mark.spec("XDV-014-11")
@pytest.mark.spec("XDV-083-10")
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


# ---------------------------------------------------------------- quotas


@pytest.mark.spec("XDV-014-4.1")
@pytest.mark.spec("XDV-014-5")
def test_processes_quota_refuses_a_spawn_and_records_the_denial() -> None:

    def parent() -> Any:
        first = yield Spawn(sleeper, (1,))
        try:
            yield Spawn(sleeper, (1,))
        except XdvError as error:
            yield Emit(error.code.name)
        return (yield Wait(first)).value

    kernel = Kernel()
    tenant = kernel.create_vhm("tenant", quotas={"processes": 2})
    pid = kernel.spawn(parent, vhm=tenant)
    result = kernel.run()
    assert result.ok and result.outputs == [(pid, "VHM_QUOTA_EXCEEDED")]
    (deny,) = of_type(entries(result), EventType.VHM_DENY)
    assert deny.process == pid and deny.vhm == tenant
    assert deny.metadata["quota"] == "processes" and deny.metadata["call"] == "Spawn"
    assert deny.status == ErrorCode.VHM_QUOTA_EXCEEDED
    # Once the first child ended, its slot came back.
    assert kernel.vhms.get(tenant).usage["processes"] == 0


@pytest.mark.spec("XDV-014-4.1")
def test_operator_spawn_over_the_processes_quota_is_a_typed_error() -> None:
    kernel = Kernel()
    tenant = kernel.create_vhm("tenant", quotas={"processes": 1})
    kernel.spawn(sleeper, 1, vhm=tenant)
    with pytest.raises(XdvError) as error:
        kernel.spawn(sleeper, 1, vhm=tenant)
    assert error.value.code is ErrorCode.VHM_QUOTA_EXCEEDED
    assert kernel.run().ok


@pytest.mark.spec("XDV-014-4.1")
@pytest.mark.spec("XDV-014-5")
@pytest.mark.spec("XDV-083-8.1")
def test_steps_quota_ends_the_process_that_has_no_step_left() -> None:
    """The quota is exact: the VHM dispatches exactly its quota of steps."""
    kernel = Kernel(quantum=4)
    outer = kernel.create_vhm("outer", quotas={"steps": 10})
    left = kernel.create_vhm("left", parent=outer)
    right = kernel.create_vhm("right", parent=outer, quotas={"steps": 3})
    a = kernel.spawn(sleeper, 20, vhm=left)
    b = kernel.spawn(sleeper, 20, vhm=right)
    c = kernel.spawn(sleeper, 20)
    result = kernel.run()
    assert result.exits[a].code == result.exits[b].code == "VHM_QUOTA_EXCEEDED"
    assert result.exits[c].ok
    vhms = kernel.vhms
    assert vhms.get(outer).usage["steps"] == 10
    assert vhms.get(right).usage["steps"] == 3 and vhms.get(left).usage["steps"] == 7
    denials = of_type(entries(result), EventType.VHM_DENY)
    assert {entry.process: entry.metadata["vhm"] for entry in denials} == {a: outer, b: right}
    usage = {entry.vhm: entry.metadata for entry in of_type(entries(result), EventType.VHM_USAGE)}
    assert usage[outer] == {"usage": {"steps": 10}, "quotas": {"steps": 10}}


@pytest.mark.spec("XDV-014-4.1")
def test_busy_loop_is_cut_inside_its_time_slice_at_the_quota() -> None:
    from xdv.syscalls import Now

    def spinner() -> Any:
        while True:
            yield Now()

    kernel = Kernel(quantum=8)
    tenant = kernel.create_vhm("tenant", quotas={"steps": 13})
    pid = kernel.spawn(spinner, vhm=tenant)
    result = kernel.run()
    assert result.exits[pid].code == "VHM_QUOTA_EXCEEDED"
    assert kernel.vhms.get(tenant).usage["steps"] == 13 == result.steps


# ---------------------------------------------------------------- isolation


@pytest.mark.spec("XDV-014-7")
@pytest.mark.spec("XDV-083-3.2")
def test_wait_across_vhms_is_refused_and_recorded() -> None:

    def prober(target: int) -> Any:
        try:
            yield Wait(target)
        except XdvError as error:
            return error.code.name
        return "waited"

    kernel = Kernel()
    a = kernel.create_vhm("a")
    b = kernel.create_vhm("b")
    victim = kernel.spawn(sleeper, 3, vhm=b)
    spy = kernel.spawn(prober, victim, vhm=a)
    neighbour = kernel.spawn(prober, victim, vhm=b)
    result = kernel.run()
    assert result.exits[spy].value == "VHM_ISOLATION"
    assert result.exits[neighbour].value == "waited"
    refused = [
        entry
        for entry in of_type(entries(result), EventType.WAIT)
        if entry.status == ErrorCode.VHM_ISOLATION
    ]
    assert [entry.process for entry in refused] == [spy] and refused[0].vhm == a


def test_terminate_vhm_from_a_process_is_an_operator_action() -> None:
    holder: dict[str, Any] = {}

    def rogue() -> Any:
        try:
            holder["kernel"].terminate_vhm(holder["victim"])
        except XdvError as error:
            return error.code.name
        yield Sleep(1)

    kernel = Kernel()
    a = kernel.create_vhm("a")
    b = kernel.create_vhm("b")
    holder.update(kernel=kernel, victim=b)
    victim = kernel.spawn(sleeper, 3, vhm=b)
    pid = kernel.spawn(rogue, vhm=a)
    result = kernel.run()
    assert result.exits[pid].value == "OPERATOR_ONLY" and result.exits[victim].ok


# ---------------------------------------------------------------- properties

quota_value = st.one_of(st.none(), st.integers(0, 40))
vhm_spec = st.tuples(
    st.integers(-1, 5),  # parent: an earlier VHM's index, or the root
    st.fixed_dictionaries({"processes": quota_value, "steps": quota_value}),
)
work_spec = st.tuples(
    st.integers(-1, 5),  # the VHM (index, or the root)
    st.lists(st.sampled_from(["sleep", "spawn", "wait-foreign", "spin"]), max_size=8),
)


def worker(plan: list[str], foreign: int) -> Any:
    for step in plan:
        if step == "sleep":
            yield Sleep(1)
        elif step == "spawn":
            try:
                yield Spawn(sleeper, (2,))
            except XdvError as error:
                assert error.code is ErrorCode.VHM_QUOTA_EXCEEDED
        elif step == "wait-foreign" and foreign:
            try:
                yield Wait(foreign)
            except XdvError as error:
                yield Emit(error.code.name)
        else:
            yield Self()


@settings(max_examples=40, deadline=None)
@given(st.lists(vhm_spec, max_size=5), st.lists(work_spec, min_size=1, max_size=6))
@pytest.mark.spec("XDV-083-8.2")
@pytest.mark.spec("XDV-083-3.2")
@pytest.mark.spec("XDV-014-6.1")
def test_quotas_are_conserved_nesting_holds_and_nothing_crosses_vhms(
    vhm_specs: list[tuple[int, dict[str, int | None]]],
    works: list[tuple[int, list[str]]],
) -> None:
    """Whatever the VHM tree and the work: no VHM's usage exceeds a quota, a VHM's usage
    covers its children's, every entry's header names its process's VHM, and a process that
    touches another VHM's process is refused."""
    kernel = Kernel(5, quantum=3)
    ids: list[int] = []
    for parent_index, quotas in vhm_specs:
        parent = ids[parent_index] if 0 <= parent_index < len(ids) else None
        try:
            ids.append(kernel.create_vhm(f"v{len(ids)}", quotas=quotas, parent=parent))
        except XdvError as error:
            assert error.code is ErrorCode.VHM_NESTING_INVALID
    spawned: list[tuple[int, int]] = []
    for index, plan in works:
        vhm = ids[index] if 0 <= index < len(ids) else 0
        foreign = next((pid for pid, owner in spawned if owner != vhm), 0)
        try:
            spawned.append((kernel.spawn(worker, plan, foreign, vhm=vhm), vhm))
        except XdvError as error:
            assert error.code is ErrorCode.VHM_QUOTA_EXCEEDED
    result = kernel.run()
    assert result.status in ("ok", "failed")
    vhms = kernel.vhms
    for vhm in vhms:
        for name, bound in vhm.quotas.to_record().items():
            assert vhm.usage[name] <= bound
        assert vhm.usage["processes"] == 0  # every process ended and gave its slot back
        children = [vhms.get(child) for child in vhm.children]
        for name in ("steps",):
            assert vhm.id == 0 or vhm.usage[name] >= sum(c.usage[name] for c in children)
    top_level_steps = sum(vhms.get(child).usage["steps"] for child in vhms.get(0).children)
    assert top_level_steps <= result.steps
    for entry in entries(result):
        if entry.process:
            assert entry.vhm == vhms.vhm_of(entry.process)
    for _, value in result.outputs:
        assert value == "VHM_ISOLATION"
    for status in result.exits.values():
        if not status.ok:
            assert status.code == "VHM_QUOTA_EXCEEDED", status


# ---------------------------------------------------------------- K snapshots and restart


def counter(limit: int) -> Any:
    state = yield LoadState()
    count = 0 if state is None else state["count"]
    while count < limit:
        count += 1
        yield SaveState({"count": count})
        yield Sleep(1)
    return count


def restart_run(seed: int = 0) -> tuple[Any, Kernel, int, list[Any]]:
    """A counter in VHM "t" is snapshotted at L≈6 and restarted from it at L≈12 by the
    kernel's own code (a K call stands in for the fault-recovery code that will do this)."""
    kernel = Kernel(seed)
    tenant = kernel.create_vhm("t")
    seen: list[Any] = []

    def take() -> int:
        seen.append(kernel.snapshot_vhm(tenant))
        return int(seen[-1]["at"])

    def restart() -> list[list[int]]:
        return [[old, new] for old, new in kernel.restart_vhm(tenant, seen[0]).items()]

    def supervisor() -> Any:
        lane = yield Reserve("K", "lane")
        yield Sleep(5)
        yield Invoke(lane, "call", (take,))
        yield Sleep(5)
        return (yield Invoke(lane, "call", (restart,)))

    victim = kernel.spawn(counter, 20, vhm=tenant)
    kernel.spawn(supervisor)
    return kernel.run(), kernel, victim, seen


@pytest.mark.spec("XDV-083-9.1")
def test_restart_from_a_k_snapshot_resumes_from_the_saved_state() -> None:
    result, kernel, victim, seen = restart_run()
    (snapshot,) = seen
    (record,) = snapshot["processes"]
    assert record["pid"] == victim and record["anchor"].endswith(":counter")
    saved_then = record["state"]["count"]
    assert 0 < saved_then < 20
    assert set(snapshot) == {"vhm", "name", "at", "processes"}  # K state only: no contracts
    items = entries(result)
    (restart,) = of_type(items, EventType.VHM_RESTART)
    [[old, new]] = restart.metadata["processes"]
    assert old == victim and restart.vhm == kernel.vhms.vhm_of(new)
    assert result.exits[victim].code == "VHM_TERMINATED"
    assert result.exits[new].ok and result.exits[new].value == 20
    # The restarted process counted on from the snapshot's state, not from its own last one.
    saves = of_type(items, EventType.STATE_SAVE)
    before = [e.metadata["state"]["count"] for e in saves if e.process == victim]
    after = [e.metadata["state"]["count"] for e in saves if e.process == new]
    assert max(before) > saved_then  # the restart rolled the VHM back to the snapshot
    assert after == list(range(saved_then + 1, 21))
    assert restart_run()[0].trace_bytes == result.trace_bytes


@pytest.mark.spec("XDV-083-9.1")
def test_snapshot_of_another_vhm_or_unencodable_state_is_refused() -> None:
    kernel = Kernel()
    a = kernel.create_vhm("a")
    b = kernel.create_vhm("b")
    kernel.spawn(counter, 1, vhm=a)
    snapshot = kernel.snapshot_vhm(a)
    with pytest.raises(XdvError) as error:
        kernel.restart_vhm(b, snapshot)
    assert error.value.code is ErrorCode.VHM_SNAPSHOT_INVALID
    forged = {**snapshot, "vhm": b}
    with pytest.raises(XdvError) as forged_error:
        kernel.restart_vhm(b, forged)
    assert forged_error.value.code is ErrorCode.VHM_SNAPSHOT_INVALID

    def hoarder() -> Any:
        try:
            yield SaveState(object())
        except XdvError as refused:
            return refused.code.name
        return "saved"

    pid = kernel.spawn(hoarder, vhm=b)
    assert kernel.run().exits[pid].value == "VHM_SNAPSHOT_INVALID"


class MeteredK(KDomainManager):
    """The K manager, declaring each lane it grants as one envelope of VHM usage (the generic
    hook a Q or Φ manager implements, on the kernel's own domain)."""

    def usage(self, request: ResourceRequest) -> dict[str, int | None]:
        return {"envelopes": request.amount, "window_steps": request.duration}


holding = st.lists(
    st.tuples(st.sampled_from(["reserve", "release", "sleep"]), st.integers(1, 3)), max_size=10
)


@pytest.mark.spec("XDV-083-8.1")
@pytest.mark.spec("XDV-083-8.2")
@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), holding), min_size=1, max_size=5))
def test_held_usage_always_equals_what_live_contracts_hold(
    plans: list[tuple[int, list[tuple[str, int]]]],
) -> None:
    """Through reservations, refusals, releases and exits, a VHM's held usage is exactly the sum
    of its subtree's live contracts, within every quota, and back to zero at the end."""
    kernel = Kernel(2, domains=[MeteredK(lanes=64)])
    outer = kernel.create_vhm("outer", quotas={"envelopes": 5, "window_steps": 20})
    inner = kernel.create_vhm("inner", parent=outer, quotas={"envelopes": 3})
    other = kernel.create_vhm("other", quotas={"envelopes": 2})
    vhms = [outer, inner, other]
    problems: list[str] = []

    def check() -> None:
        for vhm_id in vhms:
            vhm = kernel.vhms.get(vhm_id)
            held = sum(
                contract.amount
                for member in kernel.vhms.subtree(vhm_id)
                for pid in kernel.vhms.get(member).processes
                for contract in kernel._table.processes[pid].contracts.values()
            )
            if vhm.usage["envelopes"] != held:
                problems.append(f"VHM {vhm_id}: usage {vhm.usage['envelopes']} != held {held}")
            for name, bound in vhm.quotas.to_record().items():
                if vhm.usage[name] > bound:
                    problems.append(f"VHM {vhm_id}: {name} over its quota")

    def tenant(plan: list[tuple[str, int]]) -> Any:
        held = []
        for action, amount in plan:
            check()
            if action == "reserve":
                try:
                    held.append((yield Reserve("K", "lane", amount, duration=amount)))
                except XdvError as error:
                    assert error.code is ErrorCode.VHM_QUOTA_EXCEEDED
            elif action == "release" and held:
                yield Release(held.pop(0))
            else:
                yield Sleep(amount)
        check()

    for index, plan in plans:
        kernel.spawn(tenant, plan, vhm=vhms[index])
    result = kernel.run()
    assert result.ok and problems == []
    assert all(kernel.vhms.get(vhm_id).usage["envelopes"] == 0 for vhm_id in vhms)


@pytest.mark.spec("XDV-014-11")
@pytest.mark.parametrize("revoked", [0, 1, 2, 3, 4, 5, 6, 7])
def test_a_child_holds_exactly_the_default_rights_its_parent_still_holds(revoked: int) -> None:
    """Every subset of the parent's default rights revoked: the child's are the rest."""
    kernel_box: list[Kernel] = []

    def child() -> Any:
        yield Sleep(1)

    def parent() -> Any:
        pid = yield Spawn(child)
        mine = {c.operation.name for c in kernel_box[0].authority.held_by(parent_pid)}
        theirs = {c.operation.name for c in kernel_box[0].authority.held_by(pid)}
        yield Wait(pid)
        return [sorted(mine), sorted(theirs)]

    kernel = Kernel()
    kernel_box.append(kernel)
    parent_pid = kernel.spawn(parent)
    held = sorted(kernel.authority.held_by(parent_pid), key=lambda c: c.operation.name)
    assert len(held) == 3
    for bit, capability in enumerate(held):
        if revoked >> bit & 1:
            kernel.revoke(capability.id)
    result = kernel.run()
    mine, theirs = result.exits[parent_pid].value
    assert theirs == mine and len(mine) == 3 - bin(revoked).count("1")
