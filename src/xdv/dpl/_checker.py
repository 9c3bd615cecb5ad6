"""The DPL checker: regimes, binds, types, linearity, effects, witnesses, contracts, returns,
and the kernel profile.

The checker checks and annotates: it reports diagnostics and records, in :class:`Annotations`,
what it resolved about the syntax tree (each expression's type, the slot each name and binding
resolves to, the target of each call). It builds no DIR; ``_build.py`` translates a checked
program with no errors into DIR from the tree and these annotations.

The checker never stops at the first problem: each finding is a diagnostic and checking goes on
with an ``Any`` type where a type could not be determined, so one run reports every error it can.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from xdv.dpl import _ast as ast
from xdv.dpl._diagnostics import LIMIT_CODE, Diagnostic, Span, limit_message
from xdv.dpl._types import (
    CLAUSES,
    INT_WIDTHS,
    LINEAR_PRIMITIVES,
    PHI_FUNCTIONS,
    PHI_PROBLEMS,
    Q_CLAUSES,
    Q_GATES,
    RESOURCES,
    normalize_type,
    q_classical,
)
from xdv.dpl._values import DplRuntimeFailure, concrete_binary
from xdv.inputs import limit

__all__ = [
    "LITERAL_TYPES",
    "Annotations",
    "CallTarget",
    "CheckedProgram",
    "Facts",
    "ProcInfo",
    "check",
    "is_decision",
    "proc_key",
]

ANY = "Any"
# The return type of a process that declares none but returns values, until it is inferred.
_INFER = "?"
_QUBITS_MAX = limit("dpl_qubits_max")
_TYPE_MAX = limit("dpl_type_depth_max")
_CELLS_MAX = limit("dpl_value_cells_max")
_NUMERIC = ("Int", "Float")
_ARITHMETIC = ("+", "-", "*", "/", "%")
_COMPARISON = ("<", ">", "<=", ">=")
_EQUALITY = ("==", "!=")
_EFFECTS = ("emit", "observe", "seal")
# The bitwise operators of the public dialect: Int operands, an Int result (docs/dpl.md §3).
_BITWISE = ("&", "|", "^", "<<", ">>")
# The type of a literal of each lexical kind.
LITERAL_TYPES = {"int": "Int", "float": "Float", "bool": "Bool", "string": "String"}


def is_decision(statement: ast.Let, regime: str) -> bool:
    """Whether ``statement`` declares a Φ decision variable (``let x = phi::int(…)`` in Φ)."""
    value = statement.value
    return isinstance(value, ast.Call) and value.namespace == "phi" and regime == "Φ"


@dataclass
class _Var:
    name: str
    type: str
    slot: int
    mutable: bool
    linear: bool
    span: Span
    loop_depth: int
    branch_depth: int
    symbolic: bool = False  # a Φ decision variable (or built from one) before a witness
    consumed: bool = False
    qsize: int | None = None


class Facts(NamedTuple):
    """What the checker found about one expression: its type, whether it depends on a Φ
    decision variable (before the witness), and a Q register's qubit count where known."""

    type: str
    symbolic: bool = False
    size: int | None = None


class CallTarget(NamedTuple):
    """What a call resolved to: ``kind`` is ``process`` (a K call; ``name`` the process key),
    ``cross`` (a call through bind number ``bind``), ``quantum`` (a ``q::`` operation; a gate's
    qubit ``indices`` and ``angles``) or ``decision`` (a ``phi::`` decision variable)."""

    kind: str
    name: str
    bind: int = -1
    indices: tuple[int, ...] = ()
    angles: tuple[float | None, ...] = ()


@dataclass
class Annotations:
    """The checker's findings about the syntax tree, keyed by node identity (``id``; the
    :class:`CheckedProgram` keeps the tree alive): each expression's type, whether it is
    symbolic and its register size (only where it is); the slot of each name, ``let``,
    assignment, ``for`` and ``prove``; the type a ``let`` binds; each call's target."""

    types: dict[int, str] = field(default_factory=dict)
    symbolic: set[int] = field(default_factory=set)
    sizes: dict[int, int] = field(default_factory=dict)
    slots: dict[int, int] = field(default_factory=dict)
    let_types: dict[int, str] = field(default_factory=dict)
    calls: dict[int, CallTarget] = field(default_factory=dict)
    constants: dict[int, Any] = field(default_factory=dict)  # a name that is a `const`


@dataclass
class ProcInfo:
    """What the checker learned about one process (used by the DIR builder)."""

    proc: ast.Proc
    key: str
    returns: str
    effects: set[str] = field(default_factory=set)  # direct effects
    calls: list[tuple[str, Span, bool]] = field(default_factory=list)  # (key, span, in expr)
    cross: list[tuple[str, int]] = field(default_factory=list)  # (target key, bind index)
    slots: int = 0
    qubits: int = 0
    has_while: Span | None = None
    param_types: list[str] = field(default_factory=list)
    all_effects: set[str] = field(default_factory=set)  # transitive (K→K calls)


@dataclass
class CheckedProgram:
    """The result of checking: diagnostics, process summaries, shapes, binds, and the
    annotated syntax tree."""

    diagnostics: list[Diagnostic]
    procs: dict[str, ProcInfo]
    shapes: dict[str, list[tuple[str, str]]]
    binds: list[dict[str, Any]]
    program: ast.Program
    annotations: Annotations

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def proc_key(regime: str, name: str) -> str:
    """``K::main``: how processes are named in diagnostics, DIR and traces."""
    return f"{regime}::{name}"


