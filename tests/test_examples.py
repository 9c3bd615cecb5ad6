"""Every example runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import EXAMPLES, xdv
from xdv.runtime import run_workload
from xdv.trace import EventType, read_trace

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


def test_there_are_examples() -> None:
    assert len(EXAMPLE_FILES) >= 2


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_runs_and_replays(example: Path, tmp_path: Path) -> None:
    trace = tmp_path / "example.xdvt"
    completed = xdv("run", str(example), "--trace", str(trace))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip()
    assert xdv("verify", str(trace)).returncode == 0
    assert xdv("replay", str(trace)).returncode == 0


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
