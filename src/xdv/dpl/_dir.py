"""DIR, the canonical intermediate form, as typed nodes, and the one visitor that reads them.

A DIR program is a tree of frozen dataclasses: a :class:`DirProgram` holds shapes, processes and
binds; each process body is a tuple of :class:`Statement` nodes whose expressions are
:class:`Expression` nodes. Every expression carries its checked type. The JSON form of the tree
(``docs/dpl.md`` §9) is written here (:func:`dir_document`, :func:`canonical_bytes`) and read
back by ``_dir_parse.py``; each node class names its JSON tag in ``tag`` (the ``"s"`` of a
statement, the ``"k"`` of an expression).

Every pass over DIR (the VM's code generator, the Q and Φ lowerings, the disassembler, the JSON
encoder, the analyses) is a :class:`DirVisitor`: a generic base that dispatches on the node's
type (each node's ``accept`` calls the visitor's method for its class) and declares one abstract
``visit_…`` method per node type. A visitor that lacks a case cannot be instantiated (and mypy
reports it), so a new node type fails loudly in every pass until each one decides what to do
with it; a pass that does not take a node says so explicitly with :meth:`DirVisitor.refuse`.
:class:`DirWalker` is the visitor that visits every child, for analyses that look at a few
node types only.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NoReturn, TypeAlias, TypeVar

from xdv.dpl._values import DplRuntimeFailure
from xdv.errors import ErrorCode, XdvError

__all__ = [
    "DIR_FORMAT",
    "DIR_VERSION",
    "EXPRESSION_TYPES",
    "STATEMENT_TYPES",
    "ArrayLiteral",
    "Assign",
    "Binary",
    "Break",
    "Call",
    "ClauseValue",
    "Constrain",
    "Continue",
    "CrossCall",
    "DecisionVariable",
    "DirBind",
    "DirClause",
    "DirProcess",
    "DirProgram",
    "DirShape",
    "DirUse",
    "DirVisitor",
    "DirWalker",
    "Effect",
    "Expression",
    "ExpressionStatement",
    "FieldAccess",
    "For",
    "If",
    "IndexAccess",
    "Interpolation",
    "Let",
    "Literal",
    "Node",
    "Prove",
    "QuantumOperation",
    "Return",
    "Scalar",
    "ShapeLiteral",
    "Statement",
    "Unary",
    "Variable",
    "While",
    "canonical_bytes",
    "dir_document",
    "document_body",
]

DIR_FORMAT = "xdv-dir"
DIR_VERSION = 1

E = TypeVar("E")
S = TypeVar("S")

# A literal's value, a `uses` argument or a contract clause's value, as JSON writes them.
Scalar: TypeAlias = bool | int | float | str
ClauseValue: TypeAlias = Scalar | tuple[Scalar, ...]

# ---------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True, kw_only=True)
class Expression:
    """Base of expressions. ``type`` is the checked type (``Int``, ``Qubits``, ``Pair``,
    ``Int[3]``, ``Any`` where the checker could not tell)."""

    tag: ClassVar[str] = ""
    type: str

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        """Call ``visitor``'s method for this node's class."""
        raise NotImplementedError(type(self).__name__)

    @property
    def symbolic(self) -> bool:
        """Whether the value depends on a Φ decision variable (before the witness)."""
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal(Expression):
    """A constant: ``Int``, ``Float``, ``Bool`` or ``String``."""

    tag: ClassVar[str] = "lit"
    value: Scalar

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_literal(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable(Expression):
    """A local binding, by ``slot`` (unique in its process). ``size`` is a Q register's qubit
    count where it is known; ``is_symbolic`` marks a Φ decision variable before the witness."""

    tag: ClassVar[str] = "var"
    name: str
    slot: int
    is_symbolic: bool = False
    size: int | None = None

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_variable(self)

    @property
    def symbolic(self) -> bool:
        return self.is_symbolic


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary(Expression):
    """``left op right`` (``+ - * / % == != < <= > >= && ||``)."""

    tag: ClassVar[str] = "bin"
    op: str
    left: Expression
    right: Expression
    is_symbolic: bool = False

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_binary(self)

    @property
    def symbolic(self) -> bool:
        return self.is_symbolic


@dataclass(frozen=True, slots=True, kw_only=True)
class Unary(Expression):
    """``-operand`` or ``!operand``."""

    tag: ClassVar[str] = "un"
    op: str
    operand: Expression
    is_symbolic: bool = False

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_unary(self)

    @property
    def symbolic(self) -> bool:
        return self.is_symbolic


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Expression):
    """A call of K process ``process`` (``K::name``) from a K process."""

    tag: ClassVar[str] = "call"
    process: str
    args: tuple[Expression, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_call(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossCall(Expression):
    """A cross-regime call of ``target`` (a Q or Φ process) through bind number ``bind``."""

    tag: ClassVar[str] = "xcall"
    target: str
    bind: int
    args: tuple[Expression, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_cross_call(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantumOperation(Expression):
    """A ``q::`` operation: ``alloc`` (no arguments), ``join`` (two registers) or a gate (the
    register, then its qubit indices and angles as literals). ``size`` is the resulting
    register's qubit count where it is known."""

    tag: ClassVar[str] = "std"
    namespace: ClassVar[str] = "q"
    function: str
    args: tuple[Expression, ...]
    size: int | None

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_quantum_operation(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionVariable(Expression):
    """A ``phi::int(lo, hi)`` or ``phi::bool()`` decision variable (always symbolic)."""

    tag: ClassVar[str] = "std"
    namespace: ClassVar[str] = "phi"
    function: str
    args: tuple[Expression, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_decision_variable(self)

    @property
    def symbolic(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Interpolation(Expression):
    """A string with holes: text parts and expression parts, in order."""

    tag: ClassVar[str] = "interp"
    parts: tuple[str | Expression, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_interpolation(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeLiteral(Expression):
    """``Name { field: value, … }`` with the fields in declaration order."""

    tag: ClassVar[str] = "shape"
    name: str
    fields: tuple[tuple[str, Expression], ...]

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_shape_literal(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldAccess(Expression):
    """``target.name``: a shape field, or (``witness``) a witness's proved variable."""

    tag: ClassVar[str] = "field"
    target: Expression
    name: str
    witness: bool = False

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_field_access(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrayLiteral(Expression):
    """``[item, …]``."""

    tag: ClassVar[str] = "array"
    items: tuple[Expression, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_array_literal(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexAccess(Expression):
    """``target[index]``."""

    tag: ClassVar[str] = "index"
    target: Expression
    index: Expression

    def accept(self, visitor: DirVisitor[E, S]) -> E:
        return visitor.visit_index_access(self)


# ---------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """Base of statements."""

    tag: ClassVar[str] = ""

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        """Call ``visitor``'s method for this node's class."""
        raise NotImplementedError(type(self).__name__)

    def expressions(self) -> tuple[Expression, ...]:
        """The statement's own expressions (not those of its nested blocks), in order."""
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Let(Statement):
    """``let``: binds ``value`` (of type ``type``) to ``slot``; ``mutable`` for ``mut let``,
    ``decision`` for a Φ decision variable."""

    tag: ClassVar[str] = "let"
    name: str
    slot: int
    type: str
    value: Expression
    mutable: bool = False
    decision: bool = False

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_let(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.value,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign(Statement):
    """``name = value`` (a ``mut let`` binding)."""

    tag: ClassVar[str] = "assign"
    name: str
    slot: int
    value: Expression

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_assign(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.value,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Constrain(Statement):
    """``constrain condition`` (Φ)."""

    tag: ClassVar[str] = "constrain"
    condition: Expression

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_constrain(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.condition,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prove(Statement):
    """``prove name from source`` (Φ): the witness goes to ``slot``."""

    tag: ClassVar[str] = "prove"
    name: str
    slot: int
    source: Expression

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_prove(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.source,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect(Statement):
    """``emit``, ``observe`` or ``seal`` of ``value``."""

    tag: ClassVar[str] = "effect"
    kind: str
    value: Expression

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_effect(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.value,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Return(Statement):
    """``return`` with or without a value."""

    tag: ClassVar[str] = "return"
    value: Expression | None

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_return(self)

    def expressions(self) -> tuple[Expression, ...]:
        return () if self.value is None else (self.value,)


@dataclass(frozen=True, slots=True, kw_only=True)
class If(Statement):
    """``if condition { then } else { otherwise }`` (``otherwise`` None without ``else``)."""

    tag: ClassVar[str] = "if"
    condition: Expression
    then: tuple[Statement, ...]
    otherwise: tuple[Statement, ...] | None

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_if(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.condition,)


@dataclass(frozen=True, slots=True, kw_only=True)
class While(Statement):
    """``while condition { body }``."""

    tag: ClassVar[str] = "while"
    condition: Expression
    body: tuple[Statement, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_while(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.condition,)


@dataclass(frozen=True, slots=True, kw_only=True)
class For(Statement):
    """``for name in low..high { body }``; the counter lives in ``slot``."""

    tag: ClassVar[str] = "for"
    name: str
    slot: int
    low: Expression
    high: Expression
    body: tuple[Statement, ...]

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_for(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.low, self.high)


@dataclass(frozen=True, slots=True, kw_only=True)
class Break(Statement):
    """``break``."""

    tag: ClassVar[str] = "break"

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_break(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Continue(Statement):
    """``continue``."""

    tag: ClassVar[str] = "continue"

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_continue(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpressionStatement(Statement):
    """An expression evaluated for its effects (or a Unit process's tail value)."""

    tag: ClassVar[str] = "expr"
    value: Expression

    def accept(self, visitor: DirVisitor[E, S]) -> S:
        return visitor.visit_expression_statement(self)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.value,)


Node: TypeAlias = Expression | Statement

# Every concrete node type, in the order of docs/dpl.md §9 (the tests check that each one has a
# visitor method, a JSON encoding and a parser entry).
EXPRESSION_TYPES: tuple[type[Expression], ...] = (
    Literal,
    Variable,
    Binary,
    Unary,
    Call,
    CrossCall,
    QuantumOperation,
    DecisionVariable,
    Interpolation,
    ShapeLiteral,
    FieldAccess,
    ArrayLiteral,
    IndexAccess,
)
STATEMENT_TYPES: tuple[type[Statement], ...] = (
    Let,
    Assign,
    Effect,
    Constrain,
    Prove,
    Return,
    If,
    While,
    For,
    Break,
    Continue,
    ExpressionStatement,
)


# ---------------------------------------------------------------------- program structure


@dataclass(frozen=True, slots=True, kw_only=True)
class DirShape:
    """A shape: its name and ``(field, type)`` pairs in declaration order."""

    name: str
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DirUse:
    """A ``uses`` resource of a process, its arguments sorted by name."""

    name: str
    arguments: tuple[tuple[str, Scalar], ...]

    def argument(self, name: str) -> Scalar | None:
        """The value of argument ``name``, or None."""
        for key, value in self.arguments:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DirProcess:
    """One process: signature, resources, transitive effects, slot and qubit counts, body."""

    name: str  # "K::main"
    regime: str  # "K", "Q" or "Φ"
    forge: str | None
    params: tuple[tuple[str, str], ...]  # (name, type); parameter i is slot i
    returns: str
    linear: bool
    uses: tuple[DirUse, ...]
    effects: tuple[str, ...]  # sorted, including those of K processes it calls
    slots: int
    qubits: int
    body: tuple[Statement, ...]

    def use(self, name: str) -> DirUse | None:
        """The ``uses`` resource ``name``, or None."""
        return next((use for use in self.uses if use.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DirClause:
    """A contract clause: ``name op value``."""

    name: str
    op: str
    value: ClauseValue


@dataclass(frozen=True, slots=True, kw_only=True)
class DirBind:
    """``bind source -> target`` with its contract clauses, sorted by name."""

    source: str
    target: str
    contract: tuple[DirClause, ...]

    def clause(self, name: str) -> DirClause | None:
        """The clause ``name``, or None."""
        return next((clause for clause in self.contract if clause.name == name), None)

    def value(self, name: str, default: ClauseValue) -> ClauseValue:
        """The value of clause ``name``, or ``default``."""
        clause = self.clause(name)
        return default if clause is None else clause.value


@dataclass(frozen=True, slots=True, kw_only=True)
class DirProgram:
    """A DIR program. Its digest, :attr:`sha256`, is a function of its content, computed when
    first asked for."""

    shapes: tuple[DirShape, ...]
    processes: tuple[DirProcess, ...]
    binds: tuple[DirBind, ...]
    # Invariant: None, or the SHA-256 of the canonical bytes of document_body(self).
    _sha256: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical bytes of the DIR document without its ``sha256`` key."""
        digest = self._sha256
        return digest if digest is not None else _digest(self, document_body(self))

    def process(self, name: str) -> DirProcess | None:
        """The process named ``name`` (``K::main``), or None."""
        return next((process for process in self.processes if process.name == name), None)

    @property
    def regimes(self) -> frozenset[str]:
        """The regimes of the program's processes."""
        return frozenset(process.regime for process in self.processes)


# ---------------------------------------------------------------------- the visitor


class DirVisitor(abc.ABC, Generic[E, S]):
    """The one way to read DIR: ``expression(node)`` gives an ``E``, ``statement(node)`` an
    ``S``. A subclass implements every ``visit_…`` method; a pass that does not take a node
    type says so, either in the method (``return self.refuse(node)``) or by naming it
    (``visit_while = DirVisitor.refuse``). Override :meth:`unsupported` for the error."""

    def expression(self, node: Expression) -> E:
        """Dispatch ``node`` to the ``visit_…`` method for its type."""
        return node.accept(self)

    def statement(self, node: Statement) -> S:
        """Dispatch ``node`` to the ``visit_…`` method for its type."""
        return node.accept(self)

    def refuse(self, node: Node) -> NoReturn:
        """This pass does not take ``node``: raise :meth:`unsupported`'s error."""
        raise self.unsupported(node)

    def unsupported(self, node: Node) -> Exception:
        """The error for a node this pass does not take (a runtime failure by default)."""
        family = "expression" if isinstance(node, Expression) else "statement"
        return DplRuntimeFailure(f"{type(self).__name__} does not take {family} {node.tag!r}")

    # -- expressions

    @abc.abstractmethod
    def visit_literal(self, node: Literal) -> E: ...

    @abc.abstractmethod
    def visit_variable(self, node: Variable) -> E: ...

    @abc.abstractmethod
    def visit_binary(self, node: Binary) -> E: ...

    @abc.abstractmethod
    def visit_unary(self, node: Unary) -> E: ...

    @abc.abstractmethod
    def visit_call(self, node: Call) -> E: ...

    @abc.abstractmethod
    def visit_cross_call(self, node: CrossCall) -> E: ...

    @abc.abstractmethod
    def visit_quantum_operation(self, node: QuantumOperation) -> E: ...

    @abc.abstractmethod
    def visit_decision_variable(self, node: DecisionVariable) -> E: ...

    @abc.abstractmethod
    def visit_interpolation(self, node: Interpolation) -> E: ...

    @abc.abstractmethod
    def visit_shape_literal(self, node: ShapeLiteral) -> E: ...

    @abc.abstractmethod
    def visit_field_access(self, node: FieldAccess) -> E: ...

    @abc.abstractmethod
    def visit_array_literal(self, node: ArrayLiteral) -> E: ...

    @abc.abstractmethod
    def visit_index_access(self, node: IndexAccess) -> E: ...

    # -- statements

    @abc.abstractmethod
    def visit_let(self, node: Let) -> S: ...

    @abc.abstractmethod
    def visit_assign(self, node: Assign) -> S: ...

    @abc.abstractmethod
    def visit_effect(self, node: Effect) -> S: ...

    @abc.abstractmethod
    def visit_constrain(self, node: Constrain) -> S: ...

    @abc.abstractmethod
    def visit_prove(self, node: Prove) -> S: ...

    @abc.abstractmethod
    def visit_return(self, node: Return) -> S: ...

    @abc.abstractmethod
    def visit_if(self, node: If) -> S: ...

    @abc.abstractmethod
    def visit_while(self, node: While) -> S: ...

    @abc.abstractmethod
    def visit_for(self, node: For) -> S: ...

    @abc.abstractmethod
    def visit_break(self, node: Break) -> S: ...

    @abc.abstractmethod
    def visit_continue(self, node: Continue) -> S: ...

    @abc.abstractmethod
    def visit_expression_statement(self, node: ExpressionStatement) -> S: ...


class DirWalker(DirVisitor[None, None]):
    """A visitor that visits every child of every node, in order, and does nothing else:
    override the methods of the node types an analysis looks at (and call ``super()`` to keep
    walking below them)."""

    def walk_statements(self, body: tuple[Statement, ...]) -> None:
        """Visit each statement of ``body``."""
        for node in body:
            node.accept(self)

    def walk_expressions(self, nodes: tuple[Expression, ...]) -> None:
        """Visit each expression of ``nodes``."""
        for node in nodes:
            node.accept(self)

    def visit_literal(self, node: Literal) -> None:
        return None

    def visit_variable(self, node: Variable) -> None:
        return None

    def visit_binary(self, node: Binary) -> None:
        node.left.accept(self)
        node.right.accept(self)

    def visit_unary(self, node: Unary) -> None:
        node.operand.accept(self)

    def visit_call(self, node: Call) -> None:
        self.walk_expressions(node.args)

    def visit_cross_call(self, node: CrossCall) -> None:
        self.walk_expressions(node.args)

    def visit_quantum_operation(self, node: QuantumOperation) -> None:
        self.walk_expressions(node.args)

    def visit_decision_variable(self, node: DecisionVariable) -> None:
        self.walk_expressions(node.args)

    def visit_interpolation(self, node: Interpolation) -> None:
        for part in node.parts:
            if not isinstance(part, str):
                part.accept(self)

    def visit_shape_literal(self, node: ShapeLiteral) -> None:
        for _, value in node.fields:
            value.accept(self)

    def visit_field_access(self, node: FieldAccess) -> None:
        node.target.accept(self)

    def visit_array_literal(self, node: ArrayLiteral) -> None:
        self.walk_expressions(node.items)

    def visit_index_access(self, node: IndexAccess) -> None:
        node.target.accept(self)
        node.index.accept(self)

    def visit_let(self, node: Let) -> None:
        node.value.accept(self)

    def visit_assign(self, node: Assign) -> None:
        node.value.accept(self)

    def visit_effect(self, node: Effect) -> None:
        node.value.accept(self)

    def visit_constrain(self, node: Constrain) -> None:
        node.condition.accept(self)

    def visit_prove(self, node: Prove) -> None:
        node.source.accept(self)

    def visit_return(self, node: Return) -> None:
        if node.value is not None:
            node.value.accept(self)

    def visit_if(self, node: If) -> None:
        node.condition.accept(self)
        self.walk_statements(node.then)
        if node.otherwise is not None:
            self.walk_statements(node.otherwise)

    def visit_while(self, node: While) -> None:
        node.condition.accept(self)
        self.walk_statements(node.body)

    def visit_for(self, node: For) -> None:
        node.low.accept(self)
        node.high.accept(self)
        self.walk_statements(node.body)

    def visit_break(self, node: Break) -> None:
        return None

    def visit_continue(self, node: Continue) -> None:
        return None

    def visit_expression_statement(self, node: ExpressionStatement) -> None:
        node.value.accept(self)


# ---------------------------------------------------------------------- canonical JSON


def canonical_bytes(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8, no NaN. A :class:`DirProgram` is written
    as its DIR document."""
    if isinstance(value, DirProgram):
        value = dir_document(value)
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as error:
        # A float that is not finite, an integer beyond Python's decimal conversion limit, a
        # lone surrogate, a value JSON has no form for, or one nested too deeply.
        raise XdvError(
            f"value has no canonical JSON form: {type(error).__name__}: {str(error)[:200]}",
            code=ErrorCode.DPL_DIR_INVALID,
            where="canonical_bytes",
        ) from None


def dir_document(program: DirProgram) -> dict[str, Any]:
    """The DIR document (a JSON value) of ``program``."""
    document = document_body(program)
    document["sha256"] = _digest(program, document)
    return document


def _digest(program: DirProgram, body: dict[str, Any]) -> str:
    """``program``'s digest, computed from ``body`` (its document body) the first time."""
    digest = program._sha256
    if digest is None:
        digest = hashlib.sha256(canonical_bytes(body)).hexdigest()
        object.__setattr__(program, "_sha256", digest)
    return digest


def document_body(program: DirProgram) -> dict[str, Any]:
    """The DIR document of ``program`` without its ``sha256`` key."""
    encoder = _Encoder()
    return {
        "format": DIR_FORMAT,
        "version": DIR_VERSION,
        "shapes": [
            {"name": shape.name, "fields": [list(pair) for pair in shape.fields]}
            for shape in program.shapes
        ],
        "processes": [
            {
                "name": process.name,
                "regime": process.regime,
                "forge": process.forge,
                "params": [list(param) for param in process.params],
                "returns": process.returns,
                "linear": process.linear,
                "uses": [{"name": use.name, "args": dict(use.arguments)} for use in process.uses],
                "effects": list(process.effects),
                "slots": process.slots,
                "qubits": process.qubits,
                "body": encoder.block(process.body),
            }
            for process in program.processes
        ],
        "binds": [
            {
                "source": bind.source,
                "target": bind.target,
                "contract": {
                    clause.name: {"op": clause.op, "value": _clause_json(clause.value)}
                    for clause in bind.contract
                },
            }
            for bind in program.binds
        ],
    }


def _clause_json(value: ClauseValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


JsonObject = dict[str, Any]


class _Encoder(DirVisitor[JsonObject, JsonObject]):
    """Each node as its JSON object; optional flags are written only when set."""

    def block(self, body: tuple[Statement, ...]) -> list[JsonObject]:
        return [node.accept(self) for node in body]

    def each(self, nodes: tuple[Expression, ...]) -> list[JsonObject]:
        return [node.accept(self) for node in nodes]

    def visit_literal(self, node: Literal) -> JsonObject:
        return {"k": "lit", "v": node.value, "t": node.type}

    def visit_variable(self, node: Variable) -> JsonObject:
        out: JsonObject = {"k": "var", "name": node.name, "slot": node.slot, "t": node.type}
        if node.is_symbolic:
            out["sym"] = True
        if node.size is not None:
            out["size"] = node.size
        return out

    def visit_binary(self, node: Binary) -> JsonObject:
        out: JsonObject = {
            "k": "bin",
            "op": node.op,
            "l": node.left.accept(self),
            "r": node.right.accept(self),
            "t": node.type,
        }
        if node.is_symbolic:
            out["sym"] = True
        return out

    def visit_unary(self, node: Unary) -> JsonObject:
        out: JsonObject = {"k": "un", "op": node.op, "e": node.operand.accept(self), "t": node.type}
        if node.is_symbolic:
            out["sym"] = True
        return out

    def visit_call(self, node: Call) -> JsonObject:
        return {"k": "call", "proc": node.process, "args": self.each(node.args), "t": node.type}

    def visit_cross_call(self, node: CrossCall) -> JsonObject:
        return {
            "k": "xcall",
            "target": node.target,
            "bind": node.bind,
            "args": self.each(node.args),
            "t": node.type,
        }

    def visit_quantum_operation(self, node: QuantumOperation) -> JsonObject:
        return {
            "k": "std",
            "ns": "q",
            "fn": node.function,
            "args": self.each(node.args),
            "size": node.size,
            "t": node.type,
        }

    def visit_decision_variable(self, node: DecisionVariable) -> JsonObject:
        return {
            "k": "std",
            "ns": "phi",
            "fn": node.function,
            "args": self.each(node.args),
            "sym": True,
            "t": node.type,
        }

    def visit_interpolation(self, node: Interpolation) -> JsonObject:
        parts: list[Any] = []
        for part in node.parts:
            parts.append(part if isinstance(part, str) else self.expression(part))
        return {"k": "interp", "parts": parts, "t": node.type}

    def visit_shape_literal(self, node: ShapeLiteral) -> JsonObject:
        fields: list[list[Any]] = [[name, self.expression(value)] for name, value in node.fields]
        return {"k": "shape", "name": node.name, "fields": fields, "t": node.type}

    def visit_field_access(self, node: FieldAccess) -> JsonObject:
        out: JsonObject = {
            "k": "field",
            "e": node.target.accept(self),
            "name": node.name,
            "t": node.type,
        }
        if node.witness:
            out["witness"] = True
        return out

    def visit_array_literal(self, node: ArrayLiteral) -> JsonObject:
        return {"k": "array", "items": self.each(node.items), "t": node.type}

    def visit_index_access(self, node: IndexAccess) -> JsonObject:
        return {
            "k": "index",
            "e": node.target.accept(self),
            "i": node.index.accept(self),
            "t": node.type,
        }

    def visit_let(self, node: Let) -> JsonObject:
        out: JsonObject = {
            "s": "let",
            "name": node.name,
            "slot": node.slot,
            "t": node.type,
            "e": node.value.accept(self),
        }
        if node.mutable:
            out["mut"] = True
        if node.decision:
            out["decision"] = True
        return out

    def visit_assign(self, node: Assign) -> JsonObject:
        return {"s": "assign", "name": node.name, "slot": node.slot, "e": node.value.accept(self)}

    def visit_effect(self, node: Effect) -> JsonObject:
        return {"s": "effect", "effect": node.kind, "e": node.value.accept(self)}

    def visit_constrain(self, node: Constrain) -> JsonObject:
        return {"s": "constrain", "e": node.condition.accept(self)}

    def visit_prove(self, node: Prove) -> JsonObject:
        return {"s": "prove", "name": node.name, "slot": node.slot, "e": node.source.accept(self)}

    def visit_return(self, node: Return) -> JsonObject:
        return {"s": "return", "e": None if node.value is None else node.value.accept(self)}

    def visit_if(self, node: If) -> JsonObject:
        return {
            "s": "if",
            "c": node.condition.accept(self),
            "then": self.block(node.then),
            "else": None if node.otherwise is None else self.block(node.otherwise),
        }

    def visit_while(self, node: While) -> JsonObject:
        return {"s": "while", "c": node.condition.accept(self), "body": self.block(node.body)}

    def visit_for(self, node: For) -> JsonObject:
        return {
            "s": "for",
            "name": node.name,
            "slot": node.slot,
            "lo": node.low.accept(self),
            "hi": node.high.accept(self),
            "body": self.block(node.body),
        }

    def visit_break(self, node: Break) -> JsonObject:
        return {"s": "break"}

    def visit_continue(self, node: Continue) -> JsonObject:
        return {"s": "continue"}

    def visit_expression_statement(self, node: ExpressionStatement) -> JsonObject:
        return {"s": "expr", "e": node.value.accept(self)}