class _Checker:
    def __init__(self, program: ast.Program, profile: str | None) -> None:
        self.program = program
        self.profile = profile
        self.diagnostics: list[Diagnostic] = []
        self.shapes: dict[str, list[tuple[str, str]]] = {}
        self.procs: dict[str, ProcInfo] = {}
        self.binds: list[dict[str, Any]] = []
        self.bind_index: dict[tuple[str, str], int] = {}
        self.annotations = Annotations()
        self.linear_shapes: set[str] = set()
        self.known_cells: dict[str, int] = {}
        self.by_name: dict[str, list[str]] = {}  # process name -> keys, in every regime
        # Modules: (forge, regime, name) -> key, and (regime, name) -> keys in every forge.
        self.by_forge: dict[tuple[str | None, str, str], str] = {}
        self.by_regime_name: dict[tuple[str, str], list[str]] = {}
        self.forges: set[str | None] = set(program.forges)
        # Constants: (forge, name) -> (type, value), folded where they are used.
        self.consts: dict[tuple[str | None, str], tuple[str, Any]] = {}
        self.return_conflicts: dict[str, str] = {}  # key -> message, from return inference
        # Linear-value Q processes (the spec's examples): no q:: operation and no `observe`;
        # every value in them is linear by regime, and they return what they compute.
        self.linear_q: set[str] = set()

    def error(self, code: str, message: str, span: Span) -> None:
        self.diagnostics.append(Diagnostic(code, message, span))

    # ------------------------------------------------------------------ declarations

    def run(self) -> CheckedProgram:
        for shape in self.program.shapes:
            if shape.name in self.shapes or normalize_type(shape.name) is not None:
                self.error("R106", f"shape {shape.name!r} is declared twice", shape.span)
                continue
            self.shapes[shape.name] = []
        for shape in self.program.shapes:
            fields: list[tuple[str, str]] = []
            seen: set[str] = set()
            for name, declared, span in shape.fields:
                if name in seen:
                    self.error("R106", f"field {name!r} is declared twice", span)
                seen.add(name)
                fields.append((name, self.resolve_type(declared)))
            if self.shapes.get(shape.name) == []:
                self.shapes[shape.name] = fields
        self.linear_shapes = self.find_linear_shapes()
        self.declare_consts()
        forges_of: dict[tuple[str, str], set[str | None]] = {}
        for proc in self.program.procs:
            forges_of.setdefault((proc.regime, proc.name), set()).add(proc.forge)
        for proc in self.program.procs:
            key = proc_key(proc.regime, proc.name)
            if len(forges_of[(proc.regime, proc.name)]) > 1:
                # The same name in several forges (modules): each is known by its forge.
                key = proc_key(proc.regime, f"{proc.forge or '_'}.{proc.name}")
            if key in self.procs:
                self.error("R106", f"process {key} is declared twice", proc.name_span)
                continue
            if proc.returns:
                returns = self.resolve_type(proc.returns)
            else:
                returns = _INFER if proc.regime == "K" and _returns_value(proc.body) else "Unit"
            self.procs[key] = ProcInfo(proc, key, returns)
            if proc.regime == "Q" and not _quantum_body(proc.body):
                self.linear_q.add(key)
            self.by_name.setdefault(proc.name, []).append(key)
            self.by_forge[(proc.forge, proc.regime, proc.name)] = key
            self.by_regime_name.setdefault((proc.regime, proc.name), []).append(key)
        for bind in self.program.binds:
            self.check_bind(bind)
        pending = [info for info in self.procs.values() if info.returns == _INFER]
        for info in pending:
            info.returns = ANY  # until inferred (a recursive call sees Any)
        for info in self.inference_order(pending):
            self.infer_returns(info)
        for info in list(self.procs.values()):
            _ProcChecker(self, info).run()
        self.close_effects()
        self.check_bind_effects()
        if self.profile == "kernel":
            self.kernel_profile()
        return CheckedProgram(
            self.diagnostics, self.procs, self.shapes, self.binds, self.program, self.annotations
        )

    # ------------------------------------------------------------------ modules, constants

    def resolve_proc(
        self, regime: str, name: str, context: str | None, forge: str | None = None
    ) -> str | None:
        """The key of process ``regime::name`` as seen from forge ``context``: the process of
        forge ``forge`` when qualified (``Forge::K::name``), else the one of the caller's own
        forge, else the only one of that name; None when there is none (or several: the
        caller reports R195 through :meth:`ambiguous`)."""
        if forge is not None:
            return self.by_forge.get((forge, regime, name))
        own = self.by_forge.get((context, regime, name))
        if own is not None:
            return own
        keys = self.by_regime_name.get((regime, name), [])
        return keys[0] if len(keys) == 1 else None

    def ambiguous(self, regime: str, name: str) -> list[str]:
        """The keys of ``regime::name`` when more than one forge declares it."""
        keys = self.by_regime_name.get((regime, name), [])
        return keys if len(keys) > 1 else []

    def bound_targets(self, source: str, name: str) -> list[str]:
        """The targets named ``name`` of the binds from process ``source`` (a call by plain
        name is resolved through the bind that declares it, §3.19 and §4.6)."""
        found: list[str] = []
        for bind in self.binds:
            target = self.procs.get(bind["target"])
            if (
                bind["source"] == source
                and target is not None
                and target.proc.name == name
                and bind["target"] not in found
            ):
                found.append(bind["target"])
        return found

    def declare_consts(self) -> None:
        """Fold every ``const`` item, in source order (a constant may use earlier ones)."""
        for item in self.program.consts:
            key = (item.forge, item.name)
            if key in self.consts:
                self.error("R106", f"constant {item.name!r} is declared twice", item.name_span)
                continue
            folded = self.fold(item.value, item.forge)
            if folded is None:
                self.consts[key] = (ANY, 0)
                continue
            type_name, value = folded
            if item.declared is not None:
                declared = self.resolve_type(item.declared)
                if declared not in (ANY, type_name):
                    self.error("T201", f"expected {declared}, found {type_name}", item.value.span)
                width = INT_WIDTHS.get(item.declared.name)
                if width is not None and isinstance(value, int) and not isinstance(value, bool):
                    bits, signed = width
                    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
                    if not low <= value < high:
                        self.error(
                            "T297",
                            f"constant {item.name} = {value} does not fit {item.declared.name}",
                            item.value.span,
                        )
            self.consts[key] = (type_name, value)

    def find_const(
        self, name: str, context: str | None, forge: str | None = None
    ) -> tuple[str, Any] | None:
        """Constant ``name`` as seen from forge ``context`` (own forge, then top level, then
        the only forge that declares it), or of forge ``forge`` when qualified."""
        if forge is not None:
            return self.consts.get((forge, name))
        for scope in (context, None):
            if (scope, name) in self.consts:
                return self.consts[(scope, name)]
        found = [value for (scope, other), value in self.consts.items() if other == name]
        return found[0] if len(found) == 1 else None

    def fold(self, expr: ast.Expr, context: str | None) -> tuple[str, Any] | None:
        """The type and value of a constant expression (literals, constants, operators), or
        None after a T295 diagnostic."""
        if isinstance(expr, ast.Literal):
            return LITERAL_TYPES[expr.kind], expr.value
        if isinstance(expr, ast.Name):
            found = self.find_const(expr.name, context, expr.forge)
            if found is None:
                self.error("T295", f"{expr.name!r} is not a constant", expr.span)
            return found
        if isinstance(expr, ast.Unary):
            inner = self.fold(expr.operand, context)
            if inner is None:
                return None
            type_name, value = inner
            if expr.op == "!" and type_name == "Bool":
                return "Bool", not value
            if expr.op == "-" and type_name in _NUMERIC:
                return type_name, -value
            if expr.op == "~" and type_name == "Int":
                return "Int", ~value
            self.error("T295", f"'{expr.op}' does not apply to {type_name}", expr.span)
            return None
        if isinstance(expr, ast.Binary):
            left = self.fold(expr.left, context)
            right = self.fold(expr.right, context)
            if left is None or right is None:
                return None
            if left[0] != right[0] or left[0] not in ("Int", "Float", "Bool", "String"):
                self.error("T295", f"'{expr.op}' on {left[0]} and {right[0]}", expr.span)
                return None
            try:
                value = concrete_binary(expr.op, left[1], right[1])
            except (DplRuntimeFailure, TypeError, ValueError) as error:
                self.error("T295", f"constant expression fails: {error}", expr.span)
                return None
            result = "Bool" if isinstance(value, bool) else left[0]
            return result, value
        self.error("T295", "a constant must be a literal, a constant or an operator", expr.span)
        return None

    def inference_order(self, pending: list[ProcInfo]) -> list[ProcInfo]:
        """``pending`` with every process after the K processes it calls (a depth-first
        postorder of the call graph, iterative: no recursion however long a call chain)."""
        wanted = {info.key: info for info in pending}
        done: set[str] = set()
        order: list[ProcInfo] = []
        for root in pending:
            if root.key in done:
                continue
            done.add(root.key)
            stack: list[tuple[ProcInfo, list[str]]] = [(root, self.callees(root))]
            while stack:
                info, callees = stack[-1]
                if callees:
                    callee = callees.pop()
                    if callee in wanted and callee not in done:
                        done.add(callee)
                        stack.append((wanted[callee], self.callees(wanted[callee])))
                    continue
                stack.pop()
                order.append(info)
        return order

    def callees(self, info: ProcInfo) -> list[str]:
        """The keys of the K processes ``info``'s body calls (by syntax, before checking)."""
        found: list[str] = []
        for call in _calls(info.proc.body):
            if call.namespace in (None, "K"):
                key = self.resolve_proc("K", call.name, info.proc.forge, call.forge)
                if key is not None:
                    found.append(key)
        return found

    def infer_returns(self, info: ProcInfo) -> None:
        """The return type of a K process that declares none but returns values: the type of
        its `return` values, found by checking its body once without reporting (callees are
        inferred first, see :meth:`inference_order`; a recursive call counts as Any)."""
        scratch = copy.copy(self)
        scratch.diagnostics = []
        scratch.annotations = Annotations()
        shadow = ProcInfo(info.proc, info.key, ANY)
        checker = _ProcChecker(scratch, shadow)
        checker.run()
        found = sorted({t for t in checker.returned if t != ANY})
        if len(found) == 1:
            info.returns = found[0]
        elif len(found) > 1:
            self.return_conflicts[info.key] = (
                f"{info.key} returns values of different types ({', '.join(found)}); "
                "declare its return type"
            )

    def resolve_type(self, ref: ast.TypeRef) -> str:
        if ref.name == "array" and ref.args:
            return f"{self.resolve_type(ref.args[0])}[{ref.size}]"
        primitive = normalize_type(ref.name)
        if primitive is not None:
            return primitive
        if ref.name in self.shapes:
            return ref.name
        self.error("T204", f"unknown type {ref.name!r}", ref.span)
        return ANY

    def find_linear_shapes(self) -> set[str]:
        """The shapes that hold a linear value, directly or through other shapes and arrays.

        Computed once, by propagation from the shapes holding a linear primitive to the shapes
        that hold those (each shape is visited once: no recursion, and no path explosion over
        shapes that share field types)."""
        holders: dict[str, list[str]] = {}
        linear: set[str] = set()
        pending: list[str] = []
        for name, fields in self.shapes.items():
            for _, type_name in fields:
                base = type_name.split("[", 1)[0]
                if base in LINEAR_PRIMITIVES:
                    if name not in linear:
                        linear.add(name)
                        pending.append(name)
                else:
                    holders.setdefault(base, []).append(name)
        while pending:
            for holder in holders.get(pending.pop(), ()):
                if holder not in linear:
                    linear.add(holder)
                    pending.append(holder)
        return linear

    def value_fits(self, type_name: str, span: Span) -> bool:
        """Whether values of ``type_name`` (built by an array literal) stay within the bounds:
        at most ``dpl_type_depth_max`` nested arrays and ``dpl_value_cells_max`` cells. A
        chain of ``let``s can nest or double an array at each step; past the bounds, comparing
        or storing such values could take unbounded work (P004 otherwise)."""
        depth = type_name.count("[")
        if depth > _TYPE_MAX:
            self.error(
                LIMIT_CODE,
                limit_message("dpl_type_depth_max", f"an array nested {depth} levels deep"),
                span,
            )
            return False
        cells = self.cells(type_name)
        if cells > _CELLS_MAX:
            self.error(
                LIMIT_CODE,
                limit_message("dpl_value_cells_max", f"an array of more than {_CELLS_MAX} cells"),
                span,
            )
            return False
        return True

    def cells(self, type_name: str) -> int:
        """The scalar cells of a value of ``type_name`` (capped just above the bound)."""
        base, _, suffix = type_name.partition("[")
        count = self.shape_cells(base)
        for size in suffix.replace("]", "").split("["):
            if size.isdigit():
                count = min(count * int(size), _CELLS_MAX + 1)
        return count

    def shape_cells(self, name: str) -> int:
        """The cells of a value of shape ``name`` (1 for any other type), computed once per
        shape with an explicit stack; a shape that contains itself counts that field as 1."""
        known = self.known_cells
        pending = [name]
        visiting: set[str] = set()
        while pending:
            current = pending[-1]
            fields = self.shapes.get(current)
            if current in known or fields is None:
                known.setdefault(current, 1)
                pending.pop()
                continue
            inner = [t.partition("[")[0] for _, t in fields]
            missing = [b for b in inner if b in self.shapes and b not in known]
            if missing and current not in visiting:
                visiting.add(current)
                pending.extend(b for b in missing if b not in visiting)
                continue
            total = 0
            for _, type_name in fields:
                base, _, suffix = type_name.partition("[")
                count = known.get(base, 1)
                for size in suffix.replace("]", "").split("["):
                    if size.isdigit():
                        count = min(count * int(size), _CELLS_MAX + 1)
                total = min(total + count, _CELLS_MAX + 1)
            known[current] = max(total, 1)
            pending.pop()
        return known.get(name, 1)

    def is_linear(self, type_name: str) -> bool:
        base = type_name.split("[", 1)[0]
        return base in LINEAR_PRIMITIVES or base in self.linear_shapes

    # ------------------------------------------------------------------ binds

    def check_bind(self, bind: ast.Bind) -> None:
        ends: list[str] = []
        for ref in (bind.source, bind.target):
            key = self.resolve_proc(ref.regime, ref.name, bind.forge) or proc_key(
                ref.regime, ref.name
            )
            if key not in self.procs:
                others = self.by_name.get(ref.name, [])
                if others:
                    self.error(
                        "R105", f"bind names {key}, but the process is {others[0]}", ref.span
                    )
                else:
                    self.error("R103", f"bind names unknown process {key}", ref.span)
            ends.append(key)
        if ends[0] == ends[1]:
            self.error("R104", "a bind connects two different processes", bind.span)
        clauses: dict[str, dict[str, Any]] = {}
        for clause in bind.clauses:
            spec = CLAUSES.get(clause.name)
            if spec is None:
                known = ", ".join(sorted(CLAUSES))
                self.error(
                    "C601", f"unknown contract clause {clause.name!r} (known: {known})", clause.span
                )
                continue
            operators, valid, description = spec
            if clause.name in clauses:
                self.error("C607", f"clause {clause.name!r} appears twice", clause.span)
                continue
            if clause.op not in operators:
                self.error(
                    "C603",
                    f"clause {clause.name!r} takes {sorted(operators)}, not {clause.op!r}",
                    clause.span,
                )
                continue
            if not valid(clause.value):
                self.error("C602", f"clause {clause.name!r} needs {description}", clause.span)
                continue
            clauses[clause.name] = {"op": clause.op, "value": clause.value}
        target_regime = bind.target.regime
        if clauses.get("linearity_enforced", {}).get("value") is False and "Q" in (
            bind.source.regime,
            target_regime,
        ):
            self.error("C606", "a bind to or from a Q process cannot relax linearity", bind.span)
        index = len(self.binds)
        self.binds.append(
            {"source": ends[0], "target": ends[1], "contract": clauses, "span": bind.span}
        )
        self.bind_index.setdefault((ends[0], ends[1]), index)

    def check_bind_effects(self) -> None:
        for bind in self.binds:
            self.check_device_clauses(bind)
            target = self.procs.get(bind["target"])
            source = self.procs.get(bind["source"])
            if target is None or bind["source"] == bind["target"]:
                continue  # contracts govern every bind, K -> K included (§10.12)
            if target.proc.regime == "K" and (source is None or source.proc.regime != "K"):
                continue  # only K starts calls: such a bind never carries the K target's work
            effects = set(target.all_effects)
            if target.proc.regime == "Q":
                effects.discard("observe")  # a Q result crosses as governed by `observation`
            allowed = bind["contract"].get("effects_allowed", {}).get("value", False)
            permitted = set(_EFFECTS) if allowed is True else set(allowed or [])
            refused = sorted(effects - permitted)
            if refused:
                self.error(
                    "C604",
                    f"{bind['target']} performs {', '.join(refused)} but the contract's "
                    f"effects_allowed does not permit it",
                    bind["span"],
                )
            if target.returns == "Witness" and not bind["contract"].get("witness_transfer", {}).get(
                "value", False
            ):
                self.error(
                    "C605",
                    f"{bind['target']} returns a witness; the contract needs "
                    "'witness_transfer == true'",
                    bind["span"],
                )

    def check_device_clauses(self, bind: dict[str, Any]) -> None:
        """Clauses that describe a Q device or a Q result belong on a bind with a Q process at
        one end (``C608``); ``observable`` goes with ``observation == expectation``."""
        target = self.procs.get(bind["target"])
        source = self.procs.get(bind["source"])
        if target is None or source is None:
            return
        contract = bind["contract"]
        if "Q" not in (target.proc.regime, source.proc.regime):
            for name in sorted(Q_CLAUSES & set(contract)):
                self.error(
                    "C608",
                    f"clause {name!r} applies to a bind to a Q process, not to {bind['target']}",
                    bind["span"],
                )
            return
        expectation = contract.get("observation", {}).get("value") == "expectation"
        if "observable" in contract and not expectation:
            self.error(
                "C608",
                "clause 'observable' needs 'observation == expectation'",
                bind["span"],
            )

    def close_effects(self) -> None:
        # Effects flow from callee to caller: a worklist over the reversed call graph, so each
        # process is revisited only when its set grows (at most three times), never a pass over
        # every process per step of a long call chain.
        callers: dict[str, list[ProcInfo]] = {}
        for info in self.procs.values():
            info.all_effects = set(info.effects)
            for callee, _, _ in info.calls:
                callers.setdefault(callee, []).append(info)
        pending = [info for info in self.procs.values() if info.all_effects]
        while pending:
            info = pending.pop()
            for caller in callers.get(info.key, ()):
                if not info.all_effects <= caller.all_effects:
                    caller.all_effects |= info.all_effects
                    pending.append(caller)

    def kernel_profile(self) -> None:
        graph = {key: {c for c, _, _ in info.calls} for key, info in self.procs.items()}
        recursive = _on_cycles(graph)
        for key, info in self.procs.items():
            if info.has_while is not None:
                self.error(
                    "K801",
                    f"{key}: 'while' loops are unbounded; use 'for i in a..b'",
                    Span(info.has_while.start, info.has_while.start + 5),
                )
            # A process that can reach itself through calls recurses.
            if key in recursive:
                self.error(
                    "K802",
                    f"{key} is recursive; the kernel profile forbids recursion",
                    info.proc.name_span,
                )
            for callee, span, in_expression in info.calls:
                target = self.procs.get(callee)
                if in_expression and target is not None and target.all_effects:
                    self.error(
                        "K803",
                        f"call to {callee} hides effects inside an expression; "
                        "call it as a statement",
                        span,
                    )


