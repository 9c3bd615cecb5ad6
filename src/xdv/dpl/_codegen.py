"""The VM's code generator: the K processes of a DIR program as Python source.

Each K process becomes one Python function; a process that performs effects, crosses a bind or
calls one that does becomes a generator (its effects and cross-regime calls are system calls),
the others plain functions. Every call and every loop iteration costs one VM step, counted down
a slice counter shared by the program's functions (``docs/dpl.md`` §10).
"""

from __future__ import annotations

from xdv.dpl._dir import (
    ArrayLiteral,
    Assign,
    Binary,
    Break,
    Call,
    Constrain,
    Continue,
    CrossCall,
    DecisionVariable,
    DirProcess,
    DirProgram,
    DirVisitor,
    DirWalker,
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
    Node,
    Prove,
    QuantumOperation,
    Return,
    ShapeLiteral,
    Statement,
    Unary,
    Variable,
    While,
)
from xdv.dpl._values import DplRuntimeFailure

__all__ = ["HELPERS", "NODES_PER_STEP", "compile_k", "python_name", "weight"]

# Names the generated code receives from the runtime (the parameters of `_program`).
HELPERS = (
    "_fuel",
    "_Yield",
    "_effect",
    "_idiv",
    "_imod",
    "_fdiv",
    "_index",
    "_field",
    "_show",
    "_Shape",
    "_cross",
    "_imul",
    "_concat",
    "_interp",
    "_bounded",
    "_over",
    "_B",
    "_NB",
    "_shl",
    "_shr",
)
# A multiplication by a literal smaller than this is not checked where it happens: it grows a
# value by at most 8 bits, and the assignment that keeps the value checks it (docs/dpl.md §12).
_SMALL_FACTOR = 1 << 8
# A loop that makes no call and assigns integers at most this many times checks its integer
# bindings once per slice (in the slice's branch of its step count) instead of at each store:
# between two checks a value grows by a bounded amount, and the hot loop pays nothing.
_DEFERRED_ASSIGNS_MAX = 8
# Types whose values hold no integer (or are bounded by construction): stored without a check.
_UNCHECKED = frozenset({"Float", "Bool", "String", "Unit", "Bits", "Counts", "Witness", "Qubits"})


def python_name(key: str) -> str:
    """The Python function name of process ``key`` (``K::main`` → ``k_main``)."""
    regime, name = key.split("::", 1)
    # A module-qualified key (`K::Forge.name`) keeps its forge: `.` becomes a letter that no
    # DPL identifier (ASCII only) contains.
    return {"K": "k_", "Q": "q_", "Φ": "phi_"}[regime] + name.replace(".", "ǂ")


def compile_k(program: DirProgram, entry: str) -> str:
    """The Python source of every K process of ``program``: one function ``_program(helpers…,
    slice)`` that returns the process functions by name (and ``_steps_left``)."""
    generators = _generators(program, entry)
    weights = {
        process.name: weight(process.body) for process in program.processes if process.regime == "K"
    }
    codegen = _Codegen(generators, weights)
    names = []
    for process in program.processes:
        if process.regime == "K":
            codegen.process(process)
            names.append(python_name(process.name))
    body = "\n".join("    " + line if line else "" for line in codegen.lines)
    exported = ", ".join(f"{name!r}: {name}" for name in names)
    return (
        f"def _program({', '.join(HELPERS)}, _n):\n"
        f"{body}\n"
        "    def _steps_left():\n"
        "        return _n\n"
        f"    return {{{exported}, '_steps_left': _steps_left}}\n"
    )


def _small(node: Expression) -> bool:
    """Whether ``node`` is an integer literal below ``_SMALL_FACTOR`` in magnitude."""
    return (
        isinstance(node, Literal)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and -_SMALL_FACTOR < node.value < _SMALL_FACTOR
    )


# ---------------------------------------------------------------------- analyses

# One VM step pays for a bounded amount of work: a loop iteration costs one step, plus one per
# NODES_PER_STEP nodes of its body beyond the first NODES_FREE, and a call one step plus as
# much for the callee's body (a nested loop's body is charged by its own iterations). Small
# bodies cost one step; a body of thousands of statements cannot make a step arbitrarily long.
NODES_PER_STEP = 4
NODES_FREE = 8


