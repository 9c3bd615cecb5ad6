"""Lowering Q processes to OpenQASM 3 and Φ processes to the canonical constraint problem.

Q: a Q process's DIR body is straight-line code over qubit registers; lowering allocates each
``q::alloc`` a slice of one register ``q``, turns each gate into an OpenQASM 3 statement and each
``observe`` into measurements into ``c`` (classical bit 0 is the first qubit observed).

Φ: :class:`PhiValues` evaluates a Φ body's expressions; :func:`lower_phi` runs the statements
before ``prove`` with the decision variables left symbolic, and :class:`PhiBuilder` turns what
they give into ``{"variables": […], "constraints": […]}``. The VM runs the same body again with
the proved assignment (``_vm.py``).
"""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar

from xdv.dpl._dir import (
    ArrayLiteral,
    Binary,
    Constrain,
    DecisionVariable,
    DirProcess,
    DirVisitor,
    Effect,
    Expression,
    ExpressionStatement,
    FieldAccess,
    IndexAccess,
    Interpolation,
    Let,
    Literal,
    Node,
    Prove,
    QuantumOperation,
    Return,
    ShapeLiteral,
    Unary,
    Variable,
)
from xdv.dpl._types import PHI_PROBLEMS, Q_GATES, q_classical
from xdv.dpl._values import (
    DplRuntimeFailure,
    ShapeValue,
    concrete_binary,
    field,
    index,
    show,
)
from xdv.errors import ErrorCode
from xdv.inputs import LIMITS, limit

__all__ = ["PhiBuilder", "PhiValues", "QCircuit", "Sym", "lower_phi", "lower_q"]

S = TypeVar("S")


class QCircuit:
    """The OpenQASM 3 text of a Q process, with its qubit and classical bit counts."""

    def __init__(self, text: str, qubits: int, bits: int) -> None:
        self.text = text
        self.qubits = qubits
        self.bits = bits


def _angle(value: float) -> str:
    return repr(float(value))


def lower_q(process: DirProcess, args: tuple[Any, ...] = ()) -> QCircuit:
    """Lower one Q process's DIR to OpenQASM 3 source, its classical parameters bound to
    ``args`` (each angle over them becomes a number in the text, so the circuit of each call is
    complete and the trace's record of it replays)."""
    if process.regime != "Q":
        raise DplRuntimeFailure(f"lower_q takes a Q process, not {process.name}")
    if len(args) != len(process.params):
        raise DplRuntimeFailure(
            f"{process.name} takes {len(process.params)} argument(s), {len(args)} given"
        )
    lowering = _QLowering(process.name, _QClassical(process, args, None))
    for node in process.body:
        node.accept(lowering)
    header = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{lowering.qubits}] q;"]
    if lowering.bits:
        header.append(f"bit[{lowering.bits}] c;")
    return QCircuit(
        "\n".join([*header, *lowering.statements]) + "\n", lowering.qubits, lowering.bits
    )


