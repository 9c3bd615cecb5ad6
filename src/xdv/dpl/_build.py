"""From a checked program to DIR: the pass after the checker.

The checker leaves the syntax tree as the parser built it and records what it resolved in
:class:`~xdv.dpl._checker.Annotations`; this pass reads the tree and the annotations and builds
the typed DIR program (``docs/dpl.md`` §9). It runs only on a program without errors, so every
annotation it looks up is there: a missing one is a broken invariant, not a user error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xdv.dpl import _ast as ast
from xdv.dpl import _dir as ir
from xdv.dpl._checker import LITERAL_TYPES, CheckedProgram, ProcInfo, is_decision
from xdv.errors import InvariantViolation, invariant

__all__ = ["build_dir"]


def build_dir(checked: CheckedProgram) -> ir.DirProgram:
    """The DIR program of a checked program (which must have no errors)."""
    invariant(checked.ok, "build_dir takes a program without errors")
    shapes = tuple(
        ir.DirShape(name=name, fields=tuple(fields)) for name, fields in checked.shapes.items()
    )
    processes = tuple(_Builder(checked, info).process() for info in checked.procs.values())
    binds = tuple(
        ir.DirBind(
            source=bind["source"],
            target=bind["target"],
            contract=tuple(
                ir.DirClause(name=name, op=clause["op"], value=_clause_value(clause["value"]))
                for name, clause in sorted(bind["contract"].items())
            ),
        )
        for bind in checked.binds
    )
    return ir.DirProgram(shapes=shapes, processes=processes, binds=binds)


def _clause_value(value: object) -> ir.ClauseValue:
    if isinstance(value, list):
        return tuple(_scalar(item) for item in value)
    return _scalar(value)


def _scalar(value: object) -> ir.Scalar:
    if isinstance(value, bool | int | float | str):
        return value
    raise InvariantViolation(f"not a DIR scalar: {value!r}")  # the checker's C602 and S702


class _Builder:
    """Builds one process: the same block structure the checker walked (tail values become
    ``return`` in tail position outside Q), with types, slots and targets from the
    annotations."""

    def __init__(self, checked: CheckedProgram, info: ProcInfo) -> None:
        self.checked = checked
        self.info = info
        self.regime = info.proc.regime
        notes = checked.annotations
        self.notes = notes
        self.types = notes.types
        self.slots = notes.slots
        self.let_types = notes.let_types
        self.calls = notes.calls

    def process(self) -> ir.DirProcess:
        proc, info = self.info.proc, self.info
        types = info.param_types
        return ir.DirProcess(
            name=info.key,
            regime=proc.regime,
            forge=proc.forge,
            params=tuple(
                (param.name, types[index] if index < len(types) else "Any")
                for index, param in enumerate(proc.params)
            ),
            returns=info.returns,
            linear=proc.linear,
            uses=tuple(
                ir.DirUse(
                    name=use.name,
                    arguments=tuple(
                        (key, _scalar(value)) for key, value in sorted(use.arguments.items())
                    ),
                )
                for use in proc.uses
            ),
            effects=tuple(sorted(info.all_effects)),
            slots=info.slots,
            qubits=info.qubits,
            body=self.block(proc.body, tail_returns=True),
        )

    # -- statements

    def block(self, block: ast.Block, tail_returns: bool = False) -> tuple[ir.Statement, ...]:
        out: list[ir.Statement] = []
        statements = block.statements
        for index, statement in enumerate(statements):
            last = index == len(statements) - 1 and block.tail is None
            out.append(self.statement(statement, tail_returns and last))
        if block.tail is not None:
            if tail_returns and self.regime != "Q":
                out.append(self.returning(block.tail, implicit=True))
            else:
                out.append(ir.ExpressionStatement(value=self.expr(block.tail)))
        return tuple(out)

    def returning(self, value: ast.Expr | None, implicit: bool) -> ir.Statement:
        if value is None:
            return ir.Return(value=None)
        node = self.expr(value)
        if implicit and self.info.returns == "Unit":
            return ir.ExpressionStatement(value=node)  # a Unit process's tail value
        return ir.Return(value=node)

    def statement(self, statement: ast.Stmt, tail: bool) -> ir.Statement:
        if isinstance(statement, ast.Let):
            key = id(statement)
            return ir.Let(
                name=statement.name,
                slot=self.slots[key],
                type=self.let_types[key],
                value=self.expr(statement.value),
                mutable=statement.mutable,
                decision=is_decision(statement, self.regime),
            )
        if isinstance(statement, ast.Assign):
            return ir.Assign(
                name=statement.name,
                slot=self.slots[id(statement)],
                value=self.expr(statement.value),
            )
        if isinstance(statement, ast.Constrain):
            return ir.Constrain(condition=self.expr(statement.condition))
        if isinstance(statement, ast.Prove):
            return ir.Prove(
                name=statement.name,
                slot=self.slots[id(statement)],
                source=self.expr(statement.source),
            )
        if isinstance(statement, ast.Effect):
            return ir.Effect(kind=statement.kind, value=self.expr(statement.value))
        if isinstance(statement, ast.Return):
            return self.returning(statement.value, statement.implicit)
        if isinstance(statement, ast.If):
            otherwise = statement.otherwise
            return ir.If(
                condition=self.expr(statement.condition),
                then=self.block(statement.then, tail),
                otherwise=None if otherwise is None else self.block(otherwise, tail),
            )
        if isinstance(statement, ast.While):
            return ir.While(
                condition=self.expr(statement.condition), body=self.block(statement.body)
            )
        if isinstance(statement, ast.For):
            return ir.For(
                name=statement.name,
                slot=self.slots[id(statement)],
                low=self.expr(statement.low),
                high=self.expr(statement.high),
                body=self.block(statement.body),
            )
        if isinstance(statement, ast.Break):
            return ir.Break()
        if isinstance(statement, ast.Continue):
            return ir.Continue()
        if isinstance(statement, ast.ExprStmt):
            return ir.ExpressionStatement(value=self.expr(statement.value))
        raise AssertionError(f"unknown statement {type(statement).__name__}")

    # -- expressions

    def exprs(self, items: list[ast.Expr]) -> tuple[ir.Expression, ...]:
        return tuple([self.expr(item) for item in items])

    def expr(self, expr: ast.Expr) -> ir.Expression:
        build = _EXPRESSIONS.get(type(expr))
        if build is None:
            raise AssertionError(f"unknown expression {type(expr).__name__}")
        return build(self, expr)

    def literal(self, expr: ast.Literal) -> ir.Expression:
        return ir.Literal(type=LITERAL_TYPES[expr.kind], value=expr.value)

    def name(self, expr: ast.Name) -> ir.Expression:
        key = id(expr)
        if key in self.notes.constants:
            # A `const` is folded where it is used: DIR holds its value.
            return ir.Literal(type=self.types[key], value=self.notes.constants[key])
        return ir.Variable(
            type=self.types[key],
            name=expr.name,
            slot=self.slots[key],
            is_symbolic=key in self.notes.symbolic,
            size=self.notes.sizes.get(key),
        )

    def binary(self, expr: ast.Binary) -> ir.Expression:
        key = id(expr)
        return ir.Binary(
            type=self.types[key],
            op=expr.op,
            left=self.expr(expr.left),
            right=self.expr(expr.right),
            is_symbolic=key in self.notes.symbolic,
        )

    def unary(self, expr: ast.Unary) -> ir.Expression:
        key = id(expr)
        return ir.Unary(
            type=self.types[key],
            op=expr.op,
            operand=self.expr(expr.operand),
            is_symbolic=key in self.notes.symbolic,
        )

    def interpolation(self, expr: ast.Interp) -> ir.Expression:
        return ir.Interpolation(
            type=self.types[id(expr)],
            parts=tuple(part if isinstance(part, str) else self.expr(part) for part in expr.parts),
        )

    def shape_literal(self, expr: ast.ShapeLit) -> ir.Expression:
        given = {name: value for name, value, _ in expr.fields}
        return ir.ShapeLiteral(
            type=self.types[id(expr)],
            name=expr.name,
            fields=tuple(
                (name, self.expr(given[name]))
                for name, _ in self.checked.shapes[expr.name]
                if name in given
            ),
        )

    def field(self, expr: ast.Field) -> ir.Expression:
        return ir.FieldAccess(
            type=self.types[id(expr)],
            target=self.expr(expr.target),
            name=expr.name,
            witness=self.types[id(expr.target)] == "Witness",
        )

    def array(self, expr: ast.ArrayLit) -> ir.Expression:
        return ir.ArrayLiteral(type=self.types[id(expr)], items=self.exprs(expr.items))

    def index(self, expr: ast.Index) -> ir.Expression:
        return ir.IndexAccess(
            type=self.types[id(expr)],
            target=self.expr(expr.target),
            index=self.expr(expr.index),
        )

    def call(self, expr: ast.Call) -> ir.Expression:
        type_name = self.types[id(expr)]
        target = self.calls[id(expr)]
        if target.kind == "process":
            return ir.Call(type=type_name, process=target.name, args=self.exprs(expr.args))
        if target.kind == "cross":
            return ir.CrossCall(
                type=type_name, target=target.name, bind=target.bind, args=self.exprs(expr.args)
            )
        if target.kind == "decision":
            return ir.DecisionVariable(
                type=type_name, function=target.name, args=self.exprs(expr.args)
            )
        invariant(target.kind == "quantum", f"unknown call target {target.kind}")
        args: tuple[ir.Expression, ...]
        if target.name == "alloc":
            args = ()
        elif target.name == "join":
            args = self.exprs(expr.args)
        else:  # a gate: the register, then its qubit indices and angles
            args = (
                self.expr(expr.args[0]),
                *(ir.Literal(type="Int", value=index) for index in target.indices),
                *(
                    ir.Literal(type="Float", value=angle)
                    if angle is not None
                    else self.expr(arg)  # over the Q process's classical parameters
                    for angle, arg in zip(
                        target.angles, expr.args[len(expr.args) - len(target.angles) :], strict=True
                    )
                ),
            )
        return ir.QuantumOperation(
            type=type_name, function=target.name, args=args, size=self.notes.sizes.get(id(expr))
        )


# The builder of each kind of expression, by syntax-tree class.
_EXPRESSIONS: dict[type, Callable[[_Builder, Any], ir.Expression]] = {
    ast.Literal: _Builder.literal,
    ast.Name: _Builder.name,
    ast.Binary: _Builder.binary,
    ast.Unary: _Builder.unary,
    ast.Call: _Builder.call,
    ast.Interp: _Builder.interpolation,
    ast.ShapeLit: _Builder.shape_literal,
    ast.Field: _Builder.field,
    ast.ArrayLit: _Builder.array,
    ast.Index: _Builder.index,
}
