"""The fault handler: detection, containment, escalation and recovery (XDV-024).

The kernel's collaborators call it at the points where a fault becomes known:

* a **fault site** (:meth:`FaultHandler.visit`): the plan's injection rules are counted and may
  raise an injected fault into the system call being handled;
* a **domain outcome** that failed (:meth:`FaultHandler.outcome_failed`, from the invoker at the
  outcome's delivery point): the fault is classified and recorded (FAULT_DETECTED), counted
  towards escalation, recovered from by its class's policy (RECOVERY_RETRY after a back-off in
  logical time, RECOVERY_FALLBACK to other reservation terms, RECOVERY_FAILED when both are
  spent) and, if it reaches the process, contained by its class's rule (FAULT_CONTAINED: a Q
  measurement failure or Φ instability releases the contract, which invalidates the container
  or envelope);
* a **process fault** (:meth:`FaultHandler.process_failed`, from the process table after the
  FAULT entry, which carries the class): counted towards escalation.

Escalation (FAULT_ESCALATED) climbs the levels of :class:`~xdv.core.FaultLevel` when a class's
thresholds are met, or when containment itself fails: the domain level quarantines the domain
(the emergency freeze, DOMAIN_FREEZE), the VHM level terminates every process of the VHM
(VHM_TERMINATED), the node level ends the run (NODE_PANIC, run status ``"panic"``).

Everything here happens in kernel order and depends only on what the trace records (codes,
domains, logical times, the plan), never on physical timing, so fault handling replays exactly.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Operation
from xdv.core._clock import LogicalClock
from xdv.core._contracts import ContractBook
from xdv.core._faults import (
    CONSEQUENCES,
    ClassPolicy,
    FaultClass,
    FaultLevel,
    FaultPlan,
    classify,
)
from xdv.core._lifecycle import ProcessState
from xdv.core._process import _Process
from xdv.core._recorder import Recorder
from xdv.errors import ErrorCode, XdvError
from xdv.trace import Domain, EventType, canonicalize

if TYPE_CHECKING:
    from xdv.core._invoker import Invoker, Pending
    from xdv.core._process_table import ProcessTable

__all__ = ["FaultHandler", "FaultStats", "VhmControl"]


class VhmControl(Protocol):
    """What the fault handler needs of the kernel's VHMs (the kernel provides it)."""

    def terminate_vhm(self, vhm_id: int, code: ErrorCode, reason: str) -> list[int]:
        """End every live process of the VHM (and its nested VHMs); return their pids."""
        ...

    def snapshot_vhm(self, vhm_id: int) -> dict[str, Any]:
        """A K-state snapshot of the VHM's live processes."""
        ...

    def restart_vhm(self, vhm_id: int, snapshot: Mapping[str, Any]) -> dict[int, int]:
        """Restart the VHM's processes from a K snapshot; the new pid of each old pid."""
        ...


_O = Domain.ORCHESTRATION
_LIVE = (ProcessState.ACTIVE, ProcessState.SUSPENDED, ProcessState.CREATED,
         ProcessState.BOUND, ProcessState.INITIALIZED)  # fmt: skip
_RELEASE_ACTIONS = ("aborted", "invalidated", "released")


@dataclass
class FaultStats:
    """Counts of what fault handling did in a run (for reports and the simulator)."""

    detected: int = 0
    injected: int = 0
    contained: int = 0
    escalations: int = 0
    retries: int = 0
    fallbacks: int = 0
    restarts: int = 0
    recoveries_failed: int = 0


