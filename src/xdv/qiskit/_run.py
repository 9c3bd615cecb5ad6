"""Running Qiskit circuits through the XDV kernel: the one path under every Qiskit interface.

:func:`execute` turns circuits into one run of :data:`~xdv.qiskit.workloads.CIRCUITS_TARGET`
through :func:`xdv.runtime.run` (what ``xdv qrun`` uses): capability, contract, calibration
contract, decoherence budget, provider, trace (audited and signed when it is saved). Circuits are
checked before anything runs (a circuit XDV cannot run is CIRCUIT_INVALID, work beyond the
limits INPUT_LIMIT_EXCEEDED) and their counts come back per circuit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.core import ExitStatus
from xdv.errors import ErrorCode, XdvError
from xdv.qiskit.workloads import CIRCUITS_TARGET
from xdv.runtime import JobFailed, RunOutcome, RunRequest, load_workload, run

__all__ = ["CircuitRun", "QOptions", "execute", "run_circuit"]

_SHOTS_MAX = 10_000_000


class PubError(XdvError):
    """A Sampler or Estimator input XDV cannot run (Q_PUB_INVALID)."""

    default_code = ErrorCode.Q_PUB_INVALID


@dataclass(frozen=True)
class QOptions:
    """Where and how circuits run: the Q provider and its method, the calibration profile
    (device snapshot; default: the Q manager's), whether to simulate its noise, a raised work
    limit for long noisy simulations (``work_max``), the run seed, and where to save the trace
    (None: not saved; the run is traced in memory all the same)."""

    provider: str = "aer"
    method: str | None = None
    calibration: str | None = None
    noise: bool = False
    work_max: int | None = None
    seed: int = 0
    trace: Path | None = None
    mapping: tuple[int, ...] | None = None

    def terms(self) -> dict[str, Any]:
        """The Q reservation terms these options ask for."""
        terms: dict[str, Any] = {"provider": self.provider}
        if self.method:
            terms["method"] = self.method
        if self.calibration:
            terms["calibration"] = self.calibration
        if self.noise:
            terms["noise"] = True
        if self.work_max is not None:
            terms["work_max"] = self.work_max
        if self.mapping is not None:
            terms["mapping"] = list(self.mapping)
        return terms


@dataclass(frozen=True)
class Executed:
    """What :func:`execute` returns: per circuit its counts (flat bitstrings, classical bit 0
    rightmost), the job results, the granted contract terms and the run's outcome."""

    counts: list[dict[str, int]]
    jobs: list[dict[str, Any]]
    contract: dict[str, Any]
    outcome: RunOutcome = field(repr=False)


def _status(outcome: RunOutcome) -> ExitStatus:
    statuses = list(outcome.result.exits.values())
    failure = next((status for status in statuses if not status.ok), None)
    if failure is not None or not statuses:
        code = ErrorCode[failure.code] if failure and failure.code else ErrorCode.PROCESS_FAULT
        message = failure.message if failure and failure.message else "the Q jobs did not run"
        raise JobFailed(message, code=code, where="Q jobs")
    return statuses[0]


def execute(circuits: Sequence[Any], shots: Sequence[int], options: QOptions) -> Executed:
    """Run each of ``circuits`` (bound ``QuantumCircuit`` objects) for ``shots[i]`` shots in
    one XDV run (see the module docstring)."""
    from xdv.domains.q import check_job_work, circuit_to_text, parse_circuit

    if not circuits:
        raise PubError("nothing to run: no circuits", where="Q jobs")
    texts: list[str] = []
    widths: list[int] = []
    for index, (circuit, count) in enumerate(zip(circuits, shots, strict=True)):
        where = f"circuit {index}"
        if type(count) is not int or not 1 <= count <= _SHOTS_MAX:
            raise PubError(f"shots must be an integer in [1, {_SHOTS_MAX}], got {count!r}")
        if circuit.parameters:
            names = ", ".join(sorted(str(parameter) for parameter in circuit.parameters))
            raise PubError(f"{where} has unbound parameters ({names})", where=where)
        text = circuit_to_text(circuit, where)
        parsed = parse_circuit(text, where)
        check_job_work(
            parsed,
            count,
            provider=options.provider,
            method=options.method,
            noise=options.noise,
            where=where,
            work_max=options.work_max,
        )
        texts.append(text)
        widths.append(parsed.qubits)
    terms = options.terms()
    qubits = max(widths)
    if options.noise and options.mapping is None:
        # Where the device's own transpiler would put the widest circuit (and route it).
        from xdv.domains.q import DEFAULT_CALIBRATION, circuit_placement, load_profile

        widest = circuits[widths.index(qubits)]
        profile = load_profile(options.calibration or DEFAULT_CALIBRATION)
        placement = circuit_placement(profile, widest)
        if placement is not None:
            terms["mapping"] = list(placement)
            qubits = len(placement)
    loaded = load_workload(
        CIRCUITS_TARGET,
        params={"circuits": texts, "shots": list(shots), "qubits": qubits, "terms": terms},
    )
    workload = dataclasses.replace(
        loaded, domains={"Q": {"manager": "q", "providers": [options.provider]}}
    )
    request = RunRequest(
        workload,
        seed=options.seed,
        trace=options.trace,
        audit=options.trace is not None,
        handle_signals=False,
    )
    outcome = run(request)
    value = _status(outcome).value
    jobs = list(value["jobs"])
    return Executed([dict(job["counts"]) for job in jobs], jobs, dict(value["contract"]), outcome)


def qiskit_counts(circuit: Any, flat: Mapping[str, int]) -> Any:
    """XDV's counts of ``circuit`` (flat bitstrings) as Qiskit ``Counts``: keys spaced by
    classical register, the last register leftmost, as Qiskit's own simulators write them."""
    from qiskit.result import Counts

    sizes = [[register.name, register.size] for register in circuit.cregs]
    data = {hex(int(bits, 2)): count for bits, count in flat.items()}
    return Counts(data, creg_sizes=sizes or None, memory_slots=circuit.num_clbits)


@dataclass(frozen=True)
class CircuitRun:
    """The result of :func:`run_circuit`: Qiskit ``Counts``, the saved trace (None when not
    saved), its audit file, the run seed, the granted Q contract terms (provider, method,
    calibration, physical qubits) and the job's diagnostics (estimated duration, fidelity)."""

    counts: Any
    trace: Path | None
    audit: Path | None
    seed: int
    contract: dict[str, Any]
    diagnostics: dict[str, Any]


def run_circuit(
    circuit: Any,
    *,
    shots: int = 1024,
    seed: int = 0,
    calibration: str | None = None,
    noise: bool = False,
    provider: str = "aer",
    method: str | None = None,
    trace: str | Path | None = None,
    work_max: int | None = None,
) -> CircuitRun:
    """Run one Qiskit ``QuantumCircuit`` (or OpenQASM text) through the XDV kernel and return
    its Qiskit ``Counts`` and where its trace is.

    The job takes the path ``xdv qrun`` takes: a Q container reserved under a calibration
    contract (``calibration``, a profile from ``xdv calibrations``), the decoherence budget,
    the provider (``aer``, ``stim`` or a plug-in), ``noise`` simulating the calibration's noise
    model, ``seed`` fixing every random draw. With ``trace`` the run is saved, audited and
    signed with the node key, and ``xdv replay TRACE`` repeats it bit for bit.
    """
    if isinstance(circuit, str):
        from xdv.domains.q import parse_circuit

        circuit = parse_circuit(circuit, "circuit").circuit
    options = QOptions(
        provider=provider,
        method=method,
        calibration=calibration,
        noise=noise,
        work_max=work_max,
        seed=seed,
        trace=None if trace is None else Path(trace),
    )
    executed = execute([circuit], [shots], options)
    outcome = executed.outcome
    return CircuitRun(
        counts=qiskit_counts(circuit, executed.counts[0]),
        trace=outcome.trace,
        audit=outcome.audit,
        seed=outcome.seed,
        contract=executed.contract,
        diagnostics=dict(executed.jobs[0].get("diagnostics") or {}),
    )
