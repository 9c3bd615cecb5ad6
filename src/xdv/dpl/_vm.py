"""The DPL virtual machine on the XDV kernel.

K processes are compiled from DIR to Python source (one function per process) and run as the
K anchor of a kernel process. A process that performs effects, crosses a bind or calls one that
does is a generator: each ``emit``/``observe``/``seal`` is an ``Emit`` system call (a traced
EFFECT entry, in program order). Pure processes are plain functions. Every call and every loop
iteration costs one VM step; every ``slice_steps`` steps a generator process yields the
processor (a ``Yield`` system call), so the scheduler interleaves it deterministically, and a run
that exceeds its step budget fails. Q and Φ processes are executed by the VM inside the calling
K process: Q bodies are lowered to OpenQASM 3 and run through the Q manager's ``run``; Φ bodies
are evaluated with their decision variables symbolic, lowered to the canonical constraint
problem and solved through the Φ manager's ``solve`` (see :class:`DomainAdapter`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

from xdv.dpl._lower import PhiBuilder, Sym, evaluate_constraint, lower_q
from xdv.dpl._values import (
    DplAdmissibilityFailure,
    DplContractViolation,
    DplRuntimeFailure,
    ShapeValue,
    Witness,
    show,
)
from xdv.errors import ErrorCode
from xdv.syscalls import Bind, Emit, Invoke, Now, Release, Reserve, Syscall, Yield
from xdv.trace import Domain

__all__ = [
    "BIND_EXERCISE_STEPS_MIN",
    "DomainAdapter",
    "KernelDomainAdapter",
    "Program",
    "compile_k",
]

SLICE_STEPS = 1024
STEPS_MAX = 50_000_000
SHOTS_DEFAULT = 1024
# The fewest logical steps one bind exercise to Q or Φ can take (reserve, then invoke).
BIND_EXERCISE_STEPS_MIN = 2

Steps = Generator[Syscall, Any, Any]


class DomainAdapter(Protocol):
    """How the VM reaches the Q and Φ managers (the only place that names their operations)."""

    def run_circuit(self, circuit: str, qubits: int, shots: int, terms: Mapping[str, Any]) -> Steps:
        """Run OpenQASM source for ``shots`` shots; return ``{"counts": …, "shots": …}``."""
        ...

    def solve(self, problem: dict[str, Any], terms: Mapping[str, Any]) -> Steps:
        """Solve a canonical constraint problem; return the Φ manager's outcome value."""
        ...


class KernelDomainAdapter:
    """Reaches the managers through system calls: bind once, reserve, invoke, release."""

    def __init__(self, bound: frozenset[Domain] = frozenset()) -> None:
        self.bound = set(bound)

    def _session(
        self,
        domain: Domain,
        resource: str,
        amount: int,
        terms: Mapping[str, Any],
        operation: str,
        args: tuple[Any, ...],
    ) -> Steps:
        if domain not in self.bound:
            yield Bind(domain)
            self.bound.add(domain)
        contract = yield Reserve(domain, resource, amount, terms=dict(terms))
        try:
            value = yield Invoke(contract, operation, args)
        finally:
            yield Release(contract)
        return value

    def run_circuit(self, circuit: str, qubits: int, shots: int, terms: Mapping[str, Any]) -> Steps:
        return (
            yield from self._session(
                Domain.Q, "qubits", max(1, qubits), terms, "run", (circuit, shots)
            )
        )

    def solve(self, problem: dict[str, Any], terms: Mapping[str, Any]) -> Steps:
        return (yield from self._session(Domain.PHI, "envelope", 1, terms, "solve", (problem,)))


def _effect(kind: str, value: Any) -> Emit:
    text = show(value)
    record: dict[str, Any] = {"effect": kind, "value": text}
    if kind == "seal":
        record["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return Emit(record)


def _idiv(left: int, right: int) -> int:
    if right == 0:
        raise DplRuntimeFailure("division by zero")
    quotient = abs(left) // abs(right)
    return quotient if (left >= 0) == (right >= 0) else -quotient


def _imod(left: int, right: int) -> int:
    if right == 0:
        raise DplRuntimeFailure("remainder by zero")
    return left - right * _idiv(left, right)


def _fdiv(left: float, right: float) -> float:
    if right == 0:
        raise DplRuntimeFailure("division by zero")
    return left / right


def _index(items: tuple[Any, ...], index: int) -> Any:
    if not 0 <= index < len(items):
        raise DplRuntimeFailure(f"index {index} is outside an array of {len(items)}")
    return items[index]


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Witness):
        return value.field(name)
    return value.values[name]


