"""Q and Φ jobs: one circuit or one problem, run as a parameterized workload.

A job is an ordinary :class:`~xdv.runtime.Workload` (the domain package's ``qrun`` or
``phirun`` workload with the job's inputs as its parameters), so it runs through
:func:`~xdv.runtime.run` like any other workload (audited, signed, interruptible) and its trace
replays from the trace alone. :func:`q_job` and :func:`phi_job` check the inputs first (a bad
circuit or problem is a static error, before anything runs); :func:`q_report` and
:func:`phi_report` read the job's result back from the outcome (the process's exit value).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from xdv.core import ExitStatus
from xdv.errors import ErrorCode, TraceError, XdvError
from xdv.inputs import load_json, read_bounded
from xdv.runtime._run import RunOutcome
from xdv.runtime._workload import Workload, load_workload

__all__ = ["JobFailed", "phi_job", "phi_report", "q_job", "q_report"]

_PHI_ANNEAL_DEFAULTS = {"replicas": 32, "steps": 1000}


class JobFailed(XdvError):
    """A Q or Φ job ran but did not produce its result; ``code`` is the failing process's."""

    default_code = ErrorCode.PROCESS_FAULT


def q_job(
    circuit: str,
    *,
    name: str = "circuit",
    shots: int = 1024,
    provider: str = "aer",
    method: str | None = None,
    calibration: str | None = None,
    noise: bool = False,
) -> Workload:
    """The Q job that runs ``circuit`` (OpenQASM 2 or 3 text; ``name`` names it in errors) for
    ``shots`` shots on ``provider``; CIRCUIT_INVALID if it does not parse."""
    from xdv.domains.q import check_job_work, parse_circuit
    from xdv.domains.q.workloads import QRUN_TARGET

    parsed = parse_circuit(circuit, name)
    # Refused here, before the run starts, as the Q manager would refuse it (exit 65).
    check_job_work(parsed, shots, provider=provider, method=method, noise=noise, where=name)
    terms: dict[str, Any] = {"provider": provider}
    if method:
        terms["method"] = method
    if calibration:
        terms["calibration"] = calibration
    if noise:
        terms["noise"] = True
    loaded = load_workload(
        QRUN_TARGET,
        params={"circuit": circuit, "qubits": parsed.qubits, "shots": shots, "terms": terms},
    )
    # Only the provider asked for is installed (and recorded), not the default one.
    return dataclasses.replace(loaded, domains={"Q": {"manager": "q", "providers": [provider]}})


def _job_status(outcome: RunOutcome, what: str) -> ExitStatus:
    """The job process's exit status; JobFailed if it did not end well."""
    statuses = list(outcome.result.exits.values())
    failure = next((status for status in statuses if not status.ok), None)
    if failure is not None or not statuses:
        code = ErrorCode[failure.code] if failure and failure.code else ErrorCode.PROCESS_FAULT
        message = failure.message if failure and failure.message else f"the {what} did not run"
        raise JobFailed(message, code=code, where=what)
    return statuses[0]


def _common(outcome: RunOutcome) -> dict[str, Any]:
    return {
        "trace": None if outcome.trace is None else str(outcome.trace),
        "audit": None if outcome.audit is None else str(outcome.audit),
        "signer": outcome.signer,
        "head_hash": outcome.result.head_hash,
    }


def q_report(outcome: RunOutcome) -> dict[str, Any]:
    """The report of a finished Q job: counts, shots, the job's result and the granted
    contract; JobFailed if the job failed."""
    value = _job_status(outcome, "Q job").value
    job, contract = value["job"], value["contract"]
    return {
        "counts": job["counts"],
        "shots": job["shots"],
        "job": job,
        "contract": contract,
        **_common(outcome),
    }


