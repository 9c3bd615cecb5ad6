"""Workloads of the Φ domain that take their inputs as parameters.

``phirun`` is the workload ``xdv phirun`` runs: one process that reserves a coherence-window
contract on the named provider, anneals the problem (``phase`` provider) or optimizes it
(``exact`` provider, CP-SAT), emits the energy and the witness digest, releases the contract
and ends with the operation's result as its exit value. Its inputs (the Ising problem in the
Φ dictionary form, the provider and the operation's options) are workload parameters,
recorded in the trace's run-start entry, so ``xdv replay`` rebuilds the run from the trace
alone::

    from xdv import run_workload

    run_workload(
        PHIRUN_TARGET,
        params=phirun_params(problem, "phase", {"replicas": 16, "steps": 3000}),
        trace="maxcut.xdvt",
    )

A problem enters the run-start entry whole (its couplings as ``[i, j, J_ij]`` triples, the
fields only when some are non-zero): about 15 bytes per coupling, so a G-set graph of 20,000
edges takes about 0.3 MB, well inside a trace entry's 1 MiB.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from xdv.core import Operation
from xdv.domains.phi._problems import IsingProblem, PhiProblemError
from xdv.syscalls import Emit, Invoke, Release, Reserve

__all__ = ["PHIRUN_OPERATIONS", "PHIRUN_TARGET", "phi_job", "phirun", "phirun_params"]

PHIRUN_TARGET = "xdv.domains.phi.workloads:phirun"
"""The workload target ``xdv phirun`` records."""

PHIRUN_OPERATIONS = {"phase": "anneal", "exact": "optimize"}
"""The Φ operation ``phirun`` invokes on the built-in providers (``sample`` on any other)."""

# A long default coherence window: one job, however long its anneal.
XDV_DOMAINS = {"Φ": {"manager": "phi", "window": 1_000_000}}


def phirun_params(
    problem: IsingProblem,
    provider: str,
    options: dict[str, Any],
    operation: str | None = None,
    solution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of a ``phirun`` job: ``problem`` in its dictionary form (without the
    fields when they are all zero, as for MaxCut), ``provider``, the operation's ``options``,
    when given the ``operation`` (default: the provider's, :data:`PHIRUN_OPERATIONS`) and, for
    a BQM, how to present the solution (``vartype`` and ``labels``, from
    :func:`~xdv.domains.phi.parse_problem_document`)."""
    record = problem.to_record()
    if not any(record["h"]):
        del record["h"]
    params = {"problem": record, "provider": provider, "options": dict(options)}
    if operation is not None:
        params["operation"] = operation
    if solution is not None:
        params["solution"] = dict(solution)
    return params


def phirun(
    kernel: Any,
    *,
    problem: dict[str, Any],
    provider: str,
    options: dict[str, Any],
    operation: str | None = None,
    solution: dict[str, Any] | None = None,
) -> None:
    """Spawn the one process of an ``xdv phirun`` job and grant it PROJECT(Φ→K).
    ``solution`` only describes how the report presents the spins; the run ignores it."""
    parsed = IsingProblem.parse(problem)
    operation = operation or PHIRUN_OPERATIONS.get(provider, "sample")
    if operation not in ("anneal", "optimize", "sample"):
        raise PhiProblemError(
            f"phirun anneals, optimizes or samples, not {operation!r}", where="phirun"
        )
    if not isinstance(options, dict):
        raise PhiProblemError("phirun options must be a map", where="phirun")
    pid: int = kernel.spawn(
        phi_job,
        parsed,
        {"provider": provider},
        options,
        operation,
        name="phirun",
        domains=("K", "Φ"),
    )
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")


def phi_job(
    problem: Any, terms: dict[str, Any], options: dict[str, Any], operation: str = "anneal"
) -> Generator[Any, Any, Any]:
    """The K anchor of a Φ job: reserve a coherence-window contract, anneal (phase provider),
    optimize (exact provider) or sample (a sampler provider, or the phase provider with every
    replica a read), emit the energy and witness digest, release; return the operation's
    result."""

    contract = yield Reserve("Φ", "envelope", terms=terms)
    result = yield Invoke(contract, operation, (problem, options))
    yield Emit({"energy": result["energy"], "witness": result["witness"]["digest"]})
    yield Release(contract)
    return result
