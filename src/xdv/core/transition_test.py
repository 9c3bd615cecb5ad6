from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.core import TRANSITION_PHASES, FaultPlan, FaultRule, KDomainManager, Kernel
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Reserve, Transition
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


def test_rollback_names_the_failed_phase_and_what_was_undone() -> None:
    observed, items = transition_run(FaultPlan([FaultRule("transition.projection")]), 0, None)
    rollback = next(e for e in items if e.event_type is EventType.TRANSITION_ROLLBACK)
    assert rollback.metadata["phase"] == "projection"
    assert rollback.metadata["completed"] == ["capability", "reservation", "contract", "binding"]
    assert rollback.metadata["undone"] == ["reservation"]
    assert observed["error"].code is ErrorCode.INJECTED_FAULT


def test_every_phase_is_recorded_on_commit() -> None:
    observed, items = transition_run(FaultPlan(), 0, None)
    phases = [e.metadata["phase"] for e in items if e.event_type is EventType.TRANSITION_PHASE]
    assert phases == list(TRANSITION_PHASES[:-1])
    assert observed["value"] == 15


def test_unknown_fault_sites_are_refused() -> None:
    with pytest.raises(XdvError, match="unknown fault site"):
        FaultPlan([FaultRule("transition.nowhere")])
