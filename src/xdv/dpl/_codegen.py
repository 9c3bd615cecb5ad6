"""The VM's code generator: the K processes of a DIR program as Python source.

Each K process becomes one Python function; a process that performs effects, crosses a bind or
calls one that does becomes a generator (its effects and cross-regime calls are system calls),
the others plain functions. Every call and every loop iteration costs one VM step, counted down
a slice counter shared by the program's functions (``docs/dpl.md`` §10); a loop that makes no
call and holds no loop runs in chunks that settle the counter once (``chunked_while``).

No text of the program reaches the source: names are the generator's own and strings are ASCII
literals (``_Codegen``'s docstring, ``docs/dpl.md`` §10, ``codegen_safety_test.py``).
"""

from __future__ import annotations

import math

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

__all__ = [
    "GENERATED_BUILTINS",
    "HELPERS",
    "NODES_PER_STEP",
    "compile_k",
    "python_name",
    "weight",
]

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
# The only builtins the generated code names (it runs with these and no others).
GENERATED_BUILTINS: dict[str, object] = {"range": range, "BaseException": BaseException}
# A multiplication by a literal smaller than this is not checked where it happens: it grows a
# value by at most 8 bits, and the assignment that keeps the value checks it (docs/dpl.md §12).
_SMALL_FACTOR = 1 << 8
# A loop that makes no call and assigns integers at most this many times checks its integer
# bindings once per slice (in the slice's branch of its step count) instead of at each store:
# between two checks a value grows by a bounded amount, and the hot loop pays nothing.
_DEFERRED_ASSIGNS_MAX = 8
# Types whose values hold no integer (or are bounded by construction): stored without a check.
_UNCHECKED = frozenset({"Float", "Bool", "String", "Unit", "Bits", "Counts", "Witness", "Qubits"})


_REGIME_PREFIXES = {"K": "k_", "Q": "q_", "Φ": "phi_"}


def python_name(key: str) -> str:
    """The Python function name of process ``key`` (``K::main`` → ``k_main``).

    The name is mangled so that no process name can be anything but a fresh identifier in the
    generated code: ASCII letters and digits stay as they are, ``_`` doubles, and every other
    character becomes ``_uHEX_``. The mapping is injective, and the result always starts with a
    regime prefix (``k_``, ``q_``, ``phi_``), so it never names a builtin, a dunder or one of the
    VM's helpers (those start with ``_``)."""
    regime, _, name = key.partition("::")
    prefix = _REGIME_PREFIXES.get(regime)
    if prefix is None or not name:
        raise DplRuntimeFailure(f"process name {key[:60]!r} is not REGIME::NAME")
    return prefix + "".join(_mangled_character(character) for character in name)


def _mangled_character(character: str) -> str:
    if character.isascii() and character.isalnum():
        return character
    if character == "_":
        return "__"
    return f"_u{ord(character):x}_"


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


# The DPL operators the generated code spells, and how: a DIR document names its operator in
# text, and only these texts reach the Python source (anything else is refused).
_BINARY_OPERATORS = {
    "+": "+",
    "-": "-",
    "*": "*",
    "/": "/",
    "%": "%",
    "==": "==",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "&&": "and",
    "||": "or",
    # The bitwise operators of the public dialect (Int operands; shifts go through helpers).
    "&": "&",
    "|": "|",
    "^": "^",
    "<<": "<<",
    ">>": ">>",
}
_UNARY_OPERATORS = {"-": "-", "!": "not ", "~": "~"}


def _local(slot: object) -> str:
    """The Python name of local ``slot``: ``v`` and the slot number, never the program's name
    for it."""
    if type(slot) is not int or slot < 0:
        raise DplRuntimeFailure(f"slot {str(slot)[:20]!r} is not a slot number")
    return f"v{slot}"


def _text(value: object) -> str:
    """String ``value`` as a Python literal of printable ASCII (quotes, backslashes, line
    breaks and every other character escaped), which evaluates to ``value`` and to nothing
    else."""
    if type(value) is not str:
        raise DplRuntimeFailure(f"{type(value).__name__} where a string belongs")
    return ascii(value)


def _simple(node: Expression) -> bool:
    """Whether ``node`` reads a local or is a literal: evaluating it twice costs nothing, can
    fail in no way and has no effect."""
    return isinstance(node, Variable) or (isinstance(node, Literal) and type(node.value) is int)


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