# ---------------------------------------------------------------------- code generation


def _pyname(key: str) -> str:
    regime, name = key.split("::", 1)
    return {"K": "k_", "Q": "q_", "Φ": "phi_"}[regime] + name


class _Codegen:
    def __init__(self, document: dict[str, Any], generators: set[str]) -> None:
        self.document = document
        self.generators = generators
        self.lines: list[str] = []
        self.temporaries = 0

    def temporary(self) -> str:
        self.temporaries += 1
        return f"_t{self.temporaries}"

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def process(self, proc: dict[str, Any]) -> None:
        name = proc["name"]
        is_generator = name in self.generators
        params = ", ".join(f"v{index}" for index in range(len(proc["params"])))
        self.emit(0, f"def {_pyname(name)}({params}):")
        self.emit(1, "nonlocal _n")
        self.temporaries = 0
        self.block(proc["body"], 1, is_generator)
        if is_generator:
            self.emit(1, "return None")
            self.emit(1, "yield  # makes this a generator")
        self.emit(0, "")

    def tick(self, depth: int, is_generator: bool, steps: int = 1) -> None:
        # Count `steps` VM steps down the slice counter, a closure cell shared by every process
        # of the program (cheaper than a global, an attribute or a list); `_fuel` accounts the
        # finished slice, enforces the step budget and starts the next slice.
        if steps < 1:
            return
        self.emit(depth, f"if (_n := _n - {steps}) < 0:")
        self.emit(depth + 1, "_n = _fuel(_n)")
        if is_generator:
            self.emit(depth + 1, "yield _Yield()")

    def block(self, body: list[dict[str, Any]], depth: int, gen: bool) -> None:
        if not body:
            self.emit(depth, "pass")
        for node in body:
            self.statement(node, depth, gen)

    def statement(self, node: dict[str, Any], depth: int, gen: bool) -> None:
        kind = node["s"]
        # The calls a statement makes (outside its nested blocks) are charged when it starts:
        # one step each, so a leaf call costs its caller one step and nothing in itself.
        own = [node[key] for key in ("e", "c", "lo", "hi") if isinstance(node.get(key), dict)]
        self.tick(depth, gen, sum(_count_calls(expr) for expr in own))
        if kind in ("let", "assign"):
            self.emit(depth, f"v{node['slot']} = {self.expr(node['e'])}")
        elif kind == "effect":
            self.emit(depth, f"yield _effect({node['effect']!r}, {self.expr(node['e'])})")
        elif kind == "return":
            value = "None" if node["e"] is None else self.expr(node["e"])
            self.emit(depth, f"return {value}")
        elif kind == "if":
            self.emit(depth, f"if {self.expr(node['c'])}:")
            self.block(node["then"], depth + 1, gen)
            if node["else"] is not None:
                self.emit(depth, "else:")
                self.block(node["else"], depth + 1, gen)
        elif kind == "while":
            self.emit(depth, f"while {self.expr(node['c'])}:")
            self.tick(depth + 1, gen, 1 + _count_calls(node["c"]))
            self.block(node["body"], depth + 1, gen)
        elif kind == "for":
            self.emit(
                depth,
                f"for v{node['slot']} in range({self.expr(node['lo'])}, {self.expr(node['hi'])}):",
            )
            self.tick(depth + 1, gen)
            self.block(node["body"], depth + 1, gen)
        elif kind in ("break", "continue"):
            self.emit(depth, kind)
        elif kind == "expr":
            self.emit(depth, self.expr(node["e"]))
        else:  # constrain/prove never reach K code (the checker refuses them)
            raise DplRuntimeFailure(f"statement {kind!r} cannot run in a K process")

    def expr(self, node: dict[str, Any]) -> str:
        kind = node["k"]
        if kind == "lit":
            return repr(node["v"])
        if kind == "var":
            return f"v{node['slot']}"
        if kind == "bin":
            left, right, op = self.expr(node["l"]), self.expr(node["r"]), node["op"]
            divisor = node["r"]
            if (
                op in ("/", "%")
                and node["t"] == "Int"
                and divisor["k"] == "lit"
                and (isinstance(divisor["v"], int) and divisor["v"] > 0)
            ):
                # A positive literal divisor: Python's floor operators agree with truncation
                # for a non-negative dividend; only a negative one takes the mirrored path.
                t = self.temporary()
                python = "//" if op == "/" else "%"
                return (
                    f"({t} {python} {right} if ({t} := {left}) >= 0 else -(-{t} {python} {right}))"
                )
            if op == "/":
                helper = "_idiv" if node["t"] == "Int" else "_fdiv"
                return f"{helper}({left}, {right})"
            if op == "%":
                return f"_imod({left}, {right})"
            python = {"&&": "and", "||": "or"}.get(op, op)
            return f"({left} {python} {right})"
        if kind == "un":
            operand = self.expr(node["e"])
            return f"(not {operand})" if node["op"] == "!" else f"(-{operand})"
        if kind == "call":
            args = ", ".join(self.expr(arg) for arg in node["args"])
            call = f"{_pyname(node['proc'])}({args})"
            return f"(yield from {call})" if node["proc"] in self.generators else call
        if kind == "xcall":
            args = "".join(self.expr(arg) + ", " for arg in node["args"])
            return f"(yield from _cross({node['bind']}, {node['target']!r}, ({args})))"
        if kind == "interp":
            pieces = [
                repr(part) if isinstance(part, str) else f"_show({self.expr(part)})"
                for part in node["parts"]
            ]
            return "(" + " + ".join(pieces) + ")" if pieces else "''"
        if kind == "shape":
            fields = ", ".join(f"{name!r}: {self.expr(value)}" for name, value in node["fields"])
            return f"_Shape({node['name']!r}, {{{fields}}})"
        if kind == "field":
            if node.get("witness"):
                return f"_field({self.expr(node['e'])}, {node['name']!r})"
            return f"{self.expr(node['e'])}.values[{node['name']!r}]"
        if kind == "array":
            return "(" + "".join(self.expr(item) + ", " for item in node["items"]) + ")"
        if kind == "index":
            return f"_index({self.expr(node['e'])}, {self.expr(node['i'])})"
        raise DplRuntimeFailure(f"expression {kind!r} cannot run in a K process")


