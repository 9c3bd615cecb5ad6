"""The transition protocol and the contract lifecycle of the real kernel as an explorable system.

Each explored path is a sequence of steps, each one system call made by one of the processes
(``Reserve``, ``Release``, ``Invoke``, ``Transfer``, ``Transition`` with a fault injected at
any one of the seven transition phases, and ``Release``/``Invoke`` on stale handles of released
contracts). A state is observed by running a fresh ``xdv.core.Kernel`` whose processes take
their turns in exactly the path's order, snapshotting the orchestration state around each call;
faults enter through the kernel's own fault plan. A reference model predicts each step's
outcome; the kernel must agree, a refused call or rolled-back transition must leave the state
as it was, a committed transition keeps nothing of its reservation, a rollback names the
completed phases in order and undoes exactly the reservation, lanes in use equal the lanes of
live contracts, and a transfer moves exactly one contract. The case files choose the processes
and the calls (``system``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xdv.core import TRANSITION_PHASES, FaultPlan, FaultRule, KDomainManager, Kernel
from xdv.errors import XdvError
from xdv.syscalls import Contracts, Invoke, Release, Reserve, Self, Transfer, Transition, Yield
from xdv.trace import EventType, read_trace

LANES = 2
TRANSITION_KINDS = ("transition",)
CONTRACT_KINDS = ("reserve", "release", "release-stale", "invoke", "invoke-stale", "transfer")


def double(value: int) -> int:
    return 2 * value


@dataclass(frozen=True)
class Step:
    """Process ``process`` (0 or 1) makes call ``kind``; a transition with ``phase`` set gets a
    fault injected at that phase."""

    process: int
    kind: str
    phase: str | None = None

    def __str__(self) -> str:
        fault = f" (fault at {self.phase})" if self.phase else ""
        return f"process {self.process}: {self.kind}{fault}"


@dataclass
class Observed:
    """One run of a path: per step its outcome and the snapshots around it, the handles each
    process holds at the end, the transitions' records and the phase each transition
    reached."""

    outcomes: list[str] = field(default_factory=list)
    before: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    live: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    begun: list[int] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    reached: dict[int, list[str]] = field(default_factory=dict)
    kernel_problems: list[str] = field(default_factory=list)


@dataclass
class Live:
    path: tuple[Step, ...]
    rules: tuple[FaultRule, ...]
    observed: Observed
    pids: tuple[int, ...]


def run_path(path: Sequence[Step], rules: Sequence[FaultRule], processes: int) -> Observed:
    """Run ``path`` on a fresh kernel (see the module docstring)."""
    observed = Observed(live=[0] * processes, stale=[0] * processes)
    cursor = [0]
    stale_handles: list[list[Any]] = [[] for _ in range(processes)]
    pids = [index + 1 for index in range(processes)]  # spawn order gives the pids

    def anchor(index: int) -> Any:
        info = yield Self()
        assert info.pid == pids[index]
        while True:
            while cursor[0] < len(path) and path[cursor[0]].process != index:
                yield Yield()
            if cursor[0] >= len(path):
                held = yield Contracts()
                observed.live[index] = len(held)
                observed.stale[index] = len(stale_handles[index])
                return
            step = path[cursor[0]]  # the cursor moves on once this step's call returns
            held = yield Contracts()
            call: Any
            if step.kind == "reserve":
                call = Reserve("K", "lane", 1)
            elif step.kind == "release":
                call = Release(held[0])
            elif step.kind == "invoke":
                call = Invoke(held[0], "call", (double, 1))
            elif step.kind == "transfer":
                call = Transfer(held[0], pids[1 - index])
            elif step.kind == "release-stale":
                call = Release(stale_handles[index][-1])
            elif step.kind == "invoke-stale":
                call = Invoke(stale_handles[index][-1], "call", (double, 1))
            else:
                call = Transition("K", "K", "call", (double, 3))
            observed.before.append(kernel.snapshot())
            try:
                value = yield call
                outcome = "ok"
                if step.kind == "transition" and value != 6:
                    outcome = f"wrong value {value!r}"
                if step.kind == "release":  # contract ids are never reused: dead for good
                    stale_handles[index].append(held[0])
            except XdvError as error:
                outcome = error.code.name
            observed.after.append(kernel.snapshot())
            observed.outcomes.append(outcome)
            # The kernel's own always-on fault invariants, after every call.
            observed.kernel_problems.extend(kernel.check_fault_invariants())
            cursor[0] += 1

    kernel = Kernel(domains=[KDomainManager(lanes=LANES)], faults=FaultPlan(list(rules)))
    for index in range(processes):
        kernel.spawn(anchor, index)
    result = kernel.run()
    for entry in read_trace(result.trace_bytes).entries:
        if entry.event_type is EventType.TRANSITION_BEGIN:
            observed.begun.append(entry.metadata["tr"])
        elif entry.event_type is EventType.TRANSITION_COMMIT:
            observed.committed.append(entry.metadata["tr"])
            observed.reached.setdefault(entry.process, []).append("logging")
        elif entry.event_type is EventType.TRANSITION_ROLLBACK:
            observed.rollbacks.append(dict(entry.metadata, pid=entry.process))
            observed.reached.setdefault(entry.process, []).append(entry.metadata["phase"])
    return observed


def _lanes_free(observed: Observed) -> int:
    return LANES - sum(observed.live)


class KernelSystem:
    """The kernel's transition protocol and contract lifecycle as an explorable system."""

    def __init__(self, processes: int, kinds: Sequence[str]) -> None:
        self.processes = processes
        self.kinds = tuple(kinds)

    def start(self) -> Live:
        return Live((), (), run_path((), (), self.processes), tuple(range(1, self.processes + 1)))

    def actions(self, live: Live) -> Sequence[Step]:
        steps: list[Step] = []
        observed = live.observed
        for index in range(self.processes):
            holds, stale = observed.live[index] > 0, observed.stale[index] > 0
            for kind in self.kinds:
                if kind == "transition":
                    steps.append(Step(index, kind))
                    steps.extend(Step(index, kind, phase) for phase in TRANSITION_PHASES)
                elif (
                    kind == "reserve"
                    or (kind in ("release", "invoke") and holds)
                    or (kind == "transfer" and holds and self.processes > 1)
                    or (kind.endswith("-stale") and stale)
                ):
                    steps.append(Step(index, kind))
        return steps

    def _rule(self, live: Live, step: Step) -> FaultRule:
        assert step.phase is not None
        pid = step.process + 1
        position = TRANSITION_PHASES.index(step.phase)
        visits = sum(
            1
            for reached in live.observed.reached.get(pid, [])
            if TRANSITION_PHASES.index(reached) >= position
        )
        return FaultRule(f"transition.{step.phase}", occurrence=visits + 1, pid=pid)

    def step(self, live: Live, action: Step) -> Live:
        rules = live.rules + ((self._rule(live, action),) if action.phase else ())
        path = (*live.path, action)
        return Live(path, rules, run_path(path, rules, self.processes), live.pids)

    def state(self, live: Live) -> Hashable:
        observed = live.observed
        managers = observed.after[-1]["managers"] if observed.after else None
        return (
            tuple(observed.live),
            tuple(min(count, 1) for count in observed.stale),
            repr(managers),
        )

    def predict(self, live: Live, step: Step) -> str:
        """The reference model's outcome of ``step`` in ``live``'s state."""
        free = _lanes_free(live.observed)
        if step.kind in ("release-stale", "invoke-stale"):
            return "CONTRACT_INVALID"
        if step.kind in ("reserve", "transition") and free == 0:
            if step.kind == "transition" and step.phase in ("capability", "reservation"):
                return "INJECTED_FAULT"  # the fault site is visited before reserving
            return "RESOURCE_EXHAUSTED"
        if step.kind == "transition" and step.phase is not None:
            return "INJECTED_FAULT"
        return "ok"

    def violations(self, before: Live | None, action: Step | None, after: Live) -> list[str]:
        observed = after.observed
        problems: list[str] = []
        if len(observed.outcomes) != len(after.path):
            return [f"{len(observed.outcomes)} of {len(after.path)} steps ran"]
        if before is not None and action is not None:
            outcome, predicted = observed.outcomes[-1], self.predict(before, action)
            if outcome != predicted:
                problems.append(f"outcome {outcome}, the model predicts {predicted}")
            pre, post = observed.before[-1], observed.after[-1]
            if outcome != "ok" and pre != post:
                problems.append("a refused call or rolled-back transition changed the state")
            if action.kind == "transfer" and outcome == "ok":
                moved = [
                    len(post["processes"][pid]["contracts"])
                    - len(pre["processes"][pid]["contracts"])
                    for pid in sorted(post["processes"])
                ]
                expected = [-1, 1] if action.process == 0 else [1, -1]
                if moved != expected:
                    problems.append(f"a transfer moved contracts by {moved}, not {expected}")
            if (
                action.kind == "transition"
                and outcome == "ok"
                and (pre["managers"] != post["managers"] or pre["processes"] != post["processes"])
            ):
                problems.append("a committed transition kept part of its reservation")
        problems.extend(f"kernel invariant: {text}" for text in observed.kernel_problems)
        lanes = sum(observed.live)
        in_use = [item["managers"]["K"]["lanes_in_use"] for item in observed.after[-1:]]
        if in_use and in_use[0] != lanes:
            problems.append(f"{in_use[0]} lanes in use, live contracts hold {lanes}")
        if lanes > LANES:
            problems.append(f"{lanes} lanes held of {LANES}")
        rolled = [item["tr"] for item in observed.rollbacks]
        if set(rolled) & set(observed.committed):
            problems.append("a transition both committed and rolled back")
        if sorted(rolled + observed.committed) != sorted(observed.begun):
            problems.append("a begun transition did not end exactly once")
        for item in observed.rollbacks:
            completed = item["completed"]
            if completed != list(TRANSITION_PHASES[: len(completed)]):
                problems.append(f"rollback {item['tr']} completed {completed} out of order")
            expected_undone = ["reservation"] if "reservation" in completed else []
            if item["undone"] != expected_undone:
                problems.append(f"rollback {item['tr']} undid {item['undone']}")
        return problems
