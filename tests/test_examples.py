"""Every example runs as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, xdv
from xdv.core import FaultPlan
from xdv.runtime import replay, run_workload
from xdv.trace import EventType, read_trace

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


def test_there_are_examples() -> None:
    assert len(EXAMPLE_FILES) >= 2


@pytest.mark.system  # every example end to end, twice: CI's system step
@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_runs_and_replays(example: Path, tmp_path: Path) -> None:
    trace = tmp_path / "example.xdvt"
    completed = xdv("run", str(example), "--trace", str(trace))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip()
    assert xdv("verify", str(trace)).returncode == 0
    assert xdv("replay", str(trace)).returncode == 0


@pytest.mark.spec("XDV-024-10")
@pytest.mark.spec("XDV-024-3.3")
def test_the_fault_plan_example_recovers_and_replays(tmp_path: Path) -> None:
    trace = tmp_path / "faults.xdvt"
    example = str(EXAMPLES / "fault_tolerant_q.py")
    plan = str(EXAMPLES / "faults_plan.json")
    completed = xdv("run", example, "--faults", plan, "--trace", str(trace))
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[4] == "job 4: DECOHERENCE_EXCEEDED; reserving a new container"
    assert sum("agreed in 256 of 256" in line for line in lines) == 5
    kinds = [entry.event_name for entry in read_trace(trace).entries]
    assert kinds.count("RECOVERY_RETRY") == 2 and kinds.count("RECOVERY_FALLBACK") == 1
    assert kinds.count("FAULT_DETECTED") == 4 and kinds.count("FAULT_CONTAINED") == 2
    for mode in ("reexecute", "inject"):  # in this process: the replay rebuilds the plan
        report = replay(trace, mode)
        assert report.ok, report.divergence


def test_a_bad_fault_plan_is_a_usage_error_naming_the_field(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"inject": [{"site": "invoke", "occurrence": -1}]}')
    completed = xdv("run", str(EXAMPLES / "ping_pong.py"), "--faults", str(plan), "--json")
    assert completed.returncode == 64
    error = json.loads(completed.stdout)["error"]
    assert error["code"] == "FAULT_PLAN_INVALID" and "inject[0].occurrence" in error["where"]


@pytest.mark.spec("XDV-014-5")
@pytest.mark.spec("XDV-083-8.2")
def test_the_multi_tenant_example_isolates_and_accounts() -> None:
    result = run_workload(str(EXAMPLES / "multi_tenant.py"))
    assert result.ok
    entries = read_trace(result.trace_bytes).entries
    vhm_of = {
        e.process: e.vhm
        for e in entries
        if e.event_type is EventType.PROCESS_CREATE and not e.status
    }
    assert sorted(set(vhm_of.values())) == [1, 2, 3]
    for entry in entries:
        if entry.process in vhm_of:
            assert entry.vhm == vhm_of[entry.process]
    usage = {e.vhm: e.metadata for e in entries if e.event_type is EventType.VHM_USAGE}
    research, students = usage[1]["usage"], usage[2]["usage"]
    for name, used in students.items():
        assert research.get(name, 0) >= used  # a nested VHM's use counts against its parent
    for record in usage.values():
        for name, bound in record.get("quotas", {}).items():
            assert record["usage"].get(name, 0) <= bound
    denied = sorted(e.metadata["quota"] for e in entries if e.event_type is EventType.VHM_DENY)
    assert denied == ["processes", "qubits", "shots"]


@pytest.mark.spec("XDV-024-8")
@pytest.mark.spec("XDV-024-10")
def test_the_fault_isolation_example_restarts_then_ends_only_its_vhm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    trace = tmp_path / "isolation.xdvt"
    plan = FaultPlan.from_file(EXAMPLES / "faults_vhm_plan.json")
    result = run_workload("examples/fault_isolation.py", faults=plan, trace=trace)
    outputs = [value for _, value in result.outputs]
    assert "batch: restarted at job 1" in outputs
    assert [line for line in outputs if line.startswith("web")] == [
        f"web: served request {n}" for n in range(8)
    ]
    entries = read_trace(trace).entries
    actions = [e.metadata["action"] for e in entries if e.event_name == "FAULT_ESCALATED"]
    assert actions == ["restarted", "terminated"]
    assert {e.vhm for e in entries if e.event_name == "VHM_TERMINATE"} == {1}
    assert replay(trace).ok
