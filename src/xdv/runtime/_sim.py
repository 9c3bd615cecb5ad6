"""``xdv sim``: the whole-system simulator.

In the spirit of FoundationDB's deterministic simulation and TigerBeetle's VOPR: each *seed*
names one generated plan (:mod:`xdv.runtime._sim_plan`): a random workload of K, Q and Φ
processes with reservations, invocations, transitions, sleeps, spawns, transfers, capability
attenuation, delegation and revocation, run under a random kernel configuration and fault
plan. The plan runs in the real kernel, with the real K, Q (Stim) and Φ managers and the real
capability tokens, and is checked

* **after every step**, through the kernel's step observer (:class:`~xdv.core.StepObserver`):
  one step per call and a strictly increasing logical clock; quotas conserved (each manager
  holds exactly what the live contracts say, never more than it has); every live contract held
  by exactly one live process; every process in the kernel's VHM;
* **at the end** of the run: every process ended well (no deadlock, no lost wake-up, no crash);
  every contract released and every manager empty; no capability left to an ended process; the
  trace in a strict total order with a monotonic clock; no capability minted outside process
  creation or widened by a derivation, and none used after it was revoked; every emitted value
  recorded exactly once, in order; no oracle violation reported by a process (see
  :mod:`xdv.runtime._sim_workload`); and a replay of the trace (re-executing it) identical
  byte for byte.

A violation names its seed, and the failing plan is shrunk
(:func:`~xdv.runtime._sim_plan.shrink_plan`)
to a small reproduction that ``xdv sim --plan FILE`` runs again.

:func:`self_test` plants each known bug of the mutation switchboard (:data:`xdv.core.MUTANTS`)
in turn and checks that the simulator catches every one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xdv.core import (
    MUTANTS,
    DomainManager,
    FaultPlan,
    Kernel,
    KernelLimits,
    Operation,
    ProcessState,
    RunResult,
    mutation,
)
from xdv.errors import InvariantViolation, TraceError, XdvError, describe_exception
from xdv.runtime._domains import declared_managers
from xdv.runtime._kernel import make_kernel
from xdv.runtime._replay import replay
from xdv.runtime._sim_plan import check_plan, generate_plan, shrink_plan
from xdv.runtime._sim_workload import SIM_TARGET
from xdv.runtime._workload import load_workload
from xdv.security import Right, Scope, contains
from xdv.trace import Domain, EventType, TraceEntry, read_trace

__all__ = [
    "MutantResult",
    "SeedReport",
    "SelfTestReport",
    "SimReport",
    "Violation",
    "run_plan",
    "run_seed",
    "self_test",
    "simulate",
]

_ENDED = (ProcessState.TERMINATED, ProcessState.RELEASED)
_STEPS_MAX = 200_000


@dataclass(frozen=True)
class Violation:
    """A broken invariant: which one, what was seen, and the logical time (or step) it was
    seen at (None: at the end of the run)."""

    invariant: str
    detail: str
    at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "detail": self.detail, "at": self.at}


class _Violated(Exception):
    """Raised by the step observer to stop a run at its first broken invariant."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.detail)
        self.violation = violation


# ---------------------------------------------------------------------- per-step checks


class _Watch:
    """The simulator's step observer: checks the state every step leaves behind."""

    def __init__(self, managers: Mapping[Domain, DomainManager]) -> None:
        self.kernel: Kernel | None = None
        self.managers = managers
        self.steps = 0
        self.now = 0

    def __call__(self, steps: int) -> None:
        kernel = self.kernel
        assert kernel is not None
        now = kernel.clock.now
        if steps != self.steps:
            raise _Violated(
                Violation("order", f"observer saw step {steps}, expected {self.steps}", now)
            )
        if steps and now <= self.now:
            raise _Violated(
                Violation("clock", f"logical time went from {self.now} to {now} in a step", now)
            )
        self.steps = steps + 1
        self.now = now
        violation = check_state(kernel, self.managers)
        if violation is not None:
            raise _Violated(violation)