class _QLowering(DirVisitor[list[int], None]):
    """Expressions give the qubits of a register (allocating and applying gates as they go);
    ``let`` names a register, ``observe`` measures one, an expression statement applies one."""

    def __init__(self, name: str, classical: _QClassical) -> None:
        self.name = name
        self.classical = classical
        self.registers: dict[int, list[int]] = {}
        self.statements: list[str] = []
        self.qubits = 0
        self.bits = 0

    def unsupported(self, node: Node) -> Exception:
        family = "expression" if isinstance(node, Expression) else "statement"
        return DplRuntimeFailure(f"{self.name}: a Q process has no {family} {node.tag!r}")

    def visit_let(self, node: Let) -> None:
        if q_classical(node.type):
            self.classical.env[node.slot] = self.classical.value(node.value)
            return
        self.registers[node.slot] = node.value.accept(self)

    def visit_effect(self, node: Effect) -> None:
        if node.kind != "observe":
            self.refuse(node)
        for qubit in node.value.accept(self):
            self.statements.append(f"c[{self.bits}] = measure q[{qubit}];")
            self.bits += 1

    def visit_expression_statement(self, node: ExpressionStatement) -> None:
        node.value.accept(self)

    visit_assign = visit_constrain = visit_prove = visit_return = DirVisitor.refuse
    visit_if = visit_while = visit_for = visit_break = visit_continue = DirVisitor.refuse

    def visit_variable(self, node: Variable) -> list[int]:
        register = self.registers.get(node.slot)
        if register is None:
            raise DplRuntimeFailure(f"{self.name}: {node.name} holds no register")
        return register

    def visit_quantum_operation(self, node: QuantumOperation) -> list[int]:
        if node.function == "alloc":
            start = self.qubits
            self.qubits += node.size or 0
            return list(range(start, self.qubits))
        if node.function == "join" and len(node.args) == 2:
            return node.args[0].accept(self) + node.args[1].accept(self)
        if node.function == "join" or not node.args:
            raise DplRuntimeFailure(f"{self.name}: q::{node.function} lacks its register(s)")
        qubits = node.args[0].accept(self)
        taken, _ = Q_GATES.get(node.function, (len(node.args) - 1, 0))
        constants = [arg for arg in node.args[1 : 1 + taken] if isinstance(arg, Literal)]
        if len(constants) != taken:
            raise DplRuntimeFailure(f"{self.name}: q::{node.function} takes constant qubits")
        indices = [int(arg.value) for arg in constants]
        angles = [self.angle(node.function, arg) for arg in node.args[1 + taken :]]
        if any(not 0 <= position < len(qubits) for position in indices):
            raise DplRuntimeFailure(
                f"{self.name}: a q::{node.function} index is outside its register"
            )
        operands = ", ".join(f"q[{qubits[i]}]" for i in indices)
        parameters = f"({', '.join(_angle(a) for a in angles)})" if angles else ""
        self.statements.append(f"{node.function}{parameters} {operands};")
        return qubits

    def angle(self, function: str, node: Expression) -> float:
        """A rotation angle's value: a literal, or an expression over the call's arguments."""
        value = self.classical.value(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DplRuntimeFailure(f"{self.name}: a q::{function} angle is not a number")
        angle = float(value)
        if not math.isfinite(angle):
            raise DplRuntimeFailure(f"{self.name}: a q::{function} angle is {angle}")
        return angle

    visit_literal = visit_binary = visit_unary = visit_call = DirVisitor.refuse
    visit_cross_call = visit_decision_variable = visit_interpolation = DirVisitor.refuse
    visit_shape_literal = visit_field_access = visit_array_literal = DirVisitor.refuse
    visit_index_access = DirVisitor.refuse


# ---------------------------------------------------------------------- Φ


class PhiValues(DirVisitor[Any, S], Generic[S]):
    """The values of a Φ process's expressions. ``env`` holds the value of each slot (the
    arguments first); with a ``builder``, values may be symbolic (:class:`Sym`) and operations
    on them build constraint terms, without one a symbolic operand is an error. Subclasses run
    the statements."""

    def __init__(self, process: DirProcess, args: tuple[Any, ...], builder: PhiBuilder | None):
        self.process = process
        self.env: dict[int, Any] = dict(enumerate(args))
        self.builder = builder

    def unsupported(self, node: Node) -> Exception:
        family = "expression" if isinstance(node, Expression) else "statement"
        return DplRuntimeFailure(f"{family} {node.tag!r} cannot run in a Φ process")

    def value(self, node: Expression) -> Any:
        """The value of ``node``."""
        return node.accept(self)

    def symbolic_builder(self) -> PhiBuilder:
        if self.builder is None:
            raise DplRuntimeFailure("a decision variable is unbound after the witness")
        return self.builder

    def visit_literal(self, node: Literal) -> Any:
        return node.value

    def visit_variable(self, node: Variable) -> Any:
        if node.slot not in self.env:
            raise DplRuntimeFailure(f"{self.process.name}: {node.name} is used before it is bound")
        return self.env[node.slot]

    def visit_binary(self, node: Binary) -> Any:
        left = node.left.accept(self)
        right = node.right.accept(self)
        if isinstance(left, Sym) or isinstance(right, Sym):
            return self.symbolic_builder().binary(node.op, left, right)
        return concrete_binary(node.op, left, right)

    def visit_unary(self, node: Unary) -> Any:
        operand = node.operand.accept(self)
        if isinstance(operand, Sym):
            return self.symbolic_builder().unary(node.op, operand)
        if node.op == "~":
            return ~operand
        return (not operand) if node.op == "!" else -operand

    def visit_interpolation(self, node: Interpolation) -> Any:
        return "".join(
            part if isinstance(part, str) else show(part.accept(self)) for part in node.parts
        )

    def visit_shape_literal(self, node: ShapeLiteral) -> Any:
        return ShapeValue(node.name, {name: value.accept(self) for name, value in node.fields})

    def visit_field_access(self, node: FieldAccess) -> Any:
        return field(node.target.accept(self), node.name)

    def visit_array_literal(self, node: ArrayLiteral) -> Any:
        return tuple(item.accept(self) for item in node.items)

    def visit_index_access(self, node: IndexAccess) -> Any:
        return index(node.target.accept(self), node.index.accept(self))

    # A Φ process calls nothing; decision variables are declared only by `let` (the passes
    # handle them there) and q:: operations belong to Q.
    visit_call = visit_cross_call = visit_quantum_operation = DirVisitor.refuse
    visit_decision_variable = DirVisitor.refuse


class _QClassical(PhiValues[None]):
    """The classical values of a Q process (its parameters, and what it binds from them):
    expressions only; the Q lowering runs the statements."""

    visit_let = visit_assign = visit_effect = visit_constrain = DirVisitor.refuse
    visit_prove = visit_return = visit_if = visit_while = visit_for = DirVisitor.refuse
    visit_break = visit_continue = visit_expression_statement = DirVisitor.refuse


def prove_position(process: DirProcess) -> int:
    """The index of the ``prove`` statement in a Φ process's body."""
    for position, node in enumerate(process.body):
        if isinstance(node, Prove):
            return position
    raise DplRuntimeFailure(f"{process.name} proves no witness")


def lower_phi(process: DirProcess, args: tuple[Any, ...]) -> dict[str, Any]:
    """The canonical constraint problem of Φ process ``process`` called with ``args``: its
    decision variables in declaration order and its constraints."""
    if process.regime != "Φ":
        raise DplRuntimeFailure(f"lower_phi takes a Φ process, not {process.name}")
    builder = PhiBuilder()
    problem = _Problem(process, args, builder)
    for node in process.body[: prove_position(process)]:
        node.accept(problem)
    return builder.problem()


class _Problem(PhiValues[None]):
    """The statements before ``prove``: ``let`` declares decision variables (symbolic) or
    binds values, ``constrain`` adds a constraint; the others add nothing to the problem."""

    def __init__(self, process: DirProcess, args: tuple[Any, ...], builder: PhiBuilder):
        super().__init__(process, args, builder)
        self.problem_builder = builder

    def visit_let(self, node: Let) -> None:
        value = node.value
        if isinstance(value, DecisionVariable) and value.function in PHI_PROBLEMS:
            data = tuple(arg.accept(self) for arg in value.args)
            self.env[node.slot] = self.problem_builder.optimization(node.name, value.function, data)
        elif isinstance(value, DecisionVariable):
            builder = self.problem_builder
            if value.function == "int":
                if len(value.args) != 2:
                    raise DplRuntimeFailure(f"phi::int for {node.name} takes two bounds")
                low, high = (arg.accept(self) for arg in value.args)
                self.env[node.slot] = builder.integer(node.name, int(low), int(high))
            else:
                self.env[node.slot] = builder.boolean(node.name)
        else:
            self.env[node.slot] = value.accept(self)

    def visit_constrain(self, node: Constrain) -> None:
        self.problem_builder.constraints.append(PhiBuilder.expr(node.condition.accept(self)))

    def visit_effect(self, node: Effect) -> None:
        return None  # effects come after the witness (the checker's F401)

    def visit_return(self, node: Return) -> None:
        return None

    def visit_expression_statement(self, node: ExpressionStatement) -> None:
        return None  # evaluated, for what it does, in the concrete run

    visit_prove = DirVisitor.refuse  # the problem ends where the witness starts
    visit_assign = visit_if = visit_while = visit_for = DirVisitor.refuse
    visit_break = visit_continue = DirVisitor.refuse


class Sym:
    """A symbolic Φ value: an integer term, a boolean expression, or a boolean variable, with
    the nesting ``depth`` and node count ``size`` of its canonical form (bounded: a chain of
    ``let``s can reuse a term twice per step, and its written form would double each time)."""

    __slots__ = ("depth", "kind", "node", "size")

    def __init__(self, kind: str, node: dict[str, Any], depth: int = 1, size: int = 1) -> None:
        self.kind = kind  # "term", "expr" or "boolvar"
        self.node = node
        self.depth = depth
        self.size = size


_DEPTH_MAX = limit("dpl_constraint_depth_max")
_SIZE_MAX = limit("dpl_constraint_nodes_max")


def _measured(kind: str, node: dict[str, Any], levels: int, *parts: Any) -> Sym:
    """A symbolic value ``levels`` deeper than its deepest part, refused beyond the bounds."""
    depth = levels + max((part.depth if isinstance(part, Sym) else 1) for part in parts)
    size = levels + sum((part.size if isinstance(part, Sym) else 1) for part in parts)
    for name, found, bound in (
        ("dpl_constraint_depth_max", f"a constraint nested {depth} levels deep", _DEPTH_MAX),
        ("dpl_constraint_nodes_max", f"a constraint of {size} nodes", _SIZE_MAX),
    ):
        if (depth if name.endswith("depth_max") else size) > bound:
            unit = LIMITS[name].unit
            raise DplRuntimeFailure(
                f"{found}: exceeds the limit {name} = {bound} {unit}",
                code=ErrorCode.DPL_LIMIT_EXCEEDED,
            )
    return Sym(kind, node, depth, size)


_TRUE = {"op": "==", "lhs": {"const": 1}, "rhs": {"const": 1}}
_FALSE = {"op": "==", "lhs": {"const": 0}, "rhs": {"const": 1}}


class PhiBuilder:
    """Collects decision variables and constraints in declaration order."""

    def __init__(self) -> None:
        self.variables: list[dict[str, Any]] = []
        self.constraints: list[dict[str, Any]] = []
        # An Ising problem (the Φ domain's dictionary form) when the process states one.
        self.ising: dict[str, Any] | None = None

    def integer(self, name: str, low: int, high: int) -> Sym:
        if low > high:
            raise DplRuntimeFailure(f"decision variable {name!r} has empty range {low}..{high}")
        self.variables.append({"name": name, "kind": "int", "lo": low, "hi": high})
        return Sym("term", {"var": name})

    def boolean(self, name: str) -> Sym:
        self.variables.append({"name": name, "kind": "bool"})
        return Sym("boolvar", {"var": name})

    def problem(self) -> dict[str, Any]:
        if self.ising is not None:
            return dict(self.ising)
        return {"variables": list(self.variables), "constraints": list(self.constraints)}

    def optimization(self, name: str, function: str, data: tuple[Any, ...]) -> Sym:
        """The problem of ``let name = phi::maxcut/ising/qubo(…)``, in the Φ domain's Ising
        dictionary form; ``"dpl"`` says how the witness reads it (the objective's name, its
        form and, for MaxCut, the total edge weight: cut = (weight - energy) / 2)."""
        n = _whole_number(data[0], f"phi::{function} spin count")
        if n < 1:
            raise DplRuntimeFailure(f"phi::{function} needs at least one spin, not {n}")
        if n > _SPINS_MAX:
            raise DplRuntimeFailure(
                f"phi::{function} of {n} spins: exceeds the limit problem_spins_max = "
                f"{_SPINS_MAX} spins",
                code=ErrorCode.DPL_LIMIT_EXCEEDED,
            )
        arrays = [
            _numbers(item, f"phi::{function} argument {i + 2}") for i, item in enumerate(data[1:])
        ]
        meta: dict[str, Any] = {"objective": name, "form": function}
        if function == "maxcut":
            us, vs = arrays[0], arrays[1]
            ws = arrays[2] if len(arrays) > 2 else [1.0] * len(us)
            _same_length(function, us, vs, ws)
            couplings = [
                [_spin(u, n, function), _spin(v, n, function), float(w)]
                for u, v, w in zip(us, vs, ws, strict=True)
            ]
            meta["weight"] = float(sum(ws))
            self.ising = {"kind": "ising", "n": n, "J": couplings, "dpl": meta}
        elif function == "ising":
            h, us, vs, js = arrays
            if len(h) != n:
                raise DplRuntimeFailure(f"phi::ising takes {n} fields h, got {len(h)}")
            _same_length(function, us, vs, js)
            couplings = [
                [_spin(u, n, function), _spin(v, n, function), float(j)]
                for u, v, j in zip(us, vs, js, strict=True)
            ]
            self.ising = {
                "kind": "ising",
                "n": n,
                "h": [float(x) for x in h],
                "J": couplings,
                "dpl": meta,
            }
        else:
            rows, columns, qs = arrays
            _same_length(function, rows, columns, qs)
            entries = [
                [_spin(i, n, function), _spin(j, n, function), float(q)]
                for i, j, q in zip(rows, columns, qs, strict=True)
            ]
            self.ising = {"kind": "qubo", "n": n, "Q": entries, "dpl": meta}
        return Sym("term", {"var": name})

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
            node = {"op": op, "args": [self.term(left), self.term(right)]}
            return _measured("term", node, 1, left, right)
        if op in ("==", "!=") and any(
            isinstance(side, Sym) and side.kind == "expr" for side in (left, right)
        ):
            # Equality of two conditions: both hold or neither does.
            a, b = self.expr(left), self.expr(right)
            same: dict[str, Any] = {
                "op": "or",
                "args": [
                    {"op": "and", "args": [a, b]},
                    {"op": "and", "args": [{"op": "not", "arg": a}, {"op": "not", "arg": b}]},
                ],
            }
            if op == "==":
                return _measured("expr", same, 3, left, right, left, right)
            return _measured("expr", {"op": "not", "arg": same}, 4, left, right, left, right)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            compared: dict[str, Any] = {"op": op, "lhs": self.term(left), "rhs": self.term(right)}
            return _measured("expr", compared, 1, left, right)
        if op in ("&&", "||"):
            word = "and" if op == "&&" else "or"
            node = {"op": word, "args": [self.expr(left), self.expr(right)]}
            return _measured("expr", node, 1, left, right)
        raise DplRuntimeFailure(f"'{op}' cannot be expressed as a constraint")

    def unary(self, op: str, operand: Any) -> Sym:
        if op == "!":
            return _measured("expr", {"op": "not", "arg": self.expr(operand)}, 1, operand)
        node = {"op": "-", "args": [{"const": 0}, self.term(operand)]}
        return _measured("term", node, 1, operand)


_SPINS_MAX = limit("problem_spins_max")


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DplRuntimeFailure(f"{what} must be an integer, got {show(value)}")
    return value


def _numbers(value: Any, what: str) -> list[int | float]:
    if not isinstance(value, tuple | list) or any(
        isinstance(item, bool) or not isinstance(item, int | float) for item in value
    ):
        raise DplRuntimeFailure(f"{what} must be an array of numbers")
    if any(isinstance(item, float) and not math.isfinite(item) for item in value):
        raise DplRuntimeFailure(f"{what} holds a number that is not finite")
    return list(value)


def _same_length(function: str, *arrays: list[int | float]) -> None:
    if len({len(array) for array in arrays}) != 1:
        raise DplRuntimeFailure(f"phi::{function}'s index and weight arrays differ in length")


def _spin(value: int | float, n: int, function: str) -> int:
    if isinstance(value, float) or not 0 <= value < n:
        raise DplRuntimeFailure(f"phi::{function}: spin index {value} is outside 0..{n - 1}")
    return int(value)


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
