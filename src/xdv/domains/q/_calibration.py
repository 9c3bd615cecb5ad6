"""Calibration profiles (device snapshots) and calibration contracts (XDV-060 §4).

A *profile* is a device's characterisation: per qubit T1, T2, readout error and duration,
single-qubit gate error and duration; per coupled pair the two-qubit gate error and duration;
the native gate set. Profiles come from the real device snapshots shipped with
``qiskit-ibm-runtime`` (its fake backends): ``fake_sherbrooke``, ``fake_manila``, ...

A *calibration contract* binds a profile to a provider for a validity window in logical time;
the provider signs it and the Q manager verifies the signature before any contract refers to it.
Times are in nanoseconds; errors are probabilities.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.trace import canonical_metadata

__all__ = [
    "CalibrationContract",
    "CalibrationProfile",
    "QubitCalibration",
    "load_profile",
    "profile_names",
]

_TWO_QUBIT_GATES = ("ecr", "cx", "cz")
_SINGLE_QUBIT_GATES = ("sx", "x")


@dataclass(frozen=True, slots=True)
class QubitCalibration:
    """One physical qubit's characterisation."""

    t1_ns: float
    t2_ns: float
    readout_error: float
    readout_ns: float
    gate_error: float
    gate_ns: float

    def to_record(self) -> dict[str, float]:
        return {
            "t1_ns": self.t1_ns,
            "t2_ns": self.t2_ns,
            "readout_error": self.readout_error,
            "readout_ns": self.readout_ns,
            "gate_error": self.gate_error,
            "gate_ns": self.gate_ns,
        }


@dataclass(frozen=True, eq=False)
class CalibrationProfile:
    """A device snapshot: what the noise model, budgets and diagnostics are computed from."""

    name: str
    source: str
    qubits: tuple[QubitCalibration, ...]
    pairs: Mapping[tuple[int, int], tuple[float, float]]  # (a, b) -> (error, duration ns)
    two_qubit_gate: str
    basis: tuple[str, ...]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", hashlib.sha256(self._body()).hexdigest())

    def _body(self) -> bytes:
        return canonical_metadata(
            {
                "name": self.name,
                "source": self.source,
                "qubits": [qubit.to_record() for qubit in self.qubits],
                "pairs": [[a, b, error, ns] for (a, b), (error, ns) in sorted(self.pairs.items())],
                "two_qubit_gate": self.two_qubit_gate,
                "basis": list(self.basis),
            }
        )

    @property
    def size(self) -> int:
        """Number of physical qubits."""
        return len(self.qubits)

    def pair(self, a: int, b: int) -> tuple[float, float]:
        """Two-qubit gate (error, duration ns) between physical qubits ``a`` and ``b``.

        Uncoupled pairs get the profile's median two-qubit error and duration: XDV does not
        route circuits onto the coupling map (``docs/q-domain.md`` records why).
        """
        found = self.pairs.get((a, b)) or self.pairs.get((b, a))
        return found if found is not None else self.median_pair

    @property
    def median_pair(self) -> tuple[float, float]:
        return _median_pair(self)

    def summary(self) -> dict[str, Any]:
        """Medians and sizes, for listings and declarations."""
        return {
            "name": self.name,
            "source": self.source,
            "qubits": self.size,
            "two_qubit_gate": self.two_qubit_gate,
            "t1_us_median": round(statistics.median(q.t1_ns for q in self.qubits) / 1000, 3),
            "t2_us_median": round(statistics.median(q.t2_ns for q in self.qubits) / 1000, 3),
            "gate_error_median": statistics.median(q.gate_error for q in self.qubits),
            "two_qubit_error_median": self.median_pair[0],
            "readout_error_median": statistics.median(q.readout_error for q in self.qubits),
            "digest": self.digest,
        }


@cache
def _median_pair(profile: CalibrationProfile) -> tuple[float, float]:
    if not profile.pairs:
        return (0.0, 0.0)
    errors = [error for error, _ in profile.pairs.values()]
    durations = [ns for _, ns in profile.pairs.values()]
    return (float(statistics.median(errors)), float(statistics.median(durations)))


# ---------------------------------------------------------------------- device snapshots


def _backend_classes() -> dict[str, type]:
    try:
        from qiskit_ibm_runtime import fake_provider
    except ImportError:
        return {}
    found: dict[str, type] = {}
    for attribute in dir(fake_provider):
        if not attribute.startswith("Fake") or attribute in (
            "FakeProviderForBackendV2",
            "FakeFractionalBackend",
        ):
            continue
        stem = attribute[len("Fake") :]
        if stem.endswith("V2"):
            stem = stem[:-2]
        found[f"fake_{stem.lower()}"] = getattr(fake_provider, attribute)
    return found


@cache
def profile_names() -> tuple[str, ...]:
    """Names of the calibration profiles available here (sorted)."""
    return tuple(sorted(_backend_classes()))


@cache
def load_profile(name: str) -> CalibrationProfile:
    """Load the calibration profile ``name`` (a device snapshot); CALIBRATION_INVALID if unknown."""
    classes = _backend_classes()
    backend_class = classes.get(name)
    if backend_class is None:
        hint = ", ".join(profile_names()[:8]) or "none: install qiskit-ibm-runtime"
        raise XdvError(
            f"no calibration profile {name!r} (available: {hint}, ...; `xdv calibrations` "
            "lists them all)",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        )
    try:
        return _from_backend(name, backend_class())
    except XdvError:
        raise
    except Exception as error:
        raise XdvError(
            f"device snapshot {name!r} cannot be read: {describe_exception(error)}",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        ) from None


