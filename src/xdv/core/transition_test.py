from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.core import TRANSITION_PHASES, FaultPlan, FaultRule, KDomainManager, Kernel
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Reserve, Revoke, Self, Transition
from xdv.trace import EventType, read_trace


def triple(value: int) -> int:
    return 3 * value


def transition_run(faults: FaultPlan, held_lanes: int, latency_max: int | None):
    observed: dict[str, Any] = {}

    def anchor():
        if held_lanes:
            yield Reserve("K", "lane", held_lanes)
        observed["before"] = kernel.snapshot()
        try:
            observed["value"] = yield Transition(
                "K", "K", "call", (triple, 5), latency_max=latency_max
            )
        except XdvError as error:
            observed["error"] = error
        observed["after"] = kernel.snapshot()

    kernel = Kernel(domains=[KDomainManager(lanes=2)], faults=faults)
    kernel.spawn(anchor)
    result = kernel.run()
    return observed, read_trace(result.trace_bytes).entries


@pytest.mark.spec("XDV-003-7")
@pytest.mark.spec("XDV-004-4.2")
@pytest.mark.spec("XDV-001-7.1")
@pytest.mark.spec("XDV-022-6.1")
@pytest.mark.spec("XDV-022-6.3")
@given(
    st.sampled_from(TRANSITION_PHASES),
    st.booleans(),
    st.integers(0, 2),
    st.sampled_from([None, 0, 1]),
)
def test_transitions_commit_or_leave_no_partial_state(
    phase: str, inject: bool, held_lanes: int, latency_max: int | None
) -> None:
    faults = FaultPlan([FaultRule(f"transition.{phase}")]) if inject else FaultPlan()
    observed, items = transition_run(faults, held_lanes, latency_max)
    rollbacks = [e for e in items if e.event_type is EventType.TRANSITION_ROLLBACK]
    commits = [e for e in items if e.event_type is EventType.TRANSITION_COMMIT]
    if "error" in observed:
        # Atomicity: the orchestration state is exactly as it was before the transition.
        assert observed["after"] == observed["before"]
        assert len(rollbacks) == 1 and not commits
        rollback = rollbacks[0]
        assert rollback.status is observed["error"].code
        assert rollback.metadata["phase"] in TRANSITION_PHASES
        completed = rollback.metadata["completed"]
        assert completed == list(TRANSITION_PHASES[: len(completed)])
        if inject:
            assert observed["error"].code in (
                ErrorCode.INJECTED_FAULT,
                ErrorCode.RESOURCE_EXHAUSTED,
                ErrorCode.CONTRACT_INVALID,
            )
    else:
        assert observed["value"] == 15
        assert len(commits) == 1 and not rollbacks
        # The transition's reservation exists only for the activation.
        assert observed["after"]["managers"] == observed["before"]["managers"]
    expected_failure = inject or held_lanes == 2 or latency_max == 0
    assert ("error" in observed) == expected_failure


@pytest.mark.spec("XDV-022-6.2")
def test_rollback_names_the_failed_phase_and_what_was_undone() -> None:
    observed, items = transition_run(FaultPlan([FaultRule("transition.projection")]), 0, None)
    rollback = next(e for e in items if e.event_type is EventType.TRANSITION_ROLLBACK)
    assert rollback.metadata["phase"] == "projection"
    assert rollback.metadata["completed"] == ["capability", "reservation", "contract", "binding"]
    assert rollback.metadata["undone"] == ["reservation"]
    assert observed["error"].code is ErrorCode.INJECTED_FAULT


@pytest.mark.spec("XDV-022-2.2")
def test_every_phase_is_recorded_on_commit() -> None:
    observed, items = transition_run(FaultPlan(), 0, None)
    phases = [e.metadata["phase"] for e in items if e.event_type is EventType.TRANSITION_PHASE]
    assert phases == list(TRANSITION_PHASES[:-1])
    assert observed["value"] == 15


