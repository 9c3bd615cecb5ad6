"""The ``xdv`` command: outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EXAMPLES, WORKLOADS, xdv


def test_run_prints_emits_and_writes_a_verifiable_trace(tmp_path: Path) -> None:
    path = tmp_path / "pp.xdvt"
    completed = xdv("run", str(EXAMPLES / "ping_pong.py"), "--seed", "7", "--trace", str(path))
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("ping 0") and lines[-1].startswith("ping paused")
    verified = xdv("verify", str(path))
    assert verified.returncode == 0 and verified.stdout.startswith("OK:")
    assert xdv("replay", str(path)).returncode == 0
    assert xdv("replay", "--mode", "inject", str(path)).returncode == 0


def test_run_json_and_module_targets(tmp_path: Path) -> None:
    completed = xdv("run", "tests.workloads.no_random:main", "--json")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["ok"] and document["outputs"][0] == "slow 0"
    assert document["exits"]["1"]["ok"] is True


def test_exit_codes() -> None:
    assert xdv("run").returncode == 64  # missing argument
    assert xdv("run", "x.py", "--seed", "-3").returncode == 64
    assert xdv("frobnicate").returncode == 64
    missing = xdv("run", "does/not/exist.py")
    assert missing.returncode == 65 and "WORKLOAD_INVALID" in missing.stderr
    failing = xdv("run", str(WORKLOADS / "mixed.py"))
    assert failing.returncode == 70 and "PROCESS_FAULT" in failing.stderr
    assert xdv("verify", "does/not/exist.xdvt").returncode == 1


@pytest.mark.spec("XDV-071-8")
def test_verify_names_the_first_bad_entry(tmp_path: Path) -> None:
    path = tmp_path / "t.xdvt"
    assert xdv("run", str(EXAMPLES / "ping_pong.py"), "--trace", str(path)).returncode == 0
    data = bytearray(path.read_bytes())
    data[400] ^= 0x01
    path.write_bytes(bytes(data))
    completed = xdv("verify", str(path))
    assert completed.returncode == 1
    assert completed.stdout.startswith("FAILED at entry ")
    report = json.loads(xdv("verify", "--json", str(path)).stdout)
    assert report["ok"] is False and report["error"]["entry"] is not None


def test_trace_show_and_diff(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    xdv("run", str(EXAMPLES / "ping_pong.py"), "--seed", "1", "--trace", str(first))
    xdv("run", str(EXAMPLES / "ping_pong.py"), "--seed", "2", "--trace", str(second))
    shown = xdv("trace", "show", str(first), "--json", "--event", "effect")
    assert shown.returncode == 0
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert rows and all(row["event"] == "EFFECT" for row in rows)
    table = xdv("trace", "show", str(first), "--limit", "5")
    assert table.returncode == 0 and "RUN_START" in table.stdout
    assert xdv("trace", "diff", str(first), str(first)).returncode == 0
    differing = xdv("trace", "diff", str(first), str(second))
    assert differing.returncode == 1 and "first divergence at entry 0" in differing.stdout