class FaultHandler:
    """Fault detection, containment, escalation and recovery for one kernel.

    Invariants: each rule's visit counter counts exactly the visits that matched it; each
    escalation series holds the logical times of counted faults in non-decreasing order; a
    quarantined domain is frozen and stays so; no process of a terminated VHM is live after the
    termination; a contract released by containment is never live again.
    """

    def __init__(
        self,
        plan: FaultPlan,
        recorder: Recorder,
        clock: LogicalClock,
        capabilities: CapabilityCheck,
        contracts: ContractBook,
    ) -> None:
        self.plan = plan
        self.rules = plan.rules
        self._visits = [0] * len(plan.rules)
        self._record = recorder.record
        self._clock = clock
        self._capabilities = capabilities
        self._contracts = contracts
        self._table: ProcessTable | None = None
        self._invoker: Invoker | None = None
        self._defer: Callable[[Callable[[], None]], None] = lambda action: action()
        self._panic: Callable[[str], None] = lambda reason: None
        self._vhms: VhmControl | None = None
        self._root_vhm = 0
        # K snapshots to restart VHMs from (taken when the run starts, for VHMs a restart
        # policy may restart), and the restarts made so far, by (policy key, VHM).
        self._snapshots: dict[int, dict[str, Any]] = {}
        self._restarts: dict[tuple[str, int], int] = {}
        self._series: dict[tuple[str, int | None], list[int]] = {}
        self._delivered: dict[int, ErrorCode] = {}  # pid → the fault just handed to it
        self.quarantined: dict[Domain, int] = {}  # domain → L of its quarantine
        self.terminated_vhms: dict[int, int] = {}  # VHM → L of its termination
        self._terminating: set[int] = set()  # VHMs whose termination is decided or done
        self.panicked: str | None = None
        self.stats = FaultStats()

    def attach(
        self,
        table: ProcessTable,
        invoker: Invoker,
        *,
        defer: Callable[[Callable[[], None]], None],
        panic: Callable[[str], None],
        vhms: VhmControl | None = None,
        root_vhm: int = 0,
    ) -> None:
        """Connect the collaborators built after this one (the kernel does it once)."""
        self._table = table
        self._invoker = invoker
        self._defer = defer
        self._panic = panic
        self._vhms = vhms
        self._root_vhm = root_vhm

    def run_starts(self, vhm_ids: list[int]) -> None:
        """The run starts: snapshot the K state of each VHM, when a policy may restart one.

        A restart re-creates the processes of this snapshot, each with the state it last saved
        (``SaveState``) before the restart: processes checkpoint, the VHM resumes from there."""
        vhms = self._vhms
        if vhms is None or not any(policy.restart for policy in self.plan.policies.values()):
            return
        for vhm_id in sorted(vhm_ids):
            snapshot = vhms.snapshot_vhm(vhm_id)
            if snapshot["processes"]:
                self._snapshots[vhm_id] = snapshot

    @property
    def table(self) -> ProcessTable:
        table = self._table
        if table is None:
            raise AssertionError("the fault handler is attached")  # pragma: no cover
        return table

    @property
    def invoker(self) -> Invoker:
        invoker = self._invoker
        if invoker is None:
            raise AssertionError("the fault handler is attached")  # pragma: no cover
        return invoker

    # ------------------------------------------------------------------ injection

    def _match(self, site: str, process: _Process, domain: Domain | None) -> int | None:
        """Count a visit against every rule it matches; the index of the first that fires."""
        now = self._clock.now
        vhm = process.info.vhm
        fired = None
        for index, rule in enumerate(self.rules):
            if rule.matches(site, process.pid, vhm, domain, now):
                visits = self._visits[index] = self._visits[index] + 1
                if fired is None and rule.occurrence <= visits < rule.occurrence + rule.count:
                    fired = index
        return fired

    def visit(self, site: str, process: _Process, domain: Domain | None = None) -> None:
        """A visit to a fault site: raise the injected fault if a rule fires (recorded as
        FAULT_DETECTED first; its consequence, the refused call, is recorded by the caller)."""
        if not self.rules:
            return
        index = self._match(site, process, domain)
        if index is None:
            return
        rule = self.rules[index]
        fault = rule.fault_class
        error = XdvError(
            f"injected {fault.name} fault at {site} (rule {index}, visit {self._visits[index]})",
            code=fault.code,
            where=site,
        )
        self.stats.injected += 1
        self._detected(process, fault, error.code, "injected", error.message, site=site, rule=index)
        # The call is still being handled: VHM and node actions wait for the kernel's next
        # safe point (a domain quarantine is safe at once).
        self._count_and_escalate(process, fault, defer=True)
        raise error

    def inject_outcome(self, process: _Process, pending: Pending) -> None:
        """At an outcome's delivery: replace it by an injected fault if a rule fires."""
        index = self._match("outcome", process, pending.domain)
        if index is None:
            return
        fault = self.rules[index].fault_class
        pending.status, pending.value = fault.code, None
        pending.error = (
            f"injected {fault.name} fault in the outcome of invocation {pending.invocation} "
            f"(rule {index}, visit {self._visits[index]})"
        )
        pending.injected = index
        self.stats.injected += 1

    # ------------------------------------------------------------------ recording

    def describe(self, code: ErrorCode, domain: Domain = Domain.K) -> dict[str, Any]:
        """The classification a FAULT entry carries: class, domain and level."""
        fault = classify(code, domain)
        return {"class": fault.name, "domain": fault.domain.label, "level": FaultLevel.PROCESS}

    def _detected(
        self,
        process: _Process,
        fault: FaultClass,
        code: ErrorCode,
        source: str,
        message: str,
        **detail: Any,
    ) -> None:
        self.stats.detected += 1
        self._record(
            EventType.FAULT_DETECTED,
            fault.domain,
            process.pid,
            status=code,
            meta={
                "class": fault.name,
                "domain": fault.domain.label,
                "level": FaultLevel.PROCESS,
                "source": source,
                "error": message,
                **detail,
            },
        )

    # ------------------------------------------------------------------ outcomes

    def outcome_failed(self, process: _Process, pending: Pending) -> bool:
        """Handle a failed outcome just recorded for ``process``. True: hand the error to the
        process now; False: recovery or escalation has taken the process over (it is queued
        again, or ended)."""
        code = pending.status
        if code in CONSEQUENCES:
            return True  # the consequence of something already handled, or of the run's end
        fault = classify(code, pending.domain)
        key, policy = self.plan.policy_for(fault)
        if fault.containment != "release" and not key and pending.injected is None:
            # A refused request (a broken contract term, a no-cloning refusal): the refusal
            # changed nothing and is recorded in the outcome; no plan asks more of it.
            return True
        detail: dict[str, Any] = {"inv": pending.invocation}
        if pending.injected is not None:
            detail["rule"] = pending.injected
        self._detected(
            process,
            fault,
            code,
            "injected" if pending.injected is not None else "outcome",
            pending.error or code.name,
            **detail,
        )
        level = self._count_and_escalate(process, fault, defer=False, key=key, policy=policy)
        if process.state not in _LIVE or self.panicked is not None:
            return False
        if level < FaultLevel.DOMAIN and self._recover(process, pending, fault, policy):
            return False
        if (policy.retry is not None and pending.attempt) or pending.fallback:
            self.stats.recoveries_failed += 1
            self._record(
                EventType.RECOVERY_FAILED,
                fault.domain,
                process.pid,
                status=ErrorCode.RECOVERY_EXHAUSTED,
                meta={
                    "class": fault.name,
                    "inv": pending.invocation,
                    "attempts": pending.attempt,
                    "fallbacks": pending.fallback,
                },
            )
        self._contain(process, pending, fault)
        self._delivered[process.pid] = code
        return True

    def _contain(self, process: _Process, pending: Pending, fault: FaultClass) -> None:
        """Apply the class's containment rule (XDV-024 §3.3, §4.3) and record it (once: a
        fallback that found no terms has contained the fault already)."""
        if pending.contract in self._contracts.dead:
            return
        self.stats.contained += 1
        contract = process.contracts.get(pending.contract)
        actions: list[str] = ["refused"]
        if fault.containment == "release" and contract is not None:
            actions = list(_RELEASE_ACTIONS)
            if fault.domain is Domain.PHI:
                actions.append("scheduler notified")
            failure = None
            try:
                self._contracts.release(process, contract, "fault")
            except XdvError as error:
                failure = error.message
            except Exception as error:  # a manager's bug while releasing: not contained
                failure = f"{type(error).__name__}: {error}"
            if failure is not None:
                self._contracts.drop(process, contract)
                actions = ["aborted", "release failed"]
            self._contracts.kill(contract, f"{fault.name} at L {self._clock.now}")
            self._record(
                EventType.FAULT_CONTAINED,
                fault.domain,
                process.pid,
                contract=contract.id,
                meta={"class": fault.name, "inv": pending.invocation, "actions": actions},
            )
            if failure is not None:
                # The fault could not be contained at process level (XDV-024 §5.3).
                self._escalate(
                    process, fault, FaultLevel.DOMAIN, f"containment failed: {failure}", {}, False
                )
            return
        self._record(
            EventType.FAULT_CONTAINED,
            fault.domain,
            process.pid,
            contract=pending.contract,
            meta={"class": fault.name, "inv": pending.invocation, "actions": actions},
        )

    # ------------------------------------------------------------------ recovery

    def _recover(
        self, process: _Process, pending: Pending, fault: FaultClass, policy: ClassPolicy
    ) -> bool:
        """Retry, else fall back; True when a recovery took the process over."""
        contract = process.contracts.get(pending.contract)
        if contract is None or not pending.operation:
            return False  # a contract the process no longer holds cannot be retried
        retry = policy.retry
        now = self._clock.now
        if retry is not None and pending.attempt < retry.attempts:
            attempt = pending.attempt + 1
            delay = retry.delay_for(attempt)
            self.stats.retries += 1
            self._record(
                EventType.RECOVERY_RETRY,
                fault.domain,
                process.pid,
                contract=contract.id,
                meta={
                    "class": fault.name,
                    "inv": pending.invocation,
                    "attempt": attempt,
                    "attempts": retry.attempts,
                    "delay": delay,
                    "at": now + delay,
                },
            )
            process.delivery = self.invoker.retry_marker(pending, attempt)
            self.table.enqueue(process, now + delay)
            return True
        if pending.fallback < len(policy.fallback):
            return self._fall_back(process, pending, fault, policy, contract)
        return False

    def _fall_back(
        self,
        process: _Process,
        pending: Pending,
        fault: FaultClass,
        policy: ClassPolicy,
        contract: Any,
    ) -> bool:
        """Release the faulted contract and reserve one with the next fallback terms that a
        manager grants; run the operation there. False if no fallback could be reserved."""
        requested = self._contracts.requested.get(contract.id)
        if requested is None:
            return False  # not a Reserve's contract (a transition's): nothing to re-reserve
        self._contain(process, pending, fault)
        resource, amount, duration, terms = requested
        domain = contract.domain
        index = pending.fallback
        while index < len(policy.fallback):
            override = policy.fallback[index]
            index += 1
            try:
                capability = self._capabilities.check(
                    process.pid, Operation.ALLOCATE, Domain.K, domain, resource
                )
                replacement = self._contracts.reserve(
                    process,
                    domain,
                    resource,
                    amount,
                    duration,
                    capability,
                    terms={**dict(terms), **dict(override)},
                )
            except XdvError as error:
                self._record(
                    EventType.RESOURCE_RESERVE,
                    domain,
                    process.pid,
                    status=error.code,
                    meta={"error": error.message, "call": "fallback"},
                )
                continue
            self._record(
                EventType.RESOURCE_RESERVE,
                domain,
                process.pid,
                capability=capability.id,
                contract=replacement.id,
                meta=replacement.to_record(),
            )
            self._contracts.forward(contract.id, replacement.id)
            self.stats.fallbacks += 1
            self._record(
                EventType.RECOVERY_FALLBACK,
                domain,
                process.pid,
                capability=capability.id,
                contract=replacement.id,
                meta={
                    "class": fault.name,
                    "inv": pending.invocation,
                    "from": contract.id,
                    "to": replacement.id,
                    "terms": dict(override),
                },
            )
            self.invoker.reinvoke(process, replacement, pending, attempt=0, fallback=index)
            return True
        pending.fallback = index
        return False

    def activation_failed(
        self, process: _Process, failure: XdvError, domain: Domain, transition: int
    ) -> None:
        """A transition's activation failed with a domain fault: record and count it (the
        transition's rollback, recorded next, contains it; it is not retried)."""
        code = failure.code
        fault = classify(code, domain)
        if code in CONSEQUENCES or fault.containment != "release":
            return
        self._detected(process, fault, code, "transition", failure.message, tr=transition)
        self._count_and_escalate(process, fault, defer=True)

    # ------------------------------------------------------------------ process faults

    def process_failed(self, process: _Process, code: ErrorCode) -> None:
        """Count a process's end by a fault (after its FAULT entry) towards escalation; a fault
        just handed to the process by an outcome was counted then, and is not counted again."""
        if code in CONSEQUENCES or self.table.shutting_down or self.panicked is not None:
            return
        if self._delivered.pop(process.pid, None) is code:
            return
        self._count_and_escalate(process, classify(code, Domain.K), defer=False)

    def forget(self, pid: int) -> None:
        """``pid`` handled the fault it was handed (it did not end of it)."""
        self._delivered.pop(pid, None)

    # ------------------------------------------------------------------ escalation

    def _count_and_escalate(
        self,
        process: _Process,
        fault: FaultClass,
        *,
        defer: bool,
        key: str | None = None,
        policy: ClassPolicy | None = None,
    ) -> FaultLevel:
        """Count one fault and escalate to the highest level whose threshold it meets."""
        if key is None or policy is None:
            key, policy = self.plan.policy_for(fault)
        if not policy.escalate:
            return FaultLevel.PROCESS
        now = self._clock.now
        name = key or fault.name
        vhm = process.info.vhm
        window_max = max(threshold.window for threshold in policy.escalate.values())
        counts: dict[FaultLevel, int] = {}
        for scope in (None, vhm):
            series = self._series.setdefault((name, scope), [])
            series.append(now)
            stale = bisect.bisect_right(series, now - window_max)
            if stale:
                del series[:stale]
        reached = FaultLevel.PROCESS
        for level, threshold in sorted(policy.escalate.items()):
            series = self._series[(name, vhm if level is FaultLevel.VHM else None)]
            count = len(series) - bisect.bisect_right(series, now - threshold.window)
            counts[level] = count
            if count >= threshold.count:
                reached = level
        if reached is FaultLevel.PROCESS:
            return reached
        for level, threshold in sorted(policy.escalate.items()):
            if level <= reached and counts[level] >= threshold.count:
                reason = (
                    f"{counts[level]} faults counted under {name!r} within {threshold.window} "
                    f"logical steps (threshold {threshold.count})"
                )
                self._escalate(
                    process,
                    fault,
                    level,
                    reason,
                    {"count": counts[level], "window": threshold.window},
                    defer,
                    (name, policy),
                )
        return reached

    def _escalate(
        self,
        process: _Process,
        fault: FaultClass,
        level: FaultLevel,
        reason: str,
        detail: dict[str, Any],
        defer: bool,
        governing: tuple[str, ClassPolicy] | None = None,
    ) -> None:
        """Record one escalation to ``level`` and take its action."""
        vhm = process.info.vhm
        name, policy = governing if governing is not None else (fault.name, ClassPolicy())
        restart = 0
        if level is FaultLevel.DOMAIN:
            if fault.domain in (Domain.K, Domain.ORCHESTRATION):
                action = "none (K and orchestration faults are contained by their VHM)"
            elif fault.domain in self.quarantined:
                action = "already quarantined"
            else:
                action = "quarantined"
        elif level is FaultLevel.VHM:
            made = self._restarts.get((name, vhm), 0)
            if vhm in self._terminating:
                action = "already terminated"
            elif made < policy.restart and vhm in self._snapshots:
                action, restart = "restarted", made + 1
            elif vhm == self._root_vhm:
                # The root VHM is the node's own: isolating it is ending the run.
                action = "panic (the root VHM)"
            else:
                action = "terminated"
        else:
            action = "panic" if self.panicked is None else "already panicked"
        self.stats.escalations += 1
        self._record(
            EventType.FAULT_ESCALATED,
            fault.domain,
            process.pid,
            meta={
                "class": fault.name,
                "to": level.label,
                "level": level,
                "vhm": vhm,
                "action": action,
                "reason": reason,
                **detail,
            },
        )
        if level is FaultLevel.DOMAIN and action == "quarantined":
            self._quarantine(fault.domain, reason)  # safe at once: it only refuses from now on
        elif level is FaultLevel.VHM and action == "terminated":
            self._terminating.add(vhm)
            self._run(lambda: self._terminate_vhm(vhm, reason), defer)
        elif level is FaultLevel.VHM and restart:
            self._restarts[(name, vhm)] = restart
            self._series.pop((name, vhm), None)  # the restarted VHM counts afresh
            self._run(lambda: self._restart_vhm(vhm, fault, restart, reason), defer)
        elif action.startswith("panic") and self.panicked is None:
            self.panicked = reason
            self._run(lambda: self._node_panic(fault, reason), defer)

    def _run(self, action: Callable[[], None], defer: bool) -> None:
        if defer:
            self._defer(action)
        else:
            action()

    def _quarantine(self, domain: Domain, reason: str) -> None:
        """Quarantine ``domain`` with the kernel's emergency freeze (DOMAIN_FREEZE)."""
        self.quarantined[domain] = self._clock.now
        self._capabilities.quarantine(domain)
        self._capabilities.freeze(domain, f"quarantined: {reason}", 0, sorted(self.table.processes))

    def _terminate_vhm(self, vhm: int, reason: str) -> None:
        self._terminating.add(vhm)
        self.terminated_vhms[vhm] = self._clock.now
        message = f"fault escalation: {reason}"
        if self._vhms is not None:
            self._vhms.terminate_vhm(vhm, ErrorCode.VHM_TERMINATED, message)
            return
        table = self.table  # a kernel without VHM control: end the VHM's processes here
        for pid in sorted(table.processes):
            process = table.processes[pid]
            if process.state in _LIVE and process.info.vhm == vhm:
                table.fail(process, ErrorCode.VHM_TERMINATED, message)

    def _restart_vhm(self, vhm: int, fault: FaultClass, restart: int, reason: str) -> None:
        """Restart ``vhm`` from its run-start snapshot, each process with its last saved K
        state; a restart that cannot be made terminates the VHM instead."""
        vhms = self._vhms
        snapshot = self._snapshots[vhm]
        processes = self.table.processes
        current = {
            **snapshot,
            "at": self._clock.now,
            "processes": [
                {**entry, "state": canonicalize(processes[entry["pid"]].saved, "saved state")}
                for entry in snapshot["processes"]
            ],
        }
        self.stats.restarts += 1
        self._record(
            EventType.RECOVERY_RESTART,
            _O,
            0,
            meta={
                "vhm": vhm,
                "class": fault.name,
                "restart": restart,
                "snapshot": snapshot["at"],
            },
        )
        try:
            if vhms is None:  # pragma: no cover - restarts need the kernel's VHM control
                raise XdvError("no VHM control", where="restart")
            renamed = vhms.restart_vhm(vhm, current)
        except XdvError as error:
            self.stats.recoveries_failed += 1
            self._record(
                EventType.RECOVERY_FAILED,
                _O,
                0,
                status=ErrorCode.RECOVERY_EXHAUSTED,
                meta={"class": fault.name, "vhm": vhm, "error": error.message},
            )
            self._terminate_vhm(vhm, reason)
            return
        # The next restart starts from the processes this one created.
        self._snapshots[vhm] = {
            **current,
            "processes": [
                {**entry, "pid": renamed[entry["pid"]]} for entry in current["processes"]
            ],
        }

    def _node_panic(self, fault: FaultClass, reason: str) -> None:
        self._record(
            EventType.NODE_PANIC,
            _O,
            0,
            status=ErrorCode.NODE_PANIC,
            meta={"class": fault.name, "reason": reason},
        )
        self._panic(reason)

    # ------------------------------------------------------------------ invariants

    def invariants(self) -> list[str]:
        """The fault-handling invariants that do not hold now (empty when all hold); see
        ``docs/faults.md``. Cheap enough to call after every step of a simulation."""
        problems: list[str] = []
        now = self._clock.now
        for key, series in self._series.items():
            if any(a > b for a, b in itertools.pairwise(series)) or (series and series[-1] > now):
                problems.append(f"escalation series {key} is not ordered in the past")
        frozen = self._capabilities.frozen
        for domain in self.quarantined:
            if domain not in frozen:
                problems.append(f"quarantined domain {domain.label} is not frozen")
        table = self._table
        if table is not None:
            for pid, process in sorted(table.processes.items()):
                if process.state in _LIVE and process.info.vhm in self.terminated_vhms:
                    problems.append(f"process {pid} of terminated VHM {process.info.vhm} lives")
                for contract_id, contract in process.contracts.items():
                    if contract_id in self._contracts.dead:
                        problems.append(f"contract {contract_id} released by containment is live")
                    if (
                        contract.domain in self.quarantined
                        and contract.issued_at > (self.quarantined[contract.domain])
                    ):
                        problems.append(
                            f"contract {contract_id} was granted in quarantined "
                            f"{contract.domain.label}"
                        )
        for index, visits in enumerate(self._visits):
            if visits < 0:
                problems.append(f"rule {index} has a negative visit count")
        return problems
