"""Ctrl-C and SIGTERM end a run cleanly: exit 130/143, a run end that says so, a signed trace
that `xdv verify` reports as interrupted, never as a normal completion."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, WORKLOADS, xdv
from xdv.trace import EventType, read_trace


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xdv", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_interrupted(trace: Path) -> None:
    parsed = read_trace(trace)
    end = parsed.entries[-1]
    assert end.event_type is EventType.RUN_END and end.metadata["status"] == "interrupted"
    verified = xdv("verify", str(trace), "--require-signature")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "INTERRUPTED" in verified.stdout
    document = json.loads(xdv("verify", str(trace), "--json").stdout)
    assert document["interrupted"] is True and document["end_status"] == "interrupted"


@pytest.mark.parametrize(
    ("number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_a_signal_ends_a_run_as_interrupted(
    tmp_path: Path, number: signal.Signals, exit_code: int
) -> None:
    trace = tmp_path / "endless.xdvt"
    process = start("run", str(WORKLOADS / "endless.py"), "--trace", str(trace))
    assert process.stdout is not None
    printed = [process.stdout.readline().strip() for _ in range(200)]
    assert printed[-1] == "line 199"  # the run is under way, with its handlers installed
    os.kill(process.pid, number)
    _, err = process.communicate(timeout=60)
    assert process.returncode == exit_code, err
    assert f"interrupted by {number.name}" in err
    check_interrupted(trace)


# End to end (a real process, CP-SAT solving for seconds, a signal): CI's system step runs it.
@pytest.mark.system
def test_ctrl_c_during_an_exact_phirun_is_not_swallowed_by_the_solver(tmp_path: Path) -> None:
    # A random graph of 120 nodes and about 600 edges: CP-SAT does not prove its maximum cut
    # quickly, so the solve runs to its deterministic-time limit (a few seconds of wall time).
    rng = random.Random(7)
    edges = sorted({tuple(sorted(rng.sample(range(120), 2))) for _ in range(600)})
    graph = tmp_path / "random.txt"
    graph.write_text(f"120 {len(edges)}\n" + "".join(f"{u + 1} {v + 1} 1\n" for u, v in edges))
    trace = tmp_path / "exact.xdvt"
    process = start(
        "phirun", str(graph), "--provider", "exact", "--work-limit", "1.5", "--trace", str(trace)
    )
    deadline = time.monotonic() + 60
    while not trace.exists() and time.monotonic() < deadline:  # the run has been set up
        time.sleep(0.02)
    time.sleep(0.5)  # the solve is under way
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    # The solve finishes within its bound (CP-SAT no longer swallows the signal), then the
    # run stops: exit 130, no result printed as if the job had finished.
    assert process.returncode == 130, out + err
    assert "cut" not in out and "interrupted by SIGINT" in err
    check_interrupted(trace)
