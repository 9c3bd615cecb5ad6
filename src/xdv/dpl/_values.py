"""Runtime values of the DPL VM, their display form, and the typed runtime failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "DplAdmissibilityFailure",
    "DplContractViolation",
    "DplRuntimeFailure",
    "ShapeValue",
    "Witness",
    "concrete_binary",
    "fdiv",
    "field",
    "idiv",
    "imod",
    "index",
    "show",
]


class DplRuntimeFailure(XdvError):
    """A DPL runtime failure (§11.4): execution stops, no later effect happens."""

    default_code = ErrorCode.DPL_RUNTIME


class DplAdmissibilityFailure(XdvError):
    """No configuration satisfies a Φ process's constraints (§11.5): no effect happens."""

    default_code = ErrorCode.DPL_ADMISSIBILITY


class DplContractViolation(XdvError):
    """A bind's contract cannot be met (§11.6): the bind is not exercised, nothing crosses."""

    default_code = ErrorCode.DPL_CONTRACT_VIOLATION


class ShapeValue:
    """A value of a shape: its name and field values in declaration order."""

    __slots__ = ("name", "values")

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self.name = name
        self.values = values

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ShapeValue)
            and other.name == self.name
            and other.values == self.values
        )

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.values.items())))


class Witness:
    """An admissibility witness: the proved assignment and a digest binding it to its problem.

    Only the assignment and digests ever leave the Φ provider; raw phases never do.
    """

    __slots__ = ("assignment", "digest", "process")

    def __init__(self, process: str, problem: Mapping[str, Any], assignment: dict[str, Any]):
        self.process = process
        self.assignment = assignment
        body = json.dumps(
            {"problem": problem, "assignment": assignment, "process": process},
            sort_keys=True,
            separators=(",", ":"),
        )
        self.digest = hashlib.sha256(body.encode()).hexdigest()

    def field(self, name: str) -> Any:
        """The proved value of decision variable ``name``."""
        if name not in self.assignment:
            raise DplRuntimeFailure(
                f"the witness of {self.process} has no variable {name!r}",
                where=self.process,
            )
        return self.assignment[name]


def show(value: Any) -> str:
    """How a value prints in ``emit`` and string interpolation."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        try:
            return repr(value)
        except ValueError:  # an integer beyond Python's decimal conversion limit
            raise DplRuntimeFailure(
                f"an integer of {int(value).bit_length()} bits is too large to show"
            ) from None
    if isinstance(value, ShapeValue):
        inner = ", ".join(f"{k}: {show(v)}" for k, v in value.values.items())
        return f"{value.name} {{ {inner} }}"
    if isinstance(value, Witness):
        inner = ", ".join(f"{k}: {show(v)}" for k, v in value.assignment.items())
        return f"witness[{value.digest[:12]}] {{ {inner} }}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(show(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    if value is None:
        return "()"
    return f"<{type(value).__name__}>"


# ---------------------------------------------------------------------- operations
# DPL's arithmetic and access rules, shared by the generated K code and the Φ evaluator.


def idiv(left: int, right: int) -> int:
    """Integer division truncating towards zero (DPL's ``/`` on Int)."""
    if right == 0:
        raise DplRuntimeFailure("division by zero")
    quotient = abs(left) // abs(right)
    return quotient if (left >= 0) == (right >= 0) else -quotient


def imod(left: int, right: int) -> int:
    """The remainder of :func:`idiv` (its sign follows the dividend)."""
    if right == 0:
        raise DplRuntimeFailure("remainder by zero")
    return left - right * idiv(left, right)


def fdiv(left: float, right: float) -> float:
    """Float division; dividing by zero is a runtime failure."""
    if right == 0:
        raise DplRuntimeFailure("division by zero")
    return left / right


def index(items: tuple[Any, ...], position: int) -> Any:
    """``items[position]``; outside the array is a runtime failure."""
    if not 0 <= position < len(items):
        raise DplRuntimeFailure(f"index {position} is outside an array of {len(items)}")
    return items[position]


def field(value: Any, name: str) -> Any:
    """Field ``name`` of a shape value or a witness."""
    if isinstance(value, Witness):
        return value.field(name)
    return value.values[name]


_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "&&": lambda a, b: a and b,
    "||": lambda a, b: a or b,
}


def concrete_binary(op: str, left: Any, right: Any) -> Any:
    """``left op right`` on concrete values."""
    if op == "/":
        return idiv(left, right) if isinstance(left, int) else fdiv(left, right)
    if op == "%":
        return imod(left, right)
    operation = _OPERATIONS.get(op)
    if operation is None:
        raise DplRuntimeFailure(f"unknown operator {op!r}")
    return operation(left, right)