def _count_calls(node: Any) -> int:
    """How many process calls (same-regime or across a bind) an expression makes."""
    if isinstance(node, dict):
        own = 1 if node.get("k") in ("call", "xcall") else 0
        return own + sum(_count_calls(value) for value in node.values())
    if isinstance(node, list):
        return sum(_count_calls(item) for item in node)
    return 0


def _generators(document: dict[str, Any], entry: str) -> set[str]:
    """K processes that must be generators: they perform effects, cross binds, or call one
    that does (the entry always is one, it is the kernel anchor)."""
    calls: dict[str, set[str]] = {}
    marked: set[str] = {entry}
    for proc in document["processes"]:
        if proc["regime"] != "K":
            continue
        found: set[str] = set()
        crosses = _walk(proc["body"], found)
        calls[proc["name"]] = found
        if proc["effects"] or crosses:
            marked.add(proc["name"])
    changed = True
    while changed:
        changed = False
        for name, callees in calls.items():
            if name not in marked and callees & marked:
                marked.add(name)
                changed = True
    return marked


def _walk(value: Any, calls: set[str]) -> bool:
    crosses = False
    if isinstance(value, dict):
        if value.get("k") == "call":
            calls.add(value["proc"])
        if value.get("k") == "xcall":
            crosses = True
        for item in value.values():
            crosses = _walk(item, calls) or crosses
    elif isinstance(value, list):
        for item in value:
            crosses = _walk(item, calls) or crosses
    return crosses