def phi_job(
    problem_path: Path,
    *,
    problem_format: str = "gset",
    provider: str = "phase",
    budget_ms: float | None = None,
    work_limit: float | None = None,
    schedule: dict[str, Any] | None = None,
) -> Workload:
    """The Φ job that solves the problem in ``problem_path`` (a G-set MaxCut graph, or with
    ``problem_format="bqm-json"`` an Ising/QUBO problem in the Φ dictionary form or dimod's
    serialization of a binary quadratic model).

    On the ``phase`` provider the job anneals: ``schedule`` overrides the anneal schedule
    (defaults: 32 replicas, 1000 steps) and ``budget_ms`` sets its length in modelled device
    milliseconds. On the ``exact`` provider it optimizes with CP-SAT within ``work_limit`` units
    of deterministic time (default: the provider's). A malformed problem is
    PHI_ERR_PROBLEM_INVALID, options of the other provider OPERATION_UNSUPPORTED.
    """
    from xdv.domains.phi import PhiProblemError, parse_gset, parse_problem_document
    from xdv.domains.phi.workloads import PHIRUN_TARGET, phirun_params

    solution: dict[str, Any] | None = None
    if problem_format == "gset":
        problem, _ = parse_gset(problem_path)
    else:
        # Regular files only, at most problem_bytes_max, strict UTF-8, nesting bounded before
        # the JSON decoder recurses: each breach is a typed INPUT_* error naming the file.
        where = str(problem_path)
        raw = load_json(read_bounded(problem_path, "problem_bytes_max", what="problem"), where)
        try:
            problem, solution = parse_problem_document(raw)
        except XdvError as error:  # the field at fault, in the file at fault
            raise PhiProblemError(
                error.message, code=error.code, where=f"{where}: {error.where}"
            ) from None
    if provider == "exact" and (budget_ms is not None or schedule):
        raise XdvError(
            "an anneal budget or schedule applies to the phase provider; the exact provider's "
            "search is bounded by --work-limit (deterministic time)",
            code=ErrorCode.OPERATION_UNSUPPORTED,
            where="--budget-ms",
        )
    if provider == "phase" and work_limit is not None:
        raise XdvError(
            "--work-limit bounds the exact provider's search; the phase provider's anneal "
            "length is --budget-ms",
            code=ErrorCode.OPERATION_UNSUPPORTED,
            where="--work-limit",
        )
    options: dict[str, Any]
    if provider == "exact":
        options = {} if work_limit is None else {"work_limit": work_limit}
    else:
        options = {**_PHI_ANNEAL_DEFAULTS, **(schedule or {})}
        if budget_ms is not None:
            options.pop("steps")
            options["budget_ms"] = budget_ms
    try:
        return load_workload(
            PHIRUN_TARGET, params=phirun_params(problem, provider, options, solution)
        )
    except TraceError as error:  # the problem is too large for the run-start entry
        raise PhiProblemError(
            f"the problem cannot be recorded in a trace: {error.message}",
            where=str(problem_path),
        ) from None


def phi_report(outcome: RunOutcome, *, source: str, problem_format: str) -> dict[str, Any]:
    """The report of a finished Φ job (``source`` and ``problem_format`` describe the input
    file): energy, stability, witness, the solution (for a G-set graph the partition, two lists
    of 1-based vertex numbers, the side holding vertex 1 first; for a BQM the sample, label to
    value in the model's vartype, 0/1 or ±1), and per operation the cut, order parameter and readout
    (anneal) or status, bound, solver figures, cut and cut bound (optimize); JobFailed if the
    job failed."""
    from xdv.domains.phi import IsingProblem

    result = _job_status(outcome, "Φ job").value
    params = outcome.workload.params or {}
    record = params["problem"]
    problem = IsingProblem.parse(record)
    witness_file = next(
        (
            str(path)
            for path in outcome.witnesses
            if path.name == f"witness-{result['witness']['digest'][:16]}.json"
        ),
        None,
    )
    report: dict[str, Any] = {
        "problem": {"file": source, "format": problem_format, **problem.summary()},
        "provider": params["provider"],
        "energy": result["energy"],
        "stability": result["stability"],
        "witness": {"digest": result["witness"]["digest"], "file": witness_file},
        "seed": outcome.seed,
        "wall_seconds": outcome.result.wall_seconds,
        **_common(outcome),
    }
    report["solution"] = _solution(result.get("spins"), params.get("solution"), problem_format)
    if "status" not in result:  # an anneal
        report["order_parameter"] = result["order_parameter"]
        report["readout"] = result["readout"]
        if not any(record.get("h") or ()):
            weight = sum(float(coupling[2]) for coupling in record.get("J", ()))
            report["cut"] = (weight - (result["energy"] - problem.offset)) / 2
    else:
        report["status"] = result["status"]
        report["bound"] = result["bound"]
        report["solver"] = result["solver"]
        if "cut" in result:
            report["cut"] = result["cut"]
            report["cut_bound"] = result["cut_bound"]
    return report


def _solution(
    spins: Any, presentation: dict[str, Any] | None, problem_format: str
) -> dict[str, Any] | None:
    """The partition (G-set) or the labelled sample (BQM) of the reported spins."""
    if not isinstance(spins, list):
        return None
    if problem_format == "gset":
        first = spins[0] if spins else 1
        same = [vertex for vertex, spin in enumerate(spins, start=1) if spin == first]
        other = [vertex for vertex, spin in enumerate(spins, start=1) if spin != first]
        return {"partition": [same, other]}
    vartype = (presentation or {}).get("vartype", "SPIN")
    labels = (presentation or {}).get("labels") or list(range(len(spins)))
    values = [(1 + spin) // 2 if vartype == "BINARY" else spin for spin in spins]
    return {"vartype": vartype, "sample": dict(zip(labels, values, strict=True))}
