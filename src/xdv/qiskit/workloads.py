"""The workload behind XDV's Qiskit interfaces: several circuits, one Q container, one process.

A Sampler or Estimator call, and :func:`xdv.qiskit.run_circuit`, become one run of
:data:`CIRCUITS_TARGET` whose parameters are the circuits' OpenQASM 3 text, the shots of each,
the container's width and its reservation terms (provider, method, calibration, noise). They are
recorded in the trace's run-start entry, so ``xdv replay`` rebuilds the run from the trace alone.
The one process reserves the container, runs each circuit as a Q job (the full path: MEASURE
capability, contract, calibration, decoherence budget, provider, trace), emits each job's
counts, releases the container and exits with the jobs' results and the granted terms.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from xdv.core import Operation
from xdv.errors import WorkloadError
from xdv.syscalls import Emit

__all__ = ["CIRCUITS_TARGET", "run_circuits"]

CIRCUITS_TARGET = "xdv.qiskit.workloads:run_circuits"
"""The workload target the Qiskit interfaces record."""

XDV_DOMAINS = {"Q": {"manager": "q"}}


def run_circuits(
    kernel: Any, *, circuits: list[str], shots: list[int], qubits: int, terms: dict[str, Any]
) -> None:
    """Spawn the process that runs ``circuits[i]`` for ``shots[i]`` shots in one container of
    ``qubits`` qubits reserved under ``terms``; grant it MEASURE(Q→K)."""
    _check(circuits, shots, qubits, terms)

    def anchor() -> Generator[Any, Any, Any]:
        from xdv.domains.q import QHandle

        handle = yield from QHandle.reserve(qubits, **terms)
        granted = handle.terms
        results = []
        for index, (circuit, count) in enumerate(zip(circuits, shots, strict=True)):
            result = yield from handle.run(circuit, count)
            yield Emit({"circuit": index, "counts": result["counts"], "shots": result["shots"]})
            results.append(result)
        yield from handle.release()
        return {"jobs": results, "contract": granted}

    pid: int = kernel.spawn(anchor, name="qiskit", domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")


def _check(circuits: Any, shots: Any, qubits: Any, terms: Any) -> None:
    where = CIRCUITS_TARGET
    if (
        not isinstance(circuits, list)
        or not circuits
        or not all(type(text) is str for text in circuits)
    ):
        raise WorkloadError("circuits must be a non-empty list of OpenQASM texts", where=where)
    if (
        not isinstance(shots, list)
        or len(shots) != len(circuits)
        or not all(type(count) is int and count >= 1 for count in shots)
    ):
        raise WorkloadError("shots must list a positive integer per circuit", where=where)
    if type(qubits) is not int or qubits < 1:
        raise WorkloadError("qubits must be a positive integer", where=where)
    if not isinstance(terms, dict) or not all(type(key) is str for key in terms):
        raise WorkloadError("terms must be a map with text keys", where=where)
