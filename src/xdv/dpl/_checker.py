"""The DPL checker: regimes, binds, types, linearity, effects, witnesses, contracts, returns,
and the kernel profile. It builds the DIR process bodies as it goes (``docs/dpl.md`` §DIR).

The checker never stops at the first problem: each finding is a diagnostic and checking goes on
with an ``Any`` type where a type could not be determined, so one run reports every error it can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdv.dpl import _ast as ast
from xdv.dpl._diagnostics import Diagnostic, Span
from xdv.dpl._types import (
    CLAUSES,
    LINEAR_PRIMITIVES,
    PHI_FUNCTIONS,
    Q_GATES,
    RESOURCES,
    normalize_type,
)

__all__ = ["CheckedProgram", "check"]

ANY = "Any"
_NUMERIC = ("Int", "Float")
_ARITHMETIC = ("+", "-", "*", "/", "%")
_COMPARISON = ("<", ">", "<=", ">=")
_EQUALITY = ("==", "!=")
_EFFECTS = ("emit", "observe", "seal")


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


@dataclass
class ProcInfo:
    """What the checker learned about one process (used by the DIR builder and the VM)."""

    proc: ast.Proc
    key: str
    returns: str
    body: list[dict[str, Any]] = field(default_factory=list)
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
    """The result of checking: diagnostics, process summaries, shapes and binds."""

    diagnostics: list[Diagnostic]
    procs: dict[str, ProcInfo]
    shapes: dict[str, list[tuple[str, str]]]
    binds: list[dict[str, Any]]

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
        for proc in self.program.procs:
            key = proc_key(proc.regime, proc.name)
            if key in self.procs:
                self.error("R106", f"process {key} is declared twice", proc.name_span)
                continue
            returns = self.resolve_type(proc.returns) if proc.returns else "Unit"
            self.procs[key] = ProcInfo(proc, key, returns)
        for bind in self.program.binds:
            self.check_bind(bind)
        for info in list(self.procs.values()):
            _ProcChecker(self, info).run()
        self.close_effects()
        self.check_bind_effects()
        if self.profile == "kernel":
            self.kernel_profile()
        return CheckedProgram(self.diagnostics, self.procs, self.shapes, self.binds)

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

    def is_linear(self, type_name: str, seen: frozenset[str] = frozenset()) -> bool:
        if type_name in LINEAR_PRIMITIVES:
            return True
        if type_name.endswith("]"):
            return self.is_linear(type_name[: type_name.rindex("[")], seen)
        if type_name in self.shapes and type_name not in seen:
            return any(self.is_linear(t, seen | {type_name}) for _, t in self.shapes[type_name])
        return False

    # ------------------------------------------------------------------ binds

    def check_bind(self, bind: ast.Bind) -> None:
        ends: list[str] = []
        for ref in (bind.source, bind.target):
            key = proc_key(ref.regime, ref.name)
            if key not in self.procs:
                others = [k for k in self.procs if k.split("::", 1)[1] == ref.name]
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
            target = self.procs.get(bind["target"])
            if target is None or target.proc.regime == "K":
                continue  # a K target's effects are its own; contracts govern Q and Φ work
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

    def close_effects(self) -> None:
        for info in self.procs.values():
            info.all_effects = set(info.effects)
        changed = True
        while changed:
            changed = False
            for info in self.procs.values():
                for callee, _, _ in info.calls:
                    target = self.procs.get(callee)
                    if target and not target.all_effects <= info.all_effects:
                        info.all_effects |= target.all_effects
                        changed = True

    def kernel_profile(self) -> None:
        graph = {key: {c for c, _, _ in info.calls} for key, info in self.procs.items()}
        for key, info in self.procs.items():
            if info.has_while is not None:
                self.error(
                    "K801",
                    f"{key}: 'while' loops are unbounded; use 'for i in a..b'",
                    Span(info.has_while.start, info.has_while.start + 5),
                )
            # A process that can reach itself through calls recurses.
            stack, seen = list(graph[key]), set()
            while stack:
                current = stack.pop()
                if current == key:
                    self.error(
                        "K802",
                        f"{key} is recursive; the kernel profile forbids recursion",
                        info.proc.name_span,
                    )
                    break
                if current in seen or current not in graph:
                    continue
                seen.add(current)
                stack.extend(graph[current])
            for callee, span, in_expression in info.calls:
                target = self.procs.get(callee)
                if in_expression and target is not None and target.all_effects:
                    self.error(
                        "K803",
                        f"call to {callee} hides effects inside an expression; "
                        "call it as a statement",
                        span,
                    )


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
        self.qubits_budget: int | None = None

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
        linear = self.c.is_linear(type_name) or (
            parameter and self.proc.linear and self.regime != "Q"
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
            if self.regime == "Q" and not var.linear:
                self.error(
                    "N304", f"parameter {param.name!r} of a Q process must be linear", param.span
                )
        if self.regime == "Q" and self.info.returns not in ("Unit", "Bits", ANY):
            self.error(
                "T201",
                "a Q process returns its measured bits: declare '-> Bits' or nothing",
                proc.returns.span if proc.returns else proc.name_span,
            )
        self.info.body = self.block(proc.body, tail_returns=True)
        self.pop()
        if self.regime == "Q" and "observe" not in self.info.effects:
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
            and not self.returns_on_all_paths(self.info.body)
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
            if kind is None or not isinstance(value, kind) or isinstance(value, bool):
                self.error(
                    "S702",
                    f"resource {resource.name!r} takes {sorted(spec)}; "
                    f"{key} = {value!r} is not valid",
                    resource.span,
                )
        if resource.name == "qubits":
            count = resource.arguments.get("n")
            self.qubits_budget = count if isinstance(count, int) else None

    def returns_on_all_paths(self, body: list[dict[str, Any]]) -> bool:
        for statement in body:
            if statement["s"] == "return":
                return True
            if (
                statement["s"] == "if"
                and statement["else"] is not None
                and self.returns_on_all_paths(statement["then"])
                and self.returns_on_all_paths(statement["else"])
            ):
                return True
        return False

    # ------------------------------------------------------------------ statements

    def block(self, block: ast.Block, tail_returns: bool = False) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        statements = list(block.statements)
        for index, statement in enumerate(statements):
            last = index == len(statements) - 1 and block.tail is None
            node = self.statement(statement, tail_returns and last)
            if node is not None:
                out.append(node)
        if block.tail is not None:
            if tail_returns and self.regime != "Q":
                out.append(self.return_statement(ast.Return(block.tail.span, block.tail, True)))
            else:
                _, node = self.expr(block.tail)
                out.append({"s": "expr", "e": node})
        return out

    def nested(self, block: ast.Block, tail_returns: bool, loop: bool) -> list[dict[str, Any]]:
        self.push()
        if loop:
            self.loop_depth += 1
        else:
            self.branch_depth += 1
        try:
            return self.block(block, tail_returns)
        finally:
            if loop:
                self.loop_depth -= 1
            else:
                self.branch_depth -= 1
            self.pop()

    def statement(self, statement: ast.Stmt, tail: bool) -> dict[str, Any] | None:
        if isinstance(statement, ast.Let):
            return self.let(statement)
        if isinstance(statement, ast.Assign):
            var = self.lookup(statement.name)
            type_name, node = self.expr(statement.value)
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
            return {"s": "assign", "name": var.name, "slot": var.slot, "e": node}
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
            condition_type, condition = self.expr(statement.condition)
            self.expect_type("Bool", condition_type, statement.condition.span)
            then = self.nested(statement.then, tail, loop=False)
            otherwise = (
                self.nested(statement.otherwise, tail, loop=False)
                if statement.otherwise is not None
                else None
            )
            return {"s": "if", "c": condition, "then": then, "else": otherwise}
        if isinstance(statement, ast.While):
            if self.regime != "K":
                self.error(
                    "R104", f"'while' is not permitted in {self.regime} processes", statement.span
                )
            if self.info.has_while is None:
                self.info.has_while = statement.span
            condition_type, condition = self.expr(statement.condition)
            self.expect_type("Bool", condition_type, statement.condition.span)
            body = self.nested(statement.body, False, loop=True)
            return {"s": "while", "c": condition, "body": body}
        if isinstance(statement, ast.For):
            if self.regime != "K":
                self.error(
                    "R104", f"'for' is not permitted in {self.regime} processes", statement.span
                )
            low_type, low = self.expr(statement.low)
            high_type, high = self.expr(statement.high)
            self.expect_type("Int", low_type, statement.low.span)
            self.expect_type("Int", high_type, statement.high.span)
            self.push()
            self.loop_depth += 1
            var = self.declare(statement.name, "Int", statement.name_span)
            body = self.block(statement.body)
            self.loop_depth -= 1
            self.pop()
            return {
                "s": "for",
                "name": var.name,
                "slot": var.slot,
                "lo": low,
                "hi": high,
                "body": body,
            }
        if isinstance(statement, ast.Break | ast.Continue):
            word = "break" if isinstance(statement, ast.Break) else "continue"
            if self.loop_depth == 0:
                self.error("T208", f"'{word}' outside a loop", statement.span)
            return {"s": word}
        if isinstance(statement, ast.ExprStmt):
            _, node = self.expr(statement.value, statement=True)
            return {"s": "expr", "e": node}
        raise AssertionError(f"unknown statement {type(statement).__name__}")

    def let(self, statement: ast.Let) -> dict[str, Any]:
        value = statement.value
        phi_var = isinstance(value, ast.Call) and value.namespace == "phi" and self.regime == "Φ"
        type_name, node = self.expr(value, let_binding=phi_var)
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
        var.symbolic = phi_var or bool(node.get("sym"))
        var.qsize = node.get("size")
        if self.regime == "Q" and not var.linear and type_name != ANY:
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
        out = {"s": "let", "name": var.name, "slot": var.slot, "t": type_name, "e": node}
        if statement.mutable:
            out["mut"] = True
        if phi_var:
            out["decision"] = True
        return out

    def constrain(self, statement: ast.Constrain) -> dict[str, Any]:
        if self.regime != "Φ":
            self.error("R104", "'constrain' is permitted only in Φ processes", statement.span)
        if self.witnessed:
            self.error(
                "W501", "a constraint after the witness is not covered by it", statement.span
            )
        type_name, node = self.expr(statement.condition, constraint=True)
        if type_name not in ("Bool", ANY):
            self.error(
                "W503", f"a constraint must be Bool, not {type_name}", statement.condition.span
            )
        return {"s": "constrain", "e": node}

    def prove(self, statement: ast.Prove) -> dict[str, Any]:
        if self.regime != "Φ":
            self.error("R104", "'prove' is permitted only in Φ processes", statement.span)
        _, node = self.expr(statement.source, constraint=True)
        if self.witnessed:
            self.error("W501", "a Φ process proves one witness", statement.span)
        self.witnessed = True
        var = self.declare(statement.name, "Witness", statement.name_span)
        for scope in self.scopes:
            for other in scope.values():
                other.symbolic = False
        return {"s": "prove", "name": var.name, "slot": var.slot, "e": node}

    def effect(self, statement: ast.Effect) -> dict[str, Any]:
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
        type_name, node = self.expr(statement.value)
        if self.regime == "Q" and kind == "observe" and type_name not in ("Qubits", ANY):
            self.error(
                "T201", f"a Q process observes qubits, not {type_name}", statement.value.span
            )
        if type_name == "Unit":
            self.error("T201", f"cannot {kind} a value of type Unit", statement.value.span)
        self.info.effects.add(kind)
        return {"s": "effect", "effect": kind, "e": node}

    def return_statement(self, statement: ast.Return) -> dict[str, Any]:
        expected = self.info.returns
        if self.regime == "Q":
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
            return {"s": "return", "e": None}
        type_name, node = self.expr(statement.value)
        if expected == "Unit" and not statement.implicit:
            self.error(
                "T201",
                f"{self.info.key} declares no return type but returns {type_name}",
                statement.value.span,
            )
        elif expected != "Unit":
            self.expect_type(expected, type_name, statement.value.span)
        if expected == "Unit" and statement.implicit:
            return {"s": "expr", "e": node}
        return {"s": "return", "e": node}

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
    ) -> tuple[str, dict[str, Any]]:
        type_name, node = self._expr(expr, statement, constraint, let_binding)
        node["t"] = type_name
        return type_name, node

    def _expr(
        self, expr: ast.Expr, statement: bool, constraint: bool, let_binding: bool
    ) -> tuple[str, dict[str, Any]]:
        if isinstance(expr, ast.Literal):
            kinds = {"int": "Int", "float": "Float", "bool": "Bool", "string": "String"}
            return kinds[expr.kind], {"k": "lit", "v": expr.value}
        if isinstance(expr, ast.Name):
            return self.name(expr)
        if isinstance(expr, ast.Unary):
            type_name, operand = self.expr(expr.operand, constraint=constraint)
            wanted = "Bool" if expr.op == "!" else None
            if wanted:
                self.expect_type("Bool", type_name, expr.operand.span)
            elif type_name not in (*_NUMERIC, ANY):
                self.error("T201", f"'-' needs Int or Float, found {type_name}", expr.span)
            node: dict[str, Any] = {"k": "un", "op": expr.op, "e": operand}
            if operand.get("sym"):
                node["sym"] = True
            return (wanted or type_name), node
        if isinstance(expr, ast.Binary):
            return self.binary(expr, constraint)
        if isinstance(expr, ast.Call):
            return self.call(expr, statement, let_binding)
        if isinstance(expr, ast.Interp):
            parts: list[Any] = []
            for part in expr.parts:
                if isinstance(part, str):
                    parts.append(part)
                else:
                    type_name, node = self.expr(part)
                    if type_name == "Unit" or self.c.is_linear(type_name):
                        self.error("T201", f"cannot show a value of type {type_name}", part.span)
                    parts.append(node)
            return "String", {"k": "interp", "parts": parts}
        if isinstance(expr, ast.ShapeLit):
            return self.shape_literal(expr)
        if isinstance(expr, ast.Field):
            type_name, target = self.expr(expr.target)
            if type_name == "Witness":
                # A witness field is a proved decision variable: Int or Bool, known at run time.
                return ANY, {
                    "k": "field",
                    "e": target,
                    "name": expr.name,
                    "witness": True,
                }
            fields = dict(self.c.shapes.get(type_name, []))
            if type_name == ANY:
                return ANY, {"k": "field", "e": target, "name": expr.name}
            if expr.name not in fields:
                self.error("T206", f"{type_name} has no field {expr.name!r}", expr.span)
                return ANY, {"k": "field", "e": target, "name": expr.name}
            return fields[expr.name], {"k": "field", "e": target, "name": expr.name}
        if isinstance(expr, ast.ArrayLit):
            items = [self.expr(item) for item in expr.items]
            element = items[0][0] if items else ANY
            for (type_name, _), item in zip(items, expr.items, strict=True):
                self.expect_type(element, type_name, item.span)
            return f"{element}[{len(items)}]", {"k": "array", "items": [n for _, n in items]}
        if isinstance(expr, ast.Index):
            type_name, target = self.expr(expr.target)
            index_type, index = self.expr(expr.index)
            self.expect_type("Int", index_type, expr.index.span)
            if type_name == ANY:
                return ANY, {"k": "index", "e": target, "i": index}
            if not type_name.endswith("]"):
                self.error("T201", f"cannot index a value of type {type_name}", expr.span)
                return ANY, {"k": "index", "e": target, "i": index}
            return type_name[: type_name.rindex("[")], {"k": "index", "e": target, "i": index}
        raise AssertionError(f"unknown expression {type(expr).__name__}")

    def name(self, expr: ast.Name) -> tuple[str, dict[str, Any]]:
        var = self.lookup(expr.name)
        if var is None:
            self.error("T202", f"undefined name {expr.name!r}", expr.span)
            return ANY, {"k": "var", "name": expr.name, "slot": -1}
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
        node: dict[str, Any] = {"k": "var", "name": var.name, "slot": var.slot}
        if var.symbolic:
            node["sym"] = True
        if var.qsize is not None:
            node["size"] = var.qsize
        return var.type, node

    def binary(self, expr: ast.Binary, constraint: bool) -> tuple[str, dict[str, Any]]:
        left_type, left = self.expr(expr.left, constraint=constraint)
        right_type, right = self.expr(expr.right, constraint=constraint)
        op = expr.op
        node: dict[str, Any] = {"k": "bin", "op": op, "l": left, "r": right}
        symbolic = bool(left.get("sym") or right.get("sym"))
        if symbolic:
            node["sym"] = True
            if op in ("/", "%"):
                self.error(
                    "W504",
                    f"'{op}' on decision variables cannot be expressed as a constraint",
                    expr.span,
                )
        both = {left_type, right_type}
        if ANY in both:
            result = "Bool" if op in (*_COMPARISON, *_EQUALITY, "&&", "||") else ANY
            if result == ANY and len(both) == 2:
                result = (both - {ANY}).pop()
            return result, node
        if op in ("&&", "||"):
            self.expect_type("Bool", left_type, expr.left.span)
            self.expect_type("Bool", right_type, expr.right.span)
            return "Bool", node
        if op in _EQUALITY:
            if left_type != right_type:
                self.error("T201", f"cannot compare {left_type} with {right_type}", expr.span)
            elif self.c.is_linear(left_type):
                self.error("T201", "linear values cannot be compared", expr.span)
            return "Bool", node
        if op in _COMPARISON:
            if left_type != right_type or left_type not in _NUMERIC:
                self.error(
                    "T201",
                    f"'{op}' needs two Int or two Float operands, found "
                    f"{left_type} and {right_type}",
                    expr.span,
                )
            return "Bool", node
        if op == "+" and left_type == right_type == "String":
            return "String", node
        if op == "+" and symbolic and both <= {"Int", "Bool"}:
            return "Int", node
        if left_type != right_type or left_type not in _NUMERIC:
            if symbolic and both <= {"Int", "Bool"} and op in ("-", "*"):
                return "Int", node
            self.error(
                "T201",
                f"'{op}' needs two Int or two Float operands, found {left_type} and {right_type}",
                expr.span,
            )
            return ANY, node
        if op == "%" and left_type != "Int":
            self.error("T201", "'%' needs Int operands", expr.span)
        return left_type, node

    def shape_literal(self, expr: ast.ShapeLit) -> tuple[str, dict[str, Any]]:
        if expr.name not in self.c.shapes:
            self.error("T204", f"unknown shape {expr.name!r}", expr.span)
            for _, value, _ in expr.fields:
                self.expr(value)
            return ANY, {"k": "shape", "name": expr.name, "fields": []}
        declared = dict(self.c.shapes[expr.name])
        given: dict[str, dict[str, Any]] = {}
        for name, value, span in expr.fields:
            type_name, node = self.expr(value)
            if name in given:
                self.error("T207", f"field {name!r} is given twice", span)
            elif name not in declared:
                self.error("T206", f"{expr.name} has no field {name!r}", span)
            else:
                self.expect_type(declared[name], type_name, value.span)
            given[name] = node
        missing = [name for name in declared if name not in given]
        if missing:
            self.error(
                "T207", f"{expr.name} literal lacks field(s) {', '.join(missing)}", expr.span
            )
        fields = [[name, given[name]] for name in declared if name in given]
        return expr.name, {"k": "shape", "name": expr.name, "fields": fields}

    def call(
        self, expr: ast.Call, statement: bool, let_binding: bool
    ) -> tuple[str, dict[str, Any]]:
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
            return ANY, {"k": "lit", "v": None}
        regime = namespace or self.regime
        key = proc_key(regime, expr.name)
        target = self.c.procs.get(key)
        args = [self.expr(arg) for arg in expr.args]
        if target is None:
            others = [k for k in self.c.procs if k.split("::", 1)[1] == expr.name]
            if others and namespace is None:
                self.error(
                    "R101",
                    f"{others[0]} is in another regime: call it as {others[0]}(…) through a bind",
                    expr.name_span,
                )
            else:
                code = "R103" if namespace else "T202"
                self.error(code, f"unknown process {key}", expr.name_span)
            return ANY, {"k": "call", "proc": key, "args": [n for _, n in args]}
        params = target.proc.params
        if len(params) != len(args):
            self.error(
                "T203", f"{key} takes {len(params)} argument(s), {len(args)} given", expr.span
            )
        else:
            for param, (type_name, _), arg in zip(params, args, expr.args, strict=True):
                declared = self.c.resolve_type(param.declared)
                self.expect_type(declared, type_name, arg.span)
        arg_nodes = [n for _, n in args]
        if regime == self.regime:
            if self.regime != "K":
                self.error(
                    "U001",
                    f"calls between {self.regime} processes are not supported yet",
                    expr.span,
                )
            self.info.calls.append((key, expr.span, not statement))
            return target.returns, {"k": "call", "proc": key, "args": arg_nodes}
        # A cross-regime call: K drives Q or Φ through a bind (caller -> callee).
        if self.regime != "K":
            self.error(
                "R104",
                f"a {self.regime} process cannot call {key}; cross-regime calls start from K",
                expr.span,
            )
            return target.returns, {"k": "xcall", "target": key, "bind": -1, "args": arg_nodes}
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
        result = target.returns
        if regime == "Q":
            observation = "sample"
            if index >= 0:
                observation = (
                    self.c.binds[index]["contract"].get("observation", {}).get("value", "sample")
                )
            result = "Counts" if observation == "counts" else "Bits"
            if params:
                self.error(
                    "N304", f"{key} takes linear parameters a K process cannot supply", expr.span
                )
        return result, {"k": "xcall", "target": key, "bind": index, "args": arg_nodes}

    def q_call(self, expr: ast.Call) -> tuple[str, dict[str, Any]]:
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
            if size is not None:
                self.info.qubits += size
                if self.qubits_budget is not None and self.info.qubits > self.qubits_budget:
                    self.error(
                        "S703",
                        f"{self.info.key} allocates {self.info.qubits} qubits but "
                        f"'uses qubits(n={self.qubits_budget})'",
                        expr.span,
                    )
            return "Qubits", {"k": "std", "ns": "q", "fn": "alloc", "args": [], "size": size or 0}
        if name == "join":
            if len(expr.args) != 2:
                self.error("T203", "q::join takes two registers", expr.span)
                return "Qubits", {"k": "std", "ns": "q", "fn": "join", "args": [], "size": 0}
            parts = [self.expr(arg) for arg in expr.args]
            for (type_name, _), arg in zip(parts, expr.args, strict=True):
                self.expect_type("Qubits", type_name, arg.span)
            size = sum(int(node.get("size") or 0) for _, node in parts)
            return "Qubits", {
                "k": "std",
                "ns": "q",
                "fn": "join",
                "args": [n for _, n in parts],
                "size": size,
            }
        gate = Q_GATES.get(name)
        if gate is None:
            known = ", ".join(["alloc", "join", *sorted(Q_GATES)])
            self.error("T202", f"unknown q:: operation {name!r} (known: {known})", expr.name_span)
            for arg in expr.args:
                self.expr(arg)
            return "Qubits", {"k": "std", "ns": "q", "fn": name, "args": [], "size": 0}
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
            return "Qubits", {"k": "std", "ns": "q", "fn": name, "args": [], "size": 0}
        register_type, register = self.expr(expr.args[0])
        self.expect_type("Qubits", register_type, expr.args[0].span)
        size = register.get("size")
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
        angle_nodes = []
        for arg in expr.args[1 + qubits :]:
            value = self.static_number(arg)
            angle_nodes.append({"k": "lit", "v": value if value is not None else 0.0, "t": "Float"})
        return "Qubits", {
            "k": "std",
            "ns": "q",
            "fn": name,
            "args": [register, *({"k": "lit", "v": i, "t": "Int"} for i in indices), *angle_nodes],
            "size": size,
        }

    def phi_call(self, expr: ast.Call, let_binding: bool) -> tuple[str, dict[str, Any]]:
        if self.regime != "Φ":
            self.error("R104", "phi:: operations are permitted only in Φ processes", expr.span)
        arity = PHI_FUNCTIONS.get(expr.name)
        if arity is None:
            self.error(
                "T202", f"unknown phi:: operation {expr.name!r} (known: int, bool)", expr.name_span
            )
            return ANY, {"k": "lit", "v": None}
        if not let_binding:
            self.error(
                "W504",
                f"phi::{expr.name} declares a decision variable: bind it with 'let'",
                expr.span,
            )
        args = [self.expr(arg) for arg in expr.args]
        if len(args) != arity:
            self.error("T203", f"phi::{expr.name} takes {arity} argument(s)", expr.span)
        for (type_name, node), arg in zip(args, expr.args, strict=False):
            self.expect_type("Int", type_name, arg.span)
            if node.get("sym"):
                self.error("W504", "variable bounds must be known before solving", arg.span)
        type_name = "Int" if expr.name == "int" else "Bool"
        return type_name, {
            "k": "std",
            "ns": "phi",
            "fn": expr.name,
            "args": [n for _, n in args],
            "sym": True,
        }

    def static_int(self, expr: ast.Expr) -> int | None:
        if isinstance(expr, ast.Literal) and expr.kind == "int":
            return int(expr.value)
        self.error("T201", "a qubit count or index must be an integer literal", expr.span)
        return None

    def static_number(self, expr: ast.Expr) -> float | None:
        negative = False
        if isinstance(expr, ast.Unary) and expr.op == "-":
            negative, expr = True, expr.operand
        if isinstance(expr, ast.Literal) and expr.kind in ("int", "float"):
            value = float(expr.value)
            return -value if negative else value
        self.error("T201", "a rotation angle must be a number literal", expr.span)
        return None


def check(program: ast.Program, profile: str | None = None) -> CheckedProgram:
    """Check a parsed program; ``profile="kernel"`` adds the kernel-safe subset's rules."""
    return _Checker(program, profile).run()
