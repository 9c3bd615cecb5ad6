"""Calibration profiles (device snapshots) and calibration contracts (XDV-060 §4).

A *profile* is a device's characterisation: per qubit T1, T2, readout error and duration,
single-qubit gate error and duration; per coupled pair the two-qubit gate error and duration;
the native gate set. Profiles come from the real device snapshots shipped with
``qiskit-ibm-runtime`` (the data files of its fake backends, read without importing the client):
``fake_sherbrooke``, ``fake_manila``, ...

A *calibration contract* binds a profile to a provider for a validity window in logical time;
the provider signs it and the Q manager verifies the signature before any contract refers to it.
Times are in nanoseconds; errors are probabilities.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.trace import canonical_metadata

__all__ = [
    "CalibrationContract",
    "CalibrationProfile",
    "ProfileListing",
    "QubitCalibration",
    "list_profiles",
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
#
# The snapshots are the JSON files that qiskit-ibm-runtime ships for its fake backends
# (``fake_provider/backends/<stem>/conf_<stem>.json`` and ``props_<stem>.json``). They are read
# directly: importing the runtime client to reach them costs seconds at every start. The reading
# below follows what the client's own converter does (unit prefixes, faulty qubits and gates left
# out), so a profile's numbers, and its digest, are the same as when read through the client.

_SNAPSHOT_PACKAGE = "qiskit_ibm_runtime"
_SNAPSHOT_FOLDER = ("fake_provider", "backends")
# FakeFractionalBackend is a synthetic backend for testing fractional gates, not a device.
_NOT_DEVICES = frozenset({"fractional"})
_MEASURE = "measure"
_NON_UNITARY = frozenset({"measure", "delay", "reset"})
_UNIT_EXPONENTS = {
    "f": -15, "p": -12, "n": -9, "u": -6, "µ": -6, "m": -3,
    "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
}  # fmt: skip


@cache
def _snapshot_folders() -> dict[str, Path]:
    """Profile name -> the folder holding its snapshot files (found once, nothing imported)."""
    try:
        spec = importlib.util.find_spec(_SNAPSHOT_PACKAGE)
    except (ImportError, ValueError):
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    found: dict[str, Path] = {}
    for location in spec.submodule_search_locations:
        backends = Path(location).joinpath(*_SNAPSHOT_FOLDER)
        if not backends.is_dir():
            continue
        for folder in sorted(backends.iterdir()):
            stem = folder.name
            if stem in _NOT_DEVICES or not (folder / f"conf_{stem}.json").is_file():
                continue
            found.setdefault(f"fake_{stem}", folder)
    return found


@cache
def profile_names() -> tuple[str, ...]:
    """Names of the calibration profiles available here (sorted), usable or not.

    ``list_profiles`` says which of them can be loaded, and why not.
    """
    return tuple(sorted(_snapshot_folders()))


@cache
def load_profile(name: str) -> CalibrationProfile:
    """Load the calibration profile ``name`` (a device snapshot); CALIBRATION_INVALID if unknown.

    Each profile is read once per process. A profile that is listed but cannot be used (no
    supported native gates, unreadable files) raises CALIBRATION_INVALID saying why.
    """
    folder = _snapshot_folders().get(name)
    if folder is None:
        hint = ", ".join(profile_names()[:8]) or "none: install qiskit-ibm-runtime"
        raise XdvError(
            f"no calibration profile {name!r} (available: {hint}, ...; `xdv calibrations` "
            "lists them all)",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        )
    stem = folder.name
    try:
        configuration = _read_json(folder / f"conf_{stem}.json")
        properties_path = folder / f"props_{stem}.json"
        if not properties_path.is_file():
            raise XdvError(
                f"device snapshot {name!r} has no properties file (no calibration data)",
                code=ErrorCode.CALIBRATION_INVALID,
                where="calibration",
            )
        return _from_snapshot(_read_snapshot(name, configuration, _read_json(properties_path)))
    except XdvError:
        raise
    except Exception as error:
        raise XdvError(
            f"device snapshot {name!r} cannot be read: {describe_exception(error)}",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        ) from None


@dataclass(frozen=True, slots=True)
class ProfileListing:
    """One line of the profile listing: a profile, or the reason it cannot be used."""

    name: str
    profile: CalibrationProfile | None
    reason: str | None  # why the profile cannot be used; None when it can

    @property
    def usable(self) -> bool:
        """Whether Q jobs can run under this profile."""
        return self.profile is not None

    def to_record(self) -> dict[str, Any]:
        """The listing's JSON form: name, usable, reason, and the summary of a usable profile."""
        record: dict[str, Any] = {"name": self.name, "usable": self.usable, "reason": self.reason}
        if self.profile is not None:
            record.update(self.profile.summary())
        return record


