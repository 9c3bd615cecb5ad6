"""DPL types as the checker and DIR spell them, and the contract-clause vocabulary."""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "CLAUSES",
    "INT_WIDTHS",
    "LINEAR_PRIMITIVES",
    "PHI_FUNCTIONS",
    "PHI_PROBLEMS",
    "Q_CLAUSES",
    "Q_GATES",
    "RESOURCES",
    "normalize_type",
    "parse_observable_term",
    "q_classical",
]

_INT = {
    "i8",
    "i16",
    "i32",
    "i64",
    "u8",
    "u16",
    "u32",
    "u64",
    "Int",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Size",
    "Byte",
}
# The written integer types with a width: name -> (bits, signed). Integers are exact (docs/dpl.md
# §3); the width bounds constants (T297) and documents the rest.
INT_WIDTHS: dict[str, tuple[int, bool]] = {
    **{f"i{bits}": (bits, True) for bits in (8, 16, 32, 64)},
    **{f"Int{bits}": (bits, True) for bits in (8, 16, 32, 64)},
    **{f"u{bits}": (bits, False) for bits in (8, 16, 32, 64)},
    **{f"UInt{bits}": (bits, False) for bits in (8, 16, 32, 64)},
    "Byte": (8, False),
}
_FLOAT = {"f32", "f64", "Float", "Float32", "Float64"}
_ALIASES = {
    **dict.fromkeys(_INT, "Int"),
    **dict.fromkeys(_FLOAT, "Float"),
    "bool": "Bool",
    "Bool": "Bool",
    "String": "String",
    "Str": "String",
    "Unit": "Unit",
    "Qubit": "Qubits",
    "Qubits": "Qubits",
    "QReg": "Qubits",
    "Bits": "Bits",
    "Counts": "Counts",
    "Witness": "Witness",
}
# Types whose values are linear by themselves (shapes and arrays holding them are linear too).
LINEAR_PRIMITIVES = frozenset({"Qubits"})


def normalize_type(name: str) -> str | None:
    """The canonical name of a primitive type written ``name``, or None if it is not one."""
    return _ALIASES.get(name)


# The classical values a Q process may take as parameters and bind: numbers, booleans and
# fixed arrays of them (angles, counts, tables); lowering binds them into the circuit per call.
_Q_CLASSICAL = frozenset({"Int", "Float", "Bool"})


def q_classical(type_name: str) -> bool:
    """Whether a Q process may hold a value of ``type_name`` (a number, a boolean, or a fixed
    array of them): a classical parameter, not a quantum state."""
    return type_name.split("[", 1)[0] in _Q_CLASSICAL


# q:: standard library: name -> (qubit indices taken, angle parameters taken).
Q_GATES: dict[str, tuple[int, int]] = {
    "h": (1, 0),
    "x": (1, 0),
    "y": (1, 0),
    "z": (1, 0),
    "s": (1, 0),
    "sdg": (1, 0),
    "t": (1, 0),
    "tdg": (1, 0),
    "rx": (1, 1),
    "ry": (1, 1),
    "rz": (1, 1),
    "cx": (2, 0),
    "cz": (2, 0),
    "swap": (2, 0),
    "ccx": (3, 0),
}
# phi:: standard library: decision-variable constructors and their argument counts.
PHI_FUNCTIONS: dict[str, int] = {"int": 2, "bool": 0}
# phi:: problems for the phase-oscillator machine (or the exact optimizer): an Ising/QUBO/MaxCut
# problem stated by its data, with the argument counts each form takes. Such a problem is the
# whole problem of its Φ process (no other decision variables, no constraints).
PHI_PROBLEMS: dict[str, tuple[int, ...]] = {"maxcut": (3, 4), "ising": (5,), "qubo": (4,)}

# Resources a `uses` qualifier may name, per regime, with their allowed arguments and types.
RESOURCES: dict[str, dict[str, dict[str, type]]] = {
    # `Console(device = "stdout")`: where `emit` prints (the only console a run has).
    "K": {"steps": {"max": int}, "Console": {"device": str}},
    "Q": {
        "qubits": {"n": int},
        # The quantum device a process needs (§8.5.1): `kind = "simulator"` is the embedded
        # provider; any other kind is unavailable, and exercising the process fails before it
        # runs. `calibrated = true` asks for a calibration contract (the simulator has one).
        "QuantumDevice": {"kind": str, "calibrated": bool, "qubits": int},
    },
    "Φ": {"envelope": {"window": int, "tolerance": float, "provider": str}},
}

# Contract clauses: name -> (allowed operators, value check, description).
_BOOL = (bool,)


def _is_effect_list(value: Any) -> bool:
    return isinstance(value, bool) or (
        isinstance(value, list) and all(item in ("emit", "observe", "seal") for item in value)
    )


CLAUSES: dict[str, tuple[frozenset[str], Any, str]] = {
    "latency_us": (
        frozenset({"<=", "<", "=="}),
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a non-negative integer bound, in logical steps",
    ),
    "effects_allowed": (
        frozenset({"=="}),
        _is_effect_list,
        "true, false or a list of effect kinds [emit, observe, seal]",
    ),
    "witness_transfer": (frozenset({"=="}), lambda v: isinstance(v, bool), "true or false"),
    "linearity_enforced": (frozenset({"=="}), lambda v: isinstance(v, bool), "true or false"),
    "observation": (
        frozenset({"=="}),
        lambda v: v in ("sample", "counts", "expectation"),
        "sample, counts or expectation",
    ),
    "observable": (
        frozenset({"=="}),
        lambda v: (
            isinstance(v, list)
            and 0 < len(v) <= 256
            and all(isinstance(term, str) and parse_observable_term(term) is not None for term in v)
        ),
        'a list of terms such as "ZZI" or "-0.5*IZZ" (Z or I per measured bit, bit 0 '
        "rightmost, an optional coefficient)",
    ),
    "calibration": (frozenset({"=="}), lambda v: isinstance(v, str), "a calibration profile"),
    "noise": (frozenset({"=="}), lambda v: isinstance(v, bool), "true or false"),
    "fidelity_min": (
        frozenset({"==", ">="}),
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1,
        "a number from 0 to 1",
    ),
    "record": (frozenset({"=="}), lambda v: isinstance(v, bool), "true or false"),
    "shots": (
        frozenset({"==", "<="}),
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1_000_000,
        "an integer from 1 to 1000000",
    ),
    "provider": (frozenset({"=="}), lambda v: isinstance(v, str), "a provider name"),
    "tolerance": (
        frozenset({"==", "<="}),
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
        "a non-negative number",
    ),
}

# Clauses that only a bind to a Q process can carry (the device's terms and how a result crosses).
Q_CLAUSES = frozenset({"observation", "observable", "calibration", "noise", "fidelity_min"})
_TERM_CHARS_MAX = 64


def parse_observable_term(term: str) -> tuple[float, str] | None:
    """``"COEFFICIENT*PAULIS"`` or ``"PAULIS"`` → (coefficient, Paulis), where the Paulis are
    ``I`` or ``Z`` per measured bit, the rightmost for bit 0; None if malformed."""
    coefficient_text, _, paulis = term.rpartition("*")
    if not paulis or len(paulis) > _TERM_CHARS_MAX or set(paulis) - {"I", "Z"}:
        return None
    coefficient = 1.0
    if coefficient_text:
        try:
            coefficient = float(coefficient_text)
        except ValueError:
            return None
        if not math.isfinite(coefficient):
            return None
    return coefficient, paulis
