"""Runtime values of the DPL VM, their display form, and the typed runtime failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from xdv.errors import ErrorCode, XdvError
from xdv.inputs import LIMITS, limit

__all__ = [
    "INT_BITS_MAX",
    "INT_MAGNITUDE",
    "STRING_CHARS_MAX",
    "DplAdmissibilityFailure",
    "DplContractViolation",
    "DplRuntimeFailure",
    "ShapeValue",
    "Witness",
    "bounded",
    "concat",
    "concrete_binary",
    "fdiv",
    "field",
    "idiv",
    "imod",
    "imul",
    "index",
    "interpolate",
    "over",
    "shift_left",
    "shift_right",
    "show",
]

# Integers are exact but bounded: every integer the VM keeps has at most INT_BITS_MAX bits
# (|v| < INT_MAGNITUDE), and every string at most STRING_CHARS_MAX characters, so no program can
# make one operation, or one value, take unbounded time or memory.
INT_BITS_MAX = limit("dpl_int_bits_max")
INT_MAGNITUDE = 1 << INT_BITS_MAX
STRING_CHARS_MAX = limit("dpl_string_chars_max")


class DplRuntimeFailure(XdvError):
    """A DPL runtime failure (§11.4): execution stops, no later effect happens."""

    default_code = ErrorCode.DPL_RUNTIME


class DplAdmissibilityFailure(XdvError):
    """No configuration satisfies a Φ process's constraints (§11.5): no effect happens."""

    default_code = ErrorCode.DPL_ADMISSIBILITY


class DplContractViolation(XdvError):
    """A bind's contract cannot be met (§11.6): the bind is not exercised, nothing crosses."""

    default_code = ErrorCode.DPL_CONTRACT_VIOLATION


def _too_large(name: str, found: str) -> DplRuntimeFailure:
    bound = LIMITS[name]
    return DplRuntimeFailure(
        f"{found}: exceeds the limit {bound.name} = {bound.value} {bound.unit}",
        code=ErrorCode.DPL_LIMIT_EXCEEDED,
    )


def over(value: int) -> None:
    """Raise the runtime failure for an integer beyond ``dpl_int_bits_max`` (the generated code
    compares the magnitude inline and calls this only when it is too large)."""
    raise _too_large("dpl_int_bits_max", f"an integer of {int(value).bit_length()} bits")


def imul(left: int, right: int) -> int:
    """``left * right`` on Int, refused beyond ``dpl_int_bits_max``."""
    product = left * right
    if -INT_MAGNITUDE < product < INT_MAGNITUDE:
        return product
    raise _too_large("dpl_int_bits_max", f"a product of {product.bit_length()} bits")


def shift_left(left: int, count: int) -> int:
    """``left << count`` on Int: a negative count is a runtime failure, and the result is
    refused beyond ``dpl_int_bits_max`` (checked before it is computed)."""
    if count < 0:
        raise DplRuntimeFailure(f"shift by a negative count ({count})")
    if left and int(left).bit_length() + count > INT_BITS_MAX:
        raise _too_large("dpl_int_bits_max", f"a shift to {int(left).bit_length() + count} bits")
    return left << count


def shift_right(left: int, count: int) -> int:
    """``left >> count`` on Int (arithmetic: rounds toward minus infinity); a negative count
    is a runtime failure."""
    if count < 0:
        raise DplRuntimeFailure(f"shift by a negative count ({count})")
    return left >> min(count, INT_BITS_MAX + 1)


def concat(left: str, right: str) -> str:
    """``left + right`` on String, refused beyond ``dpl_string_chars_max``."""
    if len(left) + len(right) > STRING_CHARS_MAX:
        raise _too_large("dpl_string_chars_max", f"a string of {len(left) + len(right)} characters")
    return left + right


def interpolate(*parts: Any) -> str:
    """An interpolated string: text parts as they are, the others as they show."""
    pieces = []
    total = 0
    for part in parts:
        text = part if isinstance(part, str) else show(part)
        total += len(text)
        if total > STRING_CHARS_MAX:
            raise _too_large("dpl_string_chars_max", "an interpolated string")
        pieces.append(text)
    return "".join(pieces)


def bounded(value: Any) -> Any:
    """``value`` when every integer in it is within ``dpl_int_bits_max``; checked where a
    composite value (a shape or an array) is stored in a mutable binding."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, int) and not -INT_MAGNITUDE < item < INT_MAGNITUDE:
            over(item)
        elif isinstance(item, tuple | list):
            pending.extend(item)
        elif isinstance(item, ShapeValue):
            pending.extend(item.values.values())
    return value


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
    """How a value prints in ``emit`` and string interpolation.

    Built piece by piece with a running length, so a value whose text would exceed
    ``dpl_string_chars_max`` (an array sharing one long string many times, arrays of arrays)
    is refused before its text is built, and nesting costs no recursion.
    """
    if isinstance(value, str):
        return value
    pieces: list[str] = []
    total = 0
    # Work items: a value to show, or punctuation to append as it is.
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Text):
            text = item.text
        elif isinstance(item, ShapeValue):
            pending.append(_Text(" }"))
            for position, (key, inner) in enumerate(reversed(item.values.items())):
                pending.append(inner)
                last = position == len(item.values) - 1
                pending.append(_Text(f"{item.name} {{ {key}: " if last else f", {key}: "))
            if not item.values:
                pending.append(_Text(f"{item.name} {{ "))
            continue
        elif isinstance(item, tuple | list):
            pending.append(_Text("]"))
            for position, inner in enumerate(reversed(item)):
                pending.append(inner)
                if position != len(item) - 1:
                    pending.append(_Text(", "))
            pending.append(_Text("["))
            continue
        else:
            text = _show_scalar(item)
        total += len(text)
        if total > STRING_CHARS_MAX:
            raise _too_large("dpl_string_chars_max", "the text of a shown value")
        pieces.append(text)
    return "".join(pieces)


class _Text:
    """Punctuation in :func:`show`'s work list (never a value)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _show_scalar(value: Any) -> str:
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
            raise _too_large(
                "dpl_int_bits_max", f"an integer of {int(value).bit_length()} bits"
            ) from None
    if isinstance(value, Witness):
        inner = ", ".join(f"{k}: {show(v)}" for k, v in value.assignment.items())
        return f"witness[{value.digest[:12]}] {{ {inner} }}"
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
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "<<": shift_left,
    ">>": shift_right,
}


def concrete_binary(op: str, left: Any, right: Any) -> Any:
    """``left op right`` on concrete values."""
    if op == "/":
        return idiv(left, right) if isinstance(left, int) else fdiv(left, right)
    if op == "%":
        return imod(left, right)
    if op == "*" and isinstance(left, int) and not isinstance(left, bool):
        return imul(left, right)
    if op == "+" and isinstance(left, str):
        return concat(left, right)
    operation = _OPERATIONS.get(op)
    if operation is None:
        raise DplRuntimeFailure(f"unknown operator {op!r}")
    return operation(left, right)
