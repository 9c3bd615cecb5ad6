"""The scheduler across domains: Q placement and conflicts, Φ windows, --policy, replay."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLES, xdv
from xdv.core import KDomainManager, Operation, check_scheduler
from xdv.domains.phi import PhiDomainManager
from xdv.domains.q import QDomainManager, best_chain, chain_log_fidelity, load_profile
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import ReplayMode, build_policy, make_kernel, replay, run_workload
from xdv.syscalls import Emit, Invoke, Release, Reserve, Sleep
from xdv.trace import EventType, read_trace

PROFILE = "fake_kolkata"

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def _q_kernel(policy: str = "round-robin", **options: Any) -> Any:
    return make_kernel(
        1,
        domains=[KDomainManager(), QDomainManager(default_calibration=PROFILE)],
        policy=build_policy(policy),
        **options,
    )


def _entries(result: Any) -> list[Any]:
    assert result.trace_bytes is not None
    return read_trace(result.trace_bytes).entries


# ---------------------------------------------------------------------- Q


@pytest.mark.spec("XDV-023-6.4")
def test_a_q_mapping_conflict_is_resolved_by_remapping() -> None:
    def first() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Q", "qubits", 3, terms={"mapping": [0, 1, 2]})
        yield Sleep(10)
        yield Release(contract)

    def second(resolve: bool) -> Generator[Any, Any, Any]:
        try:
            contract = yield Reserve("Q", "qubits", 2, terms={"mapping": [1, 5]}, resolve=resolve)
        except XdvError as error:
            yield Emit(error.code.name)
            return
        yield Emit(contract.terms["mapping"])

    kernel = _q_kernel()
    kernel.spawn(first, domains=("K", "Q"))
    kernel.spawn(second, True, domains=("K", "Q"))
    kernel.spawn(second, False, domains=("K", "Q"))
    result = kernel.run()
    assert [value for _, value in result.outputs] == [[3, 4], "RESOURCE_EXHAUSTED"]
    resolved = [e for e in _entries(result) if e.event_type is EventType.CONFLICT_RESOLVED]
    assert len(resolved) == 1
    assert resolved[0].status == ErrorCode.RESOURCE_EXHAUSTED
    assert resolved[0].metadata["asked"]["mapping"] == [1, 5]
    assert resolved[0].metadata["granted"]["mapping"] == [3, 4]


@pytest.mark.spec("XDV-082-7.1")
def test_q_reservations_wait_for_qubits_and_never_share_them() -> None:
    kernel = _q_kernel()
    snapshots: list[dict[str, Any]] = []

    def job(qubits: int, hold: int) -> Generator[Any, Any, Any]:
        contract = yield Reserve("Q", "qubits", qubits, wait=True)
        snapshots.append(kernel.scheduler_snapshot())
        yield Sleep(hold)
        yield Release(contract)

    for qubits, hold in ((20, 6), (10, 3), (27, 2), (5, 4)):
        kernel.spawn(job, qubits, hold, domains=("K", "Q"))
    result = kernel.run()
    assert result.ok
    assert len(snapshots) == 4
    for snapshot in snapshots:
        assert check_scheduler(snapshot) == []
    grants = [e for e in _entries(result) if e.event_type is EventType.ADMISSION_GRANT]
    assert len(grants) == 2  # 20 fits at once; 10 waits, then 27 and 5 in turn


@pytest.mark.spec("XDV-012-6.1")
@pytest.mark.spec("XDV-012-6.2")
@pytest.mark.spec("XDV-082-7.2")
def test_a_job_over_its_decoherence_budget_is_aborted_and_logged() -> None:
    def job() -> Generator[Any, Any, Any]:
        contract = yield Reserve(
            "Q", "qubits", 2, terms={"budget": {"duration_ns_max": 10}}, wait=True
        )
        try:
            yield Invoke(contract, "run", (BELL, 10))
        except XdvError as error:
            yield Emit(error.code.name)

    kernel = _q_kernel()
    pid = kernel.spawn(job, domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
    result = kernel.run()
    assert [value for _, value in result.outputs] == ["DECOHERENCE_EXCEEDED"]
    statuses = [e.status for e in _entries(result) if e.event_type is EventType.DOMAIN_RESULT]
    assert ErrorCode.DECOHERENCE_EXCEEDED in statuses


@pytest.mark.spec("XDV-012-6.3")
@pytest.mark.spec("XDV-082-12.1")
def test_measurement_results_do_not_change_the_scheduling_order() -> None:
    """Runs whose measurements differ (other seeds) schedule exactly alike."""

    def job(index: int) -> Generator[Any, Any, Any]:
        contract = yield Reserve("Q", "qubits", 2, wait=True)
        result = yield Invoke(contract, "run", (BELL, 50 + index))
        yield Emit(sorted(result["counts"].items()))
        yield Sleep(index)
        yield Release(contract)

    orders = []
    outputs = []
    for seed in (1, 2):
        kernel = make_kernel(
            seed,
            domains=[KDomainManager(), QDomainManager(default_calibration=PROFILE)],
            policy=build_policy("fidelity:profiles=fake_kolkata"),
        )
        for index in range(4):
            pid = kernel.spawn(job, index, domains=("K", "Q"))
            kernel.grant(pid, Operation.MEASURE, "Q", "K")
        result = kernel.run()
        assert result.ok
        outputs.append([value for _, value in result.outputs])
        orders.append(
            [
                (e.logical_time, int(e.event_type), e.process)
                for e in _entries(result)
                if e.event_type
                in (
                    EventType.DISPATCH,
                    EventType.SLEEP,
                    EventType.ADMISSION_GRANT,
                    EventType.PLACEMENT,
                    EventType.PREEMPT,
                )
            ]
        )
    assert outputs[0] != outputs[1]  # the measurements differ ...
    assert orders[0] == orders[1]  # ... the schedule does not


def test_best_chain_beats_the_lowest_free_qubits() -> None:
    profile = load_profile(PROFILE)
    for amount in (2, 5, 9):
        found = best_chain(profile, amount, range(profile.size))
        assert found is not None
        score, chain = found
        assert len(set(chain)) == amount
        assert score >= chain_log_fidelity(profile, list(range(amount)))
    assert best_chain(profile, 3, [0, 1]) is None


@pytest.mark.spec("XDV-023-3.3")
def test_fidelity_placement_is_recorded_and_raises_estimated_fidelity() -> None:
    def job() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Q", "qubits", 6, wait=True)
        yield Emit(contract.terms["mapping"])
        yield Sleep(2)
        yield Release(contract)

    mappings = {}
    for spec in ("round-robin", "fidelity"):
        kernel = _q_kernel(spec)
        kernel.spawn(job, domains=("K", "Q"))
        result = kernel.run()
        mappings[spec] = result.outputs[0][1]
        placements = [e for e in _entries(result) if e.event_type is EventType.PLACEMENT]
        assert len(placements) == (1 if spec == "fidelity" else 0)
    profile = load_profile(PROFILE)
    assert chain_log_fidelity(profile, mappings["fidelity"]) > chain_log_fidelity(
        profile, mappings["round-robin"]
    )


# ---------------------------------------------------------------------- Φ


@pytest.mark.spec("XDV-012-5.1")
@pytest.mark.spec("XDV-012-5.2")
@pytest.mark.spec("XDV-082-8.1")
@pytest.mark.spec("XDV-023-6.4")
def test_phi_windows_are_allocated_without_overlap_and_conflicts_resolved() -> None:
    kernel = make_kernel(
        2, domains=[KDomainManager(), PhiDomainManager()], policy=build_policy("edf")
    )
    snapshots: list[dict[str, Any]] = []

    def windowed(start: int, resolve: bool, wait: bool) -> Generator[Any, Any, Any]:
        try:
            contract = yield Reserve(
                "Φ",
                "envelope",
                1,
                terms={"start": start, "window": 10, "provider": "phase"},
                resolve=resolve,
                wait=wait,
            )
        except XdvError as error:
            yield Emit(error.code.name)
            return
        snapshots.append(kernel.scheduler_snapshot())
        window = contract.terms["window"]
        yield Emit([window["start"], window["end"]])
        yield Sleep(3)
        yield Release(contract)

    kernel.spawn(windowed, 20, False, False, domains=("K", "Φ"))
    kernel.spawn(windowed, 25, True, False, domains=("K", "Φ"))  # moved after [20, 30)
    kernel.spawn(windowed, 22, False, False, domains=("K", "Φ"))  # refused
    kernel.spawn(windowed, 24, False, True, domains=("K", "Φ"))  # waits for a release
    result = kernel.run()
    values = [value for _, value in result.outputs]
    assert values[:3] == [[20, 30], [30, 40], "PHI_ERR_WINDOW_CONFLICT"]
    assert values[3] == [24, 34]  # granted once [20, 30) and [30, 40) were released
    for snapshot in snapshots:
        assert check_scheduler(snapshot) == []
    kinds = [e.event_type for e in _entries(result)]
    assert EventType.CONFLICT_RESOLVED in kinds and EventType.ADMISSION_GRANT in kinds


# ---------------------------------------------------------------------- CLI and replay


@pytest.mark.spec("XDV-012-11")
@pytest.mark.spec("XDV-082-14")
@pytest.mark.parametrize(
    "policy",
    ["priority:aging=8", "fair-share+edf", "fidelity:profiles=fake_kolkata/fake_hanoi"],
)
def test_a_run_under_any_policy_replays_identically(policy: str, tmp_path: Path) -> None:
    trace = tmp_path / "shared.xdvt"
    result = run_workload(str(EXAMPLES / "shared_qpu.py"), trace=trace, policy=policy)
    assert result.ok
    start = read_trace(trace.read_bytes()).start
    assert start["kernel"]["policy"] == build_policy(policy).spec
    for mode in (ReplayMode.REEXECUTE, ReplayMode.INJECT):
        report = replay(trace, mode)
        assert report.ok, report.divergence


def test_replay_refuses_a_policy_it_cannot_rebuild(tmp_path: Path) -> None:
    from helpers import rechained

    trace = tmp_path / "run.xdvt"
    assert run_workload(str(EXAMPLES / "ping_pong.py"), trace=trace).ok

    def edit(metadata: dict[str, Any]) -> dict[str, Any]:
        return {**metadata, "kernel": {**metadata["kernel"], "policy": "lottery"}}

    trace.write_bytes(rechained(trace.read_bytes(), edit))
    with pytest.raises(XdvError) as raised:
        replay(trace)
    assert raised.value.code is ErrorCode.REPLAY_INPUT_CHANGED
    assert "lottery" in raised.value.message


def test_cli_policy_option(tmp_path: Path) -> None:
    trace = tmp_path / "run.xdvt"
    completed = xdv(
        "run",
        str(EXAMPLES / "shared_qpu.py"),
        "--policy",
        "fidelity:profiles=fake_kolkata",
        "--trace",
        str(trace),
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["ok"] is True
    assert xdv("replay", str(trace)).returncode == 0
    refused = xdv("run", str(EXAMPLES / "ping_pong.py"), "--policy", "priority:aging=x")
    assert refused.returncode == 64
    assert "aging must be an integer" in refused.stderr


def test_the_documented_monitor_example_runs() -> None:
    """The invariant-checking example of docs/scheduler.md runs as written."""
    from helpers import ROOT

    text = (ROOT / "docs" / "scheduler.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    (example,) = [block for block in blocks if "check_scheduler" in block]
    namespace: dict[str, Any] = {}
    exec(compile(example, "docs/scheduler.md", "exec"), namespace)
    assert namespace["kernel"].clock.now >= 100
