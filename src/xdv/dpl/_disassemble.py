"""The DIR disassembler: a listing for people, one statement per line, locals as
``%slot:name`` (``xdv dir --pretty``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from xdv.dpl._dir import (
    DIR_FORMAT,
    DIR_VERSION,
    ArrayLiteral,
    Assign,
    Binary,
    Break,
    Call,
    Constrain,
    Continue,
    CrossCall,
    DecisionVariable,
    DirProgram,
    DirVisitor,
    Effect,
    Expression,
    ExpressionStatement,
    FieldAccess,
    For,
    If,
    IndexAccess,
    Interpolation,
    Let,
    Literal,
    Prove,
    QuantumOperation,
    Return,
    ShapeLiteral,
    Statement,
    Unary,
    Variable,
    While,
)
from xdv.dpl._dir_parse import parse_dir

__all__ = ["disassemble"]


def disassemble(program: DirProgram | Mapping[str, Any]) -> str:
    """A listing of a DIR program (or of a DIR document, parsed first), one statement per
    line."""
    if not isinstance(program, DirProgram):
        program = parse_dir(program)
    lines = [f"; {DIR_FORMAT} v{DIR_VERSION}  sha256 {program.sha256}"]
    for shape in program.shapes:
        fields = ", ".join(f"{name}: {type_name}" for name, type_name in shape.fields)
        lines.append(f"shape {shape.name} {{ {fields} }}")
    for bind in program.binds:
        clauses = ", ".join(
            f"{clause.name} {clause.op} {json.dumps(clause.value)}" for clause in bind.contract
        )
        lines.append(f"bind {bind.source} -> {bind.target} {{ {clauses} }}")
    listing = _Listing(lines)
    for process in program.processes:
        params = ", ".join(
            f"%{index}:{name}: {type_name}"
            for index, (name, type_name) in enumerate(process.params)
        )
        flags = []
        if process.linear:
            flags.append("linear")
        if process.effects:
            flags.append("effects=" + "+".join(process.effects))
        if process.uses:
            flags.append("uses=" + ",".join(use.name for use in process.uses))
        lines.append(f"proc {process.name}({params}) -> {process.returns}  ; {' '.join(flags)}")
        listing.block(process.body, 1)
    return "\n".join(lines) + "\n"


class _Listing(DirVisitor[str, None]):
    """Statements append their lines at the current depth; expressions are one string."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.depth = 0

    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def block(self, body: tuple[Statement, ...], depth: int) -> None:
        outer, self.depth = self.depth, depth
        for node in body:
            node.accept(self)
        self.depth = outer

    def each(self, nodes: tuple[Expression, ...]) -> str:
        return ", ".join(node.accept(self) for node in nodes)

    # -- statements

    def visit_let(self, node: Let) -> None:
        self.line(f"%{node.slot}:{node.name}: {node.type} = {node.value.accept(self)}")

    def visit_assign(self, node: Assign) -> None:
        self.line(f"%{node.slot}:{node.name} := {node.value.accept(self)}")

    def visit_effect(self, node: Effect) -> None:
        self.line(f"{node.kind.upper()} {node.value.accept(self)}")

    def visit_constrain(self, node: Constrain) -> None:
        self.line(f"constrain {node.condition.accept(self)}")

    def visit_prove(self, node: Prove) -> None:
        self.line(f"%{node.slot}:{node.name} = PROVE {node.source.accept(self)}")

    def visit_return(self, node: Return) -> None:
        value = "" if node.value is None else " " + node.value.accept(self)
        self.line(f"return{value}")

    def visit_if(self, node: If) -> None:
        self.line(f"if {node.condition.accept(self)}")
        self.block(node.then, self.depth + 1)
        if node.otherwise is not None:
            self.line("else")
            self.block(node.otherwise, self.depth + 1)
        self.line("end")

    def visit_while(self, node: While) -> None:
        self.line(f"while {node.condition.accept(self)}")
        self.block(node.body, self.depth + 1)
        self.line("end")

    def visit_for(self, node: For) -> None:
        bounds = f"{node.low.accept(self)}..{node.high.accept(self)}"
        self.line(f"for %{node.slot}:{node.name} in {bounds}")
        self.block(node.body, self.depth + 1)
        self.line("end")

    def visit_break(self, node: Break) -> None:
        self.line("break")

    def visit_continue(self, node: Continue) -> None:
        self.line("continue")

    def visit_expression_statement(self, node: ExpressionStatement) -> None:
        self.line(f"expr {node.value.accept(self)}")

    # -- expressions

    def visit_literal(self, node: Literal) -> str:
        return json.dumps(node.value, ensure_ascii=False)

    def visit_variable(self, node: Variable) -> str:
        return f"%{node.slot}:{node.name}"

    def visit_binary(self, node: Binary) -> str:
        return f"({node.left.accept(self)} {node.op} {node.right.accept(self)})"

    def visit_unary(self, node: Unary) -> str:
        return f"{node.op}{node.operand.accept(self)}"

    def visit_call(self, node: Call) -> str:
        return f"call {node.process}({self.each(node.args)})"

    def visit_cross_call(self, node: CrossCall) -> str:
        return f"xcall[bind {node.bind}] {node.target}({self.each(node.args)})"

    def visit_quantum_operation(self, node: QuantumOperation) -> str:
        if node.function == "alloc":
            return f"q::alloc({node.size})"
        return f"q::{node.function}({self.each(node.args)})"

    def visit_decision_variable(self, node: DecisionVariable) -> str:
        return f"phi::{node.function}({self.each(node.args)})"

    def visit_interpolation(self, node: Interpolation) -> str:
        parts = ", ".join(
            json.dumps(part, ensure_ascii=False) if isinstance(part, str) else part.accept(self)
            for part in node.parts
        )
        return f"fmt({parts})"

    def visit_shape_literal(self, node: ShapeLiteral) -> str:
        fields = ", ".join(f"{name}: {value.accept(self)}" for name, value in node.fields)
        return f"{node.name} {{ {fields} }}"

    def visit_field_access(self, node: FieldAccess) -> str:
        return f"{node.target.accept(self)}.{node.name}"

    def visit_array_literal(self, node: ArrayLiteral) -> str:
        return f"[{self.each(node.items)}]"

    def visit_index_access(self, node: IndexAccess) -> str:
        return f"{node.target.accept(self)}[{node.index.accept(self)}]"
