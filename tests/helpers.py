"""Helpers shared by the integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ROOT / "tests" / "workloads"
EXAMPLES = ROOT / "examples"


# A workload named as a module (``package.module:function``) is imported into ``sys.modules``
# and puts the working directory on ``sys.path``: such a run needs a process of its own.
_MODULE_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def xdv(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    separate: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the ``xdv`` command and return its exit code and output.

    By default the command runs in this process, through the same entry point as the
    ``xdv`` binary (:func:`xdv.cli.main`, exit codes from its ``SystemExit``), with its
    standard streams captured and ``cwd`` and ``env`` applied for the call: a new interpreter
    for every call costs a second or more (Qiskit, numba) and checks nothing more. With
    ``separate=True`` it runs as ``python -m xdv`` in a separate process: for what only a
    process shows (imports at start-up, signals, pipes, separate interpreters, concurrent
    runs) and for module targets. Every call runs separately under ``--long`` (which sets
    ``XDV_LONG``) or with ``XDV_TEST_SEPARATE=1``, so the binary itself stays exercised by the
    whole suite there.
    """
    if separate or "1" in (os.environ.get("XDV_LONG"), os.environ.get("XDV_TEST_SEPARATE")):
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "xdv", *args],
            cwd=cwd or ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if any(_MODULE_TARGET.fullmatch(arg) for arg in args):
        raise AssertionError(f"a module target runs only with separate=True: {args}")
    return _in_process(list(args), cwd or ROOT, env or {}, timeout)


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _in_process(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    from click.testing import CliRunner

    from xdv.cli import main

    previous_cwd = os.getcwd()
    timed = threading.current_thread() is threading.main_thread()
    previous_alarm = signal.signal(signal.SIGALRM, _alarm) if timed else None
    try:
        os.chdir(cwd)
        with CliRunner().isolation(env=env) as streams:
            try:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                main(args)
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            except _Timeout:
                raise subprocess.TimeoutExpired(["xdv", *args], timeout) from None
            finally:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout = streams[0].getvalue().decode("utf-8", "replace")
            stderr = streams[1].getvalue().decode("utf-8", "replace")
    finally:
        os.chdir(previous_cwd)
        if timed:
            signal.signal(signal.SIGALRM, previous_alarm)
    return subprocess.CompletedProcess(["xdv", *args], code, stdout, stderr)


def rechained(data: bytes, edit: Any) -> bytes:
    """The trace with RUN_START's metadata edited and every later link recomputed (what a
    forger without a signing key can do: the result passes the chain checks)."""
    from xdv.trace import read_trace
    from xdv.trace._format import (
        GENESIS_HASH,
        HEADER,
        canonical_metadata,
        encode_trace,
        entry_hash,
    )

    bodies, previous = [], GENESIS_HASH
    for index, entry in enumerate(read_trace(data).entries):
        metadata = edit(dict(entry.metadata)) if index == 0 else entry.metadata
        fields = list(HEADER.unpack_from(entry.body))
        fields[-1] = previous
        body = HEADER.pack(*fields) + canonical_metadata(metadata)
        bodies.append(body)
        previous = entry_hash(body)
    return encode_trace(bodies)
