"""Diagnostics: a stable code, a message, a source span, and a compiler-style rendering.

Every problem the front-end or the checker finds is a :class:`Diagnostic`. They are collected
(never raised one at a time), so one run reports several errors. :class:`DplStaticError` wraps
the list when a caller needs an exception; its :class:`~xdv.errors.ErrorCode` is ``DPL_SYNTAX``
when any lexical or syntax error is present and ``DPL_CHECK`` otherwise.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from xdv.errors import ErrorCode, XdvError
from xdv.inputs import LIMITS, limit

__all__ = [
    "CODES",
    "LIMIT_CODE",
    "Diagnostic",
    "Diagnostics",
    "DplStaticError",
    "Source",
    "Span",
    "TreeSource",
    "limit_message",
    "render",
]

# The diagnostic of a breached toolchain limit, and the note that says how many were dropped.
LIMIT_CODE = "P004"
DROPPED_CODE = "P005"
_NEWLINE = re.compile("\n")
# The most characters of a source line a rendered diagnostic shows.
_SHOWN_MAX = 120


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
        self._line_starts = _line_starts(text)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def localize(self, span: Span) -> tuple[Source, Span]:
        """The file a span lies in and the span within it (itself here; a source tree maps a
        span of its joined text to one of its files)."""
        return self, span

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
    "P004": "input exceeds a limit of this implementation",
    "P005": "further diagnostics were dropped",
    "U001": "construct not supported by this implementation",
    "R101": "cross-regime call without a bind",
    "R102": "bind exists only in the other direction",
    "R103": "unknown process",
    "R104": "construct not permitted in this regime",
    "R105": "bind names a process with the wrong regime",
    "R106": "duplicate declaration",
    "R107": "entry process missing or not callable",
    "R195": "ambiguous process name",
    "R196": "unknown forge",
    "T201": "type mismatch",
    "T202": "undefined name",
    "T203": "wrong number of arguments",
    "T204": "unknown type",
    "T205": "assignment to an immutable binding",
    "T206": "unknown field",
    "T207": "shape literal fields do not match the shape",
    "T208": "break or continue outside a loop",
    "T295": "not a constant expression",
    "T297": "constant does not fit its integer width",
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
    "W505": "an optimization problem mixed with other Φ problem statements",
    "C601": "unknown contract clause",
    "C602": "contract clause value has the wrong type",
    "C603": "contract clause operator not allowed",
    "C604": "bind carries effects its contract does not allow",
    "C605": "witness crosses a bind without witness_transfer",
    "C606": "linearity cannot be relaxed",
    "C607": "duplicate contract clause",
    "C608": "contract clause does not apply to the bind's target",
    "S701": "missing return on some path",
    "S702": "unknown resource",
    "S703": "resource bound exceeded",
    "K801": "kernel profile: unbounded loop",
    "K802": "kernel profile: recursion",
    "K803": "kernel profile: hidden effect",
}


def _line_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in _NEWLINE.finditer(text))]


def limit_message(name: str, found: str) -> str:
    """The message of a breached limit: the limit's name, value and unit, and what was found."""
    bound = LIMITS[name]
    return f"{found}: exceeds the limit {bound.name} = {bound.value} {bound.unit}"