def check_state(kernel: Kernel, managers: Mapping[Domain, DomainManager]) -> Violation | None:
    """The invariants of the orchestration state between two steps (None: all hold)."""
    now = kernel.clock.now
    processes = kernel.processes()
    contracts = kernel.contracts()
    seen: set[int] = set()
    amounts: Counter[Domain] = Counter()
    counts: Counter[Domain] = Counter()
    for contract in contracts:
        if contract.id in seen:
            return Violation("ownership", f"contract {contract.id} is held twice", now)
        seen.add(contract.id)
        holder = processes.get(contract.pid)
        if holder is None or holder[1] in _ENDED:
            return Violation(
                "ownership", f"contract {contract.id} is held by ended process {contract.pid}", now
            )
        if holder[0].vhm != kernel.vhm:
            return Violation(
                "isolation", f"contract {contract.id} is held outside VHM {kernel.vhm}", now
            )
        amounts[contract.domain] += contract.amount
        counts[contract.domain] += 1
    for pid, (info, _) in processes.items():
        if info.vhm != kernel.vhm:
            return Violation("isolation", f"process {pid} is in VHM {info.vhm}", now)
    return _check_quotas(managers, amounts, counts, now)


def _check_quotas(
    managers: Mapping[Domain, DomainManager],
    amounts: Counter[Domain],
    counts: Counter[Domain],
    now: int | None,
) -> Violation | None:
    k = managers.get(Domain.K)
    if k is not None:
        in_use, lanes = getattr(k, "lanes_in_use", 0), getattr(k, "lanes", 0)
        if in_use != amounts[Domain.K] or in_use > lanes:
            return Violation(
                "quota",
                f"K manager has {in_use} of {lanes} lanes in use; live contracts hold "
                f"{amounts[Domain.K]}",
                now,
            )
    q = managers.get(Domain.Q)
    if q is not None:
        containers = q.snapshot()["containers"]
        qubits = sum(int(item["qubits"]) for item in containers.values())
        mapped = [qubit for item in containers.values() for qubit in item["mapping"]]
        if len(containers) != counts[Domain.Q] or qubits != amounts[Domain.Q]:
            return Violation(
                "quota",
                f"Q manager holds {len(containers)} containers of {qubits} qubits; live "
                f"contracts hold {counts[Domain.Q]} of {amounts[Domain.Q]}",
                now,
            )
        if len(mapped) != len(set(mapped)):
            return Violation("quota", "two Q containers share a physical qubit", now)
    phi = managers.get(Domain.PHI)
    if phi is not None:
        envelopes = phi.snapshot()["envelopes"]
        if len(envelopes) != counts[Domain.PHI]:
            return Violation(
                "quota",
                f"Φ manager holds {len(envelopes)} envelopes; live contracts hold "
                f"{counts[Domain.PHI]}",
                now,
            )
    return None


# ---------------------------------------------------------------------- end-of-run checks


def _check_exits(result: RunResult) -> list[Violation]:
    found = [
        Violation("liveness", f"process {pid} ended {status.code}: {status.message}")
        for pid, status in result.exits.items()
        if not status.ok
    ]
    if result.status not in ("ok", "failed") or (result.status == "failed" and not found):
        found.append(Violation("liveness", f"the run ended {result.status!r}"))
    return found


def _check_released(kernel: Kernel, managers: Mapping[Domain, DomainManager]) -> list[Violation]:
    found = []
    left = kernel.contracts()
    if left:
        found.append(
            Violation("release", f"contracts {[c.id for c in left]} outlived their holders")
        )
    quota = _check_quotas(managers, Counter(), Counter(), None)
    if quota is not None:
        found.append(Violation("release", f"after the run: {quota.detail}"))
    for pid in kernel.processes():
        held = kernel.authority.held_by(pid)
        if held:
            found.append(
                Violation(
                    "capability",
                    f"ended process {pid} still holds capabilities {[c.id for c in held]}",
                )
            )
    return found


def _scope_of(meta: Mapping[str, Any]) -> Scope:
    scope = meta.get("scope")
    if scope is not None:
        return Scope.from_record(scope)
    return Scope.of(
        Right(_operation(meta["op"]), Domain.parse(meta["from"]), Domain.parse(meta["to"]))
    )