def extra_steps(nodes: int) -> int:
    """The steps a body of ``nodes`` DIR nodes costs beyond the first."""
    return max(0, nodes - NODES_FREE) // NODES_PER_STEP


def weight(body: tuple[Statement, ...]) -> int:
    """The DIR nodes of ``body`` (statements and expressions), without the bodies of the loops
    in it, counted with an explicit stack."""
    count = 0
    pending: list[object] = list(body)
    while pending:
        item = pending.pop()
        if isinstance(item, tuple):
            pending.extend(item)
            continue
        if not isinstance(item, Node):
            continue
        count += 1
        if isinstance(item, While | For):
            pending.extend(item.expressions())
            continue
        for name in item.__dataclass_fields__:
            value = getattr(item, name)
            if isinstance(value, Node | tuple):
                pending.append(value)
    return count


class _Assigns(DirWalker):
    """How many integer assignments a loop body makes (nested loops included)."""

    def __init__(self) -> None:
        self.count = 0

    def visit_assign(self, node: Assign) -> None:
        self.count += node.value.type == "Int"
        super().visit_assign(node)


def _deferred(condition: tuple[Expression, ...], body: tuple[Statement, ...]) -> bool:
    """Whether a loop may check its integer bindings once per slice: it calls nothing (so
    every step it takes is its own, or a nested loop's, which checks too) and assigns few."""
    calls = _Calls()
    calls.walk_expressions(condition)
    calls.walk_statements(body)
    if calls.count:
        return False
    assigns = _Assigns()
    assigns.walk_statements(body)
    return assigns.count <= _DEFERRED_ASSIGNS_MAX


class _Calls(DirWalker):
    """The processes a body calls, whether it crosses a bind, and how many calls it makes."""

    def __init__(self) -> None:
        self.callees: set[str] = set()
        self.called: list[str] = []
        self.crosses = False
        self.count = 0

    def visit_call(self, node: Call) -> None:
        self.callees.add(node.process)
        self.called.append(node.process)
        self.count += 1
        super().visit_call(node)

    def visit_cross_call(self, node: CrossCall) -> None:
        self.crosses = True
        self.count += 1
        super().visit_cross_call(node)


def _generators(program: DirProgram, entry: str) -> set[str]:
    """K processes that must be generators: they perform effects, cross binds, or call one
    that does (the entry always is one, it is the kernel anchor)."""
    calls: dict[str, set[str]] = {}
    marked: set[str] = {entry}
    for process in program.processes:
        if process.regime != "K":
            continue
        found = _Calls()
        found.walk_statements(process.body)
        calls[process.name] = found.callees
        if process.effects or found.crosses:
            marked.add(process.name)
    # Mark the callers of marked processes, transitively (a worklist over the reversed call
    # graph: linear however long a call chain is).
    callers: dict[str, list[str]] = {}
    for name, callees in calls.items():
        for callee in callees:
            callers.setdefault(callee, []).append(name)
    pending = list(marked)
    while pending:
        for caller in callers.get(pending.pop(), ()):
            if caller not in marked:
                marked.add(caller)
                pending.append(caller)
    return marked


# ---------------------------------------------------------------------- code generation


