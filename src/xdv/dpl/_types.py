"""DPL types as the checker and DIR spell them, and the contract-clause vocabulary."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLAUSES",
    "INT_WIDTHS",
    "LINEAR_PRIMITIVES",
    "PHI_FUNCTIONS",
    "Q_GATES",
    "RESOURCES",
    "normalize_type",
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
        lambda v: v in ("sample", "counts"),
        "sample or counts",
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
