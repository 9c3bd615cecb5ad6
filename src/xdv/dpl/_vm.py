"""The DPL virtual machine on the XDV kernel.

K processes are compiled from DIR to Python source (one function per process, ``_codegen.py``)
and run as the K anchor of a kernel process. A process that performs effects, crosses a bind or
calls one that does is a generator: each ``emit``/``observe``/``seal`` is an ``Emit`` system
call (a traced EFFECT entry, in program order). Pure processes are plain functions. Every call
and every loop iteration costs one VM step; every ``slice_steps`` steps a generator process
yields the processor (a ``Yield`` system call), so the scheduler interleaves it
deterministically, and a run that exceeds its step budget fails. Q and Φ processes are executed
by the VM inside the calling K process: Q bodies are lowered to OpenQASM 3 and run through the Q
manager's ``run``; Φ bodies are evaluated with their decision variables symbolic, lowered to the
canonical constraint problem (``_lower.py``) and solved through the Φ manager's ``solve`` (see
:class:`DomainAdapter`), then run again with the proved assignment.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

from xdv.dpl._codegen import GENERATED_BUILTINS, HELPERS, compile_k, python_name
from xdv.dpl._dir import (
    Call,
    Constrain,
    DecisionVariable,
    DirBind,
    DirProcess,
    DirProgram,
    DirVisitor,
    DirWalker,
    Effect,
    ExpressionStatement,
    Let,
    Prove,
    QuantumOperation,
    Return,
)
from xdv.dpl._dir_parse import parse_dir
from xdv.dpl._lower import PhiValues, evaluate_constraint, lower_phi, lower_q
from xdv.dpl._types import parse_observable_term
from xdv.dpl._values import (
    INT_MAGNITUDE,
    DplAdmissibilityFailure,
    DplContractViolation,
    DplRuntimeFailure,
    ShapeValue,
    Witness,
    bounded,
    concat,
    fdiv,
    field,
    idiv,
    imod,
    imul,
    index,
    interpolate,
    over,
    shift_left,
    shift_right,
    show,
)
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import LIMITS, limit
from xdv.syscalls import Bind, Emit, Invoke, Now, Release, Reserve, Syscall, Yield
from xdv.trace import Domain

__all__ = [
    "BIND_EXERCISE_STEPS_MIN",
    "DomainAdapter",
    "KernelDomainAdapter",
    "Program",
]

SLICE_STEPS = 1024
STEPS_MAX = 50_000_000
# A string the program builds costs one step per this many characters (copying it is work).
CHARS_PER_STEP = 64
EFFECTS_MAX = limit("dpl_effects_max")
EFFECT_CHARS_MAX = limit("dpl_effect_chars_max")
EXERCISES_MAX = limit("dpl_exercises_max")
SHOTS_DEFAULT = 1024
# The fewest logical steps one bind exercise to Q or Φ can take (reserve, then invoke).
BIND_EXERCISE_STEPS_MIN = 2
# The fewest logical steps one exercise of a bind between two K processes takes (the call).
K_EXERCISE_STEPS_MIN = 1

Steps = Generator[Syscall, Any, Any]


class DomainAdapter(Protocol):
    """How the VM reaches the Q and Φ managers (the only place that names their operations)."""

    def run_circuit(self, circuit: str, qubits: int, shots: int, terms: Mapping[str, Any]) -> Steps:
        """Run OpenQASM source for ``shots`` shots; return ``{"counts": …, "shots": …}``."""
        ...

    def solve(self, problem: dict[str, Any], terms: Mapping[str, Any]) -> Steps:
        """Solve a canonical constraint problem; return the Φ manager's outcome value."""
        ...

    def minimize(self, problem: dict[str, Any], operation: str, terms: Mapping[str, Any]) -> Steps:
        """Minimize an Ising/QUBO problem with Φ ``operation`` (``anneal`` on the phase
        machine, ``optimize`` exactly); return the Φ manager's outcome value."""
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

    def minimize(self, problem: dict[str, Any], operation: str, terms: Mapping[str, Any]) -> Steps:
        return (yield from self._session(Domain.PHI, "envelope", 1, terms, operation, (problem,)))


