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
* :func:`check_qasm2` scans OpenQASM 2 with a small tokenizer: literals, registers, gate
  definitions and the statements that use them. Text it cannot make sense of is left to Qiskit's
  parser, whose syntax errors are better; the scan only ever refuses what is too large.
* :func:`check_qasm3` does the same on the reference parser's AST and says whether Qiskit's
  importer may be given the program (every size known and within bounds) or whether it must go
  through XDV's own front-end, which inlines definitions flat and enforces the same limits as it
  goes.

The counts saturate just above their limits, so no count ever grows into a huge integer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xdv.errors import ErrorCode, XdvError
from xdv.inputs import exceeded, limit

__all__ = ["Expansion", "check_qasm2", "check_qasm3", "check_text", "expansion", "line_of"]

_OPEN = "([{"
_CLOSE = ")]}"
_TOKEN = re.compile(
    r"""
     (?P<space>\s+)
    |(?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<string>"[^"\n]*"?)
    |(?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
    |(?P<int>\d+)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<arrow>->|==)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def line_of(text: str, offset: int) -> int:
    """The 1-based line of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def _at(text: str, offset: int) -> str:
    line = line_of(text, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def check_text(text: str, version: int, where: str) -> None:
    """Refuse OpenQASM text whose brackets nest too deeply, or OpenQASM 3 text too large for
    the reference parser. Brackets inside comments and strings are not counted."""
    if version == 3:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit("qasm_v3_bytes_max"):
            raise exceeded("qasm_v3_bytes_max", f"{size} bytes of OpenQASM 3", where)
    bound = limit("qasm_nesting_max")
    depth = 0
    for match in _TOKEN.finditer(text):
        if match.lastgroup != "other":
            continue
        char = match.group()
        if char in _OPEN:
            depth += 1
            if depth > bound:
                raise exceeded(
                    "qasm_nesting_max",
                    f"more than {bound} levels at {_at(text, match.start())}",
                    where,
                )
        elif char in _CLOSE:
            depth = max(0, depth - 1)


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

    def declare(self, quantum: bool, size: int, name: str, at: str) -> None:
        if quantum:
            self.qubits += size
            if self.qubits > limit("qasm_qubits_max"):
                raise exceeded(
                    "qasm_qubits_max",
                    f"qubit register {name!r} of size {size} brings the total to "
                    f"{self.qubits} ({at})",
                    self.where,
                )
        else:
            self.clbits += size
            if self.clbits > limit("qasm_clbits_max"):
                raise exceeded(
                    "qasm_clbits_max",
                    f"bit register {name!r} of size {size} brings the total to "
                    f"{self.clbits} ({at})",
                    self.where,
                )

    def add(self, times: int, cost: tuple[int, int], at: str) -> None:
        statements, calls = cost
        self.statements += times * statements
        self.calls += times * calls
        if self.statements > self.statements_max:
            raise exceeded(
                "qasm_statements_max",
                f"more than {self.statements_max} statements once gates are inlined and "
                f"broadcast ({at})",
                self.where,
            )
        if self.refuse_calls and self.calls > self.calls_max:
            raise exceeded(
                "qasm_gate_calls_max",
                f"more than {self.calls_max} calls of defined gates once inlined ({at})",
                self.where,
            )


# ---------------------------------------------------------------------------- OpenQASM 2

_KEYWORDS_2 = frozenset({"OPENQASM", "include", "qreg", "creg", "gate", "opaque", "if"})


def check_qasm2(text: str, where: str) -> None:
    """Refuse OpenQASM 2 text that asks for too much (see the module doc)."""
    literal_max = (1 << limit("qasm_literal_bits_max")) - 1
    tokens: list[tuple[str, str, int]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind in ("space", "comment") or kind is None:
            continue
        value = match.group()
        if kind == "int" and (len(value.lstrip("0")) > 20 or int(value) > literal_max):
            shown = value if len(value) <= 24 else f"{value[:12]}...({len(value)} digits)"
            raise exceeded(
                "qasm_literal_bits_max",
                f"the integer {shown} at {_at(text, match.start())}",
                where,
            )
        tokens.append((kind, value, match.start()))
    _Qasm2Scan(text, tokens, where).run()


class _Qasm2Scan:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]], where: str) -> None:
        self.text = text
        self.tokens = tokens
        self.where = where
        self.position = 0
        self.registers: dict[str, int] = {}
        self.bodies: dict[str, list[str | None]] = {}
        self.expansion = Expansion({}, {})
        self.totals = _Totals(where, refuse_calls=True)

    def value(self, offset: int = 0) -> str:
        index = self.position + offset
        return self.tokens[index][1] if index < len(self.tokens) else ""

    def skip_past(self, closing: str) -> None:
        """Move past the next ``closing`` token outside any bracket opened on the way."""
        depth = 0
        while self.position < len(self.tokens):
            value = self.tokens[self.position][1]
            self.position += 1
            if depth == 0 and value == closing:
                return
            if value in _OPEN:
                depth += 1
            elif value in _CLOSE:
                depth -= 1
                if depth < 0:
                    return

    def run(self) -> None:
        while self.position < len(self.tokens):
            kind, value, offset = self.tokens[self.position]
            if kind != "ident":
                self.position += 1
            elif value in ("qreg", "creg"):
                self.register(value == "qreg", offset)
            elif value == "gate":
                self.gate()
            elif value == "if":
                self.position += 1
                if self.value() == "(":
                    self.position += 1
                    self.skip_past(")")
            elif value in _KEYWORDS_2:
                self.skip_past(";")
            else:
                self.statement(offset)

    def register(self, quantum: bool, offset: int) -> None:
        name, opening, size, closing = (self.value(i) for i in range(1, 5))
        if opening == "[" and closing == "]" and size.isdigit():
            self.registers[name] = int(size)
            self.totals.declare(quantum, int(size), name, _at(self.text, offset))
        self.skip_past(";")

    def gate(self) -> None:
        name = self.value(1)
        at = _at(self.text, self.tokens[self.position][2])
        self.skip_past("{")
        callees: list[str | None] = []
        start = self.position
        while self.position < len(self.tokens):
            kind, value, _ = self.tokens[self.position]
            if value == "}":
                break
            if self.position == start or self.tokens[self.position - 1][1] == ";":
                callees.append(value if kind == "ident" else None)
            self.position += 1
        self.position += 1
        # Definitions precede their use in OpenQASM 2, so each is expanded as it comes (a name
        # not yet defined counts one; Qiskit's parser refuses it).
        statements, calls = 0, 0
        for callee in callees:
            cost = self.expansion.cost(callee) if callee is not None else (1, 0)
            statements += cost[0]
            calls += cost[1]
        statements_max = self.totals.statements_max
        if statements > statements_max:
            raise exceeded(
                "qasm_statements_max",
                f"gate {name!r} expands to more than {statements_max} statements ({at})",
                self.where,
            )
        if name:
            self.expansion.statements[name] = statements
            self.expansion.calls[name] = _cap(calls, self.totals.calls_max)

    def statement(self, offset: int) -> None:
        name = self.value()
        self.position += 1
        if self.value() == "(":
            self.position += 1
            self.skip_past(")")
        times = 1
        depth = 0
        bare = True
        while self.position < len(self.tokens):
            kind, value, _ = self.tokens[self.position]
            self.position += 1
            if value == ";" and depth == 0:
                break
            if value in _OPEN:
                depth += 1
                bare = False
            elif value in _CLOSE:
                depth -= 1
            elif depth == 0 and value in (",", "->"):
                bare = True
            elif depth == 0 and kind == "ident" and bare:
                following = self.value()
                if following != "[":
                    times = max(times, self.registers.get(value, 1))
        self.totals.add(times, self.expansion.cost(name), _at(self.text, offset))


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
        at = f"line {span.start_line}" if span is not None else "the program"
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


def _literal(node: Any) -> int | None:
    """The value of a size that is absent (one) or an integer literal; None otherwise."""
    from openqasm3 import ast

    if node is None:
        return 1
    if isinstance(node, ast.IntegerLiteral):
        return int(node.value)
    return None