def _operation(name: str) -> Operation:
    return Operation[name]


class _TraceCheck:
    """Invariants read from the trace, entry by entry, in its order."""

    def __init__(self) -> None:
        self.live: dict[int, tuple[int, Scope]] = {}  # capability id -> (holder, scope)
        self.creating: set[int] = set()  # processes between PROCESS_CREATE and ACTIVE
        self.effects: list[tuple[int, Any]] = []

    def run(self, entries: list[TraceEntry], vhm: int) -> Violation | None:
        last_time = 0
        for index, entry in enumerate(entries):
            at = entry.logical_time
            if entry.seq != index:
                return Violation("order", f"entry {index} has sequence number {entry.seq}", at)
            if at < last_time:
                return Violation(
                    "clock",
                    f"entry {index} ({entry.event_name}) is stamped L={at} after L={last_time}",
                    at,
                )
            last_time = at
            if entry.vhm != vhm:
                return Violation("isolation", f"entry {index} names VHM {entry.vhm}", at)
            found = self._entry(entry, index)
            if found is not None:
                return found
        return None

    def _entry(self, entry: TraceEntry, index: int) -> Violation | None:
        kind, meta, pid, at = entry.event_type, entry.metadata, entry.process, entry.logical_time
        if kind is EventType.PROCESS_CREATE and entry.status == 0:
            self.creating.add(pid)
        elif kind is EventType.PROCESS_STATE and meta.get("state") in ("ACTIVE", "RELEASED"):
            self.creating.discard(pid)
        elif kind is EventType.CAPABILITY_GRANT:
            scope = _scope_of(meta)
            parent = meta.get("parent")
            if parent is not None:
                held = self.live.get(parent)
                if held is None:
                    return Violation(
                        "capability", f"entry {index}: derived from dead capability {parent}", at
                    )
                if not contains(scope, held[1]):
                    return Violation(
                        "capability",
                        f"entry {index}: capability {meta['id']} widens its parent {parent}",
                        at,
                    )
            elif at != 0 and pid not in self.creating:
                return Violation(
                    "capability",
                    f"entry {index}: capability {meta['id']} ({meta['op']} {meta['from']}→"
                    f"{meta['to']}) minted for process {pid} outside its creation",
                    at,
                )
            self.live[int(meta["id"])] = (pid, scope)
        elif kind is EventType.CAPABILITY_REVOKE and entry.status == 0:
            for capability in meta.get("ids", []):
                self.live.pop(capability, None)
        elif kind is EventType.RESOURCE_RESERVE and entry.status == 0 and entry.capability:
            held = self.live.get(entry.capability)
            if held is None or held[0] != pid:
                return Violation(
                    "capability",
                    f"entry {index}: process {pid} reserved with capability {entry.capability}, "
                    "which it does not hold",
                    at,
                )
        elif kind is EventType.EFFECT:
            self.effects.append((pid, meta.get("v")))
        return None


def _check_messages(
    plan: Mapping[str, Any], kernel: Kernel, result: RunResult, effects: list[tuple[int, Any]]
) -> list[Violation]:
    """Every emitted value once, in order, per process; the oracle's reports."""
    found = []
    if [tuple(item) for item in result.outputs] != effects:
        found.append(Violation("messages", "the run's outputs differ from the trace's effects"))
    expected = _expected_emits(plan)
    names = {info.name: pid for pid, (info, _) in kernel.processes().items()}
    got: dict[str, list[int]] = {}
    for _, value in effects:
        if isinstance(value, list) and value and value[0] == "!":
            found.append(Violation("oracle", f"process {value[1]}: {value[2]}"))
            continue
        if isinstance(value, list) and len(value) >= 2 and isinstance(value[0], str):
            got.setdefault(value[0], []).append(value[1])
    for label, count in expected.items():
        if label not in names:
            continue  # never spawned (a refused spawn, a removed operation)
        sequence = got.pop(label, [])
        if sequence != list(range(count)):
            found.append(
                Violation(
                    "messages",
                    f"process {label!r} emitted {sequence}, expected 0..{count - 1} once each",
                )
            )
    for label in got:
        found.append(Violation("messages", f"values emitted by unknown process {label!r}"))
    return found


