"""A runner: a process of the node's bounded pool that makes one job's run at a time.

The server starts each runner as ``python -m xdv.service._runner --reply-fd N`` and talks to it
in JSON lines: a job document on the runner's standard input, the job's report on file
descriptor N. The runner builds the job's workload (:func:`job_workload`) and makes its run
through :func:`xdv.runtime.run`, the path every ``xdv`` command takes, with the job's seed, its
trace under ``$XDV_HOME/traces/`` (audited and signed with the node key) and SIGINT ending the
run cleanly (that is how a running job is cancelled). A runner dies with the server (the
kernel's parent-death signal), so a killed server leaves no run behind it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError
from xdv.runtime import (
    RunOutcome,
    RunRequest,
    WorkerLimits,
    Workload,
    load_workload,
    phi_job,
    q_job,
    run,
)
from xdv.security import audit_path_for
from xdv.service._workloads import DPL_TARGET, NESTED_TARGET, dpl_document
from xdv.trace import canonicalize, jsonable

__all__ = ["EXIT_INTERRUPTED", "execute", "job_workload", "main"]

EXIT_STATIC = 65
EXIT_RUNTIME = 70
EXIT_INTERRUPTED = 130
_EXIT_BY_FAILURE = {"DPL_ADMISSIBILITY": 71, "DPL_CONTRACT_VIOLATION": 72}
RUNNER_NICENESS = 10
# A Python job's worker limits unless its params set them (docs/service.md).
PYTHON_CPU_S = 30.0
PYTHON_MEMORY_MB = 1024
PYTHON_WALL_S = 120.0


class StaticFailure(XdvError):
    """A job whose input cannot run (a DPL program with errors, a bad circuit or problem)."""

    default_code = ErrorCode.WORKLOAD_INVALID

    def __init__(self, error: XdvError, diagnostics: list[dict[str, Any]] | None = None) -> None:
        super().__init__(error.message, code=error.code, where=error.where)
        self.diagnostics = diagnostics


def _vhm_declaration(job: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    item: dict[str, Any] = {"name": job["tenant_name"], "weight": job["weight"]}
    if job["quotas"]:
        item["quotas"] = dict(job["quotas"])
    declared: dict[str, Any] = canonicalize(item, "vhm")
    return (declared,)


def job_workload(job: dict[str, Any], directory: Path) -> Workload:
    """The workload of ``job`` (a DPL program, a Q job, a Φ job), placed in its tenant's VHM;
    StaticFailure if its input cannot run."""
    kind, source, params = job["kind"], job["source"], job["params"]
    tenant = job["tenant_name"]
    try:
        if kind == "dpl":
            from xdv import dpl

            name = "job.ds"
            entry = params.get("entry", "main")
            try:
                document = dpl_document(source, name)
            except dpl.DplStaticError as error:
                source_text = error.source
                diagnostics = [d.to_json(source_text) for d in error.diagnostics]
                raise StaticFailure(error, diagnostics) from None
            dpl.Program(document, entry)  # an unknown entry is refused here, before the run
            loaded = load_workload(
                DPL_TARGET,
                params={"source": source, "name": name, "entry": entry, "tenant": tenant},
            )
            regimes = {process["regime"] for process in document["processes"]}
            domains: dict[str, Any] = {}
            if "Q" in regimes:
                domains["Q"] = {"manager": "q", "providers": ["aer"]}
            if "Φ" in regimes:
                domains["Φ"] = {"manager": "phi"}
            loaded = dataclasses.replace(loaded, language="dpl", domains=domains or None)
        elif kind == "python":
            path = directory / "workload.py"
            path.write_text(source, encoding="utf-8")
            entry = params.get("entry")
            target = f"{path}:{entry}" if entry else str(path)
            # Read, never imported here: the code runs only in the isolated worker process.
            loaded = load_workload(target, isolation="process")
            own = tuple(
                item if item.get("parent") is not None else {**item, "parent": tenant}
                for item in loaded.vhms or ()
            )
            # The tenant's VHM is the default: what the setup spawns without naming a VHM
            # runs in it, under the tenant's quotas.
            (tenant_vhm,) = _vhm_declaration(job)
            return dataclasses.replace(loaded, vhms=({**tenant_vhm, "default": True}, *own))
        else:
            if kind == "qasm":
                inner = q_job(
                    source,
                    name="job.qasm",
                    shots=params.get("shots", 1024),
                    provider=params.get("provider", "aer"),
                    method=params.get("method"),
                    calibration=params.get("calibration"),
                    noise=params.get("noise", False),
                )
            else:  # bqm or gset: the runtime's Φ job reads its problem from a file
                path = directory / ("problem.json" if kind == "bqm" else "problem.gset")
                path.write_text(source, encoding="utf-8")
                inner = phi_job(
                    path,
                    problem_format="bqm-json" if kind == "bqm" else "gset",
                    provider=params.get("provider", "phase"),
                    budget_ms=params.get("budget_ms"),
                    work_limit=params.get("work_limit"),
                )
            loaded = load_workload(
                NESTED_TARGET,
                params={
                    "target": inner.target,
                    "params": dict(inner.params or {}),
                    "tenant": tenant,
                },
            )
            loaded = dataclasses.replace(loaded, domains=inner.domains)
    except StaticFailure:
        raise
    except XdvError as error:
        raise StaticFailure(error) from None
    return dataclasses.replace(loaded, vhms=_vhm_declaration(job))


def _exit_code(outcome: RunOutcome) -> int:
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.ok:
        return 0
    for status in outcome.result.exits.values():
        if not status.ok and status.code in _EXIT_BY_FAILURE:
            return _EXIT_BY_FAILURE[str(status.code)]
    return EXIT_RUNTIME


def _result(outcome: RunOutcome, kind: str) -> Any:
    """What the job computed: the exit value of its process (a Q job's counts and contract, a
    Φ job's energy, readout and witness digest); a DPL job's outputs are its result."""
    if kind == "dpl":
        return None
    for status in outcome.result.exits.values():
        if status.ok:
            return jsonable(status.value)
    return None


def _setup_error(outcome: RunOutcome) -> dict[str, Any]:
    """The error of a run whose setup failed: the typed error its traceback ends with (the
    runtime keeps tracebacks out of the trace; the last line is ``Type: CODE: message``)."""
    lines = outcome.faults.get(0, "").strip().splitlines()
    last = lines[-1] if lines else ""
    _, _, described = last.partition(": ")
    name, _, message = described.partition(": ")
    if name in ErrorCode.__members__:
        return {"code": name, "message": message}
    return {"code": ErrorCode.WORKLOAD_INVALID.name, "message": last}


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Make ``job``'s run; return its report (state, exit code, outputs, result, error, trace
    figures). The trace is ``job["trace"]``; a partial trace of an earlier attempt is
    removed first, so a job run again after a crash writes the same bytes from the start."""
    trace = Path(job["trace"])
    directory = trace.parent
    directory.mkdir(parents=True, exist_ok=True)
    for stale in (trace, audit_path_for(trace)):
        stale.unlink(missing_ok=True)
    try:
        workload = job_workload(job, directory)
    except StaticFailure as refusal:
        error: dict[str, Any] = refusal.to_record()
        if refusal.diagnostics is not None:
            error["diagnostics"] = refusal.diagnostics
        return {"state": "failed", "exit_code": EXIT_STATIC, "error": error, "outputs": []}
    isolated = job["kind"] == "python"
    params = job["params"]
    request = RunRequest(
        workload,
        seed=job["seed"],
        trace=trace,
        key_store=Path(job["home"]) / "keys",
        witness_dir=directory,
        handle_signals=True,
        policy="fair-share",
        isolation="process" if isolated else "inprocess",
        limits=WorkerLimits(
            cpu_s=params.get("cpu_s", PYTHON_CPU_S),
            memory_mb=params.get("memory_mb", PYTHON_MEMORY_MB),
            wall_s=params.get("wall_s", PYTHON_WALL_S),
        )
        if isolated
        else None,
    )
    try:
        outcome = run(request)
    except XdvError as error:
        return {
            "state": "failed",
            "exit_code": EXIT_RUNTIME,
            "error": error.to_record(),
            "outputs": [],
        }
    exits = {
        str(pid): {"ok": status.ok, "code": status.code, "message": status.message}
        for pid, status in outcome.result.exits.items()
    }
    failure = next((status for status in outcome.result.exits.values() if not status.ok), None)
    report: dict[str, Any] = {
        "state": "succeeded" if outcome.ok else "failed",
        "exit_code": _exit_code(outcome),
        "outputs": [jsonable(value) for value in outcome.outputs()],
        "result": {
            "status": outcome.status,
            "value": _result(outcome, job["kind"]),
            "exits": exits,
            "steps": outcome.result.steps,
            "logical_time": outcome.result.logical_time,
            "run_seconds": outcome.result.wall_seconds,
            "witnesses": [path.name for path in outcome.witnesses],
        },
        "trace": str(trace),
        "audit": None if outcome.audit is None else str(outcome.audit),
        "head_hash": outcome.result.head_hash,
        "events": outcome.result.events,
        "signer": outcome.signer,
        "error": None,
    }
    if outcome.interrupted:
        report["state"] = "interrupted"
    elif failure is not None:
        report["error"] = {"code": failure.code, "message": failure.message}
    elif not outcome.ok:  # the workload's setup failed (or a limit ended the run)
        report["error"] = _setup_error(outcome)
    if report["error"] is not None and 0 in outcome.faults:
        report["error"]["traceback"] = outcome.faults[0]
    return report


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the parent died before the request took
        os._exit(1)


def main(argv: list[str] | None = None, *, pending: list[int] | None = None) -> None:
    """The runner's loop: one job per line on standard input, one report per line out.
    ``pending`` holds the SIGINTs that arrived before ``main`` (the pool starts the runner with
    a handler that records them from its first instruction)."""
    parser = argparse.ArgumentParser(prog="xdv.service._runner")
    parser.add_argument("--reply-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    arguments = parser.parse_args(argv)
    _die_with_parent(arguments.parent)
    # Runs yield the processor to the node's control plane: an acknowledgement (a committed
    # submission) never waits behind a run.
    with contextlib.suppress(OSError):
        os.nice(RUNNER_NICENESS)
    # Outside a run a SIGINT (a cancel) is remembered, not acted on: one that comes while a job
    # is being handed over is passed on to that job's run as soon as the run is listening (see
    # _CancelRelay); during a run the runtime's own handler ends the run as interrupted. The
    # memory is cleared after each report, so a cancel of a job that has just ended does nothing.
    if pending is None:
        pending = []
        signal.signal(signal.SIGINT, lambda number, frame: pending.append(number))
    replies = os.fdopen(arguments.reply_fd, "w", encoding="utf-8")
    from xdv import dpl  # noqa: F401  (loaded once, before the first job, not during it)

    for line in sys.stdin:
        job = json.loads(line)
        relay = _CancelRelay(pending)
        try:
            report = execute(job)
        except Exception as error:  # a bug in a run: report it, keep serving
            report = {
                "state": "failed",
                "exit_code": EXIT_RUNTIME,
                "error": {
                    "code": ErrorCode.SERVICE_RUNNER_FAILED.name,
                    "message": f"{type(error).__name__}: {error}",
                },
                "outputs": [],
            }
        finally:
            relay.stop()
        replies.write(json.dumps(report, sort_keys=True, default=str) + "\n")
        replies.flush()
        pending.clear()


class _CancelRelay:
    """Pass a cancel that arrived before the run to the run: wait (in a thread) until the
    runtime's SIGINT handler replaces the runner's, then, if a cancel is pending, signal this
    process once. A SIGINT that comes later reaches the runtime's handler itself, so none is
    lost between the two."""

    def __init__(self, pending: list[int]) -> None:
        self._pending = pending
        self._runner_handler = signal.getsignal(signal.SIGINT)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while not self._stopped.wait(0.002):
            if signal.getsignal(signal.SIGINT) is not self._runner_handler:
                if self._pending:
                    os.kill(os.getpid(), signal.SIGINT)
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


if __name__ == "__main__":
    main()
