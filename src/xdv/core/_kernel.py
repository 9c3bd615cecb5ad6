"""The deterministic orchestration core: one kernel loop, one logical clock, one trace.

Ordering model (``docs/design.md`` explains it at length):

* Logical time ``L`` advances by one for every step the kernel dispatches (one system call of
  one process), and jumps forward over idle time when every process is blocked.
* Every decision is appended to the trace stamped with the current ``L``; entries of the same
  step share ``L`` and are ordered by their sequence number, so (L, seq) is a strict total order.
* The next process to run is the ready process with the smallest scheduler-policy key; the
  default key is (ready-at L, -priority, pid, enqueue sequence).
* A dispatched process runs up to ``quantum`` consecutive steps, until it blocks, or until it
  ends; then it is preempted and becomes ready again one step later.
* Domain outcomes enter the order at the logical point their operation's latency fixes: the
  invoking process becomes ready at (invocation L + latency) and the outcome is recorded when
  it is next dispatched, however long the provider physically took.

An optional *step observer* (``Kernel(observer=...)``, see :class:`StepObserver`) is called
between steps: before each step with the number of steps completed so far, so it sees the state
every completed step left behind. It is for checkers such as ``xdv sim``: it decides nothing,
records nothing, and a run without one pays a single local ``is None`` test per step.

The kernel is the loop and the public surface; below the loop it is made of collaborators with
explicit interfaces, each in its own module: the recorder (``_recorder.py``: trace entries,
audit checkpoints, output release), the VHM table (``_vhm.py``: virtual hybrid machines, their
quotas and usage), the process table (``_process_table.py``: processes, their lifecycle, the
ready queue), the domain table (``_domains.py``: managers, binding, attestation),
the capability check (``_authorization.py``), the contract book (``_contracts.py``), the invoker
(``_invoker.py``: prepare, perform and deliver domain operations), the fault handler
(``_fault_handler.py``: detection, containment, escalation and recovery of faults, see
``docs/faults.md``), the transition protocol (``_transition.py``) and the system-call handlers
(``_handlers.py``).

Nothing here reads wall time or unseeded randomness. The one wall clock the kernel holds is
injected (:class:`~xdv.core.WallClock`) and only measures how long a run took, for people; that
figure is returned in :class:`RunResult` and never reaches the trace or a decision.
"""

from __future__ import annotations

import contextlib
import heapq
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xdv.core._admission import AdmissionQueue, _Deadline
from xdv.core._audit import AuditConfig
from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Capability, CapabilityAuthority, CapabilityTable, Operation
from xdv.core._channels import ChannelTable
from xdv.core._clock import LogicalClock, SystemWallClock, WallClock
from xdv.core._contracts import ContractBook
from xdv.core._domains import DomainTable, ProviderVerifier
from xdv.core._fault_handler import FaultHandler, FaultStats
from xdv.core._faults import FaultPlan
from xdv.core._handlers import SystemCalls
from xdv.core._interface import DomainManager, ResourceContract
from xdv.core._invoker import Invoker, Pending, RecordedOutcome
from xdv.core._k_manager import KDomainManager, qualified_name
from xdv.core._lifecycle import ProcessState
from xdv.core._policy import RoundRobinPolicy, SchedulerPolicy, parse_policy
from xdv.core._process import ExitStatus, ProcessInfo, _Process
from xdv.core._process_table import ProcessTable
from xdv.core._random import derive_seed
from xdv.core._ready import PolicyQueue
from xdv.core._recorder import EmitSink, OutputFailure, Recorder
from xdv.core._refusals import _Recorded
from xdv.core._syscalls import Sleep
from xdv.core._transition import Transitions
from xdv.core._vhm import VhmQuotas, VhmTable, snapshot_digest
from xdv.errors import (
    ErrorCode,
    InvariantViolation,
    UnauthorizedError,
    XdvError,
    as_typed,
    describe_exception,
    invariant,
    safe_repr,
)
from xdv.trace import (
    FORMAT_VERSION,
    Domain,
    EventType,
    FsyncPolicy,
    TraceWriteFailure,
    TraceWriter,
    cbor_uint,
)

__all__ = ["EmitSink", "Kernel", "KernelLimits", "RecordedOutcome", "RunResult", "StepObserver"]

_O = Domain.ORCHESTRATION
# Plain integers for the hot path (IntEnum members cost more to pack).
_PREEMPT = int(EventType.PREEMPT)
_SLEEP = int(EventType.SLEEP)
_ORCHESTRATION = int(Domain.ORCHESTRATION)
# Canonical CBOR pieces: a one-entry map whose key is "until"; the same followed by the head of
# a 16-bit and of a 32-bit unsigned integer; the empty map.
_UNTIL_PREFIX = b"\xa1\x65until"
_UNTIL_PREFIX_U16 = _UNTIL_PREFIX + b"\x19"
_UNTIL_PREFIX_U32 = _UNTIL_PREFIX + b"\x1a"
# One call builds a SLEEP entry's whole metadata from the 8-byte prefix and the big-endian value.
_pack_until_u16 = struct.Struct(">8sH").pack
_pack_until_u32 = struct.Struct(">8sI").pack
_EMPTY_MAP = b"\xa0"
_LIMIT_MAX = 2**40  # keeps logical time and every counter far inside the trace's u64 fields


class StepObserver(Protocol):
    """Watches a run between its steps (``Kernel(observer=...)``).

    Called by the kernel loop before every step with the number of steps completed so far, so
    each call sees the state the previous step left (the first call sees the state before the
    first step). It runs on the loop's thread, must not call the kernel's operator actions or
    change anything, and records nothing; an exception it raises ends the run and propagates
    out of :meth:`Kernel.run` (the trace's intact prefix is flushed, as for any escape). The
    state after the last step is read after :meth:`Kernel.run` returns.
    """

    def __call__(self, steps: int, /) -> None: ...


class _Interruption:
    """The ready-queue item :meth:`Kernel.interrupt` queues: its key sorts before every
    process's, and it is never ACTIVE, so the loop meets it on the path it already takes for
    processes it does not run, and the common path pays nothing for interrupts."""

    __slots__ = ("queued",)
    state = None

    def __init__(self) -> None:
        self.queued = True