def _quantum_body(block: ast.Block) -> bool:
    """Whether a Q body allocates, transforms or observes qubits (a circuit process); one that
    does none of these is a linear-value process (the spec's examples of §4.4 and §5.6)."""
    return any(
        (isinstance(node, ast.Effect) and node.kind == "observe")
        or (isinstance(node, ast.Call) and node.namespace == "q")
        for node in _nodes(block)
    )


def _calls(block: ast.Block) -> list[ast.Call]:
    """Every call in a body, in no particular order."""
    return [node for node in _nodes(block) if isinstance(node, ast.Call)]


def _nodes(block: ast.Block) -> list[Any]:
    """Every block, statement and expression of a body, walked iteratively (a deep body cannot
    exhaust the stack)."""
    nodes: list[Any] = []
    pending: list[Any] = [block]
    while pending:
        item = pending.pop()
        nodes.append(item)
        if isinstance(item, ast.Block):
            pending.extend(item.statements)
            if item.tail is not None:
                pending.append(item.tail)
        elif isinstance(item, ast.Effect):
            pending.append(item.value)
        elif isinstance(item, ast.Call):
            pending.extend(item.args)
        elif isinstance(item, ast.Let | ast.Assign | ast.Return | ast.ExprStmt):
            value = getattr(item, "value", None)
            if value is not None:
                pending.append(value)
        elif isinstance(item, ast.If):
            pending.extend([item.condition, item.then])
            if item.otherwise is not None:
                pending.append(item.otherwise)
        elif isinstance(item, ast.While):
            pending.extend([item.condition, item.body])
        elif isinstance(item, ast.For):
            pending.extend([item.low, item.high, item.body])
        elif isinstance(item, ast.Binary):
            pending.extend([item.left, item.right])
        elif isinstance(item, ast.Unary):
            pending.append(item.operand)
        elif isinstance(item, ast.Field):
            pending.append(item.target)
        elif isinstance(item, ast.Index):
            pending.extend([item.target, item.index])
        elif isinstance(item, ast.ArrayLit):
            pending.extend(item.items)
        elif isinstance(item, ast.ShapeLit):
            pending.extend(value for _, value, _ in item.fields)
        elif isinstance(item, ast.Interp):
            pending.extend(part for part in item.parts if not isinstance(part, str))
    return nodes


