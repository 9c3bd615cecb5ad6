"""Diagnostics: a stable code, a message, a source span, and a compiler-style rendering.

Every problem the front-end or the checker finds is a :class:`Diagnostic`. They are collected
(never raised one at a time), so one run reports several errors. :class:`DplStaticError` wraps
the list when a caller needs an exception; its :class:`~xdv.errors.ErrorCode` is ``DPL_SYNTAX``
when any lexical or syntax error is present and ``DPL_CHECK`` otherwise.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, NamedTuple

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "CODES",
    "Diagnostic",
    "DplStaticError",
    "Source",
    "Span",
    "render",
]


class Span(NamedTuple):
    """A half-open range of character offsets ``[start, end)`` in one source text."""

    start: int
    end: int

    def cover(self, other: Span) -> Span:
        """The smallest span covering both."""
        return Span(min(self.start, other.start), max(self.end, other.end))


class Source:
    """A source text with its name and a line table for offset → (line, column)."""

    def __init__(self, text: str, name: str = "<input>") -> None:
        self.text = text
        self.name = name
        self._line_starts = [0]
        for index, char in enumerate(text):
            if char == "\n":
                self._line_starts.append(index + 1)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its terminator."""
        start = self._line_starts[line - 1]
        end = self._line_starts[line] if line < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")


# Every diagnostic code, with a one-line description (docs/dpl.md lists them too).
CODES: dict[str, str] = {
    "L001": "unexpected character",
    "L002": "unterminated string literal",
    "L003": "unterminated block comment",
    "L004": "invalid escape sequence in a string",
    "L005": "non-ASCII character outside a comment or string",
    "L006": "malformed number",
    "P001": "unexpected token",
    "P002": "effect used inside an expression",
    "P003": "too many errors; parsing stopped",
    "U001": "construct not supported by this implementation",
    "R101": "cross-regime call without a bind",
    "R102": "bind exists only in the other direction",
    "R103": "unknown process",
    "R104": "construct not permitted in this regime",
    "R105": "bind names a process with the wrong regime",
    "R106": "duplicate declaration",
    "R107": "entry process missing or not callable",
    "T201": "type mismatch",
    "T202": "undefined name",
    "T203": "wrong number of arguments",
    "T204": "unknown type",
    "T205": "assignment to an immutable binding",
    "T206": "unknown field",
    "T207": "shape literal fields do not match the shape",
    "T208": "break or continue outside a loop",
    "N301": "linear value used more than once",
    "N302": "linear value not consumed",
    "N303": "linear value captured by a loop or branch",
    "N304": "non-linear value in a Q process",
    "F401": "Φ effect without a witness",
    "F402": "effect not permitted in this regime",
    "W501": "witness required",
    "W502": "Φ process produces no witness",
    "W503": "constraint is not boolean",
    "W504": "operation not expressible as a constraint",
    "C601": "unknown contract clause",
    "C602": "contract clause value has the wrong type",
    "C603": "contract clause operator not allowed",
    "C604": "bind carries effects its contract does not allow",
    "C605": "witness crosses a bind without witness_transfer",
    "C606": "linearity cannot be relaxed",
    "C607": "duplicate contract clause",
    "S701": "missing return on some path",
    "S702": "unknown resource",
    "S703": "resource bound exceeded",
    "K801": "kernel profile: unbounded loop",
    "K802": "kernel profile: recursion",
    "K803": "kernel profile: hidden effect",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: ``code`` (see :data:`CODES`), ``message``, ``span``, ``severity``."""

    code: str
    message: str
    span: Span
    severity: str = "error"

    def to_json(self, source: Source) -> dict[str, Any]:
        """A JSON-friendly record with 1-based line and column numbers."""
        line, column = source.position(self.span.start)
        end_line, end_column = source.position(self.span.end)
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": source.name,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
        }


def render(diagnostic: Diagnostic, source: Source) -> str:
    """``error[CODE]: message``, the location, the source line and a caret under the span."""
    line, column = source.position(diagnostic.span.start)
    end_line, end_column = source.position(diagnostic.span.end)
    text = source.line_text(line)
    width = max(1, (end_column - column) if end_line == line else len(text) - column + 1)
    gutter = " " * len(str(line))
    return (
        f"{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}\n"
        f"{gutter}--> {source.name}:{line}:{column}\n"
        f"{gutter} |\n"
        f"{line} | {text.expandtabs(1)}\n"
        f"{gutter} | {' ' * (column - 1)}{'^' * width}"
    )


class DplStaticError(XdvError):
    """A program was rejected before running: it carries every diagnostic found."""

    default_code = ErrorCode.DPL_CHECK

    def __init__(self, diagnostics: list[Diagnostic], source: Source) -> None:
        self.diagnostics = diagnostics
        self.source = source
        errors = [d for d in diagnostics if d.severity == "error"]
        syntax = any(d.code[0] in "LPU" for d in errors)
        first = errors[0] if errors else diagnostics[0]
        line, column = source.position(first.span.start)
        super().__init__(
            f"{len(errors)} error(s); first: [{first.code}] {first.message}",
            code=ErrorCode.DPL_SYNTAX if syntax else ErrorCode.DPL_CHECK,
            where=f"{source.name}:{line}:{column}",
        )