class TreeSource(Source):
    """The files of a source tree joined by newlines (as the parser reads them): a span of the
    joined text is reported in the file it lies in, with that file's lines and columns."""

    def __init__(self, files: list[tuple[str, str]], starts: list[int], name: str) -> None:
        super().__init__("\n".join(text for _, text in files), name)
        self.files = [Source(text, file_name) for file_name, text in files]
        self.starts = starts

    def localize(self, span: Span) -> tuple[Source, Span]:
        if not self.starts:
            return self, span
        index = max(0, bisect.bisect_right(self.starts, span.start) - 1)
        base = self.starts[index]
        file = self.files[index]
        end = min(span.end - base, len(file.text))
        return file, Span(min(span.start - base, len(file.text)), max(end, 0))


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: ``code`` (see :data:`CODES`), ``message``, ``span``, ``severity``."""

    code: str
    message: str
    span: Span
    severity: str = "error"

    def to_json(self, source: Source) -> dict[str, Any]:
        """A JSON-friendly record with 1-based line and column numbers."""
        source, span = source.localize(self.span)
        line, column = source.position(span.start)
        end_line, end_column = source.position(span.end)
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


class Diagnostics(list[Diagnostic]):
    """The diagnostics of one file, bounded: at most ``dpl_diagnostics_max`` are kept, and at
    most ``dpl_line_diagnostics_max`` for any one line; the others are only counted
    (``dropped``), so a file of garbage costs neither memory nor output. :meth:`final` adds a
    note saying how many were dropped."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.dropped = 0
        self._text = text
        self._starts: list[int] | None = None
        self._per_line: dict[int, int] = {}
        self._file_max = limit("dpl_diagnostics_max")
        self._line_max = limit("dpl_line_diagnostics_max")

    def append(self, diagnostic: Diagnostic) -> None:
        if len(self) >= self._file_max:
            self.dropped += 1
            return
        if self._starts is None:
            self._starts = _line_starts(self._text)
        line = bisect.bisect_right(self._starts, diagnostic.span.start)
        count = self._per_line.get(line, 0)
        if count >= self._line_max:
            self.dropped += 1
            return
        self._per_line[line] = count + 1
        super().append(diagnostic)

    def extend(self, diagnostics: Any) -> None:
        for diagnostic in diagnostics:
            self.append(diagnostic)

    def errors(self) -> int:
        """How many errors were found, kept or dropped (a dropped one may be an error)."""
        return sum(1 for d in self if d.severity == "error") + self.dropped

    def final(self) -> list[Diagnostic]:
        """The kept diagnostics, and a note with the number dropped when there were any."""
        kept = list(self)
        if self.dropped:
            end = len(self._text)
            kept.append(
                Diagnostic(
                    DROPPED_CODE,
                    f"{self.dropped} further diagnostic(s) not shown "
                    f"(dpl_diagnostics_max = {self._file_max} per file, "
                    f"dpl_line_diagnostics_max = {self._line_max} per line)",
                    Span(end, end),
                    "note",
                )
            )
        return kept


def render(diagnostic: Diagnostic, source: Source) -> str:
    """``error[CODE]: message``, the location, the source line and a caret under the span."""
    source, span = source.localize(diagnostic.span)
    line, column = source.position(span.start)
    end_line, end_column = source.position(span.end)
    text = source.line_text(line)
    width = max(1, (end_column - column) if end_line == line else len(text) - column + 1)
    offset = column - 1
    if len(text) > _SHOWN_MAX:
        # A long line is shown as a window around the column, so that output stays small.
        start = max(0, offset - _SHOWN_MAX // 3)
        shown = text[start : start + _SHOWN_MAX]
        prefix = "…" if start > 0 else ""
        suffix = "…" if start + _SHOWN_MAX < len(text) else ""
        offset = offset - start + len(prefix)
        width = max(1, min(width, len(shown) + len(prefix) - offset))
        text = prefix + shown + suffix
    gutter = " " * len(str(line))
    return (
        f"{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}\n"
        f"{gutter}--> {source.name}:{line}:{column}\n"
        f"{gutter} |\n"
        f"{line} | {text.expandtabs(1)}\n"
        f"{gutter} | {' ' * offset}{'^' * width}"
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
        located, span = source.localize(first.span)
        line, column = located.position(span.start)
        if any(d.code == LIMIT_CODE for d in errors):
            code = ErrorCode.DPL_LIMIT_EXCEEDED
        else:
            code = ErrorCode.DPL_SYNTAX if syntax else ErrorCode.DPL_CHECK
        super().__init__(
            f"{len(errors)} error(s); first: [{first.code}] {first.message}",
            code=code,
            where=f"{located.name}:{line}:{column}",
        )
