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

import concurrent.futures
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xdv.core import (
    HELD_QUOTAS,
    MUTANTS,
    DomainManager,
    FaultPlan,
    Kernel,
    KernelLimits,
    Operation,
    ProcessInfo,
    ProcessState,
    RunResult,
    check_scheduler,
    classify,
    mutation,
)
from xdv.errors import InvariantViolation, TraceError, XdvError, describe_exception
from xdv.runtime._domains import declared_managers
from xdv.runtime._kernel import build_policy, make_kernel
from xdv.runtime._replay import replay
from xdv.runtime._sim_plan import check_plan, generate_plan, shrink_plan
from xdv.runtime._sim_workload import SIM_TARGET
from xdv.runtime._workload import load_workload
from xdv.security import ANY_RESOURCE, Right, Scope, contains
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
        self.homes: dict[int, int] = {}  # contract id -> the VHM it was reserved in
        self.scheduler: dict[str, Any] | None = None  # the previous scheduler snapshot

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
        violation = check_state(kernel, self.managers, self.homes)
        if violation is not None:
            raise _Violated(violation)
        problems = kernel.check_fault_invariants()
        if problems:
            raise _Violated(Violation("faults", "; ".join(problems), now))
        snapshot = kernel.scheduler_snapshot()
        problems = check_scheduler(snapshot, self.scheduler)
        if problems:
            raise _Violated(Violation("scheduler", "; ".join(problems), now))
        self.scheduler = snapshot


def check_state(
    kernel: Kernel,
    managers: Mapping[Domain, DomainManager],
    homes: dict[int, int] | None = None,
) -> Violation | None:
    """The invariants of the orchestration state between two steps (None: all hold).

    ``homes`` (contract id → VHM, kept by the caller between calls) lets the check see a
    contract move to another VHM."""
    now = kernel.clock.now
    processes = kernel.processes()
    contracts = kernel.contracts()
    homes = {} if homes is None else homes
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
        home = homes.setdefault(contract.id, holder[0].vhm)
        if holder[0].vhm != home:
            return Violation(
                "isolation",
                f"contract {contract.id} of VHM {home} is held by process {contract.pid} of "
                f"VHM {holder[0].vhm}",
                now,
            )
        amounts[contract.domain] += contract.amount
        counts[contract.domain] += 1
    for pid, (info, _) in processes.items():
        parent = processes.get(info.parent)
        if parent is not None and parent[0].vhm != info.vhm:
            return Violation(
                "isolation",
                f"process {pid} (VHM {info.vhm}) is a child of process {info.parent} "
                f"(VHM {parent[0].vhm})",
                now,
            )
    return (
        _check_quotas(managers, amounts, counts, now)
        or _check_vhms(kernel, processes, now)
        or _check_channels(kernel, now)
    )


def _check_vhms(
    kernel: Kernel, processes: Mapping[int, tuple[ProcessInfo, ProcessState]], now: int | None
) -> Violation | None:
    """Every VHM within its quotas, charged exactly its live processes, and at least the sum
    of its children (the conservation invariant)."""
    vhms = kernel.vhms
    live: Counter[int] = Counter(
        info.vhm for info, state in processes.values() if state not in _ENDED
    )
    for vhm in vhms:
        if not vhm.live or vhm.id == vhms.root:
            continue
        usage = vhm.usage
        for name, bound in vhm.limits.items():
            if usage[name] > bound:
                return Violation(
                    "quota", f"VHM {vhm.id} uses {usage[name]} {name}, over its quota {bound}", now
                )
        members = sum(live[member] for member in vhms.subtree(vhm.id))
        if usage["processes"] != members:
            return Violation(
                "quota",
                f"VHM {vhm.id} is charged {usage['processes']} processes; {members} are live",
                now,
            )
        for child_id in vhm.children:
            child = vhms.get(child_id).usage
            for name, used in child.items():
                if used > usage[name]:
                    return Violation(
                        "quota",
                        f"VHM {child_id} uses {used} {name}, more than its parent {vhm.id} "
                        f"({usage[name]})",
                        now,
                    )
    return None


