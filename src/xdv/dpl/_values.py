"""Runtime values of the DPL VM, their display form, and the typed runtime failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "DplAdmissibilityFailure",
    "DplContractViolation",
    "DplRuntimeFailure",
    "ShapeValue",
    "Witness",
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