def _returns_value(block: ast.Block) -> bool:
    """Whether a body has a ``return`` with a value anywhere (its return type is inferred)."""
    pending: list[ast.Block] = [block]
    while pending:
        current = pending.pop()
        for statement in current.statements:
            if isinstance(statement, ast.Return) and statement.value is not None:
                return True
            if isinstance(statement, ast.If):
                pending.append(statement.then)
                if statement.otherwise is not None:
                    pending.append(statement.otherwise)
            elif isinstance(statement, ast.While | ast.For):
                pending.append(statement.body)
    return False


def _on_cycles(graph: dict[str, set[str]]) -> set[str]:
    """The nodes of ``graph`` that can reach themselves (Tarjan's strongly connected
    components, iteratively: linear in the graph, and no recursion however long a chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            if successors:
                child = successors.pop()
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.update(component)
    return found


class _ProcChecker:
    def __init__(self, checker: _Checker, info: ProcInfo) -> None:
        self.c = checker
        self.info = info
        self.proc = info.proc
        self.regime = info.proc.regime
        self.scopes: list[dict[str, _Var]] = [{}]
        self.loop_depth = 0
        self.branch_depth = 0
        self.witnessed = False
        # What a Φ process states: "constraints" (decision variables and `constrain`) or
        # "problem" (one phi::maxcut/ising/qubo problem); the two do not mix (W505).
        self.phi_form: str | None = None
        self.qubits_budget: int | None = None
        self.notes = checker.annotations
        self.types = checker.annotations.types
        self.returned: list[str] = []  # the types of explicit `return` values (inference)
        self.linear_values = info.key in checker.linear_q

    def error(self, code: str, message: str, span: Span) -> None:
        self.c.error(code, message, span)

    # ------------------------------------------------------------------ scopes

    def declare(
        self,
        name: str,
        type_name: str,
        span: Span,
        mutable: bool = False,
        parameter: bool = False,
    ) -> _Var:
        # A value is linear by its type; in a K or Φ process marked `linear`, every parameter is
        # linear too (used exactly once), whatever its type.
        linear = (
            self.c.is_linear(type_name)
            or (parameter and self.proc.linear and self.regime != "Q")
            or self.linear_values
        )
        previous = self.scopes[-1].get(name)
        if previous is not None and previous.linear and not previous.consumed:
            self.error("N302", f"linear value {name!r} is shadowed before it is used", span)
            previous.consumed = True
        var = _Var(
            name,
            type_name,
            self.info.slots,
            mutable,
            linear,
            span,
            self.loop_depth,
            self.branch_depth,
        )
        self.info.slots += 1
        self.scopes[-1][name] = var
        return var

    def lookup(self, name: str) -> _Var | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def push(self) -> None:
        self.scopes.append({})

    def pop(self) -> None:
        for var in self.scopes.pop().values():
            if var.linear and not var.consumed:
                self.error("N302", f"linear value {var.name!r} is never consumed", var.span)

    # ------------------------------------------------------------------ process

    def run(self) -> None:
        proc = self.proc
        for resource in proc.uses:
            self.check_resource(resource)
        for param in proc.params:
            type_name = self.c.resolve_type(param.declared)
            var = self.declare(param.name, type_name, param.span, parameter=True)
            self.info.param_types.append(type_name)
            if self.regime == "Q" and not var.linear and not q_classical(type_name):
                self.error(
                    "N304", f"parameter {param.name!r} of a Q process must be linear", param.span
                )
        if (
            self.regime == "Q"
            and not self.linear_values
            and self.info.returns not in ("Unit", "Bits", ANY)
        ):
            self.error(
                "T201",
                "a Q process returns its measured bits: declare '-> Bits' or nothing",
                proc.returns.span if proc.returns else proc.name_span,
            )
        self.block(proc.body, tail_returns=True)
        self.pop()
        conflict = self.c.return_conflicts.get(self.info.key)
        if conflict is not None:
            self.error("T201", conflict, proc.name_span)
        if self.linear_values and self.info.returns not in ("Unit", ANY):
            if not self.returns_on_all_paths(proc.body, tail_returns=True):
                self.error(
                    "S701",
                    f"{self.info.key} declares '-> {self.info.returns}' but never returns",
                    proc.name_span,
                )
        elif self.regime == "Q" and "observe" not in self.info.effects:
            self.error(
                "R104",
                f"{self.info.key} never observes a register; a Q process's result is what it "
                "measures",
                proc.name_span,
            )
        if self.regime == "Φ" and not self.witnessed:
            self.error(
                "W502", f"{self.info.key} never proves a witness ('prove w from …')", proc.name_span
            )
        if (
            self.regime != "Q"
            and self.info.returns not in ("Unit", ANY)
            and not self.returns_on_all_paths(proc.body, tail_returns=True)
        ):
            self.error(
                "S701",
                f"{self.info.key} declares '-> {self.info.returns}' but some "
                "path ends without 'return'",
                proc.name_span,
            )

    def check_resource(self, resource: ast.Resource) -> None:
        allowed = RESOURCES[self.regime]
        spec = allowed.get(resource.name)
        if spec is None:
            self.error(
                "S702",
                f"{self.regime} processes may use {sorted(allowed)}, not {resource.name!r}",
                resource.span,
            )
            return
        for key, value in resource.arguments.items():
            kind = spec.get(key)
            if (
                kind is None
                or not isinstance(value, kind)
                or (isinstance(value, bool) and kind is not bool)
            ):
                self.error(
                    "S702",
                    f"resource {resource.name!r} takes {sorted(spec)}; "
                    f"{key} = {value!r} is not valid",
                    resource.span,
                )
        device = resource.arguments.get("device", "stdout")
        if resource.name == "Console" and device != "stdout":
            self.error(
                "S702",
                f'Console(device = {device!r}) is not available: a run\'s console is "stdout"',
                resource.span,
            )
        if resource.name == "qubits":
            count = resource.arguments.get("n")
            self.qubits_budget = count if isinstance(count, int) else None

    def returns_on_all_paths(self, block: ast.Block, tail_returns: bool) -> bool:
        # A block returns when one of its statements is a `return`, or an `if` whose branches
        # both return, or (in tail position, outside Q) when it ends with a tail value; the
        # same blocks whose DIR ends in a `return` (see `_build.py`).
        statements = block.statements
        for index, statement in enumerate(statements):
            if isinstance(statement, ast.Return):
                return True
            if isinstance(statement, ast.If) and statement.otherwise is not None:
                tail = tail_returns and index == len(statements) - 1 and block.tail is None
                if self.returns_on_all_paths(statement.then, tail) and self.returns_on_all_paths(
                    statement.otherwise, tail
                ):
                    return True
        return block.tail is not None and tail_returns and self.regime != "Q"

    # ------------------------------------------------------------------ statements

    def block(self, block: ast.Block, tail_returns: bool = False) -> None:
        statements = block.statements
        for index, statement in enumerate(statements):
            last = index == len(statements) - 1 and block.tail is None
            self.statement(statement, tail_returns and last)
        if block.tail is not None:
            if tail_returns and self.regime != "Q":
                self.return_statement(ast.Return(block.tail.span, block.tail, True))
            else:
                self.expr(block.tail)

    def nested(self, block: ast.Block, tail_returns: bool, loop: bool) -> None:
        self.push()
        if loop:
            self.loop_depth += 1
        else:
            self.branch_depth += 1
        try:
            self.block(block, tail_returns)
        finally:
            if loop:
                self.loop_depth -= 1
            else:
                self.branch_depth -= 1
            self.pop()

    def statement(self, statement: ast.Stmt, tail: bool) -> None:
        if isinstance(statement, ast.Let):
            return self.let(statement)
        if isinstance(statement, ast.Assign):
            var = self.lookup(statement.name)
            type_name = self.expr(statement.value).type
            if var is None:
                self.error(
                    "T202", f"assignment to undeclared name {statement.name!r}", statement.name_span
                )
                return None
            if not var.mutable:
                self.error(
                    "T205",
                    f"{statement.name!r} is immutable; declare it with 'mut let'",
                    statement.name_span,
                )
            self.expect_type(var.type, type_name, statement.value.span)
            self.notes.slots[id(statement)] = var.slot
            return None
        if isinstance(statement, ast.Constrain):
            return self.constrain(statement)
        if isinstance(statement, ast.Prove):
            return self.prove(statement)
        if isinstance(statement, ast.Effect):
            return self.effect(statement)
        if isinstance(statement, ast.Return):
            return self.return_statement(statement)
        if isinstance(statement, ast.If):
            if self.regime != "K":
                self.error(
                    "R104", f"'if' is not permitted in {self.regime} processes", statement.span
                )
            condition_type = self.expr(statement.condition).type
            self.expect_type("Bool", condition_type, statement.condition.span)
            self.nested(statement.then, tail, loop=False)
            if statement.otherwise is not None:
                self.nested(statement.otherwise, tail, loop=False)
            return None
        if isinstance(statement, ast.While):
            if self.regime != "K":
                self.error(
                    "R104", f"'while' is not permitted in {self.regime} processes", statement.span
                )
            if self.info.has_while is None:
                self.info.has_while = statement.span
            condition_type = self.expr(statement.condition).type
            self.expect_type("Bool", condition_type, statement.condition.span)
            self.nested(statement.body, False, loop=True)
            return None
        if isinstance(statement, ast.For):
            if self.regime != "K":
                self.error(
                    "R104", f"'for' is not permitted in {self.regime} processes", statement.span
                )
            low_type = self.expr(statement.low).type
            high_type = self.expr(statement.high).type
            self.expect_type("Int", low_type, statement.low.span)
            self.expect_type("Int", high_type, statement.high.span)
            self.push()
            self.loop_depth += 1
            var = self.declare(statement.name, "Int", statement.name_span)
            self.notes.slots[id(statement)] = var.slot
            self.block(statement.body)
            self.loop_depth -= 1
            self.pop()
            return None
        if isinstance(statement, ast.Break | ast.Continue):
            word = "break" if isinstance(statement, ast.Break) else "continue"
            if self.loop_depth == 0:
                self.error("T208", f"'{word}' outside a loop", statement.span)
            return None
        if isinstance(statement, ast.ExprStmt):
            self.expr(statement.value, statement=True)
            return None
        raise AssertionError(f"unknown statement {type(statement).__name__}")

    def let(self, statement: ast.Let) -> None:
        value = statement.value
        phi_var = is_decision(statement, self.regime)
        facts = self.expr(value, let_binding=phi_var)
        type_name = facts.type
        if statement.declared is not None:
            declared = self.c.resolve_type(statement.declared)
            self.expect_type(declared, type_name, value.span)
            type_name = declared if declared != ANY else type_name
        if type_name == "Unit":
            self.error("T201", "cannot bind a value of type Unit", value.span)
        if phi_var and self.witnessed:
            self.error(
                "W501", "decision variables must be declared before the witness", statement.span
            )
        var = self.declare(statement.name, type_name, statement.name_span, statement.mutable)
        var.symbolic = phi_var or facts.symbolic
        var.qsize = facts.size
        if (
            self.regime == "Q"
            and not var.linear
            and type_name != ANY
            and not q_classical(type_name)
        ):
            self.error(
                "N304",
                f"{statement.name!r} has type {type_name}; Q processes hold only linear values",
                statement.name_span,
            )
        if statement.mutable and self.regime != "K":
            self.error(
                "R104", "mutable bindings are permitted only in K processes", statement.name_span
            )
        elif var.linear and statement.mutable:
            self.error("N301", "a linear value cannot be mutable", statement.name_span)
        self.notes.slots[id(statement)] = var.slot
        self.notes.let_types[id(statement)] = type_name

    def constrain(self, statement: ast.Constrain) -> None:
        if self.regime != "Φ":
            self.error("R104", "'constrain' is permitted only in Φ processes", statement.span)
        if self.witnessed:
            self.error(
                "W501", "a constraint after the witness is not covered by it", statement.span
            )
        self.phi_state("constraints", statement.span)
        type_name = self.expr(statement.condition, constraint=True).type
        if type_name not in ("Bool", ANY):
            self.error(
                "W503", f"a constraint must be Bool, not {type_name}", statement.condition.span
            )

    def prove(self, statement: ast.Prove) -> None:
        if self.regime != "Φ":
            self.error("R104", "'prove' is permitted only in Φ processes", statement.span)
        self.expr(statement.source, constraint=True)
        if self.witnessed:
            self.error("W501", "a Φ process proves one witness", statement.span)
        self.witnessed = True
        var = self.declare(statement.name, "Witness", statement.name_span)
        for scope in self.scopes:
            for other in scope.values():
                other.symbolic = False
        self.notes.slots[id(statement)] = var.slot

    def effect(self, statement: ast.Effect) -> None:
        kind = statement.kind
        if self.regime == "Q" and kind != "observe":
            self.error(
                "F402",
                f"'{kind}' is not permitted in Q processes; a Q process "
                "observes (measures) its qubits",
                statement.span,
            )
        if self.regime == "Φ" and not self.witnessed:
            self.error(
                "F401",
                f"'{kind}' in a Φ process needs a witness first ('prove w from …')",
                statement.span,
            )
        type_name = self.expr(statement.value).type
        if self.regime == "Q" and kind == "observe" and type_name not in ("Qubits", ANY):
            self.error(
                "T201", f"a Q process observes qubits, not {type_name}", statement.value.span
            )
        if type_name == "Unit":
            self.error("T201", f"cannot {kind} a value of type Unit", statement.value.span)
        self.info.effects.add(kind)

    def return_statement(self, statement: ast.Return) -> None:
        expected = self.info.returns
        if self.regime == "Q" and not self.linear_values:
            self.error(
                "R104", "a Q process returns what it observes; 'return' is not used", statement.span
            )
        if self.regime == "Φ" and not self.witnessed and statement.value is not None:
            self.error(
                "W501", "a Φ result needs a witness first ('prove w from …')", statement.span
            )
        if statement.value is None:
            if expected not in ("Unit", ANY):
                self.error("T201", f"missing return value of type {expected}", statement.span)
            return
        type_name = self.expr(statement.value).type
        if not statement.implicit:
            self.returned.append(type_name)
        if expected == "Unit" and not statement.implicit:
            self.error(
                "T201",
                f"{self.info.key} declares no return type but returns {type_name}",
                statement.value.span,
            )
        elif expected != "Unit":
            self.expect_type(expected, type_name, statement.value.span)

    # ------------------------------------------------------------------ expressions

    def expect_type(self, expected: str, actual: str, span: Span) -> None:
        if ANY in (expected, actual) or expected == actual:
            return
        self.error("T201", f"expected {expected}, found {actual}", span)

    def expr(
        self,
        expr: ast.Expr,
        statement: bool = False,
        constraint: bool = False,
        let_binding: bool = False,
    ) -> Facts:
        facts = self._expr(expr, statement, constraint, let_binding)
        # Only the type is kept for every expression; the rare facts only where they hold
        # (fewer long-lived objects: the front-end's speed is mostly the garbage collector's).
        key = id(expr)
        self.types[key] = facts.type
        if facts.symbolic:
            self.notes.symbolic.add(key)
        if facts.size is not None:
            self.notes.sizes[key] = facts.size
        return facts

    def _expr(self, expr: ast.Expr, statement: bool, constraint: bool, let_binding: bool) -> Facts:
        if isinstance(expr, ast.Literal):
            return Facts(LITERAL_TYPES[expr.kind])
        if isinstance(expr, ast.Name):
            return self.name(expr)
        if isinstance(expr, ast.Unary):
            operand = self.expr(expr.operand, constraint=constraint)
            wanted = "Bool" if expr.op == "!" else None
            if expr.op == "~":
                if operand.symbolic:
                    self.error("W504", "'~' on decision variables cannot be expressed", expr.span)
                self.expect_type("Int", operand.type, expr.operand.span)
                return Facts("Int")
            if wanted:
                self.expect_type("Bool", operand.type, expr.operand.span)
            elif operand.type not in (*_NUMERIC, ANY):
                self.error("T201", f"'-' needs Int or Float, found {operand.type}", expr.span)
            return Facts(wanted or operand.type, operand.symbolic)
        if isinstance(expr, ast.Binary):
            return self.binary(expr, constraint)
        if isinstance(expr, ast.Call):
            return self.call(expr, statement, let_binding)
        if isinstance(expr, ast.Interp):
            for part in expr.parts:
                if not isinstance(part, str):
                    type_name = self.expr(part).type
                    if type_name == "Unit" or self.c.is_linear(type_name):
                        self.error("T201", f"cannot show a value of type {type_name}", part.span)
            return Facts("String")
        if isinstance(expr, ast.ShapeLit):
            return self.shape_literal(expr)
        if isinstance(expr, ast.Field):
            type_name = self.expr(expr.target).type
            if type_name == "Witness":
                # A witness field is a proved decision variable: Int or Bool, known at run time.
                return Facts(ANY)
            fields = dict(self.c.shapes.get(type_name, []))
            if type_name == ANY:
                return Facts(ANY)
            if expr.name not in fields:
                self.error("T206", f"{type_name} has no field {expr.name!r}", expr.span)
                return Facts(ANY)
            return Facts(fields[expr.name])
        if isinstance(expr, ast.ArrayLit):
            items = [self.expr(item).type for item in expr.items]
            element = items[0] if items else ANY
            for type_name, item in zip(items, expr.items, strict=True):
                self.expect_type(element, type_name, item.span)
            result = f"{element}[{len(items)}]"
            if not self.c.value_fits(result, expr.span):
                return Facts(ANY)
            return Facts(result)
        if isinstance(expr, ast.Index):
            type_name = self.expr(expr.target).type
            index_type = self.expr(expr.index).type
            self.expect_type("Int", index_type, expr.index.span)
            if type_name == ANY:
                return Facts(ANY)
            if not type_name.endswith("]"):
                self.error("T201", f"cannot index a value of type {type_name}", expr.span)
                return Facts(ANY)
            return Facts(type_name[: type_name.rindex("[")])
        raise AssertionError(f"unknown expression {type(expr).__name__}")

    def name(self, expr: ast.Name) -> Facts:
        var = self.lookup(expr.name) if expr.forge is None else None
        if var is None:
            constant = self.c.find_const(expr.name, self.proc.forge, expr.forge)
            if constant is not None:
                self.notes.constants[id(expr)] = constant[1]
                return Facts(constant[0])
        if var is None:
            self.error("T202", f"undefined name {expr.name!r}", expr.span)
            return Facts(ANY)
        if var.linear:
            if var.consumed:
                self.error(
                    "N301",
                    f"linear value {expr.name!r} is used more than once "
                    "(linear values cannot be copied)",
                    expr.span,
                )
            elif var.loop_depth < self.loop_depth or var.branch_depth < self.branch_depth:
                self.error(
                    "N303",
                    f"linear value {expr.name!r} is consumed inside a loop or "
                    "branch it was not declared in",
                    expr.span,
                )
            var.consumed = True
        self.notes.slots[id(expr)] = var.slot
        return Facts(var.type, var.symbolic, var.qsize)

    def binary(self, expr: ast.Binary, constraint: bool) -> Facts:
        left = self.expr(expr.left, constraint=constraint)
        right = self.expr(expr.right, constraint=constraint)
        result = self.binary_type(expr, left, right)
        return Facts(result, left.symbolic or right.symbolic)

    def binary_type(self, expr: ast.Binary, left: Facts, right: Facts) -> str:
        left_type, right_type = left.type, right.type
        op = expr.op
        symbolic = left.symbolic or right.symbolic
        if symbolic and op in ("/", "%"):
            self.error(
                "W504",
                f"'{op}' on decision variables cannot be expressed as a constraint",
                expr.span,
            )
        if op in _BITWISE:
            return self.bitwise_type(expr, left, right)
        both = {left_type, right_type}
        if ANY in both:
            result = "Bool" if op in (*_COMPARISON, *_EQUALITY, "&&", "||") else ANY
            if result == ANY and len(both) == 2:
                result = (both - {ANY}).pop()
            return result
        if op in ("&&", "||"):
            self.expect_type("Bool", left_type, expr.left.span)
            self.expect_type("Bool", right_type, expr.right.span)
            return "Bool"
        if op in _EQUALITY:
            if left_type != right_type:
                self.error("T201", f"cannot compare {left_type} with {right_type}", expr.span)
            elif self.c.is_linear(left_type):
                self.error("T201", "linear values cannot be compared", expr.span)
            return "Bool"
        if op in _COMPARISON:
            if left_type != right_type or left_type not in _NUMERIC:
                self.error(
                    "T201",
                    f"'{op}' needs two Int or two Float operands, found "
                    f"{left_type} and {right_type}",
                    expr.span,
                )
            return "Bool"
        if op == "+" and left_type == right_type == "String":
            return "String"
        if op == "+" and symbolic and both <= {"Int", "Bool"}:
            return "Int"
        if left_type != right_type or left_type not in _NUMERIC:
            if symbolic and both <= {"Int", "Bool"} and op in ("-", "*"):
                return "Int"
            self.error(
                "T201",
                f"'{op}' needs two Int or two Float operands, found {left_type} and {right_type}",
                expr.span,
            )
            return ANY
        if op == "%" and left_type != "Int":
            self.error("T201", "'%' needs Int operands", expr.span)
        return left_type

    def bitwise_type(self, expr: ast.Binary, left: Facts, right: Facts) -> str:
        """``& | ^ << >>``: two Int operands, an Int result; never in a constraint."""
        if left.symbolic or right.symbolic:
            self.error(
                "W504",
                f"'{expr.op}' on decision variables cannot be expressed as a constraint",
                expr.span,
            )
        for facts, side in ((left, expr.left), (right, expr.right)):
            if facts.type not in ("Int", ANY):
                self.error("T201", f"'{expr.op}' needs Int operands, found {facts.type}", side.span)
        return "Int"

    def shape_literal(self, expr: ast.ShapeLit) -> Facts:
        if expr.name not in self.c.shapes:
            self.error("T204", f"unknown shape {expr.name!r}", expr.span)
            for _, value, _ in expr.fields:
                self.expr(value)
            return Facts(ANY)
        declared = dict(self.c.shapes[expr.name])
        given: set[str] = set()
        for name, value, span in expr.fields:
            type_name = self.expr(value).type
            if name in given:
                self.error("T207", f"field {name!r} is given twice", span)
            elif name not in declared:
                self.error("T206", f"{expr.name} has no field {name!r}", span)
            else:
                self.expect_type(declared[name], type_name, value.span)
            given.add(name)
        missing = [name for name in declared if name not in given]
        if missing:
            self.error(
                "T207", f"{expr.name} literal lacks field(s) {', '.join(missing)}", expr.span
            )
        return Facts(expr.name)

    def call(self, expr: ast.Call, statement: bool, let_binding: bool) -> Facts:
        namespace = expr.namespace
        if namespace == "q":
            return self.q_call(expr)
        if namespace == "phi":
            return self.phi_call(expr, let_binding)
        if namespace is not None and namespace not in ("K", "Q", "Φ"):
            self.error(
                "T202", f"unknown library namespace {namespace!r} (known: q, phi)", expr.name_span
            )
            for arg in expr.args:
                self.expr(arg)
            return Facts(ANY)
        regime = namespace or self.regime
        key = proc_key(regime, expr.name)
        bound = self.c.bound_targets(self.info.key, expr.name) if namespace is None else []
        if len(bound) > 1:
            self.error(
                "R195",
                f"{expr.name}(…) names several bound processes ({', '.join(bound)}); "
                "write the regime (R::name)",
                expr.name_span,
            )
            for arg in expr.args:
                self.expr(arg)
            return Facts(ANY)
        if len(bound) == 1:
            # A call by plain name goes through the bind that declares its target.
            key = bound[0]
            regime = self.c.procs[key].proc.regime
        else:
            resolved = self.c.resolve_proc(regime, expr.name, self.proc.forge, expr.forge)
            if resolved is not None:
                key = resolved
            elif expr.forge is not None and expr.forge not in self.c.forges:
                self.error("R196", f"unknown forge {expr.forge!r}", expr.span)
                for arg in expr.args:
                    self.expr(arg)
                return Facts(ANY)
            elif self.c.ambiguous(regime, expr.name):
                self.error(
                    "R195",
                    f"{regime}::{expr.name} is declared in several forges "
                    f"({', '.join(self.c.ambiguous(regime, expr.name))}); qualify it "
                    f"(Forge::{regime}::{expr.name})",
                    expr.name_span,
                )
                for arg in expr.args:
                    self.expr(arg)
                return Facts(ANY)
        target = self.c.procs.get(key)
        if target is None and namespace is None and not bound:
            reverse = [
                bind["source"]
                for bind in self.c.binds
                if bind["target"] == self.info.key
                and bind["source"] in self.c.procs
                and self.c.procs[bind["source"]].proc.name == expr.name
            ]
            if reverse:
                self.error(
                    "R102",
                    f"bind {reverse[0]} -> {self.info.key} goes the other way; this "
                    f"call needs 'bind {self.info.key} -> {reverse[0]}'",
                    expr.span,
                )
                for arg in expr.args:
                    self.expr(arg)
                return Facts(ANY)
        args = [self.expr(arg).type for arg in expr.args]
        if target is None:
            others = self.c.by_name.get(expr.name, [])
            if others and namespace is None:
                self.error(
                    "R101",
                    f"{others[0]} is in another regime: call it as {others[0]}(…) through a bind",
                    expr.name_span,
                )
            else:
                code = "R103" if namespace else "T202"
                self.error(code, f"unknown process {key}", expr.name_span)
            return Facts(ANY)
        params = target.proc.params
        if len(params) != len(args):
            self.error(
                "T203", f"{key} takes {len(params)} argument(s), {len(args)} given", expr.span
            )
        else:
            for param, type_name, arg in zip(params, args, expr.args, strict=True):
                declared = self.c.resolve_type(param.declared)
                self.expect_type(declared, type_name, arg.span)
        if regime == self.regime == "K" and (self.info.key, key) in self.c.bind_index:
            # A bound K -> K call goes through its bind, under the contract (§10.12).
            through = self.c.bind_index[(self.info.key, key)]
            self.info.calls.append((key, expr.span, not statement))
            self.info.cross.append((key, through))
            self.notes.calls[id(expr)] = CallTarget("cross", key, through)
            return Facts(target.returns)
        if regime == self.regime == "Q" and self.linear_values and key in self.c.linear_q:
            # Linear-value Q processes call each other directly (§4.4.4); the arguments move.
            self.info.calls.append((key, expr.span, not statement))
            self.notes.calls[id(expr)] = CallTarget("process", key)
            return Facts(target.returns)
        if regime == self.regime:
            if self.regime != "K":
                self.error(
                    "U001",
                    f"calls between {self.regime} processes are not supported yet",
                    expr.span,
                )
            self.info.calls.append((key, expr.span, not statement))
            self.notes.calls[id(expr)] = CallTarget("process", key)
            return Facts(target.returns)
        # A cross-regime call: K drives Q or Φ through a bind (caller -> callee).
        if self.regime != "K":
            self.error(
                "R104",
                f"a {self.regime} process cannot call {key}; cross-regime calls start from K",
                expr.span,
            )
            return Facts(target.returns)
        index = self.c.bind_index.get((self.info.key, key))
        if index is None:
            if (key, self.info.key) in self.c.bind_index:
                self.error(
                    "R102",
                    f"bind {key} -> {self.info.key} goes the other way; this "
                    f"call needs 'bind {self.info.key} -> {key}'",
                    expr.span,
                )
            else:
                self.error(
                    "R101",
                    f"cross-regime call to {key} needs 'bind {self.info.key} -> "
                    f"{key} contract {{ … }}'",
                    expr.span,
                )
            index = -1
        self.info.cross.append((key, index))
        self.notes.calls[id(expr)] = CallTarget("cross", key, index)
        result = target.returns
        if regime == "Q" and key in self.c.linear_q:
            return Facts(result)  # a linear-value Q process returns what it computes
        if regime == "Q":
            observation = "sample"
            if index >= 0:
                observation = (
                    self.c.binds[index]["contract"].get("observation", {}).get("value", "sample")
                )
            result = "Counts" if observation == "counts" else "Bits"
            if params and not all(
                q_classical(self.c.resolve_type(param.declared)) for param in params
            ):
                self.error(
                    "N304", f"{key} takes linear parameters a K process cannot supply", expr.span
                )
            if observation == "expectation":
                result = "Float"
        return Facts(result)

    def q_call(self, expr: ast.Call) -> Facts:
        if self.regime != "Q":
            self.error("R104", "q:: operations are permitted only in Q processes", expr.span)
        name = expr.name
        if name == "alloc":
            size = self.static_int(expr.args[0]) if len(expr.args) == 1 else None
            if len(expr.args) != 1:
                self.error("T203", "q::alloc takes one argument (the qubit count)", expr.span)
            if size is not None and size < 1:
                self.error("T201", "q::alloc needs at least one qubit", expr.span)
                size = None
            if size is not None and self.info.qubits + size > _QUBITS_MAX:
                self.error(
                    LIMIT_CODE,
                    limit_message(
                        "dpl_qubits_max",
                        f"{self.info.key} allocates more than {_QUBITS_MAX} qubits",
                    ),
                    expr.span,
                )
                size = None
            if size is not None:
                self.info.qubits += size
                if self.qubits_budget is not None and self.info.qubits > self.qubits_budget:
                    self.error(
                        "S703",
                        f"{self.info.key} allocates {self.info.qubits} qubits but "
                        f"'uses qubits(n={self.qubits_budget})'",
                        expr.span,
                    )
            self.notes.calls[id(expr)] = CallTarget("quantum", name)
            return Facts("Qubits", size=size or 0)
        if name == "join":
            if len(expr.args) != 2:
                self.error("T203", "q::join takes two registers", expr.span)
                return Facts("Qubits", size=0)
            parts = [self.expr(arg) for arg in expr.args]
            for facts, arg in zip(parts, expr.args, strict=True):
                self.expect_type("Qubits", facts.type, arg.span)
            self.notes.calls[id(expr)] = CallTarget("quantum", name)
            return Facts("Qubits", size=sum(int(facts.size or 0) for facts in parts))
        gate = Q_GATES.get(name)
        if gate is None:
            known = ", ".join(["alloc", "join", *sorted(Q_GATES)])
            self.error("T202", f"unknown q:: operation {name!r} (known: {known})", expr.name_span)
            for arg in expr.args:
                self.expr(arg)
            return Facts("Qubits", size=0)
        qubits, angles = gate
        if len(expr.args) != 1 + qubits + angles:
            self.error(
                "T203",
                f"q::{name} takes a register, {qubits} qubit index(es)"
                + (f" and {angles} angle" if angles else ""),
                expr.span,
            )
            for arg in expr.args:
                self.expr(arg)
            return Facts("Qubits", size=0)
        register = self.expr(expr.args[0])
        self.expect_type("Qubits", register.type, expr.args[0].span)
        size = register.size
        indices: list[int] = []
        for arg in expr.args[1 : 1 + qubits]:
            index = self.static_int(arg)
            if index is None:
                continue
            if size is not None and not 0 <= index < size:
                self.error("T201", f"qubit index {index} is outside a register of {size}", arg.span)
            if index in indices:
                self.error("N301", f"qubit {index} is used twice in one gate", arg.span)
            indices.append(index)
        angle_values: list[float | None] = []
        for arg in expr.args[1 + qubits :]:
            angle_values.append(self.angle(arg))
        self.notes.calls[id(expr)] = CallTarget(
            "quantum", name, indices=tuple(indices), angles=tuple(angle_values)
        )
        return Facts("Qubits", size=size)

    def phi_call(self, expr: ast.Call, let_binding: bool) -> Facts:
        if self.regime != "Φ":
            self.error("R104", "phi:: operations are permitted only in Φ processes", expr.span)
        if expr.name in PHI_PROBLEMS:
            return self.phi_problem(expr, let_binding)
        self.phi_state("constraints", expr.span)
        arity = PHI_FUNCTIONS.get(expr.name)
        if arity is None:
            self.error(
                "T202", f"unknown phi:: operation {expr.name!r} (known: int, bool)", expr.name_span
            )
            return Facts(ANY)
        if not let_binding:
            self.error(
                "W504",
                f"phi::{expr.name} declares a decision variable: bind it with 'let'",
                expr.span,
            )
        args = [self.expr(arg) for arg in expr.args]
        if len(args) != arity:
            self.error("T203", f"phi::{expr.name} takes {arity} argument(s)", expr.span)
        for facts, arg in zip(args, expr.args, strict=False):
            self.expect_type("Int", facts.type, arg.span)
            if facts.symbolic:
                self.error("W504", "variable bounds must be known before solving", arg.span)
        self.notes.calls[id(expr)] = CallTarget("decision", expr.name)
        return Facts("Int" if expr.name == "int" else "Bool", symbolic=True)

    def phi_state(self, form: str, span: Span) -> None:
        """Note what the Φ process states; a problem beside constraints, or a second problem,
        is ``W505``."""
        if self.regime != "Φ":
            return
        if self.phi_form == "problem" or (self.phi_form is not None and form == "problem"):
            self.error(
                "W505",
                "a phi::maxcut/ising/qubo problem is the whole problem of its Φ process: no "
                "other problem, decision variable or constraint may join it",
                span,
            )
        self.phi_form = self.phi_form or form

    def phi_problem(self, expr: ast.Call, let_binding: bool) -> Facts:
        """``phi::maxcut(n, us, vs[, ws])``, ``phi::ising(n, h, us, vs, js)`` or
        ``phi::qubo(n, is, js, qs)``: an optimization problem stated by its data (a spin
        count, then arrays of indices and numbers), annealed or solved exactly (outside Φ,
        ``phi_call`` has reported ``R104``)."""
        if not let_binding:
            self.error(
                "W504",
                f"phi::{expr.name} states the process's problem: bind it with 'let'",
                expr.span,
            )
        self.phi_state("problem", expr.span)
        counts = PHI_PROBLEMS[expr.name]
        args = [self.expr(arg) for arg in expr.args]
        if len(args) not in counts:
            written = " or ".join(str(count) for count in counts)
            self.error("T203", f"phi::{expr.name} takes {written} arguments", expr.span)
        for position, (facts, arg) in enumerate(zip(args, expr.args, strict=True)):
            if facts.symbolic:
                self.error("W504", "a problem's data must be known before solving", arg.span)
            if position == 0:
                self.expect_type("Int", facts.type, arg.span)
            elif facts.type != ANY and (
                "[" not in facts.type or facts.type.split("[", 1)[0] not in ("Int", "Float")
            ):
                self.error(
                    "T201", f"phi::{expr.name} takes arrays of numbers, not {facts.type}", arg.span
                )
        self.notes.calls[id(expr)] = CallTarget("decision", expr.name)
        return Facts("Float", symbolic=True)

    def static_int(self, expr: ast.Expr) -> int | None:
        if isinstance(expr, ast.Literal) and expr.kind == "int":
            return int(expr.value)
        self.error("T201", "a qubit count or index must be an integer literal", expr.span)
        return None

    def angle(self, expr: ast.Expr) -> float | None:
        """A rotation angle: a number literal (its value), or an expression over the Q
        process's classical parameters (None: the lowering evaluates it per call)."""
        literal = expr.operand if isinstance(expr, ast.Unary) and expr.op == "-" else expr
        if isinstance(literal, ast.Literal) and literal.kind in ("int", "float"):
            value = self.static_number(expr)
            return value if value is not None else 0.0
        facts = self.expr(expr)
        if facts.type not in ("Float", "Int", ANY):
            self.error("T201", f"a rotation angle is a number, not {facts.type}", expr.span)
        return None

    def static_number(self, expr: ast.Expr) -> float | None:
        negative = False
        if isinstance(expr, ast.Unary) and expr.op == "-":
            negative, expr = True, expr.operand
        if isinstance(expr, ast.Literal) and expr.kind in ("int", "float"):
            try:
                value = float(expr.value)
            except OverflowError:
                self.error("T201", "a rotation angle must be within a float's range", expr.span)
                return None
            return -value if negative else value
        self.error("T201", "a rotation angle must be a number literal", expr.span)
        return None


def check(program: ast.Program, profile: str | None = None) -> CheckedProgram:
    """Check a parsed program; ``profile="kernel"`` adds the kernel-safe subset's rules."""
    return _Checker(program, profile).run()