def _check_channels(kernel: Kernel, now: int | None) -> Violation | None:
    """Every channel within its capacity, and every message sent either delivered, dropped
    (and recorded) or queued: none lost, none duplicated."""
    for channel_id, stats in kernel.channels().items():
        if stats["queued"] > stats["capacity"]:
            return Violation(
                "messages", f"channel {channel_id} holds {stats['queued']} messages", now
            )
        if stats["sent"] != stats["delivered"] + stats["dropped"] + stats["queued"]:
            return Violation(
                "messages",
                f"channel {channel_id}: {stats['sent']} sent, {stats['delivered']} delivered, "
                f"{stats['dropped']} dropped, {stats['queued']} queued",
                now,
            )
    return None


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


# How a simulated process may legitimately fail (its own code catches every refusal): its VHM
# ran out of steps, or a fault escalated (its VHM terminated, its domain quarantined, the node
# panicked), or recovery was exhausted.
_ALLOWED_ENDS = frozenset(
    {
        "VHM_QUOTA_EXCEEDED",
        "VHM_TERMINATED",
        "NODE_PANIC",
        "DOMAIN_QUARANTINED",
        "RECOVERY_EXHAUSTED",
    }
)


def _check_exits(result: RunResult) -> list[Violation]:
    found = [
        Violation("liveness", f"process {pid} ended {status.code}: {status.message}")
        for pid, status in result.exits.items()
        if not status.ok and status.code not in _ALLOWED_ENDS
    ]
    if result.status not in ("ok", "failed", "panic"):
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
    for vhm in kernel.vhms:
        if vhm.id == kernel.vhms.root:
            continue
        held_usage = {name: vhm.usage[name] for name in HELD_QUOTAS if vhm.usage[name]}
        if held_usage:
            found.append(Violation("release", f"VHM {vhm.id} still holds {held_usage}"))
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


def _check_fault_entry(entry: TraceEntry, index: int) -> Violation | None:
    """A FAULT or FAULT_DETECTED entry names its class, domain and level, and its class is the
    one its status and domain give."""
    meta = entry.metadata
    if not {"class", "domain", "level"} <= set(meta):
        return Violation(
            "faults",
            f"entry {index} ({entry.event_name}) lacks its class, domain or level",
            entry.logical_time,
        )
    try:
        expected = classify(entry.status, Domain.parse(meta["domain"])).name
    except XdvError:
        expected = None
    if expected != meta["class"]:
        return Violation(
            "faults",
            f"entry {index} ({entry.event_name}) is classed {meta['class']!r}, not {expected!r}",
            entry.logical_time,
        )
    return None


def _mentions(scope: Scope, operation: str, resource: str) -> bool:
    """Whether ``scope`` grants ``operation`` on ``resource`` (at some time)."""
    return any(
        item["op"] == operation and item.get("resource") in (resource, ANY_RESOURCE)
        for item in scope.to_record()
    )


def _operation(name: str) -> Operation:
    return Operation[name]


