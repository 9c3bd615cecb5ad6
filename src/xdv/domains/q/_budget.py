"""Decoherence budgets (XDV-012 §6) and the pre-execution estimate they are checked against.

Before a job runs, its duration is estimated from the calibration's gate durations (an
as-soon-as-possible schedule over the circuit's qubits) and its success probability from the
calibration's error rates and coherence times. A job whose estimate is over its budget never
reaches the provider.

The estimate works on the logical circuit mapped onto the contract's physical qubits: gates of
one or two qubits cost one native single- or two-qubit slot, except two-qubit gates that are not
native (``swap``, ``cu1``, ...) and gates on three or more qubits, which cost what their Qiskit
definitions decompose into. ``docs/q-domain.md`` states the model and its limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xdv.domains.q._calibration import CalibrationProfile
from xdv.errors import ContractError, ErrorCode, XdvError, safe_repr

__all__ = ["DecoherenceBudget", "JobEstimate", "estimate"]

_NATIVE_TWO_QUBIT = frozenset({"cx", "cz", "ecr", "cy", "ch", "rzz", "rzx", "rxx", "ryy", "iswap"})
_FREE = frozenset({"barrier", "id", "delay_free", "global_phase"})
_LOOP_ITERATIONS_MAX = 1_000_000
_BUDGET_KEYS = ("duration_ns_max", "fidelity_min", "shots_per_window", "window")


@dataclass(frozen=True, slots=True)
class DecoherenceBudget:
    """What a job may spend: wall duration on the device, least success probability, and a
    measurement rate limit (at most ``shots_per_window`` shots in any ``window`` logical steps).

    ``duration_ns_max`` None means "the longest T1 among the contract's qubits".
    """

    duration_ns_max: float | None = None
    fidelity_min: float = 0.0
    shots_per_window: int | None = None
    window: int = 1000

    @classmethod
    def from_terms(cls, terms: Any, where: str) -> DecoherenceBudget:
        """Validate the ``budget`` reservation term (a mapping; every key optional)."""
        if terms is None:
            return cls()
        if not isinstance(terms, Mapping):
            raise ContractError(f"budget must be a mapping, got {safe_repr(terms)}", where=where)
        unknown = sorted(set(terms) - set(_BUDGET_KEYS))
        if unknown:
            raise ContractError(
                f"unknown budget keys {unknown} (known: {', '.join(_BUDGET_KEYS)})", where=where
            )
        duration = terms.get("duration_ns_max")
        fidelity = terms.get("fidelity_min", 0.0)
        shots = terms.get("shots_per_window")
        window = terms.get("window", 1000)
        if duration is not None and (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not 0 < duration < 1e15
        ):
            raise ContractError(
                f"budget duration_ns_max must be a positive number, got {safe_repr(duration)}",
                where=where,
            )
        if isinstance(fidelity, bool) or not isinstance(fidelity, int | float):
            fidelity = -1
        if not 0.0 <= fidelity <= 1.0:
            raise ContractError(
                "budget fidelity_min must be in [0, 1], got "
                f"{safe_repr(terms.get('fidelity_min'))}",
                where=where,
            )
        if shots is not None and (type(shots) is not int or shots < 1):
            raise ContractError(
                f"budget shots_per_window must be a positive integer, got {safe_repr(shots)}",
                where=where,
            )
        if type(window) is not int or window < 1:
            raise ContractError(
                f"budget window must be a positive number of logical steps, got "
                f"{safe_repr(window)}",
                where=where,
            )
        return cls(None if duration is None else float(duration), float(fidelity), shots, window)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"fidelity_min": self.fidelity_min, "window": self.window}
        if self.duration_ns_max is not None:
            record["duration_ns_max"] = self.duration_ns_max
        if self.shots_per_window is not None:
            record["shots_per_window"] = self.shots_per_window
        return record


@dataclass(frozen=True, slots=True)
class JobEstimate:
    """The pre-execution estimate of a job on a calibration (structured metadata only)."""

    duration_ns: float
    fidelity: float
    t1_margin_ns: float
    t2_margin_ns: float
    readout_error: float
    single_qubit_gates: int
    two_qubit_gates: int

    def to_record(self) -> dict[str, Any]:
        return {
            "duration_ns": round(self.duration_ns, 3),
            "fidelity": round(self.fidelity, 9),
            "t1_margin_ns": round(self.t1_margin_ns, 3),
            "t2_margin_ns": round(self.t2_margin_ns, 3),
            "readout_error": round(self.readout_error, 9),
            "gates_1q": self.single_qubit_gates,
            "gates_2q": self.two_qubit_gates,
        }


_decomposition_cache: dict[tuple[str, int], tuple[int, int]] = {}


def _cost(operation: Any) -> tuple[int, int]:
    """(single-qubit slots, two-qubit slots) of a gate that is not one native slot."""
    key = (operation.name, operation.num_qubits)
    cached = _decomposition_cache.get(key)
    if cached is not None:
        return cached
    definition = getattr(operation, "definition", None)
    if definition is None:
        # No definition: charge a generic decomposition of an n-qubit gate.
        n = operation.num_qubits
        cost = (2 * n, max(1, 2 * (n - 1) ** 2))
    else:
        ones = twos = 0
        for instruction in definition.data:
            inner = instruction.operation
            if inner.name in _FREE:
                continue
            if inner.num_qubits == 1:
                ones += 1
            elif inner.num_qubits == 2 and inner.name in _NATIVE_TWO_QUBIT:
                twos += 1
            else:
                a, b = _cost(inner)
                ones += a
                twos += b
        cost = (ones, twos)
    _decomposition_cache[key] = cost
    return cost


def estimate(
    circuit: Any, profile: CalibrationProfile, mapping: Sequence[int], where: str
) -> JobEstimate:
    """Estimate ``circuit``'s duration and success probability on ``profile`` under ``mapping``
    (logical qubit i runs on physical qubit ``mapping[i]``)."""
    clock = [0.0] * circuit.num_qubits
    counts = {"ones": 0, "twos": 0}
    log_fidelity = [0.0]
    measured: set[int] = set()

    def physical(logical: int) -> int:
        return mapping[logical]

    def walk(body: Any, qubit_map: Sequence[int], repeat: int) -> None:
        for instruction in body.data:
            operation = instruction.operation
            name = operation.name
            logical = [qubit_map[body.find_bit(q).index] for q in instruction.qubits]
            if name in _FREE:
                continue
            blocks = getattr(operation, "blocks", ())
            if blocks:
                iterations = 1
                if name == "for_loop":
                    iterations = len(operation.params[0])
                elif name == "while_loop":
                    raise XdvError(
                        "a while loop has no bounded duration, so no decoherence budget can "
                        "admit it",
                        code=ErrorCode.CIRCUIT_INVALID,
                        where=where,
                    )
                if iterations * repeat > _LOOP_ITERATIONS_MAX:
                    raise XdvError(
                        f"loops of {iterations * repeat} iterations exceed the estimate's bound",
                        code=ErrorCode.CIRCUIT_INVALID,
                        where=where,
                    )
                # The longest branch bounds the duration of a conditional.
                before = list(clock)
                longest = list(clock)
                for block in blocks:
                    clock[:] = before
                    inner_map = [logical[block.find_bit(q).index] for q in block.qubits]
                    for _ in range(iterations):
                        walk(block, inner_map, repeat * iterations)
                    longest = [max(a, b) for a, b in zip(longest, clock, strict=True)]
                clock[:] = longest
                continue
            start = max(clock[q] for q in logical) if logical else 0.0
            if name in ("measure", "reset"):
                (q,) = logical
                calibration = profile.qubits[physical(q)]
                duration = calibration.readout_ns
                if name == "measure":
                    measured.add(q)
                    log_fidelity[0] += repeat * math.log1p(-calibration.readout_error)
            elif name == "delay":
                duration = float(operation.duration or 0.0)
            elif len(logical) == 1:
                calibration = profile.qubits[physical(logical[0])]
                duration = calibration.gate_ns
                counts["ones"] += repeat
                log_fidelity[0] += repeat * math.log1p(-calibration.gate_error)
            elif len(logical) == 2 and name in _NATIVE_TWO_QUBIT:
                error, duration = profile.pair(physical(logical[0]), physical(logical[1]))
                counts["twos"] += repeat
                log_fidelity[0] += repeat * math.log1p(-error)
            else:
                ones, twos = _cost(operation)
                qubit_errors = [profile.qubits[physical(q)] for q in logical]
                one_error = max(c.gate_error for c in qubit_errors)
                one_ns = max(c.gate_ns for c in qubit_errors)
                two_error, two_ns = profile.pair(physical(logical[0]), physical(logical[1]))
                duration = ones * one_ns + twos * two_ns
                counts["ones"] += repeat * ones
                counts["twos"] += repeat * twos
                log_fidelity[0] += repeat * (
                    ones * math.log1p(-one_error) + twos * math.log1p(-two_error)
                )
            end = start + duration
            for q in logical:
                clock[q] = end

    walk(circuit, list(range(circuit.num_qubits)), 1)
    duration_ns = max(clock) if clock else 0.0
    used = sorted({q for q in range(circuit.num_qubits)})
    calibrations = [profile.qubits[physical(q)] for q in used]
    # Coherence: each qubit decays for the whole job at the faster of its T1 and T2 rates.
    for calibration in calibrations:
        log_fidelity[0] -= duration_ns / calibration.t2_ns
    fidelity = math.exp(log_fidelity[0])
    readouts = [profile.qubits[physical(q)].readout_error for q in sorted(measured)]
    return JobEstimate(
        duration_ns=duration_ns,
        fidelity=fidelity,
        t1_margin_ns=min(c.t1_ns for c in calibrations) - duration_ns,
        t2_margin_ns=min(c.t2_ns for c in calibrations) - duration_ns,
        readout_error=max(readouts) if readouts else 0.0,
        single_qubit_gates=counts["ones"],
        two_qubit_gates=counts["twos"],
    )