_INTERRUPTION = _Interruption()
# A key below every policy key: negative infinity is less than any integer (twice, so that it
# also sorts before a due admission deadline or a deferred fault action, whose keys are
# (-inf, sequence number)).
_INTERRUPTION_ITEM = (float("-inf"), float("-inf"), _INTERRUPTION)
# RUN_END's status field for run statuses that are not OK.
_END_CODES = {
    "limit": ErrorCode.LIMIT_EXCEEDED,
    "interrupted": ErrorCode.RUN_INTERRUPTED,
    "panic": ErrorCode.NODE_PANIC,
}


class _Deferred:
    """A kernel action queued for the loop's next safe point (between two slices), ahead of
    every process: fault escalations decided while a system call was being handled (ending a
    VHM, a node panic) run there, never in the middle of the call."""

    __slots__ = ("action", "queued")
    state = None

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.queued = True


@dataclass(frozen=True, slots=True)
class KernelLimits:
    """Bounds on everything the kernel holds. Exceeding one is a typed LIMIT_EXCEEDED error.

    ``processes_max`` bounds the processes created over a whole run (ended ones included);
    ``steps_max`` the dispatched steps of a run; the others what one process may hold.
    """

    processes_max: int = 4096
    steps_max: int = 100_000_000
    quantum_max: int = 1024
    contracts_per_process_max: int = 256
    sleep_ticks_max: int = 1 << 40
    waiters_per_process_max: int = 4096

    def to_record(self) -> dict[str, int]:
        """Every limit, by field name (recorded in RUN_START so a replay rebuilds them all)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class RunResult:
    """The result of :meth:`Kernel.run`.

    ``status`` is what RUN_END records: ``"ok"``, ``"failed"`` (a process failed, or the
    workload's setup did), ``"limit"`` (the step limit ended the run), ``"interrupted"``
    (:meth:`Kernel.interrupt` ended it) or ``"panic"`` (a fault escalated to the node level);
    only ``"ok"`` is :attr:`ok`. ``faults`` counts what fault handling did.
    """

    status: str
    exits: dict[int, ExitStatus]
    outputs: list[tuple[int, Any]]
    steps: int
    logical_time: int
    events: int
    head_hash: str
    trace_path: Path | None = None
    trace_bytes: bytes | None = field(default=None, repr=False)
    wall_seconds: float = 0.0  # measured by the injected wall clock; never traced
    # The exception that ended each process with PROCESS_FAULT (its anchor's own bug), with its
    # traceback, for people; the trace records only ``Type: message``.
    exceptions: dict[int, BaseException] = field(default_factory=dict, repr=False, compare=False)
    faults: FaultStats = field(default_factory=FaultStats, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Kernel:
    """The XDV kernel: runs hybrid processes and records every decision in a trace.

    Typical use::

        kernel = Kernel(seed=7, trace="run.xdvt")
        kernel.spawn(anchor, arg)
        result = kernel.run()
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        trace: str | Path | TraceWriter | None = None,
        domains: Iterable[DomainManager] | None = None,
        quantum: int = 8,
        policy: SchedulerPolicy | str | None = None,
        limits: KernelLimits | None = None,
        faults: FaultPlan | None = None,
        workload: Mapping[str, Any] | None = None,
        emit: EmitSink | None = None,
        fsync: FsyncPolicy | str = FsyncPolicy.BATCH,
        authority: CapabilityAuthority | None = None,
        vhm: int = 0,
        node: int = 0,
        replay_outcomes: Mapping[int, RecordedOutcome] | None = None,
        wall_clock: WallClock | None = None,
        audit: AuditConfig | None = None,
        attestation: ProviderVerifier | None = None,
        observer: StepObserver | None = None,
    ) -> None:
        self.seed = seed
        self.observer = observer
        self.limits = limits or KernelLimits()
        if not 1 <= quantum <= self.limits.quantum_max:
            raise XdvError(
                f"quantum must be between 1 and {self.limits.quantum_max} steps, got {quantum}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="kernel configuration",
            )
        derive_seed(seed, ("kernel",))  # validates the seed with a typed error
        for name, value in self.limits.to_record().items():
            if type(value) is not int or not 1 <= value <= _LIMIT_MAX:
                raise XdvError(
                    f"limit {name} must be an integer in [1, 2**40], got {safe_repr(value)}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where="kernel configuration",
                )
        for name, value in (("vhm", vhm), ("node", node)):
            if type(value) is not int or not 0 <= value < 2**32:
                raise XdvError(
                    f"{name} id must be an integer in [0, 2**32), got {safe_repr(value)}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where="kernel configuration",
                )
        self.quantum = quantum
        if isinstance(policy, str):
            policy = parse_policy(policy)
        self.policy: SchedulerPolicy = policy or RoundRobinPolicy()
        self.clock = LogicalClock()
        self._wall_clock: WallClock = wall_clock or SystemWallClock()
        self._wall_start_ns: int | None = None
        self.vhm = vhm
        self.node = node
        self.faults = faults or FaultPlan()
        self.audit = audit
        writer = trace if isinstance(trace, TraceWriter) else TraceWriter(trace, fsync=fsync)
        # The collaborators, each built on those before it (see the module docstring).
        self._recorder = recorder = Recorder(
            writer, self.clock, vhm=vhm, node=node, audit=audit, emit=emit
        )
        self._vhms = vhms = VhmTable(recorder, self.clock, vhm)
        self._spawn_vhm: int | None = None  # where operator spawns naming no VHM go
        # Security is injected, never imported: the runtime layer passes the SDBM (signed,
        # attenuable, revocable tokens) and the attestation verifier from xdv.security. A bare
        # kernel has the core's minimal capability table and admits no provider.
        self._capabilities = capabilities = CapabilityCheck(
            authority if authority is not None else CapabilityTable(), recorder, self.clock
        )
        self._domains = domains_table = DomainTable(
            domains if domains is not None else [KDomainManager()],
            recorder,
            self.clock,
            attestation,
        )
        self._contracts = contracts = ContractBook(
            domains_table, recorder, self.clock, self.limits.contracts_per_process_max, vhms
        )
        self._table = table = ProcessTable(
            recorder=recorder,
            clock=self.clock,
            policy=self.policy,
            capabilities=capabilities,
            domains=domains_table,
            contracts=contracts,
            processes_max=self.limits.processes_max,
            waiters_max=self.limits.waiters_per_process_max,
            vhms=vhms,
            node=node,
        )
        self._invoker = invoker = Invoker(
            seed,
            domains_table,
            capabilities,
            recorder,
            self.clock,
            replay_outcomes,
            self._interrupt_reason,
            vhms,
        )
        self._faults = fault_handler = FaultHandler(
            self.faults, recorder, self.clock, capabilities, contracts
        )
        fault_handler.attach(
            table,
            invoker,
            defer=self._defer,
            panic=self._panic_now,
            vhms=self,
            root_vhm=vhms.root,
        )
        table.faults = invoker.faults = fault_handler
        invoker.table = table
        self._admission = admission = AdmissionQueue(
            recorder=recorder,
            clock=self.clock,
            table=table,
            contracts=contracts,
            domains=domains_table,
            capabilities=capabilities,
            policy=self.policy,
        )
        self.policy.attach(self._vhm_weight)
        transitions = Transitions(
            recorder=recorder,
            domains=domains_table,
            capabilities=capabilities,
            contracts=contracts,
            invoker=invoker,
            faults=fault_handler,
        )
        self._channels = channels = ChannelTable(
            recorder=recorder,
            clock=self.clock,
            table=table,
            capabilities=capabilities,
            ticks_max=self.limits.sleep_ticks_max,
            charge=getattr(self.policy, "charge", None),
            faults=fault_handler,
        )
        table.on_end = channels.process_ended
        self._calls = SystemCalls(
            seed=seed,
            sleep_ticks_max=self.limits.sleep_ticks_max,
            recorder=recorder,
            clock=self.clock,
            table=table,
            domains=domains_table,
            capabilities=capabilities,
            contracts=contracts,
            invoker=invoker,
            transitions=transitions,
            faults=fault_handler,
            channels=channels,
            admission=admission,
        )
        self._steps = 0
        self._ran = False
        self._exceptions: dict[int, BaseException] = {}
        self._in_loop = False
        self._loop_thread = 0  # the thread running the loop (set by run)
        self._ended = False  # the run (or abort) is over and its trace closed
        self._interrupted: str | None = None
        self._panicked: str | None = None
        with self._outside_the_loop():
            recorder.start(
                {
                    "format": FORMAT_VERSION,
                    "seed": self.seed,
                    "workload": dict(workload) if workload else {},
                    "kernel": {
                        "quantum": self.quantum,
                        "policy": self.policy.spec,
                        "vhm": self.vhm,
                        "node": self.node,
                        "limits": self.limits.to_record(),
                    },
                    "domains": domains_table.describe(),
                    "faults": self.faults.to_record(),
                    **({"audit": audit.to_record()} if audit is not None else {}),
                }
            )

    # ------------------------------------------------------------------ public API

    @property
    def writer(self) -> TraceWriter:
        """The trace writer of this run."""
        return self._recorder.writer

    @property
    def authority(self) -> CapabilityAuthority:
        """The capability authority the kernel checks every cross-domain operation with."""
        return self._capabilities.authority

    @property
    def attestation(self) -> ProviderVerifier | None:
        """The verifier that admits a domain's providers when a process binds to it."""
        verifier: ProviderVerifier | None = self._domains.attestation
        return verifier

    @property
    def outputs(self) -> list[tuple[int, Any]]:
        """Every emitted value so far, with its process id, in trace order."""
        return self._recorder.outputs

    def manager(self, domain: Domain | str) -> DomainManager:
        """The installed manager of ``domain``; raise DOMAIN_UNAVAILABLE if there is none."""
        return self._domains.manager(domain)

    def spawn(
        self,
        anchor: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        priority: int = 0,
        domains: Iterable[Domain | str] = (Domain.K,),
        vhm: int | None = None,
        deadline: int | None = None,
    ) -> int:
        """Create a hybrid process whose K anchor is ``anchor(*args)``; return its pid.

        The process runs in VHM ``vhm`` (if None, the spawn VHM set by
        :meth:`set_spawn_vhm`, by default the root VHM; once a spawn VHM is set, a ``vhm``
        outside its subtree is refused with VHM_ISOLATION) and receives the default
        capabilities of its declared domains (an operator grant). Refused with VHM_UNKNOWN
        for a VHM that does not exist (or was destroyed) and VHM_QUOTA_EXCEEDED when the VHM
        (or an ancestor) already holds its quota of processes. ``deadline`` is the logical
        time it should finish by (used by the earliest-deadline-first policy).
        """
        with self._outside_the_loop():
            if vhm is None:
                vhm = self._spawn_vhm
            elif self._spawn_vhm is not None and vhm not in self._vhms.subtree(self._spawn_vhm):
                raise XdvError(
                    f"VHM {vhm} is outside VHM {self._spawn_vhm}, where this run's spawns go",
                    code=ErrorCode.VHM_ISOLATION,
                    where="spawn",
                )
            if vhm is not None:
                self._vhms.live(vhm)
            return self._table.create(
                anchor,
                args,
                name,
                priority,
                tuple(domains),
                parent=0,
                vhm=vhm,
                deadline=deadline,
            )

    def _vhm_weight(self, vhm: int) -> int:
        """The scheduling weight of VHM ``vhm`` (1 where no VHM table says otherwise)."""
        try:
            return self._vhms.get(vhm).weight
        except XdvError:
            return 1  # a VHM that no longer exists competes with the smallest weight

    def _wait_bound(self, since: int) -> int | None:
        """The policy's starvation bound for a process ready since L=``since``: computed from
        every process that lived at some point of the wait (created by now, not ended before
        ``since``), not only from those live now, since a process that competed and then ended
        may rightly have delayed it. Monotone in the wait: the set only grows as it goes on."""
        priorities = [
            process.priority
            for process in self._table.processes.values()
            if process.ended_at is None or process.ended_at >= since
        ]
        span = max(priorities) - min(priorities) if priorities else 0
        return self.policy.starvation_bound(len(priorities), self.quantum, span)

    def scheduler_snapshot(self) -> dict[str, Any]:
        """The scheduler's state at this point: policy, ready queue, admission queue and every
        process's scheduling fields (what :func:`~xdv.core.check_scheduler` checks).

        ``starvation_bound`` is the policy's bound over the processes live now; each queued
        active process also carries its own ``starvation_bound``, over the processes that lived
        during its wait, which is what its wait is checked against."""
        table = self._table
        live = [
            process
            for process in table.processes.values()
            if process.state in (ProcessState.ACTIVE, ProcessState.SUSPENDED)
        ]
        priorities = [process.priority for process in live]
        span = max(priorities) - min(priorities) if priorities else 0
        bounds: dict[int, int | None] = {}
        for process in table.processes.values():
            if process.queued and process.state is ProcessState.ACTIVE:
                since = process.ready_at
                if since not in bounds:
                    bounds[since] = self._wait_bound(since)
        return {
            "policy": self.policy.spec,
            "starvation_bound": self.policy.starvation_bound(len(live), self.quantum, span),
            "now": self.clock.now,
            "quantum": self.quantum,
            "ready": [
                item[-1].pid
                for item in sorted(table.ready, key=lambda entry: entry[:-1])
                if isinstance(item[-1], _Process)
            ]
            + (
                [
                    item[-1].pid
                    for item in sorted(table.queue.timers, key=lambda e: e[:-1])
                    if isinstance(item[-1], _Process)
                ]
                if table.queue is not None
                else []
            ),
            "waiting": self._admission.waiting(),
            "processes": {
                pid: {
                    "state": process.state.name,
                    "queued": process.queued,
                    "ready_at": process.ready_at,
                    "starvation_bound": bounds.get(process.ready_at)
                    if process.queued and process.state is ProcessState.ACTIVE
                    else None,
                    "priority": process.priority,
                    "deadline": process.deadline,
                    "admission": process.admission is not None,
                    "contracts": [
                        {**contract.to_record(), "capability": contract.capability}
                        for _, contract in sorted(process.contracts.items())
                    ],
                }
                for pid, process in sorted(table.processes.items())
            },
        }

    # ------------------------------------------------------------------ virtual hybrid machines

    @property
    def vhms(self) -> VhmTable:
        """The VHM table: read VHMs with ``kernel.vhms.get(id)`` (weight, parent, quotas,
        usage, processes), ``vhm_of(pid)`` and ``same_vhm(a, b)``; see :mod:`xdv.core._vhm`."""
        return self._vhms

    def create_vhm(
        self,
        name: str,
        quotas: VhmQuotas | Mapping[str, int] | None = None,
        weight: int = 1,
        parent: int | None = None,
    ) -> int:
        """Create a virtual hybrid machine nested in ``parent`` (the root VHM if None) and
        return its id (recorded as VHM_CREATE). An operator action, like :meth:`grant`.

        ``quotas`` maps quota names (``processes``, ``steps``, ``qubits``, ``shots``,
        ``qubit_time``, ``envelopes``, ``window_steps``) to bounds; each must fit inside the
        parent's (VHM_NESTING_INVALID otherwise). ``weight`` is the VHM's share for fair
        scheduling policies.
        """
        with self._outside_the_loop():
            self._operator_action("create_vhm")
            return self._vhms.create(name, quotas, weight, parent)

    def set_spawn_vhm(self, vhm_id: int | None) -> None:
        """Make operator spawns that name no VHM go into VHM ``vhm_id`` (None: the root VHM),
        so that a workload's setup cannot place processes outside the VHM it was given. The
        runtime sets it from a workload's VHM declaration (``"default": true``), which the
        run-start entry records; each spawn records its VHM. An operator action."""
        with self._outside_the_loop():
            self._operator_action("set_spawn_vhm")
            if vhm_id is not None:
                self._vhms.live(vhm_id)
            self._spawn_vhm = vhm_id

    def destroy_vhm(self, vhm_id: int) -> None:
        """Destroy an empty VHM (recorded as VHM_DESTROY with its final usage).

        Destruction does not cascade: a VHM with live processes or nested VHMs is refused with
        VHM_NOT_EMPTY, so nothing ends as a side effect; :meth:`terminate_vhm` ends the
        processes first. An operator action, like :meth:`grant`.
        """
        with self._outside_the_loop():
            self._operator_action("destroy_vhm")
            self._vhms.destroy(vhm_id)

    def terminate_vhm(
        self,
        vhm_id: int,
        code: ErrorCode = ErrorCode.VHM_TERMINATED,
        reason: str = "terminated by the operator",
    ) -> list[int]:
        """End every live process of VHM ``vhm_id`` and of the VHMs nested in it, with the
        failure ``code`` and ``reason``; return their pids.

        Recorded as VHM_TERMINATE, then each process's end as usual (FAULT, PROCESS_EXIT,
        contract releases, revocations): nothing outside the VHM's subtree is touched. The
        VHMs stay (empty) until destroyed. The kernel's own code (fault escalation, say) may
        call it during the run; a process's code may not (OPERATOR_ONLY).
        """
        with self._outside_the_loop():
            if self._ended or (self._in_loop and self._table.running() is not None):
                self._operator_action("terminate_vhm")
            vhms = self._vhms
            vhm = vhms.live(vhm_id)
            if vhm.id == vhms.root:
                raise XdvError(
                    "the root VHM cannot be terminated (end the run instead)",
                    code=ErrorCode.VHM_INVALID,
                    where="terminate_vhm",
                )
            if not isinstance(code, ErrorCode) or code is ErrorCode.OK:
                raise XdvError(
                    f"a termination needs a failure code, got {safe_repr(code)}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where="terminate_vhm",
                )
            if not isinstance(reason, str):
                reason = safe_repr(reason)
            members = vhms.subtree(vhm_id)
            pids = sorted(pid for member in members for pid in vhms.get(member).processes)
            self._recorder.record(
                EventType.VHM_TERMINATE,
                _O,
                0,
                status=code,
                vhm=vhm_id,
                meta={"reason": reason, "processes": pids},
            )
            table = self._table
            for pid in pids:
                process = table.processes[pid]
                if process.state not in (ProcessState.TERMINATED, ProcessState.RELEASED):
                    table.fail(process, code, f"{reason} (VHM {vhm_id} terminated)")
            return pids

    def grant(
        self,
        pid: int,
        operation: Operation,
        origin: Domain | str,
        target: Domain | str,
        expires_at: int | None = None,
        resource: str | None = None,
    ) -> Capability:
        """Grant a capability to a process (an operator action, recorded in the trace).

        ``resource`` limits it to one resource (a channel's name for SEND and RECEIVE, say);
        None grants it on the whole domain.

        Operator actions belong to the setup phase, before :meth:`run`: called while the run
        goes on (from a process's own code) they are refused with OPERATOR_ONLY and recorded.
        """
        with self._outside_the_loop():
            self._operator_action("grant")
            self._table.live(pid)
            if expires_at is not None and (
                type(expires_at) is not int or not 0 <= expires_at < 2**63
            ):
                raise XdvError(
                    f"an expiry is a logical time in [0, 2**63), got {safe_repr(expires_at)}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where=f"process {pid}",
                )
            if resource is not None and (not isinstance(resource, str) or not resource):
                raise XdvError(
                    f"a resource is a non-empty name, got {safe_repr(resource)}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where=f"process {pid}",
                )
            return self._capabilities.grant(
                pid, operation, Domain.parse(origin), Domain.parse(target), expires_at, resource
            )

    def channel(
        self,
        name: str,
        capacity: int = 1,
        *,
        source: Domain | str = Domain.K,
        target: Domain | str = Domain.K,
        senders: Iterable[int] = (),
        receivers: Iterable[int] = (),
    ) -> int:
        """Declare a channel (an operator action, recorded): ``senders`` get SEND and
        ``receivers`` RECEIVE on it; returns its id.

        A declared channel is the one way messages cross VHMs: its parties may belong to
        different VHMs, and each still needs its capability. Like :meth:`grant`, it belongs
        to the setup phase.
        """
        with self._outside_the_loop():
            self._operator_action("channel")
            return self._channels.declare(
                name,
                capacity,
                source,
                target,
                senders,
                receivers,
                self.vhm,
                (pid for pid, p in self._table.processes.items() if p.exit is None),
            )

    def channels(self) -> dict[int, dict[str, Any]]:
        """Every channel's state and counters (sent, delivered, dropped, queued), by id."""
        return self._channels.snapshot()

    def revoke(self, capability_id: int, reason: str = "operator") -> list[Capability]:
        """Revoke a capability and every capability derived from it (recorded in the trace).

        Returns the revoked capabilities, the one named first. An operator action, like
        :meth:`grant`.
        """
        with self._outside_the_loop():
            self._operator_action("revoke")
            return self._capabilities.revoke(capability_id, reason)

    def freeze(self, domain: Domain | str, reason: str = "operator") -> list[Capability]:
        """Emergency freeze of a domain (an operator action, recorded): revoke every
        capability touching it, fail its pending outcomes, and refuse anything new. An
        operator action, like :meth:`grant`; a process freezes a domain with the ``Freeze``
        system call and a FREEZE capability."""
        with self._outside_the_loop():
            self._operator_action("freeze")
            return self._capabilities.freeze(Domain.parse(domain), reason, 0, self._table.processes)

    def snapshot(self) -> dict[str, Any]:
        """The orchestration state S_O: processes, bindings, contracts, capabilities, managers.

        Used by audits and by the atomicity tests; it holds no raw Q or Φ state.
        """
        return {
            "processes": self._table.snapshot(),
            "capabilities": self.authority.snapshot(),
            "managers": self._domains.snapshot(),
        }

    def contracts(self) -> list[ResourceContract]:
        """Every live resource contract of every process, by contract id (read-only use: a
        checker's view of what the domains' managers should be holding)."""
        held = [
            contract
            for process in self._table.processes.values()
            for contract in process.contracts.values()
        ]
        return sorted(held, key=lambda contract: contract.id)

    def processes(self) -> dict[int, tuple[ProcessInfo, ProcessState]]:
        """Every process of the run (live or ended), by pid: its identity and current state."""
        return {
            pid: (process.info, process.state) for pid, process in self._table.processes.items()
        }

    def _operator_action(self, action: str) -> None:
        """Refuse an operator action unless the run is still being set up.

        While the loop runs, the caller is a process's own code (Python workloads are trusted
        code in the kernel's interpreter; see docs/security.md): the refusal is recorded as a
        CAPABILITY_DENY of that process and raised at its call site, so an uncaught one fails
        the process. A call from another thread is refused without a record: only the loop's
        thread writes the trace.
        """
        if not self._in_loop:
            if self._ended:
                raise XdvError(
                    f"Kernel.{action} after the run ended: its trace is closed, so the action "
                    "could not be recorded",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where=f"Kernel.{action}",
                )
            return
        process = self._table.running()
        pid = process.pid if process is not None else 0
        error = UnauthorizedError(
            f"Kernel.{action} is an operator action, available before the run starts; "
            f"{'process ' + str(pid) if pid else 'the caller'} called it during the run (a "
            "process asks for authority with its own system calls: Attenuate, Delegate, Freeze)",
            code=ErrorCode.OPERATOR_ONLY,
            where=f"process {pid}" if pid else f"Kernel.{action}",
        )
        if threading.get_ident() == self._loop_thread:
            self._capabilities.deny(pid, error, f"Kernel.{action}")
        raise error

    def interrupt(self, reason: str) -> None:
        """Ask the run to end as soon as it can, because of ``reason`` (``"SIGINT"``, say).

        Safe to call from a signal handler or another thread: it records nothing and only sets
        a flag and queues an item that sorts ahead of every process. The loop meets the item
        at its next time slice (at most ``quantum`` steps later), and a wait for a Future
        outcome gives up within a fraction of a second; the run then ends as any abnormal end
        does: the live processes are ended with RUN_INTERRUPTED, and RUN_END records the status
        ``"interrupted"`` and the reason. Where an interrupted run stops is not deterministic,
        but its trace is complete, audited and verifiable. Only the first call counts; a call
        after the run has ended does nothing.
        """
        if self._interrupted is not None or self._ended:
            return
        self._interrupted = reason if isinstance(reason, str) else repr(reason)
        heapq.heappush(self._table.ready, _INTERRUPTION_ITEM)

    def _deliver(self, process: _Process) -> bool:
        """At a process's next step: deliver its pending domain outcome, or time out the
        channel call it is still blocked in. False when fault handling took the process over
        (see :meth:`Invoker.deliver`): its anchor must not run this step."""
        if type(process.delivery) is Pending:
            return self._invoker.deliver(process)
        self._channels.expire(process)
        return True

    def _interrupt_reason(self) -> str | None:
        return self._interrupted

    def _defer(self, action: Callable[[], None]) -> None:
        """Queue ``action`` for the loop's next safe point (see :class:`_Deferred`)."""
        # The table's sequence numbers are unique among every queued item, so two items never
        # tie on their keys (admission deadlines take theirs from the same counter).
        heapq.heappush(
            self._table.ready, (float("-inf"), self._table.next_seq(), _Deferred(action))
        )

    def _panic_now(self, reason: str) -> None:
        """A fault escalated to the node level: end the run at the next safe point, with the
        status ``"panic"`` (system-level panic containment, XDV-024 §5.3)."""
        if self._panicked is None:
            self._panicked = reason
            heapq.heappush(self._table.ready, _INTERRUPTION_ITEM)

    @property
    def fault_stats(self) -> FaultStats:
        """What fault handling has done so far in this run (detections, recoveries, ...)."""
        return self._faults.stats

    def check_fault_invariants(self) -> list[str]:
        """The fault-handling invariants of ``docs/faults.md`` that do not hold now (empty
        when all hold); cheap enough to call after every step of a simulation."""
        return self._faults.invariants()

    # ------------------------------------------------------------------ the kernel loop

    def run(self) -> RunResult:
        """Run until every process has ended (or a limit is hit); close the trace.

        If the trace cannot be written the run stops at once and the typed TRACE_IO error is
        raised: outputs of entries that did not become durable are never released. On any
        other escape (a broken invariant, an interrupt) the entries recorded so far are
        flushed, so the trace's intact prefix stays verifiable.
        """
        invariant(not self._ran, "a kernel runs once")
        self._ran = True
        self._loop_thread = threading.get_ident()
        self._wall_start_ns = self._wall_clock.monotonic_ns()
        self._faults.run_starts([vhm.id for vhm in self._vhms])
        with self._stopping_cleanly():
            return self._shutdown(self._loop())

    @contextlib.contextmanager
    def _stopping_cleanly(self) -> Iterator[None]:
        self._in_loop = True
        try:
            yield
        except (TraceWriteFailure, OutputFailure) as failure:
            raise failure.error from None
        except BaseException:
            with contextlib.suppress(BaseException):
                self._recorder.sync()
            raise
        finally:
            self._in_loop = False
            self._ended = True

    @contextlib.contextmanager
    def _outside_the_loop(self) -> Iterator[None]:
        """Public calls made outside a run get the typed TRACE_IO error of a failed write;
        inside a run (a process calling the kernel) the failure must stop the run instead."""
        try:
            yield
        except (TraceWriteFailure, OutputFailure) as failure:
            if self._in_loop:
                raise
            raise failure.error from None

    def _loop(self) -> str:
        """The kernel loop; returns the run status ("ok", "limit" or "interrupted")."""
        clock = self.clock
        table = self._table
        round_robin = table.round_robin
        ready: Any
        pop: Callable[[Any], Any]
        if round_robin:
            ready = table.ready
            pop = heapq.heappop
        else:  # the policy queue moves due timers and pops by policy key
            ready = table.queue
            pop = PolicyQueue.pop_item
        push = heapq.heappush
        admission = self._admission
        enqueue = table.enqueue
        calls = self._calls
        handlers = calls.handlers
        deliver = self._deliver
        recorder = self._recorder
        writer = recorder.writer
        append = writer.append_encoded
        auditing = self.audit is not None
        quantum = self.quantum
        steps_max = self.limits.steps_max
        full_slices_until = steps_max - quantum  # while steps <= this, a whole quantum fits
        whole_slice = range(quantum)
        sleep_ticks_max = self.limits.sleep_ticks_max
        node = self.node
        active = ProcessState.ACTIVE
        suspended = ProcessState.SUSPENDED
        interruption = _INTERRUPTION
        observer = self.observer  # None on every run but a checker's (see StepObserver)
        steps = 0
        now = clock.now
        last: _Process | None = None
        status = "ok"
        # The kernel loop: the only place where logical time advances. Invariant: each
        # iteration dispatches the ready process with the smallest policy key and runs it for
        # at most one time slice of `quantum` steps; every step adds exactly 1 to L.
        while ready:
            process = pop(ready)[-1]
            process.queued = False
            if process.state is not active:
                if process is interruption:  # queued by interrupt(), ahead of every process
                    status = "interrupted" if self._panicked is None else "panic"
                    break
                if type(process) is _Deferred:  # a fault escalation's action: a safe point
                    process.action()
                    last = None  # whatever runs next, its slice records its dispatch
                    continue
                if type(process) is _Deadline:  # a waiting reservation's deadline has come
                    # Nothing is ready before it: skip the idle time up to the step before the
                    # deadline, so the failed request's process wakes at the deadline itself.
                    at = process.waiting.deadline or 0
                    if process.waiting.state == "waiting" and at > now + 1:
                        now = at - 1
                        clock.now = now
                    admission.expire(process)
                    continue
                if process.state is suspended:
                    process.parked = True
                # Otherwise it ended: nothing to run (an ending process leaves the queue, so
                # this is only a safeguard).
                continue
            if steps <= full_slices_until:
                budget = quantum
                slice_steps = whole_slice
            else:
                budget = steps_max - steps
                if budget <= 0:
                    status = "limit"
                    break
                slice_steps = range(budget)
            cut = False
            bounds = process.step_bounds
            if bounds:
                # Its VHM (or an ancestor) bounds steps: the slice may not overrun a quota.
                left = budget
                for member in bounds:
                    room = member.steps_limit - member.steps
                    if room < left:
                        left = room
                if left <= 0:
                    self._out_of_steps(process)  # recorded at the current L: no step taken
                    continue
                if left < budget:
                    budget, slice_steps, cut = left, range(left), True
            # `now` is the logical time of the last step: only this loop moves the clock, so
            # the local copy is always equal to clock.now here.
            if process.ready_at > now + 1:
                now = process.ready_at - 1  # skip idle logical time
            first_step = steps
            anchor = process.anchor
            pid = process.pid
            vhm = process.vhm
            if process is not last:
                # A context switch: the scheduler's decision is recorded, by a DISPATCH entry
                # that the recorder writes before anything else of this slice, or, when the
                # slice's first step is a sleep, by that SLEEP entry itself.
                recorder.dispatch_pending = pid
            for _ in slice_steps:
                if observer is not None:
                    observer(steps)
                steps += 1
                now += 1
                clock.now = now
                if process.delivery is not None and not deliver(process):
                    break  # fault handling took the process over (a recovery, an escalation)
                try:
                    error = process.throw_error
                    if error is not None:
                        process.throw_error = None
                        call = anchor.throw(error)
                    else:
                        value = process.send_value
                        process.send_value = None
                        call = anchor.send(value)
                except StopIteration as stop:
                    table.finish(process, stop.value)
                    break
                except InvariantViolation:
                    raise
                except XdvError as error:
                    table.fail(process, error.code, error.message)
                    break
                except (Exception, SystemExit) as error:  # the anchor's own bug: its fault alone
                    self._exceptions[process.pid] = error  # kept for its traceback, not traced
                    table.fail(process, ErrorCode.PROCESS_FAULT, describe_exception(error))
                    break
                if isinstance(call, Sleep):
                    # The most frequent system call is handled inline (no handler call): it
                    # records SLEEP with a pre-encoded one-key map and re-queues the process.
                    # A malformed Sleep goes on to its handler, which refuses it.
                    ticks = call.ticks
                    if type(ticks) is int and 0 <= ticks <= sleep_ticks_max:
                        until = now + (ticks or 1)
                        if 0x10000 <= until < 0x100000000:
                            metadata = _pack_until_u32(_UNTIL_PREFIX_U32, until)
                        elif 0x100 <= until < 0x10000:
                            metadata = _pack_until_u16(_UNTIL_PREFIX_U16, until)
                        else:
                            metadata = _UNTIL_PREFIX + cbor_uint(until)
                        recorder.dispatch_pending = 0  # this entry records a switch, if any
                        append(now, _SLEEP, _ORCHESTRATION, pid, vhm, node, metadata)
                        process.send_value = until
                        if round_robin:  # the default policy's key (see ProcessTable.enqueue)
                            process.ready_at = until
                            process.queued = True
                            push(ready, (until, -process.priority, pid, process))
                        else:
                            enqueue(process, until)
                        break
                if recorder.dispatch_pending:
                    recorder.write_dispatch()
                handler = handlers.get(type(call)) or calls.handler_for(call)
                try:
                    if handler is None:
                        raise XdvError(
                            f"process {pid} yielded {type(call).__name__}, "
                            "which is not a system call",
                            code=ErrorCode.SYSCALL_INVALID,
                            where=f"process {pid}",
                        )
                    if not handler(process, call):
                        break  # it left the processor: blocked, slept, yielded or ended
                except _Recorded as recorded:
                    process.throw_error = recorded.error
                except XdvError as error:
                    calls.record_failure(process, call, error)
                    process.throw_error = error
                except InvariantViolation:
                    raise
                except Exception as error:  # e.g. a field of the wrong type deep in a handler
                    invalid = as_typed(
                        error,
                        ErrorCode.SYSCALL_INVALID,
                        f"{type(call).__name__} failed",
                        f"process {pid}",
                    )
                    calls.record_failure(process, call, invalid)
                    process.throw_error = invalid
                if process.state is not active:
                    break
            else:
                # The slice ran out with the process still running.
                if budget < quantum and not cut:
                    status = "limit"
                    for member in process.account:
                        member.steps += steps - first_step
                    break
                append(now, _PREEMPT, _ORCHESTRATION, pid, vhm, node, _EMPTY_MAP)
                enqueue(process, now + 1)
            account = process.account
            if account:  # the slice's steps, charged to its VHM and the VHM's ancestors
                used = steps - first_step
                for member in account:
                    member.steps += used
            last = process
            if auditing and writer.count >= recorder.checkpoint_at:
                recorder.checkpoint()
        invariant(recorder.dispatch_pending == 0, "a slice's dispatch is recorded in the slice")
        invariant(now == clock.now, "only the kernel loop moves the logical clock")
        self._steps = steps
        return status

    def snapshot_vhm(self, vhm_id: int) -> dict[str, Any]:
        """A K-state snapshot of VHM ``vhm_id``: a canonical, trace-encodable record of its live
        processes (pid, name, parent, priority, declared domains, anchor and the K state each
        last saved with ``SaveState``) at the current logical time.

        It never holds Q or Φ state, nor contracts: a restart reserves again. Taking a snapshot
        decides nothing, so it is not recorded; a restart from it records its digest. Like
        :meth:`terminate_vhm`, the kernel's own code may call it during the run; a process's
        code may not (it would read another VHM's state).
        """
        if self._in_loop and self._table.running() is not None:
            with self._outside_the_loop():
                self._operator_action("snapshot_vhm")
        vhm = self._vhms.live(vhm_id)
        table = self._table
        processes: list[dict[str, Any]] = []
        for pid in vhm.processes:
            process = table.processes[pid]
            origin = process.origin
            info = process.info
            processes.append(
                {
                    "pid": pid,
                    "name": info.name,
                    "parent": info.parent,
                    "priority": info.priority,
                    "domains": [domain.label for domain in info.domains],
                    "anchor": qualified_name(origin[0]) if origin is not None else "",
                    "state": process.saved,
                }
            )
        return {"vhm": vhm.id, "name": vhm.name, "at": self.clock.now, "processes": processes}

    def restart_vhm(self, vhm_id: int, snapshot: Mapping[str, Any]) -> dict[int, int]:
        """Restart VHM ``vhm_id``'s processes from a K snapshot (:meth:`snapshot_vhm`); return
        the new pid of each snapshotted pid.

        The VHM's live processes end (VHM_TERMINATED), releasing their contracts; then each
        process of the snapshot is created again in the VHM with the same anchor function,
        arguments, name, priority, declared domains and creation rights, and with its saved
        state, which its anchor reads with ``LoadState``. A parent restarted with it becomes
        the new process's parent. Recorded as VHM_RESTART (the snapshot's digest and the pid
        pairs) after the creations. Refused with VHM_SNAPSHOT_INVALID for a snapshot of another
        VHM or naming a process that is not the VHM's. Like :meth:`terminate_vhm`, the kernel's
        own code may call it during the run; a process's code may not.
        """
        with self._outside_the_loop():
            if self._ended or (self._in_loop and self._table.running() is not None):
                self._operator_action("restart_vhm")
            vhms, table = self._vhms, self._table
            vhm = vhms.live(vhm_id)
            plan = self._restart_plan(vhm_id, snapshot)
            reason = "restarted from a K snapshot"
            for pid in vhm.processes:
                table.fail(table.processes[pid], ErrorCode.VHM_TERMINATED, reason)
            renamed: dict[int, int] = {}
            for old, entry in plan:
                original = table.processes[old]
                assert original.origin is not None  # checked by _restart_plan
                function, args = original.origin
                info = original.info
                renamed[old] = table.create(
                    function,
                    args,
                    info.name,
                    info.priority,
                    info.domains,
                    parent=renamed.get(info.parent, 0),
                    vhm=vhm_id,
                    rights=original.rights,
                    saved=entry.get("state"),
                )
            self._recorder.record(
                EventType.VHM_RESTART,
                _O,
                0,
                vhm=vhm_id,
                meta={
                    "snapshot": snapshot_digest(snapshot),
                    "at": snapshot["at"],
                    "processes": [[old, new] for old, new in renamed.items()],
                },
            )
            return renamed

    def _restart_plan(
        self, vhm_id: int, snapshot: Mapping[str, Any]
    ) -> list[tuple[int, Mapping[str, Any]]]:
        """The snapshot's processes, checked against the kernel's own records of them."""

        def refuse(why: str) -> XdvError:
            return XdvError(
                f"cannot restart VHM {vhm_id}: {why}",
                code=ErrorCode.VHM_SNAPSHOT_INVALID,
                where="restart_vhm",
            )

        if (
            not isinstance(snapshot, Mapping)
            or snapshot.get("vhm") != vhm_id
            or type(snapshot.get("at")) is not int
            or not isinstance(snapshot.get("processes"), list)
        ):
            raise refuse("the snapshot is not one of this VHM (see Kernel.snapshot_vhm)")
        plan: list[tuple[int, Mapping[str, Any]]] = []
        for entry in snapshot["processes"]:
            pid = entry.get("pid") if isinstance(entry, Mapping) else None
            process = self._table.processes.get(pid) if type(pid) is int else None
            if (
                pid is None
                or process is None
                or process.vhm != vhm_id
                or process.origin is None
                or entry.get("anchor") != qualified_name(process.origin[0])
            ):
                raise refuse(f"it names {safe_repr(pid)}, which is not a process of the VHM")
            plan.append((pid, entry))
        snapshot_digest(snapshot)  # refuses a snapshot that is not trace-encodable
        return plan

    def _out_of_steps(self, process: _Process) -> None:
        """End ``process``, whose VHM has no step left under its quota (or an ancestor's)."""
        vhm = next(
            member for member in process.step_bounds if member.steps >= (member.steps_limit or 0)
        )
        error = XdvError(
            f"VHM {vhm.id} ({vhm.name}) has used its quota of {vhm.steps_limit} steps",
            code=ErrorCode.VHM_QUOTA_EXCEEDED,
            where=f"process {process.pid}",
        )
        self._recorder.record(
            EventType.VHM_DENY,
            _O,
            process.pid,
            status=error.code,
            meta={"vhm": vhm.id, "quota": "steps", "error": error.message},
        )
        self._table.fail(process, error.code, error.message)

    def abort(self, error: BaseException) -> RunResult:
        """End the run before it started because the workload's setup failed."""
        invariant(not self._ran, "a kernel runs once")
        self._ran = True
        code = error.code if isinstance(error, XdvError) else ErrorCode.WORKLOAD_INVALID
        message = error.message if isinstance(error, XdvError) else describe_exception(error)
        with self._stopping_cleanly():
            self._recorder.record(
                EventType.FAULT,
                _O,
                0,
                status=code,
                meta={"error": message, "phase": "setup", **self._faults.describe(code)},
            )
            return self._shutdown("aborted")

    def _shutdown(self, status: str) -> RunResult:
        table = self._table
        # Decide every remaining process's fate first: ending one must not wake another.
        endings: list[tuple[_Process, ErrorCode, str]] = []
        for pid in sorted(table.processes):
            process = table.processes[pid]
            if process.state in (ProcessState.TERMINATED, ProcessState.RELEASED):
                continue
            if status == "limit":
                code = ErrorCode.LIMIT_EXCEEDED
                message = f"the run hit its limit of {self.limits.steps_max} steps"
            elif status == "interrupted":
                code = ErrorCode.RUN_INTERRUPTED
                message = f"the run was interrupted ({self._interrupted})"
            elif status == "panic":
                code = ErrorCode.NODE_PANIC
                message = f"the node panicked: {self._panicked}"
            elif status == "aborted":
                code = ErrorCode.WORKLOAD_INVALID
                message = "the workload's setup failed, so the run never started"
            elif process.state is ProcessState.SUSPENDED:
                code, message = ErrorCode.DEADLOCK, "still suspended when the run ended"
            elif process.admission is not None:
                code = ErrorCode.DEADLOCK
                message = f"blocked forever {AdmissionQueue.describe(process)}"
            else:
                code = ErrorCode.DEADLOCK
                channels = self._channels.blocked_on(pid)
                message = (
                    f"blocked forever waiting on process {process.waiting_on}"
                    if channels is None
                    else "blocked forever on channel "
                    + ", ".join(str(channel) for channel in channels)
                )
            endings.append((process, code, message))
        table.shutting_down = True
        for process, code, message in endings:
            table.fail(process, code, message)
        for vhm in self._vhms:
            if vhm.live and vhm.id != self._vhms.root:  # each live VHM's accounting, for audits
                usage: dict[str, Any] = {"usage": vhm.usage_record()}
                if vhm.limits:
                    usage["quotas"] = dict(vhm.limits)
                self._recorder.record(EventType.VHM_USAGE, _O, 0, vhm=vhm.id, meta=usage)
        failed = sorted(pid for pid, status_ in table.exits.items() if not status_.ok)
        if status == "aborted" or (status == "ok" and failed):
            status = "failed"
        recorder = self._recorder
        end: dict[str, Any] = {
            "status": status,
            "steps": self._steps,
            "processes": len(table.processes),
            "failed": failed,
        }
        if status == "interrupted":
            end["reason"] = self._interrupted
        elif status == "panic":
            end["reason"] = self._panicked
        recorder.record(
            EventType.RUN_END,
            _O,
            0,
            status=_END_CODES.get(status, ErrorCode.OK),
            meta=end,
        )
        recorder.close()
        writer = recorder.writer
        return RunResult(
            status=status,
            exits=dict(sorted(table.exits.items())),
            outputs=list(recorder.outputs),
            steps=self._steps,
            logical_time=self.clock.now,
            events=writer.count,
            head_hash=writer.last_hash.hex(),
            trace_path=writer.path,
            wall_seconds=(self._wall_clock.monotonic_ns() - self._wall_start_ns) / 1e9
            if self._wall_start_ns is not None
            else 0.0,
            trace_bytes=writer.getvalue() if writer.path is None and writer.retains else None,
            exceptions=dict(sorted(self._exceptions.items())),
            faults=self._faults.stats,
        )