def _beyond(name: str, found: str) -> DplRuntimeFailure:
    bound = LIMITS[name]
    return DplRuntimeFailure(
        f"{found}: exceeds the limit {bound.name} = {bound.value} {bound.unit}",
        code=ErrorCode.DPL_LIMIT_EXCEEDED,
    )


def _effect(kind: str, value: Any) -> Emit:
    text = show(value)
    record: dict[str, Any] = {"effect": kind, "value": text}
    if kind == "seal":
        record["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return Emit(record)


# ---------------------------------------------------------------------- the runtime


def _whole(value: object, clause: str) -> int:
    """A clause value that must be an integer (``parse_dir`` and the checker's C602 see to it)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise DplRuntimeFailure(f"contract clause {clause} is not an integer: {value!r}")
    return value


class Program:
    """One run of a DIR program: compiled K code, the step account, binds, Q and Φ.

    ``document`` is a typed :class:`DirProgram` or a DIR document (a JSON value), which is
    parsed first (a malformed one raises :class:`~xdv.dpl.DirFormatError`).
    """

    def __init__(
        self,
        document: DirProgram | Mapping[str, Any],
        entry: str = "main",
        adapter: DomainAdapter | None = None,
        steps_max: int | None = None,
        slice_steps: int = SLICE_STEPS,
    ) -> None:
        program = document if isinstance(document, DirProgram) else parse_dir(document)
        self.program = program
        self.processes = {process.name: process for process in program.processes}
        self.entry = entry if "::" in entry else f"K::{entry}"
        if self.entry not in self.processes and "." in entry and "::" not in entry:
            # `Forge.name` names the process of one forge of a source tree (modules).
            forge, _, name = entry.partition(".")
            for candidate in program.processes:
                if candidate.forge == forge and candidate.name in (
                    f"K::{name}",
                    f"K::{forge}.{name}",
                ):
                    self.entry = candidate.name
        process = self.processes.get(self.entry)
        if process is None or process.regime != "K" or process.params:
            raise DplRuntimeFailure(
                f"entry {self.entry} must be a K process without parameters",
                code=ErrorCode.INVALID_ARGUMENT,
            )
        steps = process.use("steps")
        budget = steps.argument("max") if steps is not None else None
        self.steps_max = min(x for x in (steps_max, budget, STEPS_MAX) if isinstance(x, int))
        self.slice_steps = slice_steps
        self.steps = 0
        self.debt = 0  # steps owed for work done between two slices (strings built)
        self.effects = 0
        self.effect_chars = 0
        self.exercises = 0
        self.adapter: DomainAdapter = adapter or KernelDomainAdapter()
        self.source = compile_k(program, self.entry)
        helpers: dict[str, Any] = {
            "_fuel": self._fuel,
            "_Yield": Yield,
            "_effect": self.effect,
            "_idiv": idiv,
            "_imod": imod,
            "_fdiv": fdiv,
            "_index": index,
            "_field": field,
            "_show": show,
            "_Shape": ShapeValue,
            "_cross": self.cross,
            "_imul": imul,
            "_concat": self.concat,
            "_interp": self.interpolate,
            "_bounded": bounded,
            "_over": over,
            "_B": INT_MAGNITUDE,
            "_NB": -INT_MAGNITUDE,
            "_shl": shift_left,
            "_shr": shift_right,
        }
        # The generated code runs with no builtins but the two it spells itself: a DPL name
        # never reaches the source (``_codegen.py``), and nothing else is there to reach.
        namespace: dict[str, Any] = {"__builtins__": dict(GENERATED_BUILTINS)}
        exec(compile(self.source, f"<dpl {program.sha256[:12]}>", "exec"), namespace)
        functions = namespace["_program"](*(helpers[name] for name in HELPERS), slice_steps)
        self._functions: dict[str, Callable[..., Any]] = functions
        self._steps_left: Callable[[], int] = functions["_steps_left"]
        self._entry_function: Callable[[], Any] = functions[python_name(self.entry)]

    @property
    def regimes(self) -> frozenset[str]:
        """The regimes of the program's processes (``K``, ``Q``, ``Φ``)."""
        return self.program.regimes

    def _fuel(self, left: int) -> int:
        self.steps += self.slice_steps - left + self.debt
        self.debt = 0
        if self.steps > self.steps_max:
            raise DplRuntimeFailure(
                f"step budget of {self.steps_max} exhausted", code=ErrorCode.DPL_RUNTIME
            )
        return self.slice_steps

    @property
    def steps_used(self) -> int:
        """VM steps taken so far (calls and loop iterations, and strings built)."""
        return self.steps + self.debt + self.slice_steps - self._steps_left()

    def concat(self, left: str, right: str) -> str:
        """String ``+``: bounded (``dpl_string_chars_max``) and charged by its length."""
        text = concat(left, right)
        self.debt += len(text) // CHARS_PER_STEP
        return text

    def interpolate(self, *parts: Any) -> str:
        """An interpolated string: bounded and charged like :meth:`concat`."""
        text = interpolate(*parts)
        self.debt += len(text) // CHARS_PER_STEP
        return text

    def effect(self, kind: str, value: Any) -> Emit:
        """The ``Emit`` of one effect, counted against ``dpl_effects_max`` and, by its text,
        ``dpl_effect_chars_max`` (every effect is a trace entry)."""
        record = _effect(kind, value)
        self.effects += 1
        self.effect_chars += len(record.value["value"])
        self.debt += len(record.value["value"]) // CHARS_PER_STEP
        if self.effects > EFFECTS_MAX:
            raise _beyond("dpl_effects_max", f"more than {EFFECTS_MAX} effects")
        if self.effect_chars > EFFECT_CHARS_MAX:
            raise _beyond("dpl_effect_chars_max", f"more than {EFFECT_CHARS_MAX} characters")
        return record

    def anchor(self) -> Steps:
        """The K anchor of the kernel process that runs the entry process."""
        try:
            result = yield from self._entry_function()
        except RecursionError:
            raise DplRuntimeFailure("call depth limit exceeded") from None
        return None if result is None else show(result)

    # -- binds

    def cross(self, bind_index: int, target: str, *args: Any) -> Steps:
        """Exercise bind ``bind_index`` to run ``target`` (a Q or Φ process)."""
        self.exercises += 1
        if self.exercises > EXERCISES_MAX:
            raise _beyond("dpl_exercises_max", f"more than {EXERCISES_MAX} bind exercises")
        bind = self.program.binds[bind_index]
        process = self.processes[target]
        if process.regime == "K" or _linear_values(process):
            return (yield from self.cross_k(bind_index, bind, process, args))
        latency = bind.clause("latency_us")
        bound = 0
        if latency is not None:
            bound = _whole(latency.value, "latency_us") - (1 if latency.op == "<" else 0)
            if bound < BIND_EXERCISE_STEPS_MIN:
                raise DplContractViolation(
                    f"bind {bind.source} -> {target}: latency_us {latency.op} "
                    f"{latency.value} cannot be met (an exercise takes at least "
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
                    f"bind {bind.source} -> {target} took {now - start} logical steps, over "
                    f"latency_us {latency.op} {latency.value}; nothing crosses",
                    where=f"bind {bind_index}",
                )
            return None

        if process.regime == "Q":
            value = yield from self.run_q(process, bind, args)
            yield from check_latency()
            # The Q process's `observe` statements are its measurement: one traced effect, in
            # program order, carrying what crosses back (never amplitudes).
            record = _effect("observe", value)
            record.value["process"] = process.name
            if args:
                # The classical arguments the circuit was lowered with, for an audit to read.
                record.value["arguments"] = [show(arg) for arg in args]
            yield record
        else:
            value = yield from self.run_phi(process, args, bind, check_latency)
        if bind.value("record", False):
            yield Emit(
                {
                    "effect": "bind",
                    "bind": bind_index,
                    "source": bind.source,
                    "target": target,
                    "result_sha256": hashlib.sha256(show(value).encode()).hexdigest(),
                }
            )
        return value

    def cross_k(
        self, bind_index: int, bind: DirBind, process: DirProcess, args: tuple[Any, ...]
    ) -> Steps:
        """Exercise a bind between two K processes (§10.12): the contract holds for it too.

        A K exercise takes at least ``K_EXERCISE_STEPS_MIN`` logical step (the invocation) plus
        the VM steps the target takes; a latency bound below the minimum is a violation before
        anything runs, and one exceeded withholds the result (nothing crosses back). The
        target's effects are those its contract's ``effects_allowed`` permits (C604)."""
        latency = bind.clause("latency_us")
        bound = 0
        if latency is not None:
            bound = _whole(latency.value, "latency_us") - (1 if latency.op == "<" else 0)
            if bound < K_EXERCISE_STEPS_MIN:
                raise DplContractViolation(
                    f"bind {bind.source} -> {process.name}: latency_us {latency.op} "
                    f"{latency.value} cannot be met (a K exercise takes at least "
                    f"{K_EXERCISE_STEPS_MIN} logical step); the bind is not exercised",
                    where=f"bind {bind_index}",
                )
        before = self.steps_used
        if process.regime == "Q":
            # A linear-value Q process: its declared device must be available before it runs.
            _check_devices(process)
            value = _run_linear(self.processes, process, args)
        else:
            outcome = self._functions[python_name(process.name)](*args)
            value = (yield from outcome) if inspect.isgenerator(outcome) else outcome
        taken = K_EXERCISE_STEPS_MIN + self.steps_used - before
        if latency is not None and taken > bound:
            raise DplContractViolation(
                f"bind {bind.source} -> {process.name} took {taken} logical steps, over "
                f"latency_us {latency.op} {latency.value}; nothing crosses",
                where=f"bind {bind_index}",
            )
        if bind.value("record", False):
            yield Emit(
                {
                    "effect": "bind",
                    "bind": bind_index,
                    "source": bind.source,
                    "target": process.name,
                    "result_sha256": hashlib.sha256(show(value).encode()).hexdigest(),
                }
            )
        return value

    def run_q(self, process: DirProcess, bind: DirBind, args: tuple[Any, ...] = ()) -> Steps:
        circuit = lower_q(process, args)
        shots = _whole(bind.value("shots", SHOTS_DEFAULT), "shots")
        terms: dict[str, Any] = {"shots_max": shots}
        provider = bind.clause("provider")
        if provider is not None:
            terms["provider"] = provider.value
        terms.update(self.device_terms(bind))
        try:
            outcome = yield from self.adapter.run_circuit(
                circuit.text, circuit.qubits, shots, terms
            )
        except XdvError as error:
            if error.code is not ErrorCode.DECOHERENCE_EXCEEDED:
                raise
            # The device's own refusal of the contract's fidelity floor (or its duration
            # budget): the bind's contract cannot be met, and nothing crosses.
            raise DplContractViolation(
                f"bind {bind.source} -> {process.name}: {error.message}",
                where=process.name,
            ) from None
        counts = outcome.get("counts") if isinstance(outcome, dict) else None
        if (
            not isinstance(counts, dict)
            or not counts
            or not all(isinstance(k, str) and isinstance(v, int) for k, v in counts.items())
        ):
            raise DplRuntimeFailure(f"the Q manager's outcome for {process.name} has no counts")
        if bind.value("observation", "sample") == "counts":
            return dict(sorted(counts.items()))
        if bind.value("observation", "sample") == "expectation":
            return expectation(counts, bind.value("observable", ()), process.name)
        return min(counts, key=lambda bits: (-counts[bits], bits))

    def run_optimization(
        self,
        process: DirProcess,
        args: tuple[Any, ...],
        problem: dict[str, Any],
        terms: dict[str, Any],
        check_latency: Callable[[], Steps],
    ) -> Steps:
        """A Φ process that states an Ising/QUBO/MaxCut problem: annealed by the phase
        machine (``provider == phase``) or optimized exactly (CP-SAT); the spins are checked
        classically, then the statements after ``prove`` run with the witness."""
        request = dict(problem)
        meta = request.pop("dpl")
        operation = "anneal" if terms.get("provider") == "phase" else "optimize"
        outcome = yield from self.adapter.minimize(request, operation, terms)
        yield from check_latency()
        assignment = _optimization_assignment(process.name, request, meta, outcome)
        run = _Witnessed(process, args, request, assignment)
        for node in process.body:
            result = node.accept(run)
            if isinstance(result, Emit):
                yield result
            elif isinstance(result, _Returned):
                return result.value
        return None

    def device_terms(self, bind: DirBind) -> dict[str, Any]:
        """The Q reservation terms a bind's contract sets: calibration profile, noise, and the
        least estimated fidelity each job must reach."""
        terms: dict[str, Any] = {}
        calibration = bind.clause("calibration")
        if calibration is not None:
            terms["calibration"] = calibration.value
        if bind.value("noise", False) is True:
            terms["noise"] = True
        floor = bind.value("fidelity_min", 0.0)
        if isinstance(floor, bool) or not isinstance(floor, int | float):
            raise DplRuntimeFailure(f"contract clause fidelity_min is not a number: {floor!r}")
        if floor > 0.0:
            terms["budget"] = {"fidelity_min": float(floor)}
        return terms

    def run_phi(
        self,
        process: DirProcess,
        args: tuple[Any, ...],
        bind: DirBind,
        check_latency: Callable[[], Steps],
    ) -> Steps:
        problem = lower_phi(process, args)
        terms: dict[str, Any] = {"provider": "exact"}
        for use in process.uses:
            if use.name == "envelope":
                terms.update(use.arguments)
        for name in ("provider", "tolerance"):
            clause = bind.clause(name)
            if clause is not None:
                terms[name] = clause.value
        if "kind" in problem:
            return (yield from self.run_optimization(process, args, problem, terms, check_latency))
        outcome = yield from self.adapter.solve(problem, terms)
        yield from check_latency()
        status = outcome.get("status") if isinstance(outcome, dict) else None
        if status == "INADMISSIBLE":
            raise DplAdmissibilityFailure(
                f"{process.name}: no configuration satisfies its constraints",
                where=process.name,
            )
        if status != "ADMISSIBLE" or not isinstance(outcome.get("assignment"), dict):
            raise DplRuntimeFailure(f"the Φ manager's outcome for {process.name} is malformed")
        return (yield from _run_witnessed(process, args, problem, outcome["assignment"]))


def _optimization_assignment(
    name: str, problem: dict[str, Any], meta: dict[str, Any], outcome: Any
) -> dict[str, Any]:
    """What a Φ optimization's witness holds, from the manager's outcome, after checking the
    spins classically against the problem (the energy they give is the energy reported)."""
    spins = outcome.get("spins") if isinstance(outcome, dict) else None
    n = problem["n"]
    if (
        not isinstance(spins, list)
        or len(spins) != n
        or any(spin not in (-1, 1) or isinstance(spin, bool) for spin in spins)
    ):
        raise DplRuntimeFailure(
            f"the Φ manager's outcome for {name} has no spin configuration",
            code=ErrorCode.PHI_ERR_WITNESS_INVALID,
        )
    energy = _ising_energy(problem, spins)
    reported = outcome.get("energy")
    if not isinstance(reported, int | float) or abs(float(reported) - energy) > 1e-6 * max(
        1.0, abs(energy)
    ):
        raise DplRuntimeFailure(
            f"the witness for {name} reports energy {reported!r}; its spins give {energy}",
            code=ErrorCode.PHI_ERR_WITNESS_INVALID,
        )
    stability = outcome.get("stability")
    witness = outcome.get("witness")
    assignment: dict[str, Any] = {
        "spins": tuple(spins),
        "bits": tuple((1 + spin) // 2 for spin in spins),
        "energy": energy,
        "status": str(outcome.get("status") or (witness or {}).get("status") or "SAMPLE"),
        "stability": float(stability.get("stability", 0.0)) if isinstance(stability, dict) else 0.0,
        "digest": str((witness or {}).get("digest", "")),
    }
    if isinstance(outcome.get("order_parameter"), int | float):
        assignment["order_parameter"] = float(outcome["order_parameter"])
    if meta["form"] == "maxcut":
        assignment["cut"] = (meta["weight"] - energy) / 2
    assignment[meta["objective"]] = assignment.get("cut", energy)
    return assignment


def _ising_energy(problem: dict[str, Any], spins: list[int]) -> float:
    """The energy of ``spins`` under a problem in the Ising or QUBO dictionary form (a QUBO
    reads spin s as the bit (1 + s) / 2)."""
    if problem["kind"] == "qubo":
        bits = [(1 + spin) // 2 for spin in spins]
        return float(sum(q * bits[i] * bits[j] for i, j, q in problem["Q"]))
    value = sum(h * spin for h, spin in zip(problem.get("h", ()), spins, strict=False))
    value += sum(j * spins[a] * spins[b] for a, b, j in problem["J"])
    return float(value)


def expectation(counts: Mapping[str, int], observable: Any, name: str) -> float:
    """The mean over the shots of a diagonal observable: each term (a coefficient and ``I``/``Z``
    per measured bit, bit 0 rightmost) adds its coefficient times the parity ``(-1)^k`` of the
    measured bits under its ``Z``s; without ``observable``, the parity of every bit."""
    width = len(next(iter(counts)))
    raw_terms = list(observable) if isinstance(observable, list | tuple) else []
    raw_terms = raw_terms or ["Z" * width]
    terms: list[tuple[float, list[int]]] = []
    for raw in raw_terms:
        parsed = parse_observable_term(raw) if isinstance(raw, str) else None
        if parsed is None or len(parsed[1]) != width:
            raise DplRuntimeFailure(
                f"{name} measures {width} bit(s); the observable term {raw!r} does not match"
            )
        coefficient, paulis = parsed
        # Both strings write bit 0 rightmost, so a term's character i governs bits[i].
        terms.append((coefficient, [i for i, pauli in enumerate(paulis) if pauli == "Z"]))
    total_shots = sum(counts.values())
    value = 0.0
    for bits, count in sorted(counts.items()):
        for coefficient, positions in terms:
            ones = sum(1 for position in positions if bits[position] == "1")
            value += coefficient * count * (-1 if ones % 2 else 1)
    return value / total_shots


def _run_witnessed(
    process: DirProcess, args: tuple[Any, ...], problem: dict[str, Any], assignment: dict[str, Any]
) -> Steps:
    """Run a Φ body with the proved assignment: check it against every variable range and
    constraint, then run the statements (the effects after ``prove`` happen here)."""
    name = process.name
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
    proved = {v["name"]: assignment[v["name"]] for v in problem["variables"]}
    run = _Witnessed(process, args, problem, proved)
    for node in process.body:
        outcome = node.accept(run)
        if isinstance(outcome, Emit):
            yield outcome
        elif isinstance(outcome, _Returned):
            return outcome.value
    return None


class _Returned:
    """A ``return`` reached in a Φ body, with its value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Witnessed(PhiValues["Emit | _Returned | None"]):
    """The statements of a Φ body with the proved assignment: decision variables take their
    proved values, ``prove`` makes the witness, an effect gives the ``Emit`` to perform and
    ``return`` ends the body. Constraints were checked against the assignment already."""

    def __init__(
        self,
        process: DirProcess,
        args: tuple[Any, ...],
        problem: dict[str, Any],
        proved: dict[str, Any],
    ) -> None:
        super().__init__(process, args, None)
        self.problem = problem
        self.proved = proved

    def visit_let(self, node: Let) -> Emit | _Returned | None:
        if isinstance(node.value, DecisionVariable):
            self.env[node.slot] = self.proved[node.name]
        else:
            self.env[node.slot] = node.value.accept(self)
        return None

    def visit_prove(self, node: Prove) -> Emit | _Returned | None:
        self.env[node.slot] = Witness(self.process.name, self.problem, self.proved)
        return None

    def visit_effect(self, node: Effect) -> Emit | _Returned | None:
        return _effect(node.kind, node.value.accept(self))

    def visit_return(self, node: Return) -> Emit | _Returned | None:
        return _Returned(None if node.value is None else node.value.accept(self))

    def visit_expression_statement(self, node: ExpressionStatement) -> Emit | _Returned | None:
        node.value.accept(self)
        return None

    def visit_constrain(self, node: Constrain) -> Emit | _Returned | None:
        return None  # checked against the assignment before the body runs

    visit_assign = visit_if = visit_while = visit_for = DirVisitor.refuse
    visit_break = visit_continue = DirVisitor.refuse


class _HasQuantum(DirWalker):
    """Finds a q:: operation or an `observe` in a Q body (a circuit, not linear values)."""

    def __init__(self) -> None:
        self.found = False

    def visit_quantum_operation(self, node: QuantumOperation) -> None:
        self.found = True

    def visit_effect(self, node: Effect) -> None:
        self.found = self.found or node.kind == "observe"
        super().visit_effect(node)


def _linear_values(process: DirProcess) -> bool:
    """Whether ``process`` is a linear-value Q process (no qubits, no measurement)."""
    if process.regime != "Q":
        return False
    finder = _HasQuantum()
    finder.walk_statements(process.body)
    return not finder.found


def _check_devices(process: DirProcess) -> None:
    """§8.5.1: a declared resource must be available before the process runs."""
    for use in process.uses:
        if use.name == "QuantumDevice":
            kind = use.argument("kind")
            if kind not in (None, "simulator"):
                raise DplRuntimeFailure(
                    f"{process.name} uses QuantumDevice(kind = {kind!r}), which is not "
                    'available (this node offers kind = "simulator"); it does not run',
                    where=process.name,
                )


def _run_linear(
    processes: Mapping[str, DirProcess], process: DirProcess, args: tuple[Any, ...]
) -> Any:
    """Run a linear-value Q process: its statements in order, its calls to other such
    processes directly; the checker has made every value in it used exactly once."""
    run = _LinearValues(processes, process, args)
    for node in process.body:
        outcome = node.accept(run)
        if isinstance(outcome, _Returned):
            return outcome.value
    return None


class _LinearValues(PhiValues["_Returned | None"]):
    """The statements of a linear-value Q process (`let`, `return`, expression statements) and
    its calls to other linear-value Q processes."""

    def __init__(
        self, processes: Mapping[str, DirProcess], process: DirProcess, args: tuple[Any, ...]
    ) -> None:
        super().__init__(process, args, None)
        self.processes = processes

    def visit_let(self, node: Let) -> _Returned | None:
        self.env[node.slot] = node.value.accept(self)
        return None

    def visit_return(self, node: Return) -> _Returned | None:
        return _Returned(None if node.value is None else node.value.accept(self))

    def visit_expression_statement(self, node: ExpressionStatement) -> _Returned | None:
        node.value.accept(self)
        return None

    def visit_call(self, node: Call) -> Any:  # type: ignore[override]
        callee = self.processes[node.process]
        args = tuple(arg.accept(self) for arg in node.args)
        return _run_linear(self.processes, callee, args)

    visit_assign = visit_if = visit_while = visit_for = DirVisitor.refuse
    visit_break = visit_continue = visit_effect = DirVisitor.refuse
    visit_constrain = visit_prove = DirVisitor.refuse


def effect_record_text(record: Any) -> str | None:
    """The stdout line of an EFFECT value the VM emitted, or None (only ``emit`` prints)."""
    if isinstance(record, dict) and record.get("effect") == "emit":
        value = record.get("value")
        return value if isinstance(value, str) else json.dumps(value)
    return None