# Signs an integer expression is known to have: nothing known, at least zero, at least one.
_ANY, _NON_NEGATIVE, _POSITIVE = 0, 1, 2


def _sign(node: Expression, signs: dict[int, int]) -> int:
    """What is known of the sign of Int expression ``node`` when each slot in ``signs`` holds
    values of its sign (slots not in it: nothing known)."""
    if isinstance(node, Literal):
        value = node.value
        if type(value) is not int:
            return _ANY
        return _POSITIVE if value > 0 else _NON_NEGATIVE if value == 0 else _ANY
    if isinstance(node, Variable):
        return signs.get(node.slot, _ANY) if node.type == "Int" else _ANY
    if isinstance(node, Binary) and node.type == "Int":
        left, right = _sign(node.left, signs), _sign(node.right, signs)
        if node.op == "+" and min(left, right) >= _NON_NEGATIVE:
            return max(left, right)
        if node.op == "*" and min(left, right) >= _NON_NEGATIVE:
            return min(left, right)
        if node.op == "%" and left >= _NON_NEGATIVE:
            return _NON_NEGATIVE  # a remainder takes the dividend's sign
        if node.op == "/" and left >= _NON_NEGATIVE and right == _POSITIVE:
            return _NON_NEGATIVE
    return _ANY


class _Bindings(DirWalker):
    """Every store to a slot of a process: ``let`` and assignment values, and ``for`` counters
    (which take values from their lower bound up, and stay below their upper bound)."""

    def __init__(self) -> None:
        self.stores: dict[int, list[Expression]] = {}
        self.ranges: dict[int, Expression] = {}

    def store(self, slot: int, value: Expression) -> None:
        if type(slot) is int:  # any other slot is refused where the generator writes it
            self.stores.setdefault(slot, []).append(value)

    def visit_let(self, node: Let) -> None:
        self.store(node.slot, node.value)
        super().visit_let(node)

    def visit_assign(self, node: Assign) -> None:
        self.store(node.slot, node.value)
        super().visit_assign(node)

    def visit_for(self, node: For) -> None:
        self.store(node.slot, node.low)
        self.ranges[node.slot] = node.high
        super().visit_for(node)


def signs(process: DirProcess) -> dict[int, int]:
    """The slots of ``process`` whose integers are never negative (or never below one).

    The greatest fixed point of "every store to the slot has that sign, given the signs of the
    slots it reads": it holds of the first store to each slot, and every later store keeps it,
    so it holds whenever the slot is read. Parameters are never included (a caller sets them).
    The code generator uses it to write ``%`` and ``/`` as Python's operators, which agree with
    DPL's truncating ones on a non-negative dividend and a positive divisor."""
    bindings = _Bindings()
    bindings.walk_statements(process.body)
    parameters = len(process.params)
    known = {slot: _POSITIVE for slot in bindings.stores if slot >= parameters}
    changed = True
    while changed:
        changed = False
        for slot, sign in known.items():
            found = min(_sign(value, known) for value in bindings.stores[slot])
            if found < sign:
                known[slot] = found
                changed = True
    return {slot: sign for slot, sign in known.items() if sign > _ANY}


def _is_bounded(node: Expression, bounded: set[int]) -> bool:
    """Whether Int expression ``node`` is always within ``dpl_int_bits_max`` when it is
    computed: a literal, a slot in ``bounded``, or a product (checked where it is computed)."""
    if isinstance(node, Literal):
        return type(node.value) is int
    if isinstance(node, Variable):
        return node.type == "Int" and node.slot in bounded
    return (
        isinstance(node, Binary)
        and node.type == "Int"
        and node.op == "*"
        and not (_small(node.left) or _small(node.right))
    )


def bounded_slots(process: DirProcess) -> set[int]:
    """The slots of ``process`` whose integers are always within ``dpl_int_bits_max`` when
    read (the greatest fixed point, as for :func:`signs`): every store to them is a bounded
    expression, and a ``for`` counter whose bounds are both bounded stays between them."""
    bindings = _Bindings()
    bindings.walk_statements(process.body)
    parameters = len(process.params)
    bounded = {slot for slot in bindings.stores if slot >= parameters}
    changed = True
    while changed:
        changed = False
        for slot in sorted(bounded):
            values = [*bindings.stores[slot]]
            if slot in bindings.ranges:
                values.append(bindings.ranges[slot])
            if not all(_is_bounded(value, bounded) for value in values):
                bounded.discard(slot)
                changed = True
    return bounded


