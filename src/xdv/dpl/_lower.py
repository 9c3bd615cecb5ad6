"""Lowering Q processes to OpenQASM 3 and Φ constraints to the canonical constraint problem.

Q: a Q process's DIR body is straight-line code over qubit registers; lowering allocates each
``q::alloc`` a slice of one register ``q``, turns each gate into an OpenQASM 3 statement and each
``observe`` into measurements into ``c`` (classical bit 0 is the first qubit observed).

Φ: see :class:`PhiBuilder`: the VM evaluates a Φ body with decision variables left symbolic and
the builder turns what it gets into ``{"variables": […], "constraints": […]}``.
"""

from __future__ import annotations

from typing import Any

from xdv.dpl._values import DplRuntimeFailure
from xdv.errors import invariant

__all__ = ["PhiBuilder", "QCircuit", "Sym", "lower_q"]


class QCircuit:
    """The OpenQASM 3 text of a Q process, with its qubit and classical bit counts."""

    def __init__(self, text: str, qubits: int, bits: int) -> None:
        self.text = text
        self.qubits = qubits
        self.bits = bits


def _angle(value: float) -> str:
    return repr(float(value))


def lower_q(process: dict[str, Any]) -> QCircuit:
    """Lower one Q process's DIR to OpenQASM 3 source."""
    invariant(process["regime"] == "Q", "lower_q takes a Q process")
    registers: dict[int, list[int]] = {}
    statements: list[str] = []
    state = {"qubits": 0, "bits": 0}

    def register(node: dict[str, Any]) -> list[int]:
        kind = node["k"]
        if kind == "var":
            return registers[node["slot"]]
        invariant(kind == "std" and node["ns"] == "q", f"unexpected Q node {kind}")
        name = node["fn"]
        if name == "alloc":
            start = state["qubits"]
            state["qubits"] += node["size"]
            return list(range(start, state["qubits"]))
        if name == "join":
            return register(node["args"][0]) + register(node["args"][1])
        qubits = register(node["args"][0])
        indices = [arg["v"] for arg in node["args"][1:] if arg["t"] == "Int"]
        angles = [arg["v"] for arg in node["args"][1:] if arg["t"] == "Float"]
        operands = ", ".join(f"q[{qubits[i]}]" for i in indices)
        parameters = f"({', '.join(_angle(a) for a in angles)})" if angles else ""
        statements.append(f"{name}{parameters} {operands};")
        return qubits

    for node in process["body"]:
        if node["s"] == "let":
            registers[node["slot"]] = register(node["e"])
        elif node["s"] == "effect" and node["effect"] == "observe":
            for qubit in register(node["e"]):
                statements.append(f"c[{state['bits']}] = measure q[{qubit}];")
                state["bits"] += 1
        elif node["s"] == "expr":
            register(node["e"])
    header = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{state['qubits']}] q;"]
    if state["bits"]:
        header.append(f"bit[{state['bits']}] c;")
    return QCircuit("\n".join([*header, *statements]) + "\n", state["qubits"], state["bits"])


class Sym:
    """A symbolic Φ value: an integer term, a boolean expression, or a boolean variable."""

    __slots__ = ("kind", "node")

    def __init__(self, kind: str, node: dict[str, Any]) -> None:
        self.kind = kind  # "term", "expr" or "boolvar"
        self.node = node


_TRUE = {"op": "==", "lhs": {"const": 1}, "rhs": {"const": 1}}
_FALSE = {"op": "==", "lhs": {"const": 0}, "rhs": {"const": 1}}


class PhiBuilder:
    """Collects decision variables and constraints in declaration order."""

    def __init__(self) -> None:
        self.variables: list[dict[str, Any]] = []
        self.constraints: list[dict[str, Any]] = []

    def integer(self, name: str, low: int, high: int) -> Sym:
        if low > high:
            raise DplRuntimeFailure(f"decision variable {name!r} has empty range {low}..{high}")
        self.variables.append({"name": name, "kind": "int", "lo": low, "hi": high})
        return Sym("term", {"var": name})

    def boolean(self, name: str) -> Sym:
        self.variables.append({"name": name, "kind": "bool"})
        return Sym("boolvar", {"var": name})

    def problem(self) -> dict[str, Any]:
        return {"variables": list(self.variables), "constraints": list(self.constraints)}

    # -- translation of values to the canonical forms

    @staticmethod
    def term(value: Any) -> dict[str, Any]:
        if isinstance(value, Sym):
            if value.kind in ("term", "boolvar"):
                return value.node
            raise DplRuntimeFailure("a comparison cannot be used as a number in a constraint")
        if isinstance(value, bool | int):
            return {"const": int(value)}
        raise DplRuntimeFailure(f"a {type(value).__name__} cannot appear in a constraint")

    @staticmethod
    def expr(value: Any) -> dict[str, Any]:
        if isinstance(value, Sym):
            if value.kind == "expr":
                return value.node
            if value.kind == "boolvar":
                return {"op": "bool", "var": value.node["var"]}
            raise DplRuntimeFailure("a number cannot be used as a constraint")
        if isinstance(value, bool):
            return dict(_TRUE if value else _FALSE)
        raise DplRuntimeFailure(f"a {type(value).__name__} cannot be used as a constraint")

    def binary(self, op: str, left: Any, right: Any) -> Sym:
        if op in ("+", "-", "*"):
            return Sym("term", {"op": op, "args": [self.term(left), self.term(right)]})
        if op in ("==", "!=") and any(
            isinstance(side, Sym) and side.kind == "expr" for side in (left, right)
        ):
            # Equality of two conditions: both hold or neither does.
            a, b = self.expr(left), self.expr(right)
            same = {
                "op": "or",
                "args": [
                    {"op": "and", "args": [a, b]},
                    {"op": "and", "args": [{"op": "not", "arg": a}, {"op": "not", "arg": b}]},
                ],
            }
            return Sym("expr", same if op == "==" else {"op": "not", "arg": same})
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return Sym("expr", {"op": op, "lhs": self.term(left), "rhs": self.term(right)})
        if op in ("&&", "||"):
            word = "and" if op == "&&" else "or"
            return Sym("expr", {"op": word, "args": [self.expr(left), self.expr(right)]})
        raise DplRuntimeFailure(f"'{op}' cannot be expressed as a constraint")

    def unary(self, op: str, operand: Any) -> Sym:
        if op == "!":
            return Sym("expr", {"op": "not", "arg": self.expr(operand)})
        return Sym("term", {"op": "-", "args": [{"const": 0}, self.term(operand)]})


def evaluate_constraint(node: dict[str, Any], assignment: dict[str, Any]) -> bool:
    """Whether a canonical constraint holds under ``assignment`` (witness validation)."""
    op = node["op"]
    if op == "and":
        return all(evaluate_constraint(arg, assignment) for arg in node["args"])
    if op == "or":
        return any(evaluate_constraint(arg, assignment) for arg in node["args"])
    if op == "not":
        return not evaluate_constraint(node["arg"], assignment)
    if op == "bool":
        return bool(assignment[node["var"]])
    left, right = _term(node["lhs"], assignment), _term(node["rhs"], assignment)
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _term(node: dict[str, Any], assignment: dict[str, Any]) -> int:
    if "const" in node:
        return int(node["const"])
    if "var" in node:
        return int(assignment[node["var"]])
    values = [_term(arg, assignment) for arg in node["args"]]
    result = values[0]
    for value in values[1:]:
        if node["op"] == "+":
            result += value
        elif node["op"] == "-":
            result -= value
        else:
            result *= value
    return result