def test_unknown_fault_sites_are_refused() -> None:
    with pytest.raises(XdvError, match="unknown fault site"):
        FaultPlan([FaultRule("transition.nowhere")])


@pytest.mark.spec("XDV-022-2.1")
def test_a_transition_needs_its_capability_before_anything_happens() -> None:
    observed: dict[str, Any] = {}

    def anchor():
        info = yield Self()
        rights = [c for c in kernel.authority.held_by(info.pid) if c.operation.name == "TRANSITION"]
        yield Revoke(rights[0].id)
        before = kernel.snapshot()
        try:
            yield Transition("K", "K", "call", (triple, 1))
        except XdvError as error:
            observed["error"] = error.code
        observed["unchanged"] = kernel.snapshot() == before

    kernel = Kernel(domains=[KDomainManager(lanes=2)])
    kernel.spawn(anchor)
    items = read_trace(kernel.run().trace_bytes).entries
    assert observed == {"error": ErrorCode.CAPABILITY_REVOKED, "unchanged": True}
    begin = next(e for e in items if e.event_type is EventType.TRANSITION_BEGIN)
    assert begin.metadata == {"tr": 1, "from": "K", "to": "K", "op": "call"}
    rollback = next(e for e in items if e.event_type is EventType.TRANSITION_ROLLBACK)
    assert rollback.metadata["phase"] == "capability" and rollback.metadata["completed"] == []
    assert not [e for e in items if e.event_type is EventType.RESOURCE_RESERVE]


def two_transitioners() -> bytes:
    def worker(value: int):
        first = yield Transition("K", "K", "call", (triple, value))
        second = yield Transition("K", "K", "call", (triple, first))
        return second

    kernel = Kernel(seed=3, domains=[KDomainManager(lanes=1)], quantum=1)
    kernel.spawn(worker, 1)
    kernel.spawn(worker, 2)
    result = kernel.run()
    assert result.ok and [s.value for s in result.exits.values()] == [9, 18]
    assert result.trace_bytes is not None
    return result.trace_bytes


@pytest.mark.spec("XDV-022-7")
def test_transitions_are_serialized_in_a_reproducible_order() -> None:
    data = two_transitioners()
    items = read_trace(data).entries
    begins = [e for e in items if e.event_type is EventType.TRANSITION_BEGIN]
    assert [e.metadata["tr"] for e in begins] == [1, 2, 3, 4]
    # Each transition's entries lie between its begin and its end: one at a time.
    open_ids: list[int] = []
    for entry in items:
        if entry.event_type is EventType.TRANSITION_BEGIN:
            assert not open_ids
            open_ids.append(entry.metadata["tr"])
        elif entry.event_type in (EventType.TRANSITION_COMMIT, EventType.TRANSITION_ROLLBACK):
            assert open_ids == [entry.metadata["tr"]]
            open_ids.clear()
    assert two_transitioners() == data


@pytest.mark.spec("XDV-022-9")
def test_transition_entries_carry_id_domains_capability_contract_and_outcome() -> None:
    _, committed = transition_run(FaultPlan(), 0, None)
    _, rolled_back = transition_run(FaultPlan([FaultRule("transition.activation")]), 0, None)
    commit = next(e for e in committed if e.event_type is EventType.TRANSITION_COMMIT)
    assert commit.metadata["tr"] == 1 and commit.metadata["inv"] >= 1
    assert commit.capability > 0 and commit.contract > 0 and commit.logical_time > 0
    assert commit.status is ErrorCode.OK
    begin = next(e for e in committed if e.event_type is EventType.TRANSITION_BEGIN)
    assert (begin.metadata["from"], begin.metadata["to"]) == ("K", "K")
    rollback = next(e for e in rolled_back if e.event_type is EventType.TRANSITION_ROLLBACK)
    assert rollback.metadata["tr"] == 1 and rollback.status is ErrorCode.INJECTED_FAULT
    assert rollback.capability > 0 and rollback.contract > 0
