"""Workloads of the Q domain that take their inputs as parameters.

``qrun`` is the workload ``xdv qrun`` runs: one process that reserves a container, runs one
circuit, emits its counts, releases the container and ends with the job's result and the
granted contract terms as its exit value (``{"job": ..., "contract": ...}``). Its inputs (the
submitted circuit text, the qubit count, the shots and the reservation terms) are workload
parameters, recorded in the trace's run-start entry, so ``xdv replay`` rebuilds the run from
the trace alone::

    from xdv import run_workload

    run_workload(
        QRUN_TARGET,
        params={"circuit": text, "qubits": 2, "shots": 1000, "terms": {"provider": "aer"}},
        trace="bell.xdvt",
    )
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from xdv.core import Operation
from xdv.domains.q._handle import QHandle
from xdv.errors import WorkloadError
from xdv.syscalls import Emit

__all__ = ["QRUN_TARGET", "qrun", "spawn_qrun"]

QRUN_TARGET = "xdv.domains.q.workloads:qrun"
"""The workload target ``xdv qrun`` records."""

# The managers the workload runs on (the default Aer provider); `xdv qrun` declares the
# provider it was asked for instead.
XDV_DOMAINS = {"Q": {"manager": "q"}}


def qrun(kernel: Any, *, circuit: str, qubits: int, shots: int, terms: dict[str, Any]) -> None:
    """Spawn the one process of an ``xdv qrun`` job (see :func:`spawn_qrun`)."""
    spawn_qrun(kernel, circuit, qubits, shots, terms)


def spawn_qrun(kernel: Any, circuit: str, qubits: int, shots: int, terms: dict[str, Any]) -> int:
    """Spawn the process that reserves ``qubits`` under ``terms``, runs ``circuit`` for
    ``shots`` shots, emits the counts, releases the container and exits with
    ``{"job": result, "contract": granted terms}``; grant it MEASURE(Q→K). Returns its pid.
    """

    _check(circuit, qubits, shots, terms)

    def anchor() -> Generator[Any, Any, Any]:
        handle = yield from QHandle.reserve(qubits, **terms)
        granted = handle.terms
        result = yield from handle.run(circuit, shots)
        yield Emit({"counts": result["counts"], "shots": result["shots"]})
        yield from handle.release()
        return {"job": result, "contract": granted}

    pid: int = kernel.spawn(anchor, name="qrun", domains=("K", "Q"))
    kernel.grant(pid, Operation.MEASURE, "Q", "K")
    return pid


def _check(circuit: Any, qubits: Any, shots: Any, terms: Any) -> None:
    where = QRUN_TARGET
    if type(circuit) is not str:
        raise WorkloadError("the qrun circuit must be OpenQASM text", where=where)
    for name, value in (("qubits", qubits), ("shots", shots)):
        if type(value) is not int or value < 1:
            raise WorkloadError(f"qrun {name} must be a positive integer", where=where)
    if not isinstance(terms, dict) or not all(type(key) is str for key in terms):
        raise WorkloadError("qrun terms must be a map with text keys", where=where)