class _Blocking(DirWalker):
    """Whether a loop's body or condition holds what keeps the loop from running in chunks: a
    nested loop or a call (they take steps of their own) and, with ``strings``, a string built
    (a condition that a chunk may evaluate twice must not, since building a string costs
    steps)."""

    def __init__(self, strings: bool) -> None:
        self.strings = strings
        self.found = False

    def visit_while(self, node: While) -> None:
        self.found = True

    def visit_for(self, node: For) -> None:
        self.found = True

    def visit_call(self, node: Call) -> None:
        self.found = True

    def visit_cross_call(self, node: CrossCall) -> None:
        self.found = True

    def visit_interpolation(self, node: Interpolation) -> None:
        self.found |= self.strings
        super().visit_interpolation(node)

    def visit_binary(self, node: Binary) -> None:
        self.found |= self.strings and node.type == "String"
        super().visit_binary(node)


def _chunked(condition: tuple[Expression, ...], body: tuple[Statement, ...]) -> bool:
    """Whether a loop runs in chunks (``_Codegen.chunked_while``, ``_Codegen.chunked_for``):
    its body makes no call and holds no loop, and its condition makes no call and builds no
    string."""
    in_condition = _Blocking(strings=True)
    in_condition.walk_expressions(condition)
    in_body = _Blocking(strings=False)
    in_body.walk_statements(body)
    return not (in_condition.found or in_body.found)


# ---------------------------------------------------------------------- code generation