class _TraceCheck:
    """Invariants read from the trace, entry by entry, in its order."""

    def __init__(self) -> None:
        self.live: dict[int, tuple[int, Scope]] = {}  # capability id -> (holder, scope)
        self.creating: set[int] = set()  # processes between PROCESS_CREATE and ACTIVE
        self.effects: list[tuple[int, Any]] = []
        self.sent: dict[int, set[int]] = {}  # channel -> sequence numbers sent
        self.taken: dict[int, list[int]] = {}  # channel -> sequence numbers received, in order
        self.dropped: dict[int, set[int]] = {}  # channel -> sequence numbers dropped
        self.results: set[int] = set()  # invocation ids with a DOMAIN_RESULT
        self.panicked = False
        # Channel rights a process is owed: (holder, operation, channel:N) -> how many.
        self.owed: Counter[tuple[int, str, str]] = Counter()
        self.first: Violation | None = None

    def run(self, entries: list[TraceEntry], vhms: Mapping[int, int]) -> Violation | None:
        """Check ``entries``; ``vhms`` maps each process to its VHM."""
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
            pid = entry.process
            if pid and entry.vhm != vhms.get(pid, entry.vhm):
                return Violation(
                    "isolation",
                    f"entry {index} ({entry.event_name}) of process {pid} names VHM "
                    f"{entry.vhm}, not its VHM {vhms[pid]}",
                    at,
                )
            found = self._entry(entry, index)
            if found is not None and self.first is None:
                self.first = found  # keep reading: the effects are still needed
        return self.first

    def _entry(self, entry: TraceEntry, index: int) -> Violation | None:
        kind, meta, pid, at = entry.event_type, entry.metadata, entry.process, entry.logical_time
        if kind in (EventType.FAULT, EventType.FAULT_DETECTED):
            found = _check_fault_entry(entry, index)
            if found is not None:
                return found
        if kind is EventType.NODE_PANIC:
            self.panicked = True
        elif self.panicked and kind in (EventType.DISPATCH, EventType.SLEEP, EventType.EFFECT):
            return Violation(
                "faults", f"entry {index}: process {pid} ran after the node panicked", at
            )
        if kind is EventType.DOMAIN_RESULT:
            invocation = int(meta.get("inv", -1))
            if invocation in self.results:
                return Violation(
                    "faults", f"entry {index}: invocation {invocation} has a second outcome", at
                )
            self.results.add(invocation)
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
            elif at != 0 and pid not in self.creating and not self._owed(pid, meta):
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
        elif kind is EventType.CHANNEL_SEND and entry.status == 0:
            sent = self.sent.setdefault(meta["channel"], set())
            if meta["seq"] in sent:
                return Violation("messages", f"entry {index}: message {meta['seq']} sent twice", at)
            sent.add(meta["seq"])
        elif kind in (EventType.CHANNEL_RECEIVE, EventType.CHANNEL_SELECT) and entry.status == 0:
            channel, seq = meta["channel"], meta["seq"]
            taken = self.taken.setdefault(channel, [])
            if seq not in self.sent.get(channel, ()) or seq in self.dropped.get(channel, ()):
                return Violation(
                    "messages",
                    f"entry {index}: message {seq} of channel {channel} received but never "
                    "sent (or already dropped)",
                    at,
                )
            if taken and seq <= taken[-1]:
                return Violation(
                    "messages",
                    f"entry {index}: message {seq} of channel {channel} received after "
                    f"message {taken[-1]} (out of order, or twice)",
                    at,
                )
            taken.append(seq)
        elif kind is EventType.CHANNEL_CREATE and entry.status == 0 and pid:
            resource = f"channel:{meta['channel']}"
            self.owed[(pid, "SEND", resource)] += 1
            self.owed[(pid, "RECEIVE", resource)] += 1
        elif kind is EventType.CHANNEL_SHARE and entry.status == 0:
            resource = f"channel:{meta['channel']}"
            for right in meta.get("rights", []):
                operation = "SEND" if right == "send" else "RECEIVE"
                if not self._holds(pid, operation, resource):
                    return Violation(
                        "capability",
                        f"entry {index}: process {pid} shared {operation} on {resource}, "
                        "which it does not hold",
                        at,
                    )
                self.owed[(meta["to"], operation, resource)] += 1
        elif kind is EventType.CHANNEL_CLOSE and entry.status == 0:
            self.dropped.setdefault(meta["channel"], set()).update(meta.get("dropped", []))
        return None

    def _owed(self, holder: int, meta: Mapping[str, Any]) -> bool:
        """Whether a plain grant to ``holder`` is a channel right it is owed (by opening the
        channel, or by a Share from a holder of the right); consumes it."""
        scope = meta.get("scope")
        if not isinstance(scope, list) or len(scope) != 1:
            return False
        key = (holder, str(scope[0].get("op")), str(scope[0].get("resource")))
        if self.owed[key] <= 0:
            return False
        self.owed[key] -= 1
        return True

    def _holds(self, holder: int, operation: str, resource: str) -> bool:
        return any(
            owner == holder and _mentions(scope, operation, resource)
            for owner, scope in self.live.values()
        )

    def check_channels(self, kernel: Kernel) -> Violation | None:
        """At the end: every message sent was received, dropped (recorded) or is queued."""
        stats = kernel.channels()
        for channel, sent in sorted(self.sent.items()):
            taken = set(self.taken.get(channel, ()))
            dropped = self.dropped.get(channel, set())
            queued = stats[channel]["queued"] if channel in stats else 0
            if taken & dropped or len(sent) != len(taken) + len(dropped) + queued:
                return Violation(
                    "messages",
                    f"channel {channel}: {len(sent)} messages sent, {len(taken)} received, "
                    f"{len(dropped)} dropped, {queued} still queued",
                )
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
    processes = kernel.processes()
    last_pid = {info.name: pid for pid, (info, _) in processes.items()}
    cut_short = {name for name, pid in last_pid.items() if not result.exits[pid].ok}
    restarts = Counter(info.name for info, _ in processes.values())
    for name in restarts:
        restarts[name] -= 1
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
        # A process restarted from its VHM's snapshot starts its values over from 0; one that
        # a fault or its VHM ended early emitted a prefix of them.
        runs = _runs(sequence)
        complete = label not in cut_short
        wanted = [
            list(range(count if complete and i == len(runs) - 1 else len(run)))
            for i, run in enumerate(runs or [[]])
        ]
        if (runs or [[]]) != wanted or len(runs) > restarts.get(label, 0) + 1:
            found.append(
                Violation(
                    "messages",
                    f"process {label!r} emitted {sequence}, expected 0..{count - 1} once each",
                )
            )
    for label in got:
        found.append(Violation("messages", f"values emitted by unknown process {label!r}"))
    return found