def _expected_emits(plan: Mapping[str, Any]) -> dict[str, int]:
    expected: dict[str, int] = {}

    def walk(spec: Mapping[str, Any], label: str) -> None:
        expected[label] = sum(1 for op in spec["ops"] if op[0] in ("emit", "random"))
        for index, kid in enumerate(spec["kids"]):
            walk(kid, f"{label}.{index}")

    for index, spec in enumerate(plan["procs"]):
        walk(spec, str(index))
    return expected


# ---------------------------------------------------------------------- running


@dataclass
class SeedReport:
    """One simulated run: its seed, what it did, and what broke (shrunk where asked)."""

    seed: int
    violations: list[Violation]
    steps: int = 0
    events: int = 0
    plan: dict[str, Any] | None = field(default=None, repr=False)
    shrunk: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "seed": self.seed,
            "violations": [violation.to_json() for violation in self.violations],
            "steps": self.steps,
            "events": self.events,
        }
        if self.shrunk is not None:
            record["reproduction"] = {"seed": self.seed, "plan": self.shrunk}
        return record


def run_plan(seed: int, plan: Mapping[str, Any], *, check_replay: bool = True) -> SeedReport:
    """Run ``plan`` with kernel seed ``seed`` and check every invariant (SIM_PLAN_INVALID if
    ``plan`` is not a plan)."""
    check_plan(plan)
    loaded = load_workload(SIM_TARGET, params={"plan": dict(plan)})
    managers = declared_managers(plan["managers"])
    by_domain = {manager.domain: manager for manager in managers}
    watch = _Watch(by_domain)
    try:
        kernel = make_kernel(
            seed,
            domains=managers,
            quantum=plan["quantum"],
            faults=FaultPlan.from_record(plan["faults"]),
            limits=KernelLimits(steps_max=_STEPS_MAX, **plan["limits"]),
            workload=loaded.to_record(),
            observer=watch,
        )
    except XdvError as error:
        return SeedReport(seed, [Violation("setup", f"the kernel refused the plan: {error}")])
    watch.kernel = kernel
    try:
        loaded.function(kernel)
        result = kernel.run()
    except _Violated as violated:
        return SeedReport(seed, [violated.violation], watch.steps, 0, dict(plan))
    except XdvError as error:
        return SeedReport(seed, [Violation("setup", f"{error}")], watch.steps, 0, dict(plan))
    except (InvariantViolation, Exception) as error:  # a kernel invariant, or a crash
        return SeedReport(
            seed,
            [Violation("kernel", f"the kernel raised {describe_exception(error)}", watch.now)],
            watch.steps,
            0,
            dict(plan),
        )
    violations = _check_exits(result)
    final = check_state(kernel, by_domain)
    if final is not None:
        violations.append(final)
    violations += _check_released(kernel, by_domain)
    data = result.trace_bytes or b""
    checker = _TraceCheck()
    try:
        found = checker.run(list(read_trace(data).entries), kernel.vhm)
    except TraceError as error:
        found = Violation("order", f"the trace does not read back: {error}")
    if found is not None:
        violations.append(found)
    violations += _check_messages(plan, kernel, result, checker.effects)
    if check_replay and not violations:
        violations += _check_replay(data)
    return SeedReport(seed, violations, result.steps, result.events, dict(plan))


def _check_replay(data: bytes) -> list[Violation]:
    """Re-execute the trace; any difference is a violation."""
    try:
        report = replay(data)
    except (InvariantViolation, Exception) as error:
        return [Violation("replay", f"the replay failed: {describe_exception(error)}")]
    if report.ok:
        return []
    where = report.divergence.to_json() if report.divergence is not None else {}
    return [
        Violation(
            "replay",
            f"the replay diverged at entry {report.entries}: {where.get('differences', where)}",
        )
    ]


