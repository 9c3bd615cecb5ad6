"""Workloads that declare VHMs as data (``XDV_VHMS``): created before the workload's setup,
recorded in RUN_START, rebuilt by replay; and the multi-tenant example's isolation and
accounting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import EXAMPLES, xdv
from xdv.errors import ErrorCode, WorkloadError
from xdv.runtime import replay, run_workload
from xdv.trace import EventType, read_trace

WORKLOAD = """
from xdv.syscalls import Emit, Self, Sleep

XDV_VHMS = [
    {"name": "gold", "weight": 4, "quotas": {"processes": 2, "steps": 50}},
    {"name": "tin", "parent": "gold", "quotas": {"steps": 10}},
]


def job(rounds):
    me = yield Self()
    for _ in range(rounds):
        yield Sleep(1)
    yield Emit(me.vhm)


def main(kernel):
    kernel.spawn(job, 3, vhm=kernel.vhms.find("gold"))
    kernel.spawn(job, 2, vhm=kernel.vhms.find("tin"))
"""


@pytest.mark.spec("XDV-014-10")
@pytest.mark.spec("XDV-083-11")
def test_declared_vhms_are_recorded_and_rebuilt_by_replay(tmp_path: Path) -> None:
    source = tmp_path / "tenants.py"
    source.write_text(WORKLOAD)
    trace = tmp_path / "tenants.xdvt"
    result = run_workload(str(source), trace=trace)
    assert result.ok and sorted(value for _, value in result.outputs) == [1, 2]
    entries = read_trace(trace.read_bytes()).entries
    recorded = entries[0].metadata["workload"]["vhms"]
    assert [item["name"] for item in recorded] == ["gold", "tin"]
    creates = [e for e in entries if e.event_type is EventType.VHM_CREATE]
    assert [(e.vhm, e.metadata["name"]) for e in creates] == [(1, "gold"), (2, "tin")]
    assert replay(trace).ok


@pytest.mark.parametrize(
    "declaration",
    [
        '{"name": "x"}',
        '[{"name": "x", "parent": "later"}, {"name": "later"}]',
        '[{"name": "x", "cpus": 1}]',
        '[{"name": "x", "quotas": [1]}]',
        '["x"]',
        '[{"name": "x", "default": 1}]',
        '[{"name": "x", "default": True}, {"name": "y", "default": True}]',
    ],
)
def test_malformed_declarations_are_refused(tmp_path: Path, declaration: str) -> None:
    source = tmp_path / "bad.py"
    source.write_text(f"XDV_VHMS = {declaration}\n\ndef main(kernel):\n    pass\n")
    with pytest.raises(WorkloadError) as error:
        run_workload(str(source))
    assert error.value.code is ErrorCode.WORKLOAD_INVALID


DEFAULTED = """
from xdv.syscalls import Emit, Self

XDV_VHMS = [{"name": "tenant", "default": True, "quotas": {"processes": 2}}]


def job():
    me = yield Self()
    yield Emit(me.vhm)


def main(kernel):
    for _ in range(SPAWNS):
        kernel.spawn(job)
"""


@pytest.mark.spec("XDV-014-10")
@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_the_default_vhm_takes_the_setups_unplaced_spawns(tmp_path: Path, isolation: str) -> None:
    source = tmp_path / "defaulted.py"
    source.write_text(DEFAULTED.replace("SPAWNS", "2"))
    trace = tmp_path / "defaulted.xdvt"
    result = run_workload(str(source), trace=trace, isolation=isolation)
    assert result.ok and [value for _, value in result.outputs] == [1, 1]
    assert replay(trace).ok
    source.write_text(DEFAULTED.replace("SPAWNS", "3"))  # one more than the quota
    refused = run_workload(str(source), isolation=isolation)
    assert refused.status == "failed"
    entries = read_trace(refused.trace_bytes).entries
    assert any(e.status == ErrorCode.VHM_QUOTA_EXCEEDED for e in entries)
    escape = DEFAULTED.replace("SPAWNS", "1").replace("spawn(job)", "spawn(job, vhm=0)")
    source.write_text(escape)
    escaped = run_workload(str(source), isolation=isolation)  # the root VHM: outside
    assert escaped.status == "failed"
    entries = read_trace(escaped.trace_bytes).entries
    assert any(e.status == ErrorCode.VHM_ISOLATION for e in entries)


def test_the_first_example_of_the_vhm_guide_runs_as_written() -> None:
    text = (EXAMPLES.parent / "docs" / "vhm.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    namespace: dict[str, object] = {}
    exec(compile(block, "docs/vhm.md", "exec"), namespace)
    result = namespace["result"]
    assert [value for _, value in result.outputs] == [  # type: ignore[attr-defined]
        "tenant runs in VHM 1",
        "VHM_QUOTA_EXCEEDED",
    ]


def test_a_declared_vhm_the_kernel_refuses_fails_the_setup_on_record(tmp_path: Path) -> None:
    source = tmp_path / "greedy.py"
    source.write_text(
        'XDV_VHMS = [{"name": "a", "quotas": {"qubits": 2}},'
        ' {"name": "b", "parent": "a", "quotas": {"qubits": 3}}]\n\n'
        "def main(kernel):\n    pass\n"
    )
    result = run_workload(str(source))
    assert result.status == "failed"
    entries = read_trace(result.trace_bytes).entries
    (fault,) = [e for e in entries if e.event_type is EventType.FAULT]
    assert fault.status == ErrorCode.VHM_NESTING_INVALID and fault.metadata["phase"] == "setup"


def test_trace_show_filters_and_shows_the_vhm(tmp_path: Path) -> None:
    source = tmp_path / "tenants.py"
    source.write_text(WORKLOAD)
    trace = tmp_path / "tenants.xdvt"
    assert run_workload(str(source), trace=trace).ok
    shown = xdv("trace", "show", str(trace), "--vhm", "2", "--json")
    assert shown.returncode == 0
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rows and all(row["vhm"] == 2 for row in rows)
    assert {row["event"] for row in rows} >= {"VHM_CREATE", "PROCESS_CREATE", "SLEEP"}
    table = xdv("trace", "show", str(trace), "--limit", "3")
    assert table.returncode == 0 and " vhm " in table.stdout.splitlines()[0]