def _runs(sequence: list[int]) -> list[list[int]]:
    """``sequence`` cut where it starts over at 0 (a restart)."""
    runs: list[list[int]] = []
    for value in sequence:
        if value == 0 or not runs:
            runs.append([])
        runs[-1].append(value)
    return runs


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
            policy=build_policy(plan.get("policy", "round-robin")),
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
    homes = {pid: info.vhm for pid, (info, _) in kernel.processes().items()}
    try:
        found = checker.run(list(read_trace(data).entries), homes)
        found = found or checker.check_channels(kernel)
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
    jobs: int = 1,
) -> SimReport:
    """Run seeds ``start`` .. ``start + seeds - 1`` (see the module docstring).

    With ``jobs`` > 1 the seeds are shared among that many worker processes (each seed's run
    is the same wherever it runs; only the wall time changes) and ``progress`` hears of the
    failing seeds only, as their batches finish."""
    if jobs > 1 and seeds > 1:
        return _simulate_in_parallel(seeds, start, shrink_violations, progress, jobs)
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


def _batch(start: int, seeds: int, shrink_violations: bool) -> SimReport:
    return simulate(seeds, start, shrink_violations=shrink_violations)


def _simulate_in_parallel(
    seeds: int,
    start: int,
    shrink_violations: bool,
    progress: Callable[[SeedReport], None] | None,
    jobs: int,
) -> SimReport:
    began = time.perf_counter()
    size = max(1, min(50, seeds // (jobs * 4)))
    batches = [
        (first, min(size, start + seeds - first)) for first in range(start, start + seeds, size)
    ]
    failures: list[SeedReport] = []
    steps = events = 0
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = [pool.submit(_batch, first, count, shrink_violations) for first, count in batches]
        for future in concurrent.futures.as_completed(pending):
            batch = future.result()
            steps += batch.steps
            events += batch.events
            failures += batch.failures
            if progress is not None:
                for report in batch.failures:
                    progress(report)
    failures.sort(key=lambda report: report.seed)
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
        """Every mutant caught (the unmutated seeds' own violations are reported apart)."""
        return self.caught == self.mutants

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
    violation the unmutated kernel does not have on the same seed (at most ``seeds_max``
    seeds), so a caught mutant is the mutant's doing even where a seed also meets a bug of the
    kernel itself. ``clean_seeds`` seeds are first run unmutated, and reported."""
    clean = simulate(clean_seeds, shrink_violations=False)
    unmutated: dict[int, set[str]] = {
        report.seed: {violation.invariant for violation in report.violations}
        for report in clean.failures
    }
    known = set(range(clean_seeds))

    def clean_violations(seed: int) -> set[str]:
        if seed not in known:
            report = run_seed(seed, shrink_violations=False)
            unmutated[seed] = {violation.invariant for violation in report.violations}
            known.add(seed)
        return unmutated.get(seed, set())

    results = []
    for name in sorted(names if names is not None else MUTANTS):
        mutant = MUTANTS[name]
        result = MutantResult(name, mutant.description, False)
        for seed in range(seeds_max):
            baseline = clean_violations(seed)
            result.seeds_run += 1
            with mutation(name):
                report = run_seed(seed, shrink_violations=False)
            new = [v for v in report.violations if v.invariant not in baseline]
            if new:
                result.caught = True
                result.seed, result.invariant, result.detail = seed, new[0].invariant, new[0].detail
                break
        results.append(result)
    return SelfTestReport(results, clean)