def list_profiles() -> tuple[ProfileListing, ...]:
    """Every profile available here, in name order, each loaded or with why it cannot be.

    Never raises for one bad profile: a listing names them all.
    """
    listings: list[ProfileListing] = []
    for name in profile_names():
        try:
            listings.append(ProfileListing(name, load_profile(name), None))
        except XdvError as error:
            listings.append(ProfileListing(name, None, error.message))
    return tuple(listings)


def _read_json(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        document = json.load(handle)
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return document


def _apply_prefix(value: Any, unit: str) -> Any:
    """A value in SI base units, as the runtime client converts it (``value / 10**n``)."""
    if not unit or len(unit) == 1:
        return value
    exponent = _UNIT_EXPONENTS.get(unit[0])
    if exponent is None:
        raise ValueError(f"unknown unit {unit!r}")
    if exponent < 0:
        return value / pow(10, -exponent)
    return value * pow(10, exponent)


def _named_values(entries: Any) -> dict[str, Any]:
    """``[{name, unit, value, ...}, ...]`` -> ``{name: value in base units}`` (last one wins)."""
    return {entry["name"]: _apply_prefix(entry["value"], entry["unit"]) for entry in entries}


def _operational(values: Mapping[str, Any]) -> bool:
    return bool(values["operational"]) if "operational" in values else True


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# An instruction's properties on some qubits: (error, duration in seconds), None when unknown.
_InstructionTable = dict[tuple[int, ...], tuple[float | None, float | None] | None]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A device snapshot's raw numbers, as the device's transpiler target holds them (SI units)."""

    name: str
    size: int
    operation_names: frozenset[str]
    single: str  # the single-qubit gate the profile describes
    two: str  # the two-qubit gate
    t1: tuple[float | None, ...]  # per qubit, seconds
    t2: tuple[float | None, ...]
    tables: Mapping[str, _InstructionTable]  # "measure", single and two -> qargs -> properties


def _read_snapshot(
    name: str, configuration: Mapping[str, Any], properties: Mapping[str, Any]
) -> _Snapshot:
    """The numbers a profile is made from, read from the snapshot's two JSON documents.

    Follows the runtime client's converter: units are converted to SI, qubits and gates marked
    non-operational are left out of every instruction, and a gate with a coupling map but no
    properties on some pair holds that pair with unknown properties.
    """
    size = int(configuration["n_qubits"])
    basis_gates = set(configuration.get("basis_gates") or ())
    supported = set(configuration.get("supported_instructions", ("measure", "reset", "delay")))
    operation_names = frozenset(
        basis_gates
        | (supported & _NON_UNITARY)
        | {signature.get("name") for signature in configuration.get("instruction_signatures", ())}
    )
    single = next((gate for gate in _SINGLE_QUBIT_GATES if gate in operation_names), None)
    two = next((gate for gate in _TWO_QUBIT_GATES if gate in operation_names), None)
    if single is None or two is None:
        missing = " nor ".join(
            f"{kind} gate ({', '.join(gates[:-1])} or {gates[-1]})"
            for kind, gates, found in (
                ("single-qubit", _SINGLE_QUBIT_GATES, single),
                ("two-qubit", _TWO_QUBIT_GATES, two),
            )
            if found is None
        )
        raise XdvError(
            f"device snapshot {name!r} has no supported native gates: its basis "
            f"({', '.join(sorted(basis_gates)) or 'empty'}) has no {missing}",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        )

    qubit_values: dict[int, dict[str, Any]] = {}
    for index, entries in enumerate(properties["qubits"]):
        if entries:
            qubit_values[index] = _named_values(entries)
    missing_qubits = [qubit for qubit in range(size) if qubit not in qubit_values]
    if missing_qubits:
        raise XdvError(
            f"device snapshot {name!r} has no properties for qubit {missing_qubits[0]}",
            code=ErrorCode.CALIBRATION_INVALID,
            where="calibration",
        )
    faulty = {qubit for qubit in range(size) if not _operational(qubit_values[qubit])}
    gate_values: dict[str, dict[tuple[int, ...], dict[str, Any]]] = {}
    for gate in properties["gates"]:
        if gate["gate"] in (single, two):  # the only gates a profile reads
            gate_values.setdefault(gate["gate"], {})[tuple(gate["qubits"])] = _named_values(
                gate["parameters"]
            )
    gate_configurations = {gate["name"]: gate for gate in configuration.get("gates") or ()}

    def instruction(gate: str) -> _InstructionTable:
        table: _InstructionTable = {}
        if gate not in operation_names:
            return table
        if gate == _MEASURE:  # a qubit's readout is a qubit property
            for qubit in range(size):
                if qubit not in faulty:
                    values = qubit_values[qubit]
                    table[(qubit,)] = (
                        _float(values.get("readout_error")),
                        _float(values.get("readout_length")),
                    )
            return table
        coupling = (gate_configurations.get(gate) or {}).get("coupling_map")
        if coupling:
            table = dict.fromkeys(map(tuple, coupling))
        for qargs, values in gate_values.get(gate, {}).items():
            if faulty.intersection(qargs) or not _operational(values):
                table.pop(qargs, None)
                continue
            table[qargs] = (_float(values.get("gate_error")), _float(values.get("gate_length")))
        return table

    return _Snapshot(
        name=name,
        size=size,
        operation_names=operation_names,
        single=single,
        two=two,
        t1=tuple(qubit_values[qubit].get("T1") for qubit in range(size)),
        t2=tuple(qubit_values[qubit].get("T2") for qubit in range(size)),
        tables={gate: instruction(gate) for gate in (_MEASURE, single, two)},
    )


def _from_snapshot(snapshot: _Snapshot) -> CalibrationProfile:
    """The profile of a snapshot: nanoseconds, gaps filled with medians, impossible values cut."""

    def at(gate: str, qubit: int) -> tuple[float | None, float | None]:
        found = snapshot.tables[gate].get((qubit,))
        if found is None:
            return (None, None)
        error, seconds = found
        return (error, None if seconds is None else seconds * 1e9)

    size = snapshot.size
    t1: list[float | None] = []
    t2: list[float | None] = []
    readout_error: list[float | None] = []
    readout_ns: list[float | None] = []
    gate_error: list[float | None] = []
    gate_ns: list[float | None] = []
    for qubit in range(size):
        qubit_t1, qubit_t2 = snapshot.t1[qubit], snapshot.t2[qubit]
        t1.append(None if qubit_t1 is None else qubit_t1 * 1e9)
        t2.append(None if qubit_t2 is None else qubit_t2 * 1e9)
        error, ns = at(_MEASURE, qubit)
        readout_error.append(error)
        readout_ns.append(ns)
        error, ns = at(snapshot.single, qubit)
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
    for qargs, found in sorted(snapshot.tables[snapshot.two].items()):
        if found is None or len(qargs) != 2:
            continue
        error, seconds = found
        pair_error = 0.01 if error is None else min(error, 0.75)
        pair_ns = 500.0 if seconds is None else seconds * 1e9
        pairs[(int(qargs[0]), int(qargs[1]))] = (pair_error, pair_ns)
    basis = tuple(
        sorted(
            gate
            for gate in snapshot.operation_names
            if gate in ("rz", "sx", "x", "id", *_TWO_QUBIT_GATES)
        )
    )
    return CalibrationProfile(
        name=snapshot.name,
        source=f"qiskit-ibm-runtime device snapshot {snapshot.name}",
        qubits=qubits,
        pairs=pairs,
        two_qubit_gate=snapshot.two,
        basis=basis,
    )


def _fill(values: list[float | None], fallback: float) -> list[float]:
    present = [value for value in values if value is not None and value > 0]
    median = statistics.median(present) if present else fallback
    return [float(value) if value is not None and value > 0 else float(median) for value in values]


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