def run_seed(seed: int, *, shrink_violations: bool = True, shrink_runs: int = 300) -> SeedReport:
    """Generate the plan of ``seed``, run and check it; shrink it if an invariant broke."""
    plan = generate_plan(seed)
    report = run_plan(seed, plan)
    if report.violations and shrink_violations:
        wanted = report.violations[0].invariant

        def fails(candidate: dict[str, Any]) -> bool:
            found = run_plan(seed, candidate).violations
            return any(violation.invariant == wanted for violation in found)

        report.shrunk = shrink_plan(plan, fails, runs_max=shrink_runs)
    return report


@dataclass
class SimReport:
    """What ``xdv sim --seeds N`` found."""

    start: int
    runs: int
    failures: list[SeedReport]
    steps: int
    events: int
    seconds: float

    @property
    def violations(self) -> int:
        return sum(len(report.violations) for report in self.failures)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "violations": self.violations,
            "start": self.start,
            "failed_seeds": [report.seed for report in self.failures],
            "failures": [report.to_json() for report in self.failures],
            "steps": self.steps,
            "events": self.events,
            "wall_seconds": round(self.seconds, 3),
            "seeds_per_second": round(self.runs / self.seconds, 1) if self.seconds else None,
        }


def simulate(
    seeds: int,
    start: int = 0,
    *,
    shrink_violations: bool = True,
    progress: Callable[[SeedReport], None] | None = None,
) -> SimReport:
    """Run seeds ``start`` .. ``start + seeds - 1`` (see the module docstring)."""
    began = time.perf_counter()  # for the report only; nothing decides on it
    failures = []
    steps = events = 0
    for seed in range(start, start + seeds):
        report = run_seed(seed, shrink_violations=shrink_violations)
        steps += report.steps
        events += report.events
        if report.violations:
            failures.append(report)
        if progress is not None:
            progress(report)
    return SimReport(start, seeds, failures, steps, events, time.perf_counter() - began)


# ---------------------------------------------------------------------- self-test


@dataclass
class MutantResult:
    """Whether the simulator caught one planted bug, with the first seed that did."""

    name: str
    description: str
    caught: bool
    seed: int | None = None
    invariant: str | None = None
    detail: str | None = None
    seeds_run: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "caught": self.caught,
            "seed": self.seed,
            "invariant": self.invariant,
            "detail": self.detail,
            "seeds_run": self.seeds_run,
        }


@dataclass
class SelfTestReport:
    """What ``xdv sim --self-test`` found: every mutant and whether it was caught."""

    results: list[MutantResult]
    clean: SimReport

    @property
    def mutants(self) -> int:
        return len(self.results)

    @property
    def caught(self) -> int:
        return sum(1 for result in self.results if result.caught)

    @property
    def ok(self) -> bool:
        return self.caught == self.mutants and not self.clean.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "mutants": self.mutants,
            "mutants_caught": self.caught,
            "clean_runs": self.clean.runs,
            "clean_violations": self.clean.violations,
            "results": [result.to_json() for result in self.results],
        }


def self_test(
    names: Iterable[str] | None = None, *, seeds_max: int = 200, clean_seeds: int = 20
) -> SelfTestReport:
    """Plant each mutant (all by default) and run seeds from 0 until the simulator reports a
    violation (at most ``seeds_max``); first check that ``clean_seeds`` seeds pass unmutated,
    so a caught mutant is the mutant's doing."""
    clean = simulate(clean_seeds, shrink_violations=False)
    results = []
    for name in sorted(names if names is not None else MUTANTS):
        mutant = MUTANTS[name]
        result = MutantResult(name, mutant.description, False)
        with mutation(name):
            for seed in range(seeds_max):
                result.seeds_run += 1
                report = run_seed(seed, shrink_violations=False)
                if report.violations:
                    first = report.violations[0]
                    result.caught = True
                    result.seed, result.invariant, result.detail = (
                        seed,
                        first.invariant,
                        first.detail,
                    )
                    break
        results.append(result)
    return SelfTestReport(results, clean)