def compile_k(document: dict[str, Any], entry: str) -> str:
    """The Python source of every K process of a DIR document."""
    generators = _generators(document, entry)
    codegen = _Codegen(document, generators)
    names = []
    for proc in document["processes"]:
        if proc["regime"] == "K":
            codegen.process(proc)
            names.append(_pyname(proc["name"]))
    body = "\n".join("    " + line if line else "" for line in codegen.lines)
    exported = ", ".join(f"{name!r}: {name}" for name in names)
    return (
        f"def _program({', '.join(_HELPERS)}, _n):\n"
        f"{body}\n"
        "    def _steps_left():\n"
        "        return _n\n"
        f"    return {{{exported}, '_steps_left': _steps_left}}\n"
    )


# Names the generated code receives from the runtime (the parameters of `_program`).
_HELPERS = (
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
)


# ---------------------------------------------------------------------- the runtime


class Program:
    """One run of a DIR document: compiled K code, the step account, binds, Q and Φ."""

    def __init__(
        self,
        document: dict[str, Any],
        entry: str = "main",
        adapter: DomainAdapter | None = None,
        steps_max: int | None = None,
        slice_steps: int = SLICE_STEPS,
    ) -> None:
        self.document = document
        self.processes = {proc["name"]: proc for proc in document["processes"]}
        self.entry = entry if "::" in entry else f"K::{entry}"
        proc = self.processes.get(self.entry)
        if proc is None or proc["regime"] != "K" or proc["params"]:
            raise DplRuntimeFailure(
                f"entry {self.entry} must be a K process without parameters",
                code=ErrorCode.INVALID_ARGUMENT,
            )
        budget = next((u["args"].get("max") for u in proc["uses"] if u["name"] == "steps"), None)
        self.steps_max = min(x for x in (steps_max, budget, STEPS_MAX) if x is not None)
        self.slice_steps = slice_steps
        self.steps = 0
        self.adapter: DomainAdapter = adapter or KernelDomainAdapter()
        self.source = compile_k(document, self.entry)
        helpers: dict[str, Any] = {
            "_fuel": self._fuel,
            "_Yield": Yield,
            "_effect": _effect,
            "_idiv": _idiv,
            "_imod": _imod,
            "_fdiv": _fdiv,
            "_index": _index,
            "_field": _field,
            "_show": show,
            "_Shape": ShapeValue,
            "_cross": self.cross,
        }
        namespace: dict[str, Any] = {}
        exec(compile(self.source, f"<dpl {document['sha256'][:12]}>", "exec"), namespace)
        functions = namespace["_program"](*(helpers[name] for name in _HELPERS), slice_steps)
        self._steps_left: Callable[[], int] = functions["_steps_left"]
        self._entry_function: Callable[[], Any] = functions[_pyname(self.entry)]

    def _fuel(self, left: int) -> int:
        self.steps += self.slice_steps - left
        if self.steps > self.steps_max:
            raise DplRuntimeFailure(
                f"step budget of {self.steps_max} exhausted", code=ErrorCode.DPL_RUNTIME
            )
        return self.slice_steps

    @property
    def steps_used(self) -> int:
        """VM steps taken so far (calls and loop iterations)."""
        return self.steps + self.slice_steps - self._steps_left()

    def anchor(self) -> Steps:
        """The K anchor of the kernel process that runs the entry process."""
        try:
            result = yield from self._entry_function()
        except RecursionError:
            raise DplRuntimeFailure("call depth limit exceeded") from None
        return None if result is None else show(result)

    # -- binds

    def cross(self, bind_index: int, target: str, args: tuple[Any, ...]) -> Steps:
        """Exercise bind ``bind_index`` to run ``target`` (a Q or Φ process)."""
        bind = self.document["binds"][bind_index]
        contract = bind["contract"]
        process = self.processes[target]
        latency = contract.get("latency_us")
        if latency is not None:
            bound = latency["value"] - (1 if latency["op"] == "<" else 0)
            if bound < BIND_EXERCISE_STEPS_MIN:
                raise DplContractViolation(
                    f"bind {bind['source']} -> {target}: latency_us {latency['op']} "
                    f"{latency['value']} cannot be met (an exercise takes at least "
                    f"{BIND_EXERCISE_STEPS_MIN} logical steps); the bind is not exercised",
                    where=f"bind {bind_index}",
                )
        start = yield Now()

        def check_latency() -> Steps:
            if latency is None:
                return None
            now = yield Now()
            if now - start > bound:
                raise DplContractViolation(
                    f"bind {bind['source']} -> {target} took {now - start} logical steps, over "
                    f"latency_us {latency['op']} {latency['value']}; nothing crosses",
                    where=f"bind {bind_index}",
                )
            return None

        if process["regime"] == "Q":
            value = yield from self.run_q(process, contract)
            yield from check_latency()
            # The Q process's `observe` statements are its measurement: one traced effect, in
            # program order, carrying what crosses back (never amplitudes).
            record = _effect("observe", value)
            record.value["process"] = process["name"]
            yield record
        else:
            value = yield from self.run_phi(process, args, contract, check_latency)
        if contract.get("record", {}).get("value"):
            yield Emit(
                {
                    "effect": "bind",
                    "bind": bind_index,
                    "source": bind["source"],
                    "target": target,
                    "result_sha256": hashlib.sha256(show(value).encode()).hexdigest(),
                }
            )
        return value

    def run_q(self, process: dict[str, Any], contract: Mapping[str, Any]) -> Steps:
        circuit = lower_q(process)
        shots = contract.get("shots", {}).get("value", SHOTS_DEFAULT)
        terms: dict[str, Any] = {"shots_max": shots}
        if "provider" in contract:
            terms["provider"] = contract["provider"]["value"]
        outcome = yield from self.adapter.run_circuit(circuit.text, circuit.qubits, shots, terms)
        counts = outcome.get("counts") if isinstance(outcome, dict) else None
        if (
            not isinstance(counts, dict)
            or not counts
            or not all(isinstance(k, str) and isinstance(v, int) for k, v in counts.items())
        ):
            raise DplRuntimeFailure(f"the Q manager's outcome for {process['name']} has no counts")
        if contract.get("observation", {}).get("value") == "counts":
            return dict(sorted(counts.items()))
        return min(counts, key=lambda bits: (-counts[bits], bits))

    def run_phi(
        self,
        process: dict[str, Any],
        args: tuple[Any, ...],
        contract: Mapping[str, Any],
        check_latency: Callable[[], Steps],
    ) -> Steps:
        evaluator = _PhiEvaluator(process, args)
        problem = evaluator.symbolic()
        terms: dict[str, Any] = {"provider": "exact"}
        for use in process["uses"]:
            if use["name"] == "envelope":
                terms.update(use["args"])
        for name in ("provider", "tolerance"):
            if name in contract:
                terms[name] = contract[name]["value"]
        outcome = yield from self.adapter.solve(problem, terms)
        yield from check_latency()
        status = outcome.get("status") if isinstance(outcome, dict) else None
        if status == "INADMISSIBLE":
            raise DplAdmissibilityFailure(
                f"{process['name']}: no configuration satisfies its constraints",
                where=process["name"],
            )
        if status != "ADMISSIBLE" or not isinstance(outcome.get("assignment"), dict):
            raise DplRuntimeFailure(f"the Φ manager's outcome for {process['name']} is malformed")
        return (yield from evaluator.concrete(problem, outcome["assignment"]))