class _Codegen(DirVisitor[str, None]):
    """Statements append lines at ``depth`` (inside a generator when ``generator``);
    expressions are Python expression text."""

    def __init__(self, generators: set[str], weights: dict[str, int]) -> None:
        self.generators = generators
        self.weights = weights
        self.lines: list[str] = []
        self.temporaries = 0
        self.depth = 0
        self.generator = False
        # Mutable Int bindings in scope, innermost block last; whether stores are deferred.
        self.integers: list[list[int]] = [[]]
        self.deferred = False

    def unsupported(self, node: Node) -> Exception:
        family = "expression" if isinstance(node, Expression) else "statement"
        return DplRuntimeFailure(f"{family} {node.tag!r} cannot run in a K process")

    def temporary(self) -> str:
        self.temporaries += 1
        return f"_t{self.temporaries}"

    def emit(self, text: str, depth: int | None = None) -> None:
        self.lines.append("    " * (self.depth if depth is None else depth) + text)

    def process(self, process: DirProcess) -> None:
        self.generator = process.name in self.generators
        params = ", ".join(f"v{index}" for index in range(len(process.params)))
        self.emit(f"def {python_name(process.name)}({params}):", 0)
        self.emit("nonlocal _n", 1)
        self.temporaries = 0
        self.integers = [[]]
        self.deferred = False
        self.block(process.body, 1)
        if self.generator:
            self.emit("return None", 1)
            self.emit("yield  # makes this a generator", 1)
        self.emit("", 0)

    def tick(self, steps: int = 1, check: tuple[int, ...] = ()) -> None:
        # Count `steps` VM steps down the slice counter, a closure cell shared by every process
        # of the program (cheaper than a global, an attribute or a list); `_fuel` accounts the
        # finished slice, enforces the step budget and starts the next slice. `check`: the
        # integer bindings a deferred loop checks once per slice.
        if steps < 1:
            return
        self.emit(f"if (_n := _n - {steps}) < 0:")
        self.emit("_n = _fuel(_n)", self.depth + 1)
        if check:
            self.emit(self.check_integers(check), self.depth + 1)
        if self.generator:
            self.emit("yield _Yield()", self.depth + 1)

    @staticmethod
    def check_integers(slots: tuple[int, ...]) -> str:
        return f"_bounded(({''.join(f'v{slot}, ' for slot in slots)}))"

    def visible_integers(self) -> tuple[int, ...]:
        return tuple(slot for scope in self.integers for slot in scope)

    def block(self, body: tuple[Statement, ...], depth: int) -> None:
        outer, self.depth = self.depth, depth
        self.integers.append([])
        if not body:
            self.emit("pass")
        for node in body:
            # The calls a statement makes (outside its nested blocks) are charged when it
            # starts: one step each, so a leaf call costs its caller one step and nothing in
            # itself.
            self.tick(self.charge(node.expressions()))
            node.accept(self)
        self.integers.pop()
        self.depth = outer

    def charge(self, nodes: tuple[Expression, ...]) -> int:
        """The steps the calls in ``nodes`` cost: one per call, and one per NODES_PER_STEP nodes
        of a K callee's body."""
        calls = _Calls()
        calls.walk_expressions(nodes)
        extra = sum(extra_steps(self.weights.get(name, 0)) for name in calls.called)
        return calls.count + extra

    def loop(
        self, node: While | For, head: str, steps: int, condition: tuple[Expression, ...]
    ) -> None:
        steps += extra_steps(weight(node.body))
        deferred = self.deferred or _deferred(condition, node.body)
        check = self.visible_integers() if deferred else ()
        self.emit(head)
        self.depth += 1
        self.tick(steps, check)
        self.depth -= 1
        outer, self.deferred = self.deferred, deferred
        self.block(node.body, self.depth + 1)
        self.deferred = outer
        if check and not outer:
            # The last slice of the loop, checked once it ends.
            self.emit(self.check_integers(check))

    # -- statements

    def visit_let(self, node: Let) -> None:
        self.emit(f"v{node.slot} = {node.value.accept(self)}")
        if node.mutable and node.type == "Int":
            self.integers[-1].append(node.slot)

    def visit_assign(self, node: Assign) -> None:
        # A mutable binding is where a value can grow from one loop iteration to the next, so
        # an integer kept there is checked against dpl_int_bits_max (one inline comparison).
        value = node.value.accept(self)
        kind = node.value.type
        if kind == "Int" and self.deferred:
            self.emit(f"v{node.slot} = {value}")  # checked once per slice by its loop
        elif kind == "Int":
            self.emit(f"v{node.slot} = {value}")
            self.emit(f"if not _NB < v{node.slot} < _B:")
            self.emit(f"_over(v{node.slot})", self.depth + 1)
        elif kind in _UNCHECKED:
            self.emit(f"v{node.slot} = {value}")
        else:
            self.emit(f"v{node.slot} = _bounded({value})")

    def visit_effect(self, node: Effect) -> None:
        self.emit(f"yield _effect({node.kind!r}, {node.value.accept(self)})")

    def visit_constrain(self, node: Constrain) -> None:
        self.refuse(node)  # the checker keeps constraints out of K processes

    def visit_prove(self, node: Prove) -> None:
        self.refuse(node)

    def visit_return(self, node: Return) -> None:
        value = "None" if node.value is None else node.value.accept(self)
        self.emit(f"return {value}")

    def visit_if(self, node: If) -> None:
        self.emit(f"if {node.condition.accept(self)}:")
        self.block(node.then, self.depth + 1)
        if node.otherwise is not None:
            self.emit("else:")
            self.block(node.otherwise, self.depth + 1)

    def visit_while(self, node: While) -> None:
        head = f"while {node.condition.accept(self)}:"
        self.loop(node, head, 1 + self.charge((node.condition,)), (node.condition,))

    def visit_for(self, node: For) -> None:
        low, high = node.low.accept(self), node.high.accept(self)
        self.loop(node, f"for v{node.slot} in range({low}, {high}):", 1, ())

    def visit_break(self, node: Break) -> None:
        self.emit("break")

    def visit_continue(self, node: Continue) -> None:
        self.emit("continue")

    def visit_expression_statement(self, node: ExpressionStatement) -> None:
        self.emit(node.value.accept(self))

    # -- expressions

    def visit_literal(self, node: Literal) -> str:
        return repr(node.value)

    def visit_variable(self, node: Variable) -> str:
        return f"v{node.slot}"

    def visit_binary(self, node: Binary) -> str:
        left, right, op = node.left.accept(self), node.right.accept(self), node.op
        divisor = node.right
        if (
            op in ("/", "%")
            and node.type == "Int"
            and isinstance(divisor, Literal)
            and isinstance(divisor.value, int)
            and divisor.value > 0
        ):
            # A positive literal divisor: Python's floor operators agree with truncation for a
            # non-negative dividend; only a negative one takes the mirrored path.
            t = self.temporary()
            python = "//" if op == "/" else "%"
            return f"({t} {python} {right} if ({t} := {left}) >= 0 else -(-{t} {python} {right}))"
        if op == "/":
            helper = "_idiv" if node.type == "Int" else "_fdiv"
            return f"{helper}({left}, {right})"
        if op == "%":
            return f"_imod({left}, {right})"
        if op == "*" and node.type == "Int" and not (_small(node.left) or _small(node.right)):
            return f"_imul({left}, {right})"
        if op == "+" and node.type == "String":
            return f"_concat({left}, {right})"
        if op in ("<<", ">>"):
            return f"{'_shl' if op == '<<' else '_shr'}({left}, {right})"
        python = {"&&": "and", "||": "or"}.get(op, op)
        return f"({left} {python} {right})"

    def visit_unary(self, node: Unary) -> str:
        operand = node.operand.accept(self)
        if node.op == "~":
            return f"(~{operand})"
        return f"(not {operand})" if node.op == "!" else f"(-{operand})"

    def visit_call(self, node: Call) -> str:
        args = ", ".join(arg.accept(self) for arg in node.args)
        call = f"{python_name(node.process)}({args})"
        return f"(yield from {call})" if node.process in self.generators else call

    def visit_cross_call(self, node: CrossCall) -> str:
        args = "".join(", " + arg.accept(self) for arg in node.args)
        return f"(yield from _cross({node.bind}, {node.target!r}{args}))"

    def visit_quantum_operation(self, node: QuantumOperation) -> str:
        return self.refuse(node)  # q:: operations run only in Q processes

    def visit_decision_variable(self, node: DecisionVariable) -> str:
        return self.refuse(node)  # phi:: variables exist only in Φ processes

    def visit_interpolation(self, node: Interpolation) -> str:
        pieces = [repr(part) if isinstance(part, str) else part.accept(self) for part in node.parts]
        return f"_interp({', '.join(pieces)})" if pieces else "''"

    def visit_shape_literal(self, node: ShapeLiteral) -> str:
        fields = ", ".join(f"{name!r}: {value.accept(self)}" for name, value in node.fields)
        return f"_Shape({node.name!r}, {{{fields}}})"

    def visit_field_access(self, node: FieldAccess) -> str:
        if node.witness:
            return f"_field({node.target.accept(self)}, {node.name!r})"
        return f"{node.target.accept(self)}.values[{node.name!r}]"

    def visit_array_literal(self, node: ArrayLiteral) -> str:
        return "(" + "".join(item.accept(self) + ", " for item in node.items) + ")"

    def visit_index_access(self, node: IndexAccess) -> str:
        return f"_index({node.target.accept(self)}, {node.index.accept(self)})"
