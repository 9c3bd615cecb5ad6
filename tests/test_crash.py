"""Crash safety: a killed run leaves a verifiable prefix holding everything it printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, WORKLOADS, xdv
from xdv.errors import ErrorCode
from xdv.trace import EventType, scan_trace


@pytest.mark.spec("XDV-071-3.1")
@pytest.mark.parametrize("fsync", ["batch", "always"])
def test_killed_run_leaves_an_intact_prefix_with_every_acknowledged_line(
    tmp_path: Path, fsync: str
) -> None:
    path = tmp_path / "killed.xdvt"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xdv",
            "run",
            str(WORKLOADS / "endless.py"),
            "--trace",
            str(path),
            "--fsync",
            fsync,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed = [process.stdout.readline().strip() for _ in range(3000 if fsync == "batch" else 50)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    completed = xdv("verify", str(path))
    assert completed.returncode == 1  # no run-end entry, or a torn tail
    scan = scan_trace(path)
    assert scan.error is not None
    assert scan.error.code in (ErrorCode.TRACE_INCOMPLETE, ErrorCode.TRACE_TORN)
    # The intact prefix (everything before the first bad byte) verifies as an open trace.
    prefix = tmp_path / "prefix.xdvt"
    prefix.write_bytes(path.read_bytes()[: scan.error.offset])
    assert xdv("verify", "--allow-open", str(prefix)).returncode == 0
    effects = [e.metadata["v"] for e in scan.entries if e.event_type is EventType.EFFECT]
    # Nothing acknowledged is lost: every line the user saw is in the durable trace.
    assert printed == effects[: len(printed)]