class _PhiEvaluator:
    """Runs a Φ body twice: symbolically up to ``prove`` (building the problem), then
    concretely with the proved assignment (validating it, then performing the effects)."""

    def __init__(self, process: dict[str, Any], args: tuple[Any, ...]) -> None:
        self.process = process
        self.args = args
        self.prove_index = next(i for i, node in enumerate(process["body"]) if node["s"] == "prove")

    def symbolic(self) -> dict[str, Any]:
        builder = PhiBuilder()
        env: dict[int, Any] = dict(enumerate(self.args))
        for node in self.process["body"][: self.prove_index]:
            if node["s"] == "let":
                value = node["e"]
                if value["k"] == "std" and value["ns"] == "phi":
                    if value["fn"] == "int":
                        low, high = (self.value(a, env, builder) for a in value["args"])
                        env[node["slot"]] = builder.integer(node["name"], int(low), int(high))
                    else:
                        env[node["slot"]] = builder.boolean(node["name"])
                else:
                    env[node["slot"]] = self.value(value, env, builder)
            elif node["s"] == "constrain":
                builder.constraints.append(PhiBuilder.expr(self.value(node["e"], env, builder)))
        return builder.problem()

    def concrete(self, problem: dict[str, Any], assignment: dict[str, Any]) -> Steps:
        name = self.process["name"]
        for variable in problem["variables"]:
            value = assignment.get(variable["name"])
            valid = (
                isinstance(value, bool)
                if variable["kind"] == "bool"
                else isinstance(value, int)
                and not isinstance(value, bool)
                and variable["lo"] <= value <= variable["hi"]
            )
            if not valid:
                raise DplRuntimeFailure(
                    f"the witness for {name} gives {variable['name']} = {value!r}, outside its "
                    "declaration",
                    code=ErrorCode.PHI_ERR_WITNESS_INVALID,
                )
        for constraint in problem["constraints"]:
            if not evaluate_constraint(constraint, assignment):
                raise DplRuntimeFailure(
                    f"the witness for {name} does not satisfy its constraints",
                    code=ErrorCode.PHI_ERR_WITNESS_INVALID,
                )
        env: dict[int, Any] = dict(enumerate(self.args))
        proved = {v["name"]: assignment[v["name"]] for v in problem["variables"]}
        for node in self.process["body"]:
            kind = node["s"]
            if kind == "let":
                value = node["e"]
                if value["k"] == "std" and value["ns"] == "phi":
                    env[node["slot"]] = proved[node["name"]]
                else:
                    env[node["slot"]] = self.value(value, env, None)
            elif kind == "prove":
                env[node["slot"]] = Witness(name, problem, proved)
            elif kind == "effect":
                yield _effect(node["effect"], self.value(node["e"], env, None))
            elif kind == "return":
                return None if node["e"] is None else self.value(node["e"], env, None)
            elif kind == "expr":
                self.value(node["e"], env, None)
        return None

    def value(self, node: dict[str, Any], env: dict[int, Any], builder: PhiBuilder | None) -> Any:
        kind = node["k"]
        if kind == "lit":
            return node["v"]
        if kind == "var":
            return env[node["slot"]]
        if kind == "bin":
            left = self.value(node["l"], env, builder)
            right = self.value(node["r"], env, builder)
            if isinstance(left, Sym) or isinstance(right, Sym):
                if builder is None:
                    raise DplRuntimeFailure("a decision variable is unbound after the witness")
                return builder.binary(node["op"], left, right)
            return _concrete_binary(node["op"], node["t"], left, right)
        if kind == "un":
            operand = self.value(node["e"], env, builder)
            if isinstance(operand, Sym):
                if builder is None:
                    raise DplRuntimeFailure("a decision variable is unbound after the witness")
                return builder.unary(node["op"], operand)
            return (not operand) if node["op"] == "!" else -operand
        if kind == "interp":
            return "".join(
                part if isinstance(part, str) else show(self.value(part, env, builder))
                for part in node["parts"]
            )
        if kind == "shape":
            return ShapeValue(
                node["name"], {n: self.value(v, env, builder) for n, v in node["fields"]}
            )
        if kind == "field":
            return _field(self.value(node["e"], env, builder), node["name"])
        if kind == "array":
            return tuple(self.value(item, env, builder) for item in node["items"])
        if kind == "index":
            return _index(self.value(node["e"], env, builder), self.value(node["i"], env, builder))
        raise DplRuntimeFailure(f"expression {kind!r} cannot run in a Φ process")


def _concrete_binary(op: str, type_name: str, left: Any, right: Any) -> Any:
    if op == "/":
        return _idiv(left, right) if isinstance(left, int) else _fdiv(left, right)
    if op == "%":
        return _imod(left, right)
    operations: dict[str, Callable[[Any, Any], Any]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "&&": lambda a, b: a and b,
        "||": lambda a, b: a or b,
    }
    return operations[op](left, right)


def effect_record_text(record: Any) -> str | None:
    """The stdout line of an EFFECT value the VM emitted, or None (only ``emit`` prints)."""
    if isinstance(record, dict) and record.get("effect") == "emit":
        value = record.get("value")
        return value if isinstance(value, str) else json.dumps(value)
    return None
