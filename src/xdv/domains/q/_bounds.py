"""Bounds on OpenQASM text, checked before any third-party parser or importer sees it.

Qiskit's importers trust their input: OpenQASM 2's Rust parser panics on an integer literal
wider than 64 bits, and both importers allocate every declared qubit, broadcast every gate over
its registers and keep gate definitions nested, so that a few lines can ask for billions of
qubits or an exponential number of gates (and the exporter and transpiler then walk the nest
once per call). The functions here measure what a program asks for (declared qubits and bits,
statements once everything is inlined, calls of defined gates, bracket nesting) and refuse it,
with a typed INPUT_LIMIT_EXCEEDED naming the limit and the line, before anything is built.

* :func:`check_text` runs on the text of either version: bracket nesting (deep nesting makes the
  parsers recurse), and for OpenQASM 3 the size the reference parser can read in reasonable time.
* :func:`check_qasm2` reads OpenQASM 2 (whose statements are flat) with regular expressions:
  integer literals, registers, gate definitions and the statements that use them. Text it cannot
  make sense of is left to Qiskit's parser, whose syntax errors are better; the scan only ever
  refuses what is too large.
* :func:`check_qasm3` does the same on the reference parser's AST and says whether Qiskit's
  importer may be given the program (every size known and within bounds) or whether it must go
  through XDV's own front-end, which inlines definitions flat and enforces the same limits as it
  goes.

The counts saturate just above their limits, so no count ever grows into a huge integer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from xdv.errors import ErrorCode, XdvError
from xdv.inputs import exceeded, limit

__all__ = ["Expansion", "check_qasm2", "check_qasm3", "check_text", "expansion", "line_of"]

# Comments and strings, whose brackets and digits mean nothing (OpenQASM 2 has only line comments;
# block comments are stripped too, so that their contents are never mistaken for code).
_IGNORED = re.compile(r'//[^\n]*|/\*.*?(?:\*/|\Z)|"[^"\n]*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^()\[\]{}]+")
_LONG_DIGITS = re.compile(r"\d{19,}")


def line_of(text: str, offset: int) -> int:
    """The 1-based line of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def _at(text: str, offset: int) -> str:
    line = line_of(text, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _blank(match: re.Match[str]) -> str:
    """A comment or string replaced by spaces (newlines kept, so offsets and lines still hold)."""
    return re.sub(r"[^\n]", " ", match.group())


def check_text(text: str, version: int, where: str) -> None:
    """Refuse OpenQASM text whose brackets nest too deeply, or OpenQASM 3 text too large for
    the reference parser. Brackets inside comments and strings are not counted."""
    if version == 3:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit("qasm_v3_bytes_max"):
            raise exceeded("qasm_v3_bytes_max", f"{size} bytes of OpenQASM 3", where)
    bound = limit("qasm_nesting_max")
    if sum(text.count(char) for char in "([{") <= bound:
        return
    import numpy as np

    code = _IGNORED.sub(_blank, text)
    brackets = np.frombuffer(_NOT_BRACKETS.sub("", code).encode("ascii"), dtype=np.uint8)
    steps = np.where(np.isin(brackets, np.frombuffer(b"([{", dtype=np.uint8)), 1, -1)
    # The depth never goes below zero (a stray closing bracket is the parser's to refuse): with
    # S the running sum, the depth is S minus the lowest S so far (when below zero).
    running = np.cumsum(steps)
    depth = running - np.minimum(np.minimum.accumulate(running), 0)
    if len(depth) and int(depth.max()) > bound:
        offset = _nth_opening(code, int(np.argmax(depth > bound)))
        raise exceeded(
            "qasm_nesting_max", f"more than {bound} levels at {_at(text, offset)}", where
        )


def _nth_opening(code: str, position: int) -> int:
    """The offset in ``code`` of its bracket number ``position`` (counting every bracket)."""
    seen = -1
    for offset, char in enumerate(code):
        if char in "()[]{}":
            seen += 1
            if seen == position:
                return offset
    return len(code)


@dataclass(frozen=True, slots=True)
class Expansion:
    """What each defined gate expands to: ``statements`` once fully inlined (a built-in gate
    counts one) and ``calls`` of defined gates inside it (every level counted)."""

    statements: dict[str, int]
    calls: dict[str, int]

    def cost(self, name: str) -> tuple[int, int]:
        """(statements, defined-gate calls) of one call of ``name``."""
        if name in self.statements:
            return self.statements[name], 1 + self.calls[name]
        return 1, 0


def _cap(value: int, bound: int) -> int:
    return min(value, bound + 1)


def expansion(bodies: Mapping[str, Sequence[str | None]], where: str) -> Expansion:
    """The :class:`Expansion` of gate definitions, given each body as the names it calls (None
    for a statement that calls nothing). Iterative, so a chain of any length costs no stack; a
    definition that reaches itself is refused (CIRCUIT_INVALID)."""
    statements_max = limit("qasm_statements_max")
    calls_max = limit("qasm_gate_calls_max")
    statements: dict[str, int] = {}
    calls: dict[str, int] = {}
    for root in bodies:
        if root in statements:
            continue
        visiting = {root}
        stack: list[tuple[str, Iterable[str | None]]] = [(root, iter(bodies[root]))]
        while stack:
            name, pending = stack[-1]
            for callee in pending:
                if callee is None or callee not in bodies or callee in statements:
                    continue
                if callee in visiting:
                    raise XdvError(
                        f"gate {callee!r} is defined in terms of itself",
                        code=ErrorCode.CIRCUIT_INVALID,
                        where=where,
                    )
                visiting.add(callee)
                stack.append((callee, iter(bodies[callee])))
                break
            else:
                stack.pop()
                visiting.discard(name)
                total, nested = 0, 0
                for callee in bodies[name]:
                    if callee is not None and callee in statements:
                        total += statements[callee]
                        nested += 1 + calls[callee]
                    else:
                        total += 1
                statements[name] = _cap(total, statements_max)
                calls[name] = _cap(nested, calls_max)
                if total > statements_max:
                    raise exceeded(
                        "qasm_statements_max",
                        f"gate {name!r} expands to more than {statements_max} statements",
                        where,
                    )
    return Expansion(statements, calls)


class _Totals:
    """Running totals of a program, refused as soon as one passes its limit."""

    def __init__(self, where: str, *, refuse_calls: bool) -> None:
        self.where = where
        self.qubits = 0
        self.clbits = 0
        self.statements = 0
        self.calls = 0
        self.refuse_calls = refuse_calls
        self.statements_max = limit("qasm_statements_max")
        self.calls_max = limit("qasm_gate_calls_max")

    def declare(self, quantum: bool, size: int, name: str, at: Callable[[], str]) -> None:
        """Count a register; ``at`` says where it is (called only to word a refusal)."""
        if quantum:
            self.qubits += size
            if self.qubits > limit("qasm_qubits_max"):
                raise exceeded(
                    "qasm_qubits_max",
                    f"qubit register {name!r} of size {size} brings the total to "
                    f"{self.qubits} ({at()})",
                    self.where,
                )
        else:
            self.clbits += size
            if self.clbits > limit("qasm_clbits_max"):
                raise exceeded(
                    "qasm_clbits_max",
                    f"bit register {name!r} of size {size} brings the total to "
                    f"{self.clbits} ({at()})",
                    self.where,
                )

    def add(self, times: int, cost: tuple[int, int], at: Callable[[], str]) -> None:
        """Count ``times`` uses of something that costs ``cost`` (statements, calls)."""
        statements, calls = cost
        self.statements += times * statements
        self.calls += times * calls
        if self.statements > self.statements_max:
            raise exceeded(
                "qasm_statements_max",
                f"more than {self.statements_max} statements once gates are inlined and "
                f"broadcast ({at()})",
                self.where,
            )
        if self.refuse_calls and self.calls > self.calls_max:
            raise exceeded(
                "qasm_gate_calls_max",
                f"more than {self.calls_max} calls of defined gates once inlined ({at()})",
                self.where,
            )


# ---------------------------------------------------------------------------- OpenQASM 2

# The patterns start with a literal (the regular expression engine then skips ahead fast); that
# the keyword starts a word is checked on each match (_starts_word).
_REGISTER = re.compile(r"reg\s+([A-Za-z_]\w*)\s*\[\s*(\d+)\s*\]")
_GATE = re.compile(r"gate\s+([A-Za-z_]\w*)[^;{]*\{([^}]*)\}?")
_OPAQUE = re.compile(r"opaque[^;]*;?")
_NAME = re.compile(r"\s*(?:if\s*\([^)]*\)\s*)?([A-Za-z_]\w*)")
_OPERAND = re.compile(r"\s*([A-Za-z_]\w*)\s*(\[)?")
_SKIPPED = frozenset({"OPENQASM", "include", "qreg", "creg"})


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _starts_word(code: str, start: int) -> bool:
    return start == 0 or not _word(code[start - 1])


def _as_separator(match: re.Match[str]) -> str:
    """A definition, in the text of the other statements: one separator, its lines kept."""
    if not _starts_word(match.string, match.start()):
        return match.group()
    return ";" + "\n" * match.group().count("\n")


def check_qasm2(text: str, where: str) -> None:
    """Refuse OpenQASM 2 text that asks for too much (see the module doc). Works on the text
    with regular expressions (its statements are flat), and stops counting as soon as a limit
    is passed, so a huge file costs no more than its first statements past the limit."""
    code = _IGNORED.sub(_blank, text)
    literal_max = (1 << limit("qasm_literal_bits_max")) - 1
    for match in _LONG_DIGITS.finditer(code):
        value, start = match.group(), match.start()
        if start and (code[start - 1] == "." or _word(code[start - 1])):
            continue  # the fraction of a real, or part of a name
        if match.end() < len(code) and code[match.end()] in ".eE":
            continue  # a real
        if len(value) > 20 or int(value) > literal_max:
            shown = value if len(value) <= 24 else f"{value[:12]}...({len(value)} digits)"
            raise exceeded(
                "qasm_literal_bits_max", f"the integer {shown} at {_at(text, start)}", where
            )
    totals = _Totals(where, refuse_calls=True)
    registers: dict[str, int] = {}
    for match in _REGISTER.finditer(code):
        start = match.start() - 1
        if start < 0 or code[start] not in "qc" or (start and _word(code[start - 1])):
            continue
        name, size = match.groups()
        registers[name] = int(size)
        totals.declare(code[start] == "q", int(size), name, partial(_at, text, start))
    gates = Expansion({}, {})
    for match in _GATE.finditer(code):
        if not _starts_word(code, match.start()):
            continue
        name, body = match.groups()
        # Definitions precede their use in OpenQASM 2, so each is expanded as it comes (a name
        # not yet defined counts one; Qiskit's parser refuses it).
        statements, calls = 0, 0
        for statement in (body or "").split(";"):
            callee = _NAME.match(statement)
            if callee is None:
                continue
            cost = gates.cost(callee.group(1))
            statements += cost[0]
            calls += cost[1]
        if statements > totals.statements_max:
            raise exceeded(
                "qasm_statements_max",
                f"gate {name!r} expands to more than {totals.statements_max} statements "
                f"({_at(text, match.start())})",
                where,
            )
        gates.statements[name] = statements
        gates.calls[name] = _cap(calls, totals.calls_max)
    # The statements outside definitions, each with the registers it is broadcast over.
    flat = _OPAQUE.sub(_as_separator, _GATE.sub(_as_separator, code))
    line = 1
    for statement in flat.split(";"):
        first, line = line, line + statement.count("\n")
        named = _NAME.match(statement)
        if named is None or named.group(1) in _SKIPPED:
            continue
        rest = statement[named.end() :]
        if rest.lstrip().startswith("("):
            rest = rest[rest.rfind(")") + 1 :]  # operands never hold parentheses
        times = 1
        for operand in re.split(r",|->", rest):
            bare = _OPERAND.match(operand)
            if bare is not None and bare.group(2) is None:
                times = max(times, registers.get(bare.group(1), 1))
        here = first + statement.count("\n", 0, named.start(1))
        totals.add(times, gates.cost(named.group(1)), partial("line {}".format, here))


# ---------------------------------------------------------------------------- OpenQASM 3


def check_qasm3(program: Any, where: str) -> bool:
    """Refuse an OpenQASM 3 program (the reference parser's AST) that asks for too much; return
    whether Qiskit's importer may be given it: True when every register size is a literal and
    the program is within every limit, defined-gate calls included; False when only XDV's own
    front-end, which inlines flat and enforces the limits as it goes, should build it (sizes it
    must compute, loops, or many calls of nested definitions)."""
    from openqasm3 import ast

    bodies: dict[str, list[str | None]] = {}
    for statement in program.statements:
        if isinstance(statement, ast.QuantumGateDefinition):
            bodies[statement.name.name] = [
                callee.name.name if isinstance(callee, ast.QuantumGate) else None
                for callee in statement.body
            ]
    gates = expansion(bodies, where)
    totals = _Totals(where, refuse_calls=False)
    registers: dict[str, int] = {}
    known = True
    pending: list[Any] = list(reversed(program.statements))
    while pending:
        node = pending.pop()
        span = getattr(node, "span", None)
        at = partial("line {}".format, span.start_line) if span is not None else _program

        if isinstance(node, ast.QubitDeclaration):
            size = _literal(node.size)
            if size is None:
                known = False
            else:
                registers[node.qubit.name] = size
                totals.declare(True, size, node.qubit.name, at)
        elif isinstance(node, ast.ClassicalDeclaration) and isinstance(node.type, ast.BitType):
            size = _literal(node.type.size)
            if size is None:
                known = False
            else:
                totals.declare(False, size, node.identifier.name, at)
        elif isinstance(node, ast.QuantumGate | ast.QuantumMeasurementStatement):
            operands = node.qubits if isinstance(node, ast.QuantumGate) else [node.measure.qubit]
            times = 1
            for operand in operands:
                if isinstance(operand, ast.Identifier) and operand.name in registers:
                    times = max(times, registers[operand.name])
            cost = gates.cost(node.name.name) if isinstance(node, ast.QuantumGate) else (1, 0)
            totals.add(times, cost, at)
        elif isinstance(node, ast.BranchingStatement):
            pending.extend(reversed([*node.if_block, *node.else_block]))
        elif isinstance(node, ast.Box):
            pending.extend(reversed(node.body))
        elif isinstance(node, ast.SwitchStatement):
            blocks = [block for _, block in node.cases]
            if node.default is not None:
                blocks.append(node.default)
            pending.extend(statement for block in blocks for statement in block.statements)
        elif isinstance(node, ast.ForInLoop | ast.WhileLoop | ast.SubroutineDefinition):
            known = False  # repeated a number of times only XDV's front-end works out
        elif not isinstance(node, ast.QuantumGateDefinition):
            totals.add(1, (1, 0), at)
    return known and totals.calls <= totals.calls_max


def _program() -> str:
    return "the program"


def _literal(node: Any) -> int | None:
    """The value of a size that is absent (one) or an integer literal; None otherwise."""
    from openqasm3 import ast

    if node is None:
        return 1
    if isinstance(node, ast.IntegerLiteral):
        return int(node.value)
    return None
