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

__all__ = ["JobFailed", "phi_job", "phi_problem_job", "phi_report", "q_job", "q_report"]

_PHI_ANNEAL_DEFAULTS = {"replicas": 32, "steps": 1000}
_PHI_READS_DEFAULT = 16
_PHI_BUILT_IN = ("phase", "exact")


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
    fidelity_min: float | None = None,
) -> Workload:
    """The Q job that runs ``circuit`` (OpenQASM 2 or 3 text; ``name`` names it in errors) for
    ``shots`` shots on ``provider``; CIRCUIT_INVALID if it does not parse. ``fidelity_min`` is
    the least estimated fidelity the job may have (the decoherence budget's floor): below it
    the Q manager refuses the job with DECOHERENCE_EXCEEDED before it runs."""
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
    qubits = parsed.qubits
    if noise:
        terms["noise"] = True
        # A noisy job goes where the device's own transpiler would put it (and route it).
        from xdv.domains.q import DEFAULT_CALIBRATION, circuit_placement, load_profile

        placement = circuit_placement(
            load_profile(calibration or DEFAULT_CALIBRATION), parsed.circuit
        )
        if placement is not None:
            terms["mapping"] = list(placement)
            qubits = len(placement)
    if fidelity_min is not None:
        terms["budget"] = {"fidelity_min": float(fidelity_min)}
    loaded = load_workload(
        QRUN_TARGET,
        params={"circuit": circuit, "qubits": qubits, "shots": shots, "terms": terms},
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
    of deterministic time (default: the provider's). On a sampler provider (``sa``, ``tabu``,
    a plug-in) it samples 16 reads, ``schedule`` giving the sampler's parameters. A malformed
    problem is PHI_ERR_PROBLEM_INVALID, options of another provider OPERATION_UNSUPPORTED.
    """
    from xdv.domains.phi import PhiProblemError, parse_gset, parse_problem_document

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
    if provider not in _PHI_BUILT_IN and (budget_ms is not None or work_limit is not None):
        raise XdvError(
            "--budget-ms and --work-limit apply to the phase and exact providers; a sampler "
            "provider's search is set by its own parameters",
            code=ErrorCode.OPERATION_UNSUPPORTED,
            where="--budget-ms" if budget_ms is not None else "--work-limit",
        )
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
    elif provider == "phase":
        options = {**_PHI_ANNEAL_DEFAULTS, **(schedule or {})}
        if budget_ms is not None:
            options.pop("steps")
            options["budget_ms"] = budget_ms
    else:
        options = {"reads": _PHI_READS_DEFAULT, "params": dict(schedule or {})}
    return phi_problem_job(problem, provider, options, solution=solution, where=str(problem_path))


def phi_problem_job(
    problem: Any,
    provider: str,
    options: dict[str, Any],
    *,
    operation: str | None = None,
    config: dict[str, Any] | None = None,
    solution: dict[str, Any] | None = None,
    where: str = "problem",
) -> Workload:
    """The Φ job that runs ``problem`` (an :class:`~xdv.domains.phi.IsingProblem`) on
    ``provider`` with the operation's ``options``: ``anneal`` on ``phase``, ``optimize`` on
    ``exact``, ``sample`` on a sampler provider (built from ``config``), unless ``operation``
    says otherwise (``sample`` on ``phase``: every replica a read). The Φ manager is declared
    with the sampler provider installed, so the trace records it and a replay rebuilds it.
    ``solution`` says how the report presents a BQM's spins (its vartype and labels)."""
    from xdv.domains.phi import PhiProblemError
    from xdv.domains.phi.workloads import PHIRUN_TARGET, XDV_DOMAINS, phirun_params

    try:
        loaded = load_workload(
            PHIRUN_TARGET, params=phirun_params(problem, provider, options, operation, solution)
        )
    except TraceError as error:  # the problem is too large for the run-start entry
        raise PhiProblemError(
            f"the problem cannot be recorded in a trace: {error.message}", where=where
        ) from None
    if provider in _PHI_BUILT_IN:
        return loaded
    entry = {"config": dict(config)} if config else {}
    declared = {**XDV_DOMAINS["Φ"], "providers": {provider: entry}}
    return dataclasses.replace(loaded, domains={"Φ": declared})


def phi_report(outcome: RunOutcome, *, source: str, problem_format: str) -> dict[str, Any]:
    """The report of a finished Φ job (``source`` and ``problem_format`` describe the input
    file): energy, stability, witness, the solution (for a G-set graph the partition, two lists
    of 1-based vertex numbers, the side holding vertex 1 first; for a BQM the sample, label to
    value in the model's vartype, 0/1 or ±1), and per operation the cut, order parameter and
    readout (anneal), the cut, every read (spins and energies) and the sampler's facts
    (sample), or status, bound, solver figures, cut and cut bound (optimize); JobFailed if the
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
    if "status" not in result:  # an anneal or a sample
        for key in ("order_parameter", "readout", "sampler", "reads"):
            if key in result:
                report[key] = result[key]
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
