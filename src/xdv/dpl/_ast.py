"""The DPL syntax tree. Every node carries the :class:`~xdv.dpl.Span` it was parsed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdv.dpl._diagnostics import Span

__all__ = [
    "ArrayLit",
    "Assign",
    "Binary",
    "Bind",
    "Block",
    "Break",
    "Call",
    "Clause",
    "Constrain",
    "Continue",
    "Effect",
    "Expr",
    "ExprStmt",
    "Field",
    "For",
    "If",
    "Index",
    "Interp",
    "Let",
    "Literal",
    "Name",
    "Param",
    "Proc",
    "ProcRef",
    "Program",
    "Prove",
    "Resource",
    "Return",
    "Shape",
    "ShapeLit",
    "Stmt",
    "TypeRef",
    "Unary",
    "While",
]


@dataclass(slots=True)
class TypeRef:
    """A written type: a name (``Int``, ``Qubits``, a shape), or ``array`` with one element
    type in ``args`` and a fixed ``size``."""

    name: str
    span: Span
    args: list[TypeRef] = field(default_factory=list)
    size: int | None = None


@dataclass(slots=True)
class Expr:
    """Base of expressions."""

    span: Span


@dataclass(slots=True)
class Literal(Expr):
    """``kind`` is ``int``, ``float``, ``bool`` or ``string``."""

    kind: str
    value: Any


@dataclass(slots=True)
class Name(Expr):
    """A reference to a binding (or to a constant; ``forge`` is set for ``Forge::K::NAME``)."""

    name: str
    forge: str | None = None


@dataclass(slots=True)
class Binary(Expr):
    """``left op right``."""

    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class Unary(Expr):
    """``-operand`` or ``!operand``."""

    op: str
    operand: Expr


@dataclass(slots=True)
class Call(Expr):
    """``name(args)``; ``namespace`` is a regime (``K``/``Q``/``Φ``) for ``Q::bell()``, a
    standard-library namespace (``q``, ``phi``) for ``q::h(r, 0)``, or None."""

    namespace: str | None
    name: str
    args: list[Expr]
    name_span: Span
    forge: str | None = None  # `Forge::K::name(…)`: the forge that declares the process


@dataclass(slots=True)
class ShapeLit(Expr):
    """``Name { field: value, … }``."""

    name: str
    fields: list[tuple[str, Expr, Span]]


@dataclass(slots=True)
class Field(Expr):
    """``target.name``."""

    target: Expr
    name: str


@dataclass(slots=True)
class Index(Expr):
    """``target[index]``."""

    target: Expr
    index: Expr


@dataclass(slots=True)
class ArrayLit(Expr):
    """``[item, …]``."""

    items: list[Expr]


@dataclass(slots=True)
class Interp(Expr):
    """A string literal with ``{expr}`` holes: ``parts`` alternate text and expressions."""

    parts: list[str | Expr]


@dataclass(slots=True)
class Stmt:
    """Base of statements."""

    span: Span


@dataclass(slots=True)
class Let(Stmt):
    """``let``/``mut let`` binding."""

    name: str
    mutable: bool
    declared: TypeRef | None
    value: Expr
    name_span: Span


@dataclass(slots=True)
class Assign(Stmt):
    """``name = value`` (of a ``mut let``)."""

    name: str
    value: Expr
    name_span: Span


@dataclass(slots=True)
class Constrain(Stmt):
    """``constrain condition`` (Φ)."""

    condition: Expr


@dataclass(slots=True)
class Prove(Stmt):
    """``prove name from source`` (Φ)."""

    name: str
    source: Expr
    name_span: Span


@dataclass(slots=True)
class Effect(Stmt):
    """``observe``, ``emit`` or ``seal`` of ``value``."""

    kind: str
    value: Expr


@dataclass(slots=True)
class Return(Stmt):
    """``return value``; ``implicit`` for a block's tail value."""

    value: Expr | None
    implicit: bool = False


@dataclass(slots=True)
class Block:
    """``{ statements tail }``."""

    statements: list[Stmt]
    tail: Expr | None
    span: Span


@dataclass(slots=True)
class If(Stmt):
    """``if condition { … } else { … }``."""

    condition: Expr
    then: Block
    otherwise: Block | None


@dataclass(slots=True)
class While(Stmt):
    """``while condition { … }``."""

    condition: Expr
    body: Block


@dataclass(slots=True)
class For(Stmt):
    """``for name in low..high { … }``."""

    name: str
    low: Expr
    high: Expr
    body: Block
    name_span: Span


@dataclass(slots=True)
class Break(Stmt):
    """``break``."""


@dataclass(slots=True)
class Continue(Stmt):
    """``continue``."""


@dataclass(slots=True)
class ExprStmt(Stmt):
    """An expression evaluated as a statement."""

    value: Expr


@dataclass(slots=True)
class Param:
    """A process parameter."""

    name: str
    declared: TypeRef
    span: Span


@dataclass(slots=True)
class Resource:
    """``name(key = value, …)`` in a ``uses`` qualifier."""

    name: str
    arguments: dict[str, Any]
    span: Span


@dataclass(slots=True)
class Proc:
    """A process: ``proc R::name(…)`` (v0.1) or ``K name(…)`` / ``K main { … }`` (v0.2)."""

    regime: str
    name: str
    params: list[Param]
    returns: TypeRef | None
    uses: list[Resource]
    linear: bool
    body: Block
    span: Span
    name_span: Span
    forge: str | None = None


@dataclass(slots=True)
class Shape:
    """A ``shape`` declaration."""

    name: str
    fields: list[tuple[str, TypeRef, Span]]
    span: Span
    forge: str | None = None


@dataclass(slots=True)
class ProcRef:
    """``R::name`` in a bind."""

    regime: str
    name: str
    span: Span


@dataclass(slots=True)
class Clause:
    """A contract clause ``name op value;``; ``value`` is an int, float, bool, string, a bare
    name (kept as a string with ``bare`` set) or a list of those."""

    name: str
    op: str
    value: Any
    span: Span
    bare: bool = False


@dataclass(slots=True)
class Bind:
    """``bind source -> target contract { … }``."""

    source: ProcRef
    target: ProcRef
    clauses: list[Clause]
    span: Span
    forge: str | None = None


@dataclass(slots=True)
class Const:
    """``const NAME: Type = expr;``: a named compile-time constant of a forge (an extension of
    the public dialect; the value is folded where the name is used)."""

    name: str
    declared: TypeRef | None
    value: Expr
    span: Span
    name_span: Span
    forge: str | None = None


@dataclass(slots=True)
class Program:
    """Everything declared, in source order (forge membership kept on each item)."""

    shapes: list[Shape] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    binds: list[Bind] = field(default_factory=list)
    forges: list[str] = field(default_factory=list)
    consts: list[Const] = field(default_factory=list)
