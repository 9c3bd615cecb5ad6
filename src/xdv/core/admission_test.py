"""The admission queue: waiting reservations, grants in policy order, deadlines, deadlock."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import KDomainManager, Kernel, check_scheduler, parse_policy
from xdv.core._process import ProcessInfo, _Process
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Emit, Now, Release, Reserve, Resume, Revoke, Sleep, Spawn, Suspend
from xdv.trace import Domain, EventType, read_trace


def _entries(kernel: Kernel) -> list[Any]:
    result = kernel.run()
    assert result.trace_bytes is not None
    return read_trace(result.trace_bytes).entries


def _holder(hold: int, lanes: int = 1) -> Any:
    contract = yield Reserve("K", "lane", lanes)
    yield Sleep(hold)
    yield Release(contract)


def _waiter(lanes: int = 1, deadline: int | None = None, hold: int = 1) -> Any:
    try:
        contract = yield Reserve("K", "lane", lanes, wait=True, deadline=deadline)
    except XdvError as error:
        yield Emit(error.code.name)
        return None
    now = yield Now()
    yield Emit(("granted", now))
    yield Sleep(hold)
    yield Release(contract)
    return None


@pytest.mark.spec("XDV-023-6")
def test_a_reservation_that_cannot_be_met_waits_instead_of_failing() -> None:
    kernel = Kernel(domains=[KDomainManager(lanes=2)])
    kernel.spawn(_holder, 10, 2)
    kernel.spawn(_waiter)
    entries = _entries(kernel)
    kinds = [entry.event_type for entry in entries]
    assert EventType.ADMISSION_WAIT in kinds and EventType.ADMISSION_GRANT in kinds
    grant = next(e for e in entries if e.event_type is EventType.ADMISSION_GRANT)
    release = next(e for e in entries if e.event_type is EventType.RESOURCE_RELEASE)
    assert grant.logical_time == release.logical_time  # granted at the release that freed it
    assert grant.metadata["waited"] >= 9
    following = entries[entries.index(grant) + 1]
    assert following.event_type is EventType.RESOURCE_RESERVE
    assert following.contract == grant.contract

    # Without wait=True the same request is refused at once, as before.
    def impatient() -> Any:
        try:
            yield Reserve("K", "lane", 1)
        except XdvError as error:
            yield Emit(error.code.name)

    kernel = Kernel(domains=[KDomainManager(lanes=1)])
    kernel.spawn(_holder, 5)
    kernel.spawn(impatient)
    result = kernel.run()
    assert [value for _, value in result.outputs] == ["RESOURCE_EXHAUSTED"]


@pytest.mark.spec("XDV-023-6.1")
@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(["round-robin", "priority:aging=2", "priority:aging=0", "edf:horizon=5"]),
    st.lists(
        st.tuples(st.integers(-3, 3), st.integers(0, 6), st.none() | st.integers(5, 60)),
        min_size=2,
        max_size=7,
    ),
)
def test_admission_grants_in_policy_order(
    spec: str, rows: list[tuple[int, int, int | None]]
) -> None:
    """Waiters for one lane are granted one by one, in the order of their policy keys."""
    kernel = Kernel(domains=[KDomainManager(lanes=1)], policy=spec)
    kernel.spawn(_holder, 40, priority=100, deadline=0)  # first under every policy
    pids = []
    for priority, delay, deadline in rows:

        def late(delay: int = delay) -> Any:
            yield Sleep(delay + 2)
            yield from _waiter()

        pids.append(kernel.spawn(late, priority=priority, deadline=deadline))
    entries = _entries(kernel)
    waits = {e.process: e for e in entries if e.event_type is EventType.ADMISSION_WAIT}
    grants = [e.process for e in entries if e.event_type is EventType.ADMISSION_GRANT]
    assert sorted(grants) == sorted(pids)
    policy = parse_policy(spec)

    def key(pid: int) -> tuple[Any, ...]:
        priority, _, deadline = rows[pids.index(pid)]
        process = _Process(ProcessInfo(pid, "", 0, priority, 0, 0, (Domain.K,)), None)
        process.deadline = deadline
        process.ready_at = waits[pid].logical_time
        return (*policy.key(process, process.ready_at), waits[pid].metadata["ticket"])

    assert grants == sorted(pids, key=key)


@pytest.mark.spec("XDV-023-6.2")
def test_a_wait_past_its_deadline_fails_with_admission_timeout() -> None:
    kernel = Kernel(domains=[KDomainManager(lanes=1)])
    kernel.spawn(_holder, 50)
    kernel.spawn(_waiter, 1, 20)
    entries = _entries(kernel)
    timeout = next(e for e in entries if e.event_type is EventType.ADMISSION_TIMEOUT)
    assert timeout.status == ErrorCode.ADMISSION_TIMEOUT
    assert timeout.metadata["deadline"] == 20
    assert timeout.logical_time <= 20
    emitted = [e for e in entries if e.event_type is EventType.EFFECT]
    assert emitted and emitted[0].logical_time >= 20
    assert EventType.ADMISSION_GRANT not in [e.event_type for e in entries]


@pytest.mark.spec("XDV-023-6.2")
def test_a_grant_before_the_deadline_disarms_it() -> None:
    kernel = Kernel(domains=[KDomainManager(lanes=1)])
    kernel.spawn(_holder, 5)
    kernel.spawn(_waiter, 1, 100)
    result = kernel.run()
    assert result.ok
    assert result.outputs[0][1][0] == "granted"


def test_malformed_admission_fields_are_refused() -> None:
    def bad(field: str, value: Any) -> Any:
        try:
            yield Reserve("K", "lane", 1, **{field: value})
        except XdvError as error:
            yield Emit(error.code.name)

    kernel = Kernel(domains=[KDomainManager(lanes=1)])
    kernel.spawn(bad, "deadline", 0)
    kernel.spawn(bad, "wait", "yes")
    kernel.spawn(bad, "deadline", "soon")
    result = kernel.run()
    assert [v for _, v in result.outputs] == [
        "DEADLINE_INVALID",
        "SYSCALL_INVALID",
        "SYSCALL_INVALID",
    ]


@pytest.mark.spec("XDV-023-6.3")
def test_a_wait_that_can_never_be_met_is_reported_as_deadlock() -> None:
    kernel = Kernel(domains=[KDomainManager(lanes=1)])

    def hog() -> Any:
        yield Reserve("K", "lane", 1)
        yield Sleep(3)  # ends holding it: released at exit, then the waiter gets it

    def greedy() -> Any:
        yield Reserve("K", "lane", 2, wait=True)  # more than the domain has: never met

    kernel.spawn(hog)
    pid = kernel.spawn(greedy)
    result = kernel.run()
    assert result.status == "failed"
    assert result.exits[pid].code == "DEADLOCK"
    assert "admission of 2 lane of K" in (result.exits[pid].message or "")
    assert result.trace_bytes is not None
    cancels = [
        e
        for e in read_trace(result.trace_bytes).entries
        if e.event_type is EventType.ADMISSION_CANCEL
    ]
    assert [e.process for e in cancels] == [pid]


@pytest.mark.spec("XDV-012-7")
def test_capability_is_validated_before_a_request_may_queue() -> None:
    kernel = Kernel(domains=[KDomainManager(lanes=1)])
    kernel.spawn(_holder, 10)

    def revoked_first() -> Any:
        for capability in range(1, 40):
            with contextlib.suppress(XdvError):
                yield Revoke(capability)
        try:
            yield Reserve("K", "lane", 1, wait=True)
        except XdvError as error:
            yield Emit(error.code.name)

    kernel.spawn(revoked_first)
    result = kernel.run()
    assert result.trace_bytes is not None
    kinds = [e.event_type for e in read_trace(result.trace_bytes).entries]
    assert EventType.ADMISSION_WAIT not in kinds  # refused, not queued
    assert [v for _, v in result.outputs] in (["CAPABILITY_REVOKED"], ["DOMAIN_UNAUTHORIZED"])


@pytest.mark.spec("XDV-023-6.1")
def test_a_patient_head_is_not_overtaken() -> None:
    """Backfill lets small requests pass a large head until the head has waited `patience`
    steps; then nothing overtakes it, so it is granted once enough is released."""
    kernel = Kernel(domains=[KDomainManager(lanes=2)])
    kernel._admission.patience = 5
    kernel.spawn(_holder, 30)  # holds 1 of 2 lanes for 30 steps

    def big() -> Any:
        yield Sleep(1)
        contract = yield Reserve("K", "lane", 2, wait=True)
        yield Emit("big")
        yield Release(contract)

    def small(start: int) -> Any:
        yield Sleep(start)
        contract = yield Reserve("K", "lane", 1, wait=True)
        yield Emit(("small", start))
        yield Sleep(4)
        yield Release(contract)

    kernel.spawn(big)
    for start in (10, 12, 14, 16):
        kernel.spawn(small, start)
    result = kernel.run()
    assert result.ok
    order = [value for _, value in result.outputs]
    # The head has waited more than 5 steps before any small request arrives: the small ones
    # queue behind it and the big request runs first when the holder lets go.
    assert order[0] == "big"


@pytest.mark.spec("XDV-012-9")
def test_invariants_hold_while_requests_wait() -> None:
    kernel = Kernel(domains=[KDomainManager(lanes=2)], policy="priority:aging=3")
    found: list[list[str]] = []

    def monitor() -> Any:
        previous = None
        for _ in range(60):
            snapshot = kernel.scheduler_snapshot()
            found.append(check_scheduler(snapshot, previous))
            previous = snapshot
            yield Sleep(1)

    kernel.spawn(_holder, 12, 2, priority=100)
    for priority in range(4):
        kernel.spawn(_waiter, 1, None, 3, priority=priority)
    kernel.spawn(monitor)
    assert kernel.run().ok
    assert any(snapshot for snapshot in found) is False


@pytest.mark.spec("XDV-082-9.2")
def test_fair_share_admits_by_vhm_weight() -> None:
    """Two VHMs of weights 1 and 3 keep asking for one lane: grants follow the weights."""
    kernel = Kernel(domains=[KDomainManager(lanes=1)], policy="fair-share")
    grants: list[int] = []

    def looper(vhm: int) -> Any:
        for _ in range(30):
            contract = yield Reserve("K", "lane", 1, wait=True)
            grants.append(vhm)
            yield Sleep(4)
            yield Release(contract)

    for weight in (1, 3):
        vhm = kernel.create_vhm(f"w{weight}", weight=weight)
        for _ in range(3):
            kernel.spawn(looper, weight, vhm=vhm)
    assert kernel.run().ok
    first = grants[:40]
    assert first.count(3) / first.count(1) == pytest.approx(3, rel=0.3)


def test_a_suspended_waiter_keeps_its_place_but_is_granted_only_once_resumed() -> None:
    found: list[str] = []
    resumed: list[int] = []

    def parent() -> Any:
        child = yield Spawn(_waiter, (1, 40))
        yield Sleep(2)
        yield Suspend(child)  # it waits for admission now
        yield Sleep(12)  # the holder releases its lanes meanwhile
        resumed.append((yield Now()))
        yield Resume(child)

    kernel = Kernel(
        domains=[KDomainManager(lanes=2)],
        observer=lambda _: found.extend(check_scheduler(kernel.scheduler_snapshot())),
    )
    kernel.spawn(_holder, 6, 2)
    kernel.spawn(parent)
    result = kernel.run()
    assert result.trace_bytes is not None and found == []
    entries = read_trace(result.trace_bytes).entries
    grant = next(e for e in entries if e.event_type is EventType.ADMISSION_GRANT)
    release = next(e for e in entries if e.event_type is EventType.RESOURCE_RELEASE)
    # The lanes were free long before, but a suspended process acquires nothing.
    assert release.logical_time < resumed[0] <= grant.logical_time
    assert [value[0] for _, value in result.outputs] == ["granted"]
    assert result.outputs[0][1][1] > grant.logical_time