def _fill(values: list[float | None], fallback: float) -> list[float]:
    present = [value for value in values if value is not None and value > 0]
    median = statistics.median(present) if present else fallback
    return [float(value) if value is not None and value > 0 else float(median) for value in values]


def _from_backend(name: str, backend: Any) -> CalibrationProfile:
    target = backend.target
    size = int(backend.num_qubits)

    def properties(gate: str, qargs: tuple[int, ...]) -> tuple[float | None, float | None]:
        if gate not in target.operation_names:
            return (None, None)
        props = target[gate].get(qargs)
        if props is None:
            return (None, None)
        return (props.error, None if props.duration is None else props.duration * 1e9)

    single = next((gate for gate in _SINGLE_QUBIT_GATES if gate in target.operation_names), None)
    two = next((gate for gate in _TWO_QUBIT_GATES if gate in target.operation_names), None)
    if single is None or two is None:
        raise XdvError(
            f"device snapshot {name!r} has no supported native gates",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        )
    t1: list[float | None] = []
    t2: list[float | None] = []
    readout_error: list[float | None] = []
    readout_ns: list[float | None] = []
    gate_error: list[float | None] = []
    gate_ns: list[float | None] = []
    for qubit in range(size):
        qubit_properties = backend.qubit_properties(qubit)
        t1.append(None if qubit_properties.t1 is None else qubit_properties.t1 * 1e9)
        t2.append(None if qubit_properties.t2 is None else qubit_properties.t2 * 1e9)
        error, ns = properties("measure", (qubit,))
        readout_error.append(error)
        readout_ns.append(ns)
        error, ns = properties(single, (qubit,))
        gate_error.append(error)
        gate_ns.append(ns)
    columns = (
        _fill(t1, 100_000.0),
        _fill(t2, 100_000.0),
        _fill(readout_error, 0.02),
        _fill(readout_ns, 1000.0),
        _fill(gate_error, 3e-4),
        _fill(gate_ns, 35.0),
    )
    qubits = tuple(
        QubitCalibration(
            t1_ns=columns[0][q],
            # A physical T2 never exceeds 2·T1; snapshots occasionally say otherwise.
            t2_ns=min(columns[1][q], 2 * columns[0][q]),
            readout_error=min(columns[2][q], 0.5),
            readout_ns=columns[3][q],
            gate_error=min(columns[4][q], 0.75),
            gate_ns=columns[5][q],
        )
        for q in range(size)
    )
    pairs: dict[tuple[int, int], tuple[float, float]] = {}
    for qargs, props in sorted(target[two].items(), key=lambda item: item[0] or ()):
        if qargs is None or props is None or len(qargs) != 2:
            continue
        error = 0.01 if props.error is None else min(float(props.error), 0.75)
        ns = 500.0 if props.duration is None else float(props.duration) * 1e9
        pairs[(int(qargs[0]), int(qargs[1]))] = (error, ns)
    basis = tuple(
        sorted(
            gate
            for gate in target.operation_names
            if gate in ("rz", "sx", "x", "id", *_TWO_QUBIT_GATES)
        )
    )
    return CalibrationProfile(
        name=name,
        source=f"qiskit-ibm-runtime device snapshot {backend.name}",
        qubits=qubits,
        pairs=pairs,
        two_qubit_gate=two,
        basis=basis,
    )


# ---------------------------------------------------------------------- contracts


@dataclass(frozen=True)
class CalibrationContract:
    """A provider's signed statement that ``profile`` holds over a logical-time window.

    The body (everything but the signature) is what is signed; its SHA-256 (``digest``) is what
    the trace records.
    """

    id: int
    provider_id: str
    profile: str
    profile_digest: str
    valid_from: int
    valid_until: int
    error_bounds: Mapping[str, float]
    signature: bytes = field(repr=False)

    def body(self) -> dict[str, Any]:
        """The signed body (canonical, trace-encodable)."""
        return {
            "id": self.id,
            "provider": self.provider_id,
            "profile": self.profile,
            "profile_digest": self.profile_digest,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "error_bounds": dict(self.error_bounds),
        }

    def message(self) -> bytes:
        """The bytes the provider signs."""
        return canonical_metadata(self.body())

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.message()).hexdigest()

    def to_record(self) -> dict[str, Any]:
        """What contracts and the trace carry: the body's key fields and digest, no signature."""
        return {
            "id": self.id,
            "profile": self.profile,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "digest": self.digest,
        }

    def valid_at(self, logical_time: int) -> bool:
        return self.valid_from <= logical_time <= self.valid_until


def error_bounds(profile: CalibrationProfile) -> dict[str, float]:
    """The worst values a profile declares (the contract's error bounds)."""
    return {
        "gate_error_max": max(q.gate_error for q in profile.qubits),
        "two_qubit_error_max": max((e for e, _ in profile.pairs.values()), default=0.0),
        "readout_error_max": max(q.readout_error for q in profile.qubits),
        "t1_ns_min": min(q.t1_ns for q in profile.qubits),
        "t2_ns_min": min(q.t2_ns for q in profile.qubits),
    }
