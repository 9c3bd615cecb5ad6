"""The hybrid fault model (XDV-024): classification, containment, escalation, recovery, plans."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import (
    FAULT_CLASSES,
    ClassPolicy,
    FaultLevel,
    FaultPlan,
    FaultRule,
    KDomainManager,
    Kernel,
    RetryPolicy,
    RunResult,
    Threshold,
    classify,
)
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import Emit, Invoke, LoadState, Release, Reserve, SaveState, Sleep, Spawn
from xdv.trace import Domain, EventType, TraceEntry, read_trace

K_DOMAIN = "k.domain"


def double(value: int) -> int:
    return 2 * value


def worker(jobs: int, gaps: tuple[int, ...] = ()) -> Any:
    """Runs ``jobs`` K calls, emitting one record per job (its value, or its failure)."""
    contract = yield Reserve("K", "lane", 1)
    for job in range(jobs):
        try:
            value = yield Invoke(contract, "call", (double, job))
            yield Emit(["ok", job, value])
        except XdvError as error:
            yield Emit(["failed", job, error.code.name])
        if gaps:
            yield Sleep(gaps[job % len(gaps)])
    yield Release(contract)


def tenant_run(plan: FaultPlan, *, jobs: int = 6, workers: int = 2, seed: int = 0, **kw: Any):
    """Workers in two tenant VHMs (one parent spawning a child in each) under ``plan``."""
    kernel = Kernel(seed, domains=[KDomainManager(lanes=8)], faults=plan)
    for name in ("a", "b")[:workers]:
        vhm = kernel.create_vhm(name)
        kernel.spawn(parent, jobs, kw.get("gaps", ()), name=f"parent-{name}", vhm=vhm)
    result = kernel.run()
    return kernel, result, read_trace(result.trace_bytes or b"").entries


def parent(jobs: int, gaps: tuple[int, ...]) -> Any:
    child = yield Spawn(worker, (jobs, gaps), name="worker")
    yield from worker(jobs, gaps)
    return child


def events(entries: list[TraceEntry], kind: EventType) -> list[TraceEntry]:
    return [entry for entry in entries if entry.event_type is kind]


def plan_of(document: dict[str, Any]) -> FaultPlan:
    return FaultPlan.from_document(document)


# ---------------------------------------------------------------------------------- classes


@pytest.mark.spec("XDV-024-2")
def test_every_error_code_has_one_class_in_one_of_the_four_categories() -> None:
    categories = {Domain.Q, Domain.PHI, Domain.K, Domain.ORCHESTRATION}
    for code in ErrorCode:
        if code is ErrorCode.OK:
            continue
        fault = classify(code)
        assert fault.name in FAULT_CLASSES and fault.domain in categories
    assert {fault.domain for fault in FAULT_CLASSES.values()} == categories
    assert classify(ErrorCode.DECOHERENCE_EXCEEDED).name == "q.decoherence"
    assert classify(ErrorCode.PHI_ERR_STABILITY_BREACH).name == "phi.stability"
    assert classify(ErrorCode.DOMAIN_FAULT, Domain.Q).name == "q.provider"
    assert classify(ErrorCode.DOMAIN_FAULT, Domain.K).name == K_DOMAIN
    # Each injectable class raises its own code, which classifies back to it.
    for fault in FAULT_CLASSES.values():
        if fault.name not in ("k.domain", "orchestration.escalation", "orchestration.run"):
            domain = fault.domain if fault.domain is not Domain.ORCHESTRATION else Domain.K
            assert classify(fault.code, domain) is fault, fault.name


@pytest.mark.spec("XDV-024-2")
@pytest.mark.spec("XDV-024-5.2")
def test_every_fault_entry_carries_its_class_domain_and_level() -> None:
    def crash() -> Any:
        yield Emit("before")
        raise ValueError("a bug")

    kernel = Kernel()
    kernel.spawn(crash)
    result = kernel.run()
    (fault,) = events(read_trace(result.trace_bytes or b"").entries, EventType.FAULT)
    assert fault.metadata["class"] == "k.process"
    assert fault.metadata["domain"] == "K" and fault.metadata["level"] == FaultLevel.PROCESS


# ---------------------------------------------------------------------------------- plans


def test_plans_round_trip_through_their_record_and_keep_the_old_form() -> None:
    plain = FaultPlan([FaultRule("invoke", 2, pid=3)])
    assert plain.to_record() == [{"site": "invoke", "occurrence": 2, "pid": 3}]
    assert FaultPlan.from_record(plain.to_record()) == plain
    assert FaultPlan().to_record() == []
    rich = plan_of(
        {
            "inject": [{"site": "outcome", "class": K_DOMAIN, "count": 2, "after": 3}],
            "policies": {
                "k": {"retry": {"attempts": 2}, "escalate": {"vhm": {"count": 2, "window": 9}}}
            },
        }
    )
    record = rich.to_record()
    assert isinstance(record, dict) and record["version"] == 1
    assert FaultPlan.from_record(json.loads(json.dumps(record))) == rich


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"inject": [{"site": "nowhere"}]}, "inject[0].site"),
        ({"inject": [{"site": "invoke", "occurrence": 0}]}, "inject[0].occurrence"),
        ({"inject": [{"site": "invoke"}, {"site": "invoke", "count": "2"}]}, "inject[1].count"),
        ({"inject": [{"site": "outcome", "class": "q.nothing"}]}, "inject[0].class"),
        ({"inject": [{"site": "outcome", "class": "q.provider", "domain": "Φ"}]}, "domain"),
        ({"inject": [{"site": "invoke", "colour": 1}]}, "inject[0]"),
        ({"policies": {"q.provider": {"retry": {"attempts": 0}}}}, "retry.attempts"),
        ({"policies": {"q": {"escalate": {"planet": {}}}}}, "policies.q.escalate"),
        ({"policies": {"k": {"escalate": {"vhm": {"count": 1}}}}}, "escalate.vhm.window"),
        ({"policies": {"nonsense": {}}}, "policies.nonsense"),
        ({"policies": {"q": {"fallback": [{}]}}}, "policies.q.fallback[0]"),
        ({"version": 2}, "version"),
        ([], "plan"),
    ],
)
def test_a_malformed_plan_is_a_typed_error_naming_the_field(document: Any, field: str) -> None:
    with pytest.raises(XdvError) as raised:
        FaultPlan.from_document(document)
    assert raised.value.code is ErrorCode.FAULT_PLAN_INVALID
    assert field in (raised.value.where or ""), raised.value


def test_plan_files_are_read_safely(tmp_path: Path) -> None:
    good = tmp_path / "plan.json"
    good.write_text(json.dumps({"inject": [{"site": "invoke"}]}))
    assert FaultPlan.from_file(good) == FaultPlan([FaultRule("invoke")])
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"inject": [NaN]}')
    with pytest.raises(XdvError) as raised:
        FaultPlan.from_file(bad)
    assert raised.value.code is ErrorCode.INPUT_DECODE_FAILED
    with pytest.raises(XdvError) as raised:
        FaultPlan.from_file(tmp_path)
    assert raised.value.code is ErrorCode.INPUT_NOT_REGULAR


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**41) | st.sampled_from(
        ["invoke", "outcome", "q.provider", "k", "*", "Q", "domain", "vhm", "retry"]
    ),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["version", "inject", "policies", "site", "class", "occurrence", "count", "pid",
             "vhm", "domain", "after", "before", "retry", "fallback", "restart", "escalate",
             "attempts", "delay", "factor", "delay_max", "node", "window", "q.provider", "k"]
        ),
        inner,
        max_size=4,
    ),
    max_leaves=12,
)  # fmt: skip


@given(_JSON)
@settings(max_examples=150, deadline=None)
def test_any_document_is_a_plan_or_a_typed_refusal(document: Any) -> None:
    try:
        plan = FaultPlan.from_document(document)
    except XdvError as error:
        assert error.code is ErrorCode.FAULT_PLAN_INVALID, error
        return
    assert FaultPlan.from_record(plan.to_record()) == plan


@given(st.integers(0, 2**32))
@settings(max_examples=30, deadline=None)
def test_random_plans_are_a_function_of_their_draws(seed: int) -> None:
    first = FaultPlan.random(random.Random(seed))
    assert FaultPlan.random(random.Random(seed)) == first
    assert FaultPlan.from_record(json.loads(json.dumps(first.to_record()))) == first


# ---------------------------------------------------------------------------------- determinism

_SITES = ("invoke", "reserve", "outcome")
_CLASSES = [K_DOMAIN, "k.process", "orchestration.injected", "orchestration.contract"]


@pytest.mark.spec("XDV-024-9")
@pytest.mark.spec("XDV-024-6")
@given(st.integers(0, 2**32), st.integers(0, 3))
@settings(max_examples=40, deadline=None)
def test_the_same_plan_and_seed_give_the_same_trace_bytes(draw: int, seed: int) -> None:
    plan = FaultPlan.random(
        random.Random(draw), sites=_SITES, classes=_CLASSES, pids_max=4, time_max=60
    )
    kernel, first, entries = tenant_run(plan, jobs=4, seed=seed)
    _, again, _ = tenant_run(FaultPlan.from_record(plan.to_record()), jobs=4, seed=seed)
    assert first.trace_bytes == again.trace_bytes
    assert kernel.check_fault_invariants() == []
    # Recovery never duplicates an effect: one DOMAIN_RESULT per invocation, one record per
    # job of each process, and no process holds a contract at the end.
    results = Counter(entry.metadata["inv"] for entry in events(entries, EventType.DOMAIN_RESULT))
    assert all(count == 1 for count in results.values())
    per_job = Counter((pid, value[1]) for pid, value in first.outputs)
    assert all(count == 1 for count in per_job.values())
    assert all(not info["contracts"] for info in kernel.snapshot()["processes"].values())


# ---------------------------------------------------------------------------------- escalation


@pytest.mark.spec("XDV-024-5.3")
@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.lists(st.integers(0, 6), min_size=1, max_size=4),
)
@settings(max_examples=40, deadline=None)
def test_escalation_thresholds_are_exact(count: int, window: int, gaps: list[int]) -> None:
    """Every outcome fails; the VHM is terminated at the first fault that is the ``count``-th
    within ``window`` logical steps, and not one fault earlier."""
    plan = FaultPlan(
        [FaultRule("outcome", fault=K_DOMAIN, count=1000)],
        {K_DOMAIN: ClassPolicy(escalate={FaultLevel.VHM: Threshold(count, window)})},
    )
    kernel, result, entries = tenant_run(plan, jobs=5, workers=1, gaps=tuple(gaps))
    detected = [entry.logical_time for entry in events(entries, EventType.FAULT_DETECTED)]
    expected = next(
        (
            index
            for index, now in enumerate(detected)
            if sum(1 for then in detected[: index + 1] if then > now - window) >= count
        ),
        None,
    )
    escalations = events(entries, EventType.FAULT_ESCALATED)
    if expected is None:
        assert escalations == [] and len(detected) == 10
        return
    assert len(detected) == expected + 1  # nothing of the VHM ran after its termination
    (escalation,) = escalations
    assert escalation.metadata["to"] == "vhm" and escalation.metadata["action"] == "terminated"
    assert escalation.metadata["count"] == count and escalation.logical_time == detected[-1]
    (terminate,) = events(entries, EventType.VHM_TERMINATE)
    assert terminate.seq > escalation.seq and len(terminate.metadata["processes"]) == 2
    assert {status.code for status in result.exits.values()} == {"VHM_TERMINATED"}
    assert kernel.check_fault_invariants() == []


@pytest.mark.spec("XDV-024-5.3")
@pytest.mark.spec("XDV-024-8")
def test_a_vhm_fault_ends_only_that_vhm() -> None:
    plan = FaultPlan(
        [FaultRule("outcome", fault=K_DOMAIN, count=1000, vhm=1)],
        {"k": ClassPolicy(escalate={FaultLevel.VHM: Threshold(2, 100)})},
    )
    _, result, entries = tenant_run(plan, jobs=4)
    ended = {pid: status.code for pid, status in result.exits.items()}
    assert Counter(ended.values()) == {"VHM_TERMINATED": 2, None: 2}
    assert [entry.vhm for entry in events(entries, EventType.VHM_TERMINATE)] == [1]
    survivors = sorted(value for pid, value in result.outputs if ended[pid] is None)
    assert survivors == sorted([["ok", job, 2 * job] for job in range(4)] * 2)


@pytest.mark.spec("XDV-024-5.3")
def test_the_node_level_ends_the_run_with_a_panic() -> None:
    plan = FaultPlan(
        [FaultRule("outcome", fault=K_DOMAIN, count=1000)],
        {"*": ClassPolicy(escalate={FaultLevel.NODE: Threshold(3, 1000)})},
    )
    _, result, entries = tenant_run(plan, jobs=4)
    assert result.status == "panic" and not result.ok
    (panic,) = events(entries, EventType.NODE_PANIC)
    end = entries[-1]
    assert end.event_type is EventType.RUN_END and end.status is ErrorCode.NODE_PANIC
    assert end.metadata["status"] == "panic"
    assert "3 faults counted under '*'" in end.metadata["reason"]
    assert len(events(entries, EventType.FAULT_DETECTED)) == 3
    assert all(entry.seq < panic.seq for entry in events(entries, EventType.FAULT_DETECTED))
    assert {status.code for status in result.exits.values()} == {"NODE_PANIC"}


@pytest.mark.spec("XDV-024-5.3")
def test_an_injected_call_fault_escalates_at_the_next_safe_point() -> None:
    plan = FaultPlan(
        [FaultRule("invoke", vhm=1)],
        {"*": ClassPolicy(escalate={FaultLevel.VHM: Threshold(1, 10)})},
    )
    kernel, _, entries = tenant_run(plan, jobs=2)
    (detected,) = events(entries, EventType.FAULT_DETECTED)
    assert detected.metadata["source"] == "injected" and detected.metadata["site"] == "invoke"
    (terminate,) = events(entries, EventType.VHM_TERMINATE)
    refusal = next(e for e in entries if e.seq > detected.seq and e.status)
    assert refusal.event_type is EventType.DOMAIN_INVOKE  # the call's own failure entry first
    assert terminate.seq > refusal.seq and terminate.vhm == 1
    assert kernel.check_fault_invariants() == []


# ---------------------------------------------------------------------------------- recovery


@pytest.mark.spec("XDV-024-6")
def test_a_retry_waits_its_back_off_and_delivers_one_outcome() -> None:
    plan = FaultPlan(
        [FaultRule("outcome", fault=K_DOMAIN, pid=1, count=3)],
        {K_DOMAIN: ClassPolicy(retry=RetryPolicy(attempts=3, delay=2, factor=3, delay_max=10))},
    )
    _, result, entries = tenant_run(plan, jobs=2, workers=1)
    retries = events(entries, EventType.RECOVERY_RETRY)
    assert [entry.metadata["delay"] for entry in retries] == [2, 6, 10]
    invokes = events(entries, EventType.DOMAIN_INVOKE)
    for retry in retries:
        again = next(entry for entry in invokes if entry.seq > retry.seq)
        at = retry.metadata["at"]
        assert again.logical_time == at == retry.logical_time + retry.metadata["delay"]
    assert sorted(value for _, value in result.outputs) == sorted([["ok", 0, 0], ["ok", 1, 2]] * 2)
    assert events(entries, EventType.RECOVERY_FAILED) == []


def test_spent_retries_hand_the_fault_to_the_process() -> None:
    plan = FaultPlan(
        [FaultRule("outcome", fault=K_DOMAIN, pid=1, count=3)],
        {K_DOMAIN: ClassPolicy(retry=RetryPolicy(attempts=2))},
    )
    _, result, entries = tenant_run(plan, jobs=2, workers=1)
    (failed,) = events(entries, EventType.RECOVERY_FAILED)
    assert failed.status is ErrorCode.RECOVERY_EXHAUSTED and failed.metadata["attempts"] == 2
    first = next(value for pid, value in result.outputs if pid == 1)
    assert first == ["failed", 0, "DOMAIN_FAULT"]


@pytest.mark.spec("XDV-024-6")
def test_a_vhm_restarts_from_its_k_snapshot_with_the_last_saved_state() -> None:
    def checkpointed(jobs: int) -> Any:
        start = (yield LoadState()) or 0
        contract = yield Reserve("K", "lane", 1)
        for job in range(start, jobs):
            value = yield Invoke(contract, "call", (double, job))
            yield Emit(["ok", job, value])
            yield SaveState(job + 1)
        yield Release(contract)

    plan = FaultPlan(
        [FaultRule("outcome", fault=K_DOMAIN, occurrence=3)],
        {K_DOMAIN: ClassPolicy(restart=1, escalate={FaultLevel.VHM: Threshold(1, 100)})},
    )
    kernel = Kernel(domains=[KDomainManager()], faults=plan)
    kernel.spawn(checkpointed, 5, vhm=kernel.create_vhm("tenant"))
    result: RunResult = kernel.run()
    entries = read_trace(result.trace_bytes or b"").entries
    (restart,) = events(entries, EventType.RECOVERY_RESTART)
    (vhm_restart,) = events(entries, EventType.VHM_RESTART)
    assert restart.seq < vhm_restart.seq and vhm_restart.metadata["processes"] == [[1, 2]]
    # The restarted process resumed after job 1, the last it saved; job 2 failed and ran again.
    assert [value for _, value in result.outputs] == [["ok", job, 2 * job] for job in range(5)]
    assert result.exits[2].ok and result.exits[1].code == "VHM_TERMINATED"
    assert kernel.fault_stats.restarts == 1


# ---------------------------------------------------------------------------------- Q and Φ


def q_kernel(plan: FaultPlan) -> Any:
    from xdv.domains.q import QDomainManager
    from xdv.runtime import make_kernel

    return make_kernel(domains=[KDomainManager(), QDomainManager()], faults=plan)


BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def q_worker(jobs: int) -> Any:
    from xdv.domains.q import QHandle

    other = yield from QHandle.reserve(1)
    handle = yield from QHandle.reserve(2)
    for job in range(jobs):
        try:
            result = yield from handle.run(BELL, 16)
            yield Emit(["ok", job, sorted(result["counts"])])
        except XdvError as error:
            yield Emit(["failed", job, error.code.name])
    result = yield from other.run("OPENQASM 3.0;\nqubit[1] q;\nbit[1] c;\nc = measure q;", 4)
    yield Emit(["other", sorted(result["counts"])])


def run_q(plan: FaultPlan, jobs: int = 3) -> tuple[Any, RunResult, list[TraceEntry]]:
    from xdv.core import Operation

    kernel = q_kernel(plan)
    pid = kernel.spawn(q_worker, jobs, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
    result = kernel.run()
    return kernel, result, read_trace(result.trace_bytes or b"").entries


@pytest.mark.spec("XDV-024-3.3")
@pytest.mark.spec("XDV-024-8")
def test_a_q_measurement_failure_is_contained_to_its_container() -> None:
    plan = FaultPlan([FaultRule("outcome", fault="q.measurement_timeout", occurrence=2)])
    kernel, result, entries = run_q(plan)
    assert [value for _, value in result.outputs] == [
        ["ok", 0, ["00", "11"]],
        ["failed", 1, "MEASUREMENT_TIMEOUT"],
        ["failed", 2, "CONTRACT_INVALID"],  # the container was invalidated and released
        ["other", ["0"]],  # the other container was untouched
    ]
    (detected,) = events(entries, EventType.FAULT_DETECTED)
    (contained,) = events(entries, EventType.FAULT_CONTAINED)
    release = next(e for e in events(entries, EventType.RESOURCE_RELEASE) if e.seq > detected.seq)
    assert detected.seq < release.seq < contained.seq
    assert release.metadata == {"reason": "fault"} and release.contract == 2
    assert contained.metadata["actions"] == ["aborted", "invalidated", "released"]
    assert result.ok  # releasing the dead handle again changed nothing
    assert kernel.check_fault_invariants() == []


@pytest.mark.spec("XDV-024-5.3")
def test_a_domain_escalation_quarantines_the_domain() -> None:
    plan = FaultPlan(
        [FaultRule("outcome", fault="q.provider", count=2)],
        {"q": ClassPolicy(escalate={FaultLevel.DOMAIN: Threshold(2, 100)})},
    )
    from xdv.core import Operation
    from xdv.domains.q import QHandle

    def anchor() -> Any:
        for attempt in range(3):
            try:
                handle = yield from QHandle.reserve(2)
                yield from handle.run(BELL, 16)
            except XdvError as error:
                yield Emit([attempt, error.code.name])

    kernel = q_kernel(plan)
    pid = kernel.spawn(anchor, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
    result = kernel.run()
    entries = read_trace(result.trace_bytes or b"").entries
    (escalation,) = events(entries, EventType.FAULT_ESCALATED)
    assert escalation.metadata["to"] == "domain" and escalation.metadata["action"] == "quarantined"
    (freeze,) = events(entries, EventType.DOMAIN_FREEZE)
    assert freeze.domain is Domain.Q and freeze.metadata["reason"].startswith("quarantined")
    assert freeze.seq > escalation.seq
    assert [value for _, value in result.outputs] == [
        [0, "Q_PROVIDER_FAILED"],
        [1, "Q_PROVIDER_FAILED"],
        [2, "DOMAIN_QUARANTINED"],  # nothing new is granted in a quarantined domain
    ]
    assert kernel.check_fault_invariants() == []


@pytest.mark.spec("XDV-024-4.3")
@pytest.mark.spec("XDV-024-8")
def test_phi_instability_is_halted_and_its_envelope_released() -> None:
    from xdv.domains.phi import PhiDomainManager
    from xdv.runtime import make_kernel

    ring = {"kind": "ising", "n": 6, "J": [[i, (i + 1) % 6, 1.0] for i in range(6)]}

    def anchor() -> Any:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase", "window": 40})
        try:
            yield Invoke(contract, "load", (ring, {"replicas": 2}))
            yield Invoke(contract, "readout")
        except XdvError as error:
            yield Emit(error.code.name)
        yield Release(contract)

    kernel = make_kernel(domains=[KDomainManager(), PhiDomainManager(instability_at=(0,))])
    kernel.spawn(anchor, domains=("K", "Φ"))
    result = kernel.run()
    entries = read_trace(result.trace_bytes or b"").entries
    assert [value for _, value in result.outputs] == ["PHI_ERR_STABILITY_BREACH"]
    (detected,) = events(entries, EventType.FAULT_DETECTED)
    assert detected.metadata["class"] == "phi.stability" and detected.domain is Domain.PHI
    (contained,) = events(entries, EventType.FAULT_CONTAINED)
    assert contained.metadata["actions"][-1] == "scheduler notified"
    failed = [e for e in events(entries, EventType.DOMAIN_RESULT) if e.status]
    assert all("value" not in entry.metadata for entry in failed)  # no partial projection
    assert result.ok and kernel.manager("Φ").snapshot()["envelopes"] == {}


@pytest.mark.spec("XDV-024-7")
def test_an_injected_transition_fault_rolls_back_and_is_logged() -> None:
    from xdv.syscalls import Transition

    def anchor() -> Any:
        before = kernel.snapshot()
        try:
            yield Transition("K", "K", "call", (double, 4))
        except XdvError as error:
            yield Emit([error.code.name, kernel.snapshot() == before])

    plan = FaultPlan([FaultRule("transition.activation", fault=K_DOMAIN)])
    kernel = Kernel(domains=[KDomainManager()], faults=plan)
    kernel.spawn(anchor)
    result = kernel.run()
    entries = read_trace(result.trace_bytes or b"").entries
    assert [value for _, value in result.outputs] == [["DOMAIN_FAULT", True]]
    (detected,) = events(entries, EventType.FAULT_DETECTED)
    (rollback,) = events(entries, EventType.TRANSITION_ROLLBACK)
    assert detected.seq < rollback.seq and detected.metadata["site"] == "transition.activation"
    assert (
        rollback.metadata["undone"] == ["reservation"] and rollback.status is ErrorCode.DOMAIN_FAULT
    )


@pytest.mark.spec("XDV-024-7")
def test_a_q_fault_in_a_transition_activation_is_detected_and_rolled_back() -> None:
    from xdv.core import Operation
    from xdv.syscalls import Transition

    def anchor() -> Any:
        try:
            # A fidelity floor no job meets: the activation fails with DECOHERENCE_EXCEEDED.
            yield Transition(
                "K", "Q", "run", (BELL, 8), "qubits", 2, terms={"budget": {"fidelity_min": 1.0}}
            )
        except XdvError as error:
            yield Emit(error.code.name)

    plan = FaultPlan([], {"q": ClassPolicy(escalate={FaultLevel.DOMAIN: Threshold(1, 10)})})
    kernel = q_kernel(plan)
    pid = kernel.spawn(anchor, domains=("K",))
    for operation, origin, target in (("TRANSITION", "K", "Q"), ("MEASURE", "Q", "K")):
        kernel.grant(pid, Operation[operation], origin, target)
    result = kernel.run()
    entries = read_trace(result.trace_bytes or b"").entries
    assert [value for _, value in result.outputs] == ["DECOHERENCE_EXCEEDED"]
    (detected,) = events(entries, EventType.FAULT_DETECTED)
    (rollback,) = events(entries, EventType.TRANSITION_ROLLBACK)
    assert detected.metadata["source"] == "transition" and detected.seq < rollback.seq
    assert (
        rollback.metadata["phase"] == "activation" and "reservation" in rollback.metadata["undone"]
    )
    (escalation,) = events(entries, EventType.FAULT_ESCALATED)
    assert escalation.metadata["action"] == "quarantined" and kernel.check_fault_invariants() == []


def test_a_fallback_that_no_manager_grants_contains_the_fault_once() -> None:
    plan = plan_of(
        {
            "inject": [{"site": "outcome", "class": "q.provider"}],
            "policies": {"q.provider": {"fallback": [{"calibration": "no_such_profile"}]}},
        }
    )
    _, result, entries = run_q(plan, jobs=2)
    assert [value for _, value in result.outputs][:2] == [
        ["failed", 0, "Q_PROVIDER_FAILED"],
        ["failed", 1, "CONTRACT_INVALID"],
    ]
    (contained,) = events(entries, EventType.FAULT_CONTAINED)
    assert contained.metadata["actions"] == ["aborted", "invalidated", "released"]
    refused = [e for e in events(entries, EventType.RESOURCE_RESERVE) if e.status]
    assert len(refused) == 1 and refused[0].metadata["call"] == "fallback"
    (failed,) = events(entries, EventType.RECOVERY_FAILED)
    assert failed.metadata["fallbacks"] == 1 and failed.seq > refused[0].seq