class _Codegen(DirVisitor[str, None]):
    """Statements append lines at ``depth`` (inside a generator when ``generator``);
    expressions are Python expression text.

    Nothing from the program reaches the source as text of its own: locals are ``v`` and their
    slot number, temporaries ``_t`` and a number, processes their mangled :func:`python_name`,
    operators come from a fixed table, and every string (literals, shape and field names, effect
    kinds, process names) is written with :func:`ascii`, a Python literal of printable ASCII."""

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
        # Slots whose integers are known never negative (or positive): see `signs`.
        self.signs: dict[int, int] = {}
        # Slots whose integers are always within dpl_int_bits_max: see `bounded_slots`.
        self.bounded: set[int] = set()
        # Inside a chunked loop's body: the expression of the iteration's index in its chunk
        # and the steps one iteration costs (see `chunked_while`).
        self.chunk: tuple[str, int] | None = None

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
        params = ", ".join(_local(index) for index in range(len(process.params)))
        self.emit(f"def {python_name(process.name)}({params}):", 0)
        self.emit("nonlocal _n", 1)
        self.temporaries = 0
        self.integers = [[]]
        self.deferred = False
        self.signs = signs(process)
        self.bounded = bounded_slots(process)
        self.chunk = None
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
        return f"_bounded(({''.join(f'{_local(slot)}, ' for slot in slots)}))"

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
        outer, self.deferred = self.deferred, deferred
        if _chunked(condition, node.body):
            if isinstance(node, While):
                self.chunked_while(node, steps, check)
            else:
                self.chunked_for(node, steps, check)
        else:
            self.emit(head)
            self.depth += 1
            self.tick(steps, check)
            self.depth -= 1
            self.block(node.body, self.depth + 1)
        self.deferred = outer
        if check and not outer:
            # The last slice of the loop, checked once it ends.
            self.emit(self.check_integers(check))

    # -- loops in chunks
    #
    # A loop whose body makes no call and holds no loop takes steps only for its own
    # iterations, so the iterations left in the slice are known when a chunk starts: the chunk
    # runs them with no counting (a Python `for` over a range), and the counter is settled once
    # when the chunk ends, however it ends (the condition fails, `break`, `return`, a failure).
    # The iteration that overdraws the slice goes through `_fuel` (and yields) exactly where
    # counting each iteration would: after its condition holds, before its body. That
    # iteration's step is then credited back so that the next chunk, which starts with it,
    # charges it once. Step counts, slice ends and yields are those of counting each iteration.

    @staticmethod
    def settle(iteration: str, steps: int, done: int) -> str:
        """The statement that charges a chunk's iterations up to ``iteration`` (plus the
        current one when ``done``: its step was taken)."""
        count = f"{iteration} + 1" if done else iteration
        return f"_n -= ({count}) * {steps}" if steps != 1 else f"_n -= {count}"

    def overdraw(self, steps: int, check: tuple[int, ...], depth: int) -> None:
        """The iteration that overdraws the slice: take its step, end the slice (and check the
        deferred integers, and yield), then credit the step to the next chunk."""
        self.emit(f"_n -= {steps}", depth)
        self.emit("_n = _fuel(_n)", depth)
        if check:
            self.emit(self.check_integers(check), depth)
        if self.generator:
            self.emit("yield _Yield()", depth)
        self.emit(f"_n += {steps}", depth)

    def chunked_body(self, body: tuple[Statement, ...], iteration: str, steps: int) -> None:
        depth = self.depth
        self.emit("try:", depth)
        outer, self.chunk = self.chunk, (iteration, steps)
        self.block(body, depth + 1)
        self.chunk = outer
        self.emit("except BaseException:", depth)
        self.emit(self.settle(iteration, steps, 1), depth + 1)
        self.emit("raise", depth + 1)

    def chunked_while(self, node: While, steps: int, check: tuple[int, ...]) -> None:
        condition = node.condition.accept(self)
        fit, iteration = self.temporary(), self.temporary()
        depth = self.depth
        self.emit("while True:")
        self.emit(f"{fit} = _n // {steps}", depth + 1)
        self.emit(f"for {iteration} in range({fit}):", depth + 1)
        self.emit("try:", depth + 2)
        self.emit(f"if not {condition}:", depth + 3)
        self.emit(self.settle(iteration, steps, 0), depth + 4)
        self.emit("break", depth + 4)
        self.emit("except BaseException:", depth + 2)
        self.emit(self.settle(iteration, steps, 0), depth + 3)
        self.emit("raise", depth + 3)
        self.depth = depth + 2
        self.chunked_body(node.body, iteration, steps)
        self.emit("else:", depth + 1)
        self.emit(self.settle(fit, steps, 0), depth + 2)
        # The condition is evaluated again when the next chunk starts: it makes no call and
        # builds no string, so it gives the same value (or failure) at no cost in steps.
        self.emit(f"if {condition}:", depth + 2)
        self.overdraw(steps, check, depth + 3)
        self.emit("continue", depth + 3)
        self.emit("break", depth + 1)
        self.depth = depth

    def chunked_for(self, node: For, steps: int, check: tuple[int, ...]) -> None:
        low, high = node.low.accept(self), node.high.accept(self)
        start, stop, end = self.temporary(), self.temporary(), self.temporary()
        counter = _local(node.slot)
        depth = self.depth
        self.emit(f"{start} = {low}")
        self.emit(f"{stop} = {high}")
        self.emit(f"if {stop} < {start}:")
        self.emit(f"{stop} = {start}", depth + 1)
        self.emit("while True:")
        self.emit(f"{end} = {start} + _n // {steps}", depth + 1)
        self.emit(f"if {end} > {stop}:", depth + 1)
        self.emit(f"{end} = {stop}", depth + 2)
        self.emit(f"for {counter} in range({start}, {end}):", depth + 1)
        self.depth = depth + 2
        self.chunked_body(node.body, f"{counter} - {start}", steps)
        self.emit("else:", depth + 1)
        self.emit(self.settle(f"{end} - {start}", steps, 0), depth + 2)
        self.emit(f"if {end} < {stop}:", depth + 2)
        self.overdraw(steps, check, depth + 3)
        self.emit(f"{start} = {end}", depth + 3)
        self.emit("continue", depth + 3)
        self.emit("break", depth + 1)
        self.depth = depth

    # -- statements

    def visit_let(self, node: Let) -> None:
        self.emit(f"{_local(node.slot)} = {node.value.accept(self)}")
        if node.mutable and node.type == "Int":
            self.integers[-1].append(node.slot)

    def visit_assign(self, node: Assign) -> None:
        # A mutable binding is where a value can grow from one loop iteration to the next, so
        # an integer kept there is checked against dpl_int_bits_max (one inline comparison).
        value = node.value.accept(self)
        kind = node.value.type
        local = _local(node.slot)
        if kind == "Int" and self.deferred:
            self.emit(f"{local} = {value}")  # checked once per slice by its loop
        elif kind == "Int":
            self.emit(f"{local} = {value}")
            if self.signs.get(node.slot, _ANY) >= _NON_NEGATIVE:
                self.emit(f"if {local} >= _B:")
            else:
                self.emit(f"if not _NB < {local} < _B:")
            self.emit(f"_over({local})", self.depth + 1)
        elif kind in _UNCHECKED:
            self.emit(f"{local} = {value}")
        else:
            self.emit(f"{local} = _bounded({value})")

    def visit_effect(self, node: Effect) -> None:
        self.emit(f"yield _effect({_text(node.kind)}, {node.value.accept(self)})")

    def visit_constrain(self, node: Constrain) -> None:
        self.refuse(node)  # the checker keeps constraints out of K processes

    def visit_prove(self, node: Prove) -> None:
        self.refuse(node)

    def visit_return(self, node: Return) -> None:
        value = "None" if node.value is None else node.value.accept(self)
        if self.chunk is not None:
            # Settle the chunk after the value is computed (computing it may fail, and the
            # failure settles the chunk itself).
            result = self.temporary()
            self.emit(f"{result} = {value}")
            self.emit(self.settle(*self.chunk, 1))
            value = result
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
        self.loop(node, f"for {_local(node.slot)} in range({low}, {high}):", 1, ())

    def visit_break(self, node: Break) -> None:
        if self.chunk is not None:
            self.emit(self.settle(*self.chunk, 1))
        self.emit("break")

    def visit_continue(self, node: Continue) -> None:
        self.emit("continue")

    def visit_expression_statement(self, node: ExpressionStatement) -> None:
        self.emit(node.value.accept(self))

    # -- expressions

    def visit_literal(self, node: Literal) -> str:
        value = node.value
        if type(value) is bool:
            return "True" if value else "False"
        if type(value) is str:
            return _text(value)
        if type(value) is int:
            return repr(value) if value >= 0 else f"({value!r})"
        if type(value) is float and math.isfinite(value):
            return repr(value) if math.copysign(1.0, value) > 0 else f"({value!r})"
        raise DplRuntimeFailure(f"literal {str(value)[:40]!r} cannot run in a K process")

    def visit_variable(self, node: Variable) -> str:
        return _local(node.slot)

    def sign(self, node: Expression) -> int:
        return _sign(node, self.signs)

    def visit_binary(self, node: Binary) -> str:
        op = node.op
        python = _BINARY_OPERATORS.get(op)
        if python is None:
            raise DplRuntimeFailure(f"operator {op[:20]!r} cannot run in a K process")
        fused = self.compared_product(node)
        if fused is not None:
            return fused
        left, right = node.left.accept(self), node.right.accept(self)
        if op in ("/", "%") and node.type == "Int":
            return self.truncating(node, left, right)
        if op == "/":
            return f"_fdiv({left}, {right})"
        if op == "*" and node.type == "Int" and not (_small(node.left) or _small(node.right)):
            # The product is checked where it is computed, inline; `_imul(product, 1)` raises
            # the failure for a product beyond dpl_int_bits_max.
            t = self.temporary()
            positive = min(self.sign(node.left), self.sign(node.right)) >= _NON_NEGATIVE
            bounds = (
                f"({t} := {left} * {right}) < _B"
                if positive
                else (f"_NB < ({t} := {left} * {right}) < _B")
            )
            return f"({t} if {bounds} else _imul({t}, 1))"
        if op == "+" and node.type == "String":
            return f"_concat({left}, {right})"
        if op in ("<<", ">>"):
            # Shifts are checked (a negative count, a result beyond dpl_int_bits_max).
            return f"{'_shl' if op == '<<' else '_shr'}({left}, {right})"
        return f"({left} {python} {right})"

    def checked_product(self, node: Expression) -> bool:
        """Whether ``node`` is a product checked where it is computed, of factors known never
        to be negative."""
        return (
            isinstance(node, Binary)
            and node.op == "*"
            and node.type == "Int"
            and not (_small(node.left) or _small(node.right))
            and min(self.sign(node.left), self.sign(node.right)) >= _NON_NEGATIVE
        )

    def compared_product(self, node: Binary) -> str | None:
        """``P <= X`` or ``P < X`` (or ``X >= P``, ``X > P``) for a non-negative product ``P``
        and a bounded ``X``: when the comparison holds, ``P`` is within dpl_int_bits_max
        already, so only the other outcome checks it (the loop condition of trial division
        pays nothing for its product)."""
        if node.op in ("<=", "<") and self.checked_product(node.left):
            product, other = node.left, node.right
        elif node.op in (">=", ">") and self.checked_product(node.right):
            product, other = node.right, node.left
        else:
            return None
        if not isinstance(product, Binary) or not _is_bounded(other, self.bounded):
            return None
        # Operands in DPL's order: the left side first.
        first = product.left.accept(self) if product is node.left else other.accept(self)
        t = self.temporary()
        if product is node.left:
            comparison = f"({t} := {first} * {product.right.accept(self)}) {node.op} "
            comparison += other.accept(self)
        else:
            comparison = f"{first} {node.op} ({t} := {product.left.accept(self)} * "
            comparison += f"{product.right.accept(self)})"
        return f"({comparison} or ({t} >= _B and _imul({t}, 1)))"

    def truncating(self, node: Binary, left: str, right: str) -> str:
        """``/`` and ``%`` on Int, which truncate towards zero: Python's floor operators agree
        with them on a non-negative dividend and a positive divisor, so that case takes them
        inline and only the others reach `_idiv`/`_imod` (which also refuse a zero divisor)."""
        python = "//" if node.op == "/" else "%"
        helper = "_idiv" if node.op == "/" else "_imod"
        dividend, divisor = self.sign(node.left), self.sign(node.right)
        if divisor == _POSITIVE and dividend >= _NON_NEGATIVE:
            return f"({left} {python} {right})"
        if divisor == _POSITIVE and _simple(node.right):
            # A positive divisor: only a negative dividend takes the mirrored path.
            if _simple(node.left):
                t = left
            else:
                t = self.temporary()
                left = f"({t} := {left})"
            return f"({t} {python} {right} if {left} >= 0 else -(-{t} {python} {right}))"
        if _simple(node.left) and _simple(node.right):
            return (
                f"({left} {python} {right} if {left} >= 0 and {right} > 0 "
                f"else {helper}({left}, {right}))"
            )
        if _simple(node.right):
            t = self.temporary()
            return (
                f"({t} {python} {right} if ({t} := {left}) >= 0 and {right} > 0 "
                f"else {helper}({t}, {right}))"
            )
        return f"{helper}({left}, {right})"

    def visit_unary(self, node: Unary) -> str:
        python = _UNARY_OPERATORS.get(node.op)
        if python is None:
            raise DplRuntimeFailure(f"operator {node.op[:20]!r} cannot run in a K process")
        return f"({python}{node.operand.accept(self)})"

    def visit_call(self, node: Call) -> str:
        args = ", ".join(arg.accept(self) for arg in node.args)
        call = f"{python_name(node.process)}({args})"
        return f"(yield from {call})" if node.process in self.generators else call

    def visit_cross_call(self, node: CrossCall) -> str:
        args = "".join(", " + arg.accept(self) for arg in node.args)
        if type(node.bind) is not int or node.bind < 0:
            raise DplRuntimeFailure(f"bind {str(node.bind)[:20]!r} is not a bind number")
        return f"(yield from _cross({node.bind}, {_text(node.target)}{args}))"

    def visit_quantum_operation(self, node: QuantumOperation) -> str:
        return self.refuse(node)  # q:: operations run only in Q processes

    def visit_decision_variable(self, node: DecisionVariable) -> str:
        return self.refuse(node)  # phi:: variables exist only in Φ processes

    def visit_interpolation(self, node: Interpolation) -> str:
        pieces = [
            _text(part) if isinstance(part, str) else part.accept(self) for part in node.parts
        ]
        return f"_interp({', '.join(pieces)})" if pieces else "''"

    def visit_shape_literal(self, node: ShapeLiteral) -> str:
        fields = ", ".join(f"{_text(name)}: {value.accept(self)}" for name, value in node.fields)
        return f"_Shape({_text(node.name)}, {{{fields}}})"

    def visit_field_access(self, node: FieldAccess) -> str:
        if node.witness:
            return f"_field({node.target.accept(self)}, {_text(node.name)})"
        return f"{node.target.accept(self)}.values[{_text(node.name)}]"

    def visit_array_literal(self, node: ArrayLiteral) -> str:
        return "(" + "".join(item.accept(self) + ", " for item in node.items) + ")"

    def visit_index_access(self, node: IndexAccess) -> str:
        return f"_index({node.target.accept(self)}, {node.index.accept(self)})"
