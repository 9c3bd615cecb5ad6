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

Nothing here reads wall time or unseeded randomness. The one wall clock the kernel holds is
injected (:class:`~xdv.core.WallClock`) and only measures how long a run took, for people; that
figure is returned in :class:`RunResult` and never reaches the trace or a decision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import inspect
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xdv.core._audit import AuditConfig
from xdv.core._capability import (
    Capability,
    CapabilityAuthority,
    CapabilityTable,
    Operation,
)
from xdv.core._clock import LogicalClock, SystemWallClock, WallClock
from xdv.core._faults import FaultPlan
from xdv.core._interface import DomainManager, Invocation, ResourceContract, ResourceRequest
from xdv.core._k_manager import KDomainManager, qualified_name
from xdv.core._lifecycle import ProcessState, check_transition
from xdv.core._policy import RoundRobinPolicy, SchedulerPolicy
from xdv.core._process import ExitStatus, ProcessInfo, _Process
from xdv.core._random import RandomStream, derive_seed
from xdv.core._refusals import _Recorded, _require
from xdv.core._syscalls import (
    Attenuate,
    Bind,
    Contracts,
    Delegate,
    Emit,
    Exit,
    Freeze,
    Invoke,
    Now,
    Random,
    Release,
    Reserve,
    Resume,
    Revoke,
    Self,
    Sleep,
    Spawn,
    Suspend,
    Syscall,
    Transfer,
    Transition,
    Unbind,
    Wait,
    Yield,
)
from xdv.core._transition import run_transition
from xdv.errors import (
    ContractError,
    DomainError,
    ErrorCode,
    InvariantViolation,
    ReplayDivergence,
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
    MerkleAccumulator,
    TraceWriteFailure,
    TraceWriter,
    canonical_metadata,
    canonicalize,
    cbor_uint,
)

__all__ = ["EmitSink", "Kernel", "KernelLimits", "RecordedOutcome", "RunResult"]


class EmitSink(Protocol):
    """Receives each emitted value, with the emitting process's id, once its entry is
    durable in the trace."""

    def __call__(self, pid: int, value: Any, /) -> None: ...


_ET = EventType
_O = Domain.ORCHESTRATION
# Plain integers for the hot path (IntEnum members cost more to pack).
_DISPATCH = int(EventType.DISPATCH)
_NEVER = 1 << 62  # an entry count no trace reaches
_PREEMPT = int(EventType.PREEMPT)
_SLEEP = int(EventType.SLEEP)
_EFFECT = int(EventType.EFFECT)
_K = int(Domain.K)
_ORCHESTRATION = int(Domain.ORCHESTRATION)
# Canonical CBOR pieces: a one-entry map whose key is "until"; the same followed by the head of
# a 32-bit unsigned integer; the empty map.
_UNTIL_PREFIX = b"\xa1\x65until"
_UNTIL_PREFIX_U32 = _UNTIL_PREFIX + b"\x1a"
_EMPTY_MAP = b"\xa0"


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


@dataclass(frozen=True, slots=True)
class RecordedOutcome:
    """A domain outcome taken from a trace, fed back in inject-mode replay."""

    status: ErrorCode
    value: Any = None
    error: str | None = None


@dataclass
class RunResult:
    """The result of :meth:`Kernel.run`."""

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

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(slots=True)
class _Pending:
    """A domain outcome waiting for its logical delivery point."""

    invocation: int
    domain: Domain
    capability: int
    contract: int
    status: ErrorCode
    value: Any
    error: str | None


_LIMIT_MAX = 2**40  # keeps logical time and every counter far inside the trace's u64 fields
_INJECTED = object()  # marks an outcome to be taken from the recorded trace when delivered


class _OutputFailure(BaseException):
    """The output sink failed. A BaseException, so no handler hands it to a process."""

    def __init__(self, error: XdvError) -> None:
        super().__init__(str(error))
        self.error = error


# The event type used to record a failed system call.
_FAILURE_EVENT: dict[type[Syscall], EventType] = {
    Emit: _ET.EFFECT,
    Sleep: _ET.SLEEP,
    Spawn: _ET.PROCESS_CREATE,
    Wait: _ET.WAIT,
    Bind: _ET.DOMAIN_BIND,
    Unbind: _ET.DOMAIN_UNBIND,
    Reserve: _ET.RESOURCE_RESERVE,
    Release: _ET.RESOURCE_RELEASE,
    Invoke: _ET.DOMAIN_INVOKE,
    Suspend: _ET.PROCESS_STATE,
    Resume: _ET.PROCESS_STATE,
    Revoke: _ET.CAPABILITY_REVOKE,
    Attenuate: _ET.CAPABILITY_DENY,
    Delegate: _ET.CAPABILITY_DENY,
    Freeze: _ET.DOMAIN_FREEZE,
    Transfer: _ET.RESOURCE_TRANSFER,
}


def _refuse_move_only(args: Iterable[Any], pid: int) -> None:
    """Refuse values that must not cross processes (Q container handles) among Spawn arguments;
    such values say why through ``__xdv_refusal__``."""
    for arg in args:
        items = (
            arg.values()
            if isinstance(arg, dict)
            else arg
            if isinstance(arg, list | tuple)
            else (arg,)
        )
        for item in items:
            refusal = getattr(item, "__xdv_refusal__", None)
            if refusal is not None and callable(refusal):
                raise refusal(f"passed to another process (spawned by process {pid})")


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
        policy: SchedulerPolicy | None = None,
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
        attestation: Any = None,
    ) -> None:
        self.seed = seed
        self.limits = limits or KernelLimits()
        self._sleep_ticks_max = self.limits.sleep_ticks_max
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
        self.policy: SchedulerPolicy = policy or RoundRobinPolicy()
        self._round_robin = type(self.policy) is RoundRobinPolicy
        self.clock = LogicalClock()
        self._wall_clock: WallClock = wall_clock or SystemWallClock()
        self._wall_start_ns: int | None = None
        self.vhm = vhm
        self.node = node
        self.faults = faults or FaultPlan()
        # Security is injected, never imported: the runtime layer passes the SDBM (signed,
        # attenuable, revocable tokens) and the attestation verifier from xdv.security. A bare
        # kernel has the core's minimal capability table and admits no provider (see
        # _attest_providers).
        self._authority: CapabilityAuthority = (
            authority if authority is not None else (CapabilityTable())
        )
        self._frozen: set[Domain] = set()
        # Judges every provider of a domain when a process binds to it (see xdv.security).
        self.attestation = attestation
        managers = list(domains) if domains is not None else [KDomainManager()]
        self._managers: dict[Domain, DomainManager] = {}
        for manager in managers:
            if manager.domain in self._managers:
                raise XdvError(
                    f"two managers for domain {manager.domain.label}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where="kernel configuration",
                )
            self._managers[manager.domain] = manager
        if Domain.K not in self._managers:
            raise XdvError(
                "a kernel needs a K domain manager: every process has a K anchor",
                code=ErrorCode.INVALID_ARGUMENT,
                where="kernel configuration",
            )
        self._replay_outcomes = replay_outcomes
        self._emit_sink = emit
        if isinstance(trace, TraceWriter):
            self._writer = trace
        else:
            self._writer = TraceWriter(trace, fsync=fsync)
        self._append = self._writer.append
        self._append_encoded = self._writer.append_encoded
        self.audit = audit
        # Auditing: the Merkle tree over entry hashes, and the entry count at which the next
        # checkpoint is due (never, without auditing).
        self._merkle: MerkleAccumulator | None = None
        self._checkpoint_at = _NEVER
        if audit is not None:
            self._merkle = MerkleAccumulator()
            self._writer.leaves = []
            self._checkpoint_at = self._writer.count + audit.interval
        self._pending_outputs: deque[tuple[int, int, Any]] = deque()
        self._writer.add_durable_listener(self._release_outputs)
        self.outputs: list[tuple[int, Any]] = []
        self._processes: dict[int, _Process] = {}
        self._exits: dict[int, ExitStatus] = {}
        # Heap items are the policy key followed by the process; keys end with the unique
        # enqueue sequence number, so the process itself is never compared.
        self._ready: list[tuple[Any, ...]] = []
        # Enqueue sequence numbers: unique and increasing, the last element of every key.
        self._enqueue_seq = itertools.count(1).__next__
        self._next_pid = 1
        self._next_contract = 1
        self._next_invocation = 1
        self._next_transition = 1
        self._steps = 0
        self._ran = False
        self._shutting_down = False
        self._in_loop = False
        self._handlers: dict[type[Syscall], Callable[[_Process, Any], bool]] = {
            Emit: self._sys_emit,
            Sleep: self._sys_sleep_refused,
            Yield: self._sys_yield,
            Now: self._sys_now,
            Self: self._sys_self,
            Random: self._sys_random,
            Spawn: self._sys_spawn,
            Wait: self._sys_wait,
            Exit: self._sys_exit,
            Bind: self._sys_bind,
            Unbind: self._sys_unbind,
            Reserve: self._sys_reserve,
            Release: self._sys_release,
            Invoke: self._sys_invoke,
            Transition: self._sys_transition,
            Suspend: self._sys_suspend,
            Resume: self._sys_resume,
            Revoke: self._sys_revoke,
            Attenuate: self._sys_attenuate,
            Delegate: self._sys_delegate,
            Freeze: self._sys_freeze,
            Transfer: self._sys_transfer,
            Contracts: self._sys_contracts,
        }
        with self._outside_the_loop():
            self._record_run_start(workload)

    def _record_run_start(self, workload: Mapping[str, Any] | None) -> None:
        self._record(
            _ET.RUN_START,
            _O,
            0,
            meta={
                "format": FORMAT_VERSION,
                "seed": self.seed,
                "workload": dict(workload) if workload else {},
                "kernel": {
                    "quantum": self.quantum,
                    "policy": self.policy.name,
                    "vhm": self.vhm,
                    "node": self.node,
                    "limits": self.limits.to_record(),
                },
                "domains": {d.label: m.describe() for d, m in sorted(self._managers.items())},
                "faults": self.faults.to_record(),
                **({"audit": self.audit.to_record()} if self.audit is not None else {}),
            },
        )
        self._run_hash = self._writer.last_hash

    # ------------------------------------------------------------------ recording

    def _record(
        self,
        event_type: EventType,
        domain: Domain,
        pid: int,
        status: int = 0,
        capability: int = 0,
        contract: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> int:
        return self._append(
            self.clock.now,
            event_type,
            domain,
            status,
            pid,
            self.vhm,
            self.node,
            capability,
            contract,
            meta,
        )

    def _release_outputs(self, durable_count: int) -> None:
        # An emitted value leaves the system only once the entry recording it is durable.
        pending = self._pending_outputs
        sink = self._emit_sink
        while pending and pending[0][0] < durable_count:
            _, pid, value = pending.popleft()
            if sink is not None:
                try:
                    sink(pid, value)
                except Exception as error:
                    # Where the output goes is not the run's business: a failing sink stops the
                    # run (it may not decide anything a process sees), as a typed error.
                    raise _OutputFailure(
                        as_typed(error, ErrorCode.OUTPUT_FAILED, "the output sink failed", "output")
                    ) from None

    # ------------------------------------------------------------------ public API

    @property
    def writer(self) -> TraceWriter:
        return self._writer

    def manager(self, domain: Domain | str) -> DomainManager:
        """The installed manager of ``domain``; raise DOMAIN_UNAVAILABLE if there is none."""
        parsed = Domain.parse(domain)
        manager = self._managers.get(parsed)
        if manager is None:
            raise DomainError(
                f"no {parsed.label} domain manager is installed in this kernel",
                code=ErrorCode.DOMAIN_UNAVAILABLE,
                where=f"domain {parsed.label}",
            )
        return manager

    def spawn(
        self,
        anchor: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        priority: int = 0,
        domains: Iterable[Domain | str] = (Domain.K,),
    ) -> int:
        """Create a hybrid process whose K anchor is ``anchor(*args)``; return its pid."""
        with self._outside_the_loop():
            return self._create_process(anchor, args, name, priority, tuple(domains), parent=0)

    def grant(
        self,
        pid: int,
        operation: Operation,
        origin: Domain | str,
        target: Domain | str,
        expires_at: int | None = None,
    ) -> Capability:
        """Grant a capability to a process (an operator action, recorded in the trace)."""
        with self._outside_the_loop():
            return self._grant(pid, operation, origin, target, expires_at)

    def _grant(
        self,
        pid: int,
        operation: Operation,
        origin: Domain | str,
        target: Domain | str,
        expires_at: int | None,
    ) -> Capability:
        self._live_process(pid)
        if expires_at is not None and (type(expires_at) is not int or not 0 <= expires_at < 2**63):
            raise XdvError(
                f"an expiry is a logical time in [0, 2**63), got {safe_repr(expires_at)}",
                code=ErrorCode.INVALID_ARGUMENT,
                where=f"process {pid}",
            )
        capability = self._authority.grant(
            pid, operation, Domain.parse(origin), Domain.parse(target), self.clock.now, expires_at
        )
        self._record(
            _ET.CAPABILITY_GRANT,
            capability.target,
            pid,
            capability=capability.id,
            meta=capability.to_record(),
        )
        return capability

    def revoke(self, capability_id: int, reason: str = "operator") -> list[Capability]:
        """Revoke a capability and every capability derived from it (recorded in the trace).

        Returns the revoked capabilities, the one named first.
        """
        with self._outside_the_loop():
            return self._revoke(capability_id, reason)

    def _revoke(self, capability_id: int, reason: str) -> list[Capability]:
        revoked = self._authority.revoke(capability_id)
        capability = revoked[0]
        self._record(
            _ET.CAPABILITY_REVOKE,
            capability.target,
            capability.holder,
            capability=capability.id,
            meta={"ids": [item.id for item in revoked], "reason": reason},
        )
        return revoked

    def snapshot(self) -> dict[str, Any]:
        """The orchestration state S_O: processes, bindings, contracts, capabilities, managers.

        Used by audits and by the atomicity tests; it holds no raw Q or Φ state.
        """
        return {
            "processes": {
                pid: {
                    "state": process.state.name,
                    "bindings": sorted(domain.label for domain in process.bindings),
                    "contracts": sorted(process.contracts),
                }
                for pid, process in sorted(self._processes.items())
            },
            "capabilities": self._authority.snapshot(),
            "managers": {d.label: m.snapshot() for d, m in sorted(self._managers.items())},
        }

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
        self._wall_start_ns = self._wall_clock.monotonic_ns()
        with self._stopping_cleanly():
            return self._shutdown(self._loop())

    @contextlib.contextmanager
    def _stopping_cleanly(self) -> Iterator[None]:
        self._in_loop = True
        try:
            yield
        except (TraceWriteFailure, _OutputFailure) as failure:
            raise failure.error from None
        except BaseException:
            with contextlib.suppress(BaseException):
                self._writer.sync()
            raise
        finally:
            self._in_loop = False

    @contextlib.contextmanager
    def _outside_the_loop(self) -> Iterator[None]:
        """Public calls made outside a run get the typed TRACE_IO error of a failed write;
        inside a run (a process calling the kernel) the failure must stop the run instead."""
        try:
            yield
        except (TraceWriteFailure, _OutputFailure) as failure:
            if self._in_loop:
                raise
            raise failure.error from None

    def _loop(self) -> str:
        """The kernel loop; returns the run status ("ok" or "limit")."""
        clock = self.clock
        ready = self._ready
        pop = heapq.heappop
        handlers = self._handlers
        quantum = self.quantum
        steps_max = self.limits.steps_max
        writer = self._writer
        append = writer.append_encoded
        push = heapq.heappush
        next_seq = self._enqueue_seq
        round_robin = self._round_robin
        sleep_ticks_max = self._sleep_ticks_max
        vhm, node = self.vhm, self.node
        active = ProcessState.ACTIVE
        steps = 0
        last: _Process | None = None
        status = "ok"
        # The kernel loop: the only place where logical time advances. Invariant: each
        # iteration dispatches the ready process with the smallest policy key and runs it for
        # at most one time slice of `quantum` steps; every step adds exactly 1 to L.
        while ready:
            process = pop(ready)[-1]
            process.queued = False
            if process.state is not active:
                invariant(process.state is ProcessState.SUSPENDED, "only live processes queue")
                process.parked = True
                continue
            now = clock.now
            if process.ready_at > now + 1:
                now = process.ready_at - 1  # skip idle logical time
            budget = quantum if steps_max - steps >= quantum else steps_max - steps
            if budget <= 0:
                status = "limit"
                break
            anchor = process.anchor
            pid = process.pid
            if process is not last:  # a context switch: the scheduler's decision is recorded
                append(now + 1, _DISPATCH, _ORCHESTRATION, pid, vhm, node, _EMPTY_MAP)
            for _ in range(budget):
                steps += 1
                now += 1
                clock.now = now
                if process.delivery is not None:
                    self._deliver(process)
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
                    self._finish(process, stop.value)
                    break
                except InvariantViolation:
                    raise
                except XdvError as error:
                    self._terminate(
                        process,
                        ExitStatus(pid, False, None, error.code.name, error.message),
                    )
                    break
                except (Exception, SystemExit) as error:  # the anchor's own bug: its fault alone
                    self._terminate(
                        process,
                        ExitStatus(
                            pid,
                            False,
                            None,
                            ErrorCode.PROCESS_FAULT.name,
                            describe_exception(error),
                        ),
                    )
                    break
                if isinstance(call, Sleep):
                    # The most frequent system call is handled inline (no handler call): it
                    # records SLEEP with a pre-encoded one-key map and re-queues the process.
                    # A malformed Sleep goes on to its handler, which refuses it.
                    ticks = call.ticks
                    if type(ticks) is int and 0 <= ticks <= sleep_ticks_max:
                        until = now + (ticks or 1)
                        if 0x10000 <= until < 0x100000000:
                            metadata = _UNTIL_PREFIX_U32 + until.to_bytes(4, "big")
                        else:
                            metadata = _UNTIL_PREFIX + cbor_uint(until)
                        append(now, _SLEEP, _ORCHESTRATION, pid, vhm, node, metadata)
                        process.send_value = until
                        if round_robin:
                            process.ready_at = until
                            process.queued = True
                            push(ready, (until, -process.priority, pid, next_seq(), process))
                        else:
                            self._enqueue(process, until)
                        break
                handler = handlers.get(type(call)) or self._handler_for_subclass(call)
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
                    self._record_failure(process, call, error)
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
                    self._record_failure(process, call, invalid)
                    process.throw_error = invalid
                if process.state is not active:
                    break
            else:
                # The slice ran out with the process still running.
                if budget < quantum:
                    status = "limit"
                    break
                append(now, _PREEMPT, _ORCHESTRATION, pid, vhm, node, _EMPTY_MAP)
                self._enqueue(process, now + 1)
            last = process
            if writer.count >= self._checkpoint_at:
                self._checkpoint()
        self._steps = steps
        return status

    def _fold_leaves(self) -> None:
        merkle, leaves = self._merkle, self._writer.leaves
        invariant(merkle is not None and leaves is not None, "auditing is on")
        assert merkle is not None and leaves is not None  # for the type checker
        merkle.extend(leaves)
        leaves.clear()

    def _checkpoint(self) -> None:
        """Record a CHECKPOINT over every entry so far and hand the head to the sink."""
        self._fold_leaves()
        merkle, audit = self._merkle, self.audit
        assert merkle is not None and audit is not None
        size, root = merkle.size, merkle.root()
        invariant(size == self._writer.count, "the audit tree covers every entry")
        self._record(_ET.CHECKPOINT, _O, 0, meta={"size": size, "root": root})
        self._checkpoint_at = self._writer.count + audit.interval
        if audit.sink is not None:
            self._writer.sync()  # a signed head never covers entries that are not written
            audit.sink.tree_head(self._run_hash, size, root, False)

    def abort(self, error: BaseException) -> RunResult:
        """End the run before it started because the workload's setup failed."""
        invariant(not self._ran, "a kernel runs once")
        self._ran = True
        code = error.code if isinstance(error, XdvError) else ErrorCode.WORKLOAD_INVALID
        message = error.message if isinstance(error, XdvError) else describe_exception(error)
        with self._stopping_cleanly():
            self._record(_ET.FAULT, _O, 0, status=code, meta={"error": message, "phase": "setup"})
            return self._shutdown("aborted")

    def _handler_for_subclass(self, call: Any) -> Callable[[_Process, Any], bool] | None:
        """The handler of the nearest system-call base class (for subclasses of system calls)."""
        for kind in type(call).__mro__[1:]:
            handler = self._handlers.get(kind)
            if handler is not None:
                return handler
        return None

    def _shutdown(self, status: str) -> RunResult:
        # Decide every remaining process's fate first: ending one must not wake another.
        endings: list[tuple[_Process, ErrorCode, str]] = []
        for pid in sorted(self._processes):
            process = self._processes[pid]
            if process.state in (ProcessState.TERMINATED, ProcessState.RELEASED):
                continue
            if status == "limit":
                code = ErrorCode.LIMIT_EXCEEDED
                message = f"the run hit its limit of {self.limits.steps_max} steps"
            elif status == "aborted":
                code = ErrorCode.WORKLOAD_INVALID
                message = "the workload's setup failed, so the run never started"
            elif process.state is ProcessState.SUSPENDED:
                code, message = ErrorCode.DEADLOCK, "still suspended when the run ended"
            else:
                code = ErrorCode.DEADLOCK
                message = f"blocked forever waiting on process {process.waiting_on}"
            endings.append((process, code, message))
        self._shutting_down = True
        for process, code, message in endings:
            self._terminate(process, ExitStatus(process.pid, False, None, code.name, message))
        failed = sorted(pid for pid, status_ in self._exits.items() if not status_.ok)
        if status == "aborted" or (status == "ok" and failed):
            status = "failed"
        self._record(
            _ET.RUN_END,
            _O,
            0,
            status=ErrorCode.LIMIT_EXCEEDED if status == "limit" else ErrorCode.OK,
            meta={
                "status": status,
                "steps": self._steps,
                "processes": len(self._processes),
                "failed": failed,
            },
        )
        self._writer.close()
        if self._merkle is not None:
            self._fold_leaves()
            sink = self.audit.sink if self.audit is not None else None
            if sink is not None:
                sink.tree_head(self._run_hash, self._merkle.size, self._merkle.root(), True)
        return RunResult(
            status=status,
            exits=dict(sorted(self._exits.items())),
            outputs=list(self.outputs),
            steps=self._steps,
            logical_time=self.clock.now,
            events=self._writer.count,
            head_hash=self._writer.last_hash.hex(),
            trace_path=self._writer.path,
            wall_seconds=(self._wall_clock.monotonic_ns() - self._wall_start_ns) / 1e9
            if self._wall_start_ns is not None
            else 0.0,
            trace_bytes=self._writer.getvalue()
            if self._writer.path is None and self._writer.retains
            else None,
        )

    # ------------------------------------------------------------------ helpers

    def _enqueue(self, process: _Process, ready_at: int) -> None:
        if process.queued:
            raise InvariantViolation(f"process {process.pid} is queued at most once")
        process.ready_at = ready_at
        process.queued = True
        seq = self._enqueue_seq()
        if self._round_robin:  # the default policy's key, inlined on the hot path
            heapq.heappush(self._ready, (ready_at, -process.priority, process.pid, seq, process))
        else:
            key = self.policy.key(ready_at, process.priority, process.pid, seq)
            heapq.heappush(self._ready, (*key, process))

    def _set_state(self, process: _Process, state: ProcessState) -> None:
        check_transition(process.pid, process.state, state)
        process.state = state
        self._record(_ET.PROCESS_STATE, _O, process.pid, meta={"state": state.name})

    def _live_process(self, pid: int) -> _Process:
        process = self._processes.get(pid)
        if process is None or process.state in (ProcessState.TERMINATED, ProcessState.RELEASED):
            raise XdvError(
                f"no live process {pid}", code=ErrorCode.PROCESS_UNKNOWN, where=f"process {pid}"
            )
        return process

    def _record_failure(self, process: _Process, call: Any, error: XdvError) -> None:
        event_type = next(
            (_FAILURE_EVENT[kind] for kind in type(call).__mro__ if kind in _FAILURE_EVENT),
            _ET.FAULT,
        )
        domain = getattr(call, "domain", None)
        try:
            parsed = Domain.parse(domain) if domain is not None else Domain.K
        except XdvError:
            parsed = Domain.K
        self._record(
            event_type,
            parsed,
            process.pid,
            status=error.code,
            meta={"error": error.message, "call": type(call).__name__},
        )

    def _check(
        self,
        process: _Process,
        operation: Operation,
        origin: Domain,
        target: Domain,
        resource: str | None = None,
    ) -> Capability:
        """The single validation path: every cross-domain operation of the kernel (bind,
        reserve, invoke and the rights it needs, transition) is authorized here and only
        here, before any domain manager is touched."""
        for domain in (origin, target):
            if domain in self._frozen:
                raise UnauthorizedError(
                    f"domain {domain.label} is frozen",
                    code=ErrorCode.DOMAIN_FROZEN,
                    where=f"process {process.pid}",
                )
        return self._authority.check(
            process.pid, operation, origin, target, self.clock.now, resource
        )

    # ------------------------------------------------------------------ process lifecycle

    def _create_process(
        self,
        anchor_function: Callable[..., Any],
        args: tuple[Any, ...],
        name: str | None,
        priority: int,
        requested: tuple[Domain | str, ...],
        parent: int,
    ) -> int:
        _require(name, (str, type(None)), "a process name", parent)
        _require(priority, int, "a process priority", parent)
        _require(args, (tuple, list), "spawn arguments", parent)
        if not callable(anchor_function):
            raise XdvError(
                f"a K anchor must be a generator or coroutine function, got "
                f"{safe_repr(anchor_function)}",
                code=ErrorCode.PROCESS_INVALID,
                where=f"process {parent}",
            )
        if isinstance(requested, str | Domain):
            requested = (requested,)
        _require(requested, (tuple, list), "declared domains", parent)
        _refuse_move_only(args, parent)
        if len(self._processes) >= self.limits.processes_max:
            raise XdvError(
                f"the kernel holds its limit of {self.limits.processes_max} processes",
                code=ErrorCode.LIMIT_EXCEEDED,
                where="spawn",
            )
        domains = tuple(sorted({Domain.parse(domain) for domain in requested}))
        pid = self._next_pid
        self._next_pid += 1
        label = name or str(getattr(anchor_function, "__name__", "process"))
        info = ProcessInfo(pid, label, parent, priority, self.vhm, self.node, domains)
        process = _Process(info, None)
        self._processes[pid] = process
        self._record(
            _ET.PROCESS_CREATE,
            _O,
            pid,
            meta={
                "name": label,
                "parent": parent,
                "priority": priority,
                "domains": [domain.label for domain in domains],
                "anchor": qualified_name(anchor_function),
            },
        )
        try:
            if Domain.K not in domains:
                raise XdvError(
                    f"process {label!r} declares {[d.label for d in domains]} but every "
                    "process needs a K anchor",
                    code=ErrorCode.PROCESS_INVALID,
                    where=f"process {pid}",
                )
            for domain in domains:
                self.manager(domain)
            anchor = anchor_function(*args)
            if not (inspect.isgenerator(anchor) or inspect.iscoroutine(anchor)):
                raise XdvError(
                    f"the K anchor {qualified_name(anchor_function)} returned "
                    f"{type(anchor).__name__}; it must be a generator or coroutine function",
                    code=ErrorCode.PROCESS_INVALID,
                    where=f"process {pid}",
                )
            process.anchor = anchor
            for domain in domains:
                self._grant_silently(process, Operation.EXECUTE, Domain.K, domain)
                self._grant_silently(process, Operation.ALLOCATE, Domain.K, domain)
            for origin in domains:
                for target in domains:
                    self._grant_silently(process, Operation.TRANSITION, origin, target)
            for domain in domains:
                self._bind(process, domain)
            self._set_state(process, ProcessState.BOUND)
            self._set_state(process, ProcessState.INITIALIZED)
            self._set_state(process, ProcessState.ACTIVE)
        except InvariantViolation:
            raise
        except Exception as raised:
            # Whatever went wrong (the anchor function raised when called, a manager's init
            # failed), the half-made process is ended and released, and the error is typed.
            error = as_typed(
                raised,
                ErrorCode.PROCESS_INVALID,
                f"creating process {pid} failed",
                f"process {pid}",
            )
            self._terminate(process, ExitStatus(pid, False, None, error.code.name, error.message))
            raise error from None
        self._enqueue(process, self.clock.now + 1)
        return pid

    def _grant_silently(
        self, process: _Process, operation: Operation, origin: Domain, target: Domain
    ) -> None:
        capability = self._authority.grant(process.pid, operation, origin, target, self.clock.now)
        self._record(
            _ET.CAPABILITY_GRANT,
            target,
            process.pid,
            capability=capability.id,
            meta=capability.to_record(),
        )

    def _attest_providers(self, process: _Process, domain: Domain, manager: Any) -> None:
        """Refuse to bind a domain whose providers are not (or no longer) attested."""
        providers = getattr(manager, "providers", None)
        if providers is None:
            return
        for provider_id, provider in sorted(providers().items()):
            try:
                if self.attestation is None:
                    # Fail closed: a kernel built without a verifier admits no provider.
                    raise XdvError(
                        f"provider {provider_id!r} cannot be admitted: this kernel has no "
                        "attestation verifier (the runtime layer injects xdv.security's)",
                        code=ErrorCode.ATTESTATION_FAILED,
                        where=f"domain {domain.label}",
                    )
                record = self.attestation.verify(provider, self.clock.now)
            except XdvError as error:
                self._record(
                    _ET.ATTESTATION,
                    domain,
                    process.pid,
                    status=error.code,
                    meta={"provider": provider_id, "error": error.message},
                )
                raise
            self._record(_ET.ATTESTATION, domain, process.pid, meta=record)

    def _bind(self, process: _Process, domain: Domain) -> None:
        manager = self.manager(domain)
        self._attest_providers(process, domain, manager)
        detail = manager.init(process.pid)
        process.bindings.add(domain)
        self._record(_ET.DOMAIN_BIND, domain, process.pid, meta=dict(detail))

    def _unbind(self, process: _Process, domain: Domain) -> None:
        self._managers[domain].terminate(process.pid)
        process.bindings.discard(domain)
        self._record(_ET.DOMAIN_UNBIND, domain, process.pid)

    def _finish(self, process: _Process, value: Any) -> None:
        try:
            value = canonicalize(value, f"exit value of process {process.pid}")
        except XdvError as error:
            self._terminate(
                process, ExitStatus(process.pid, False, None, error.code.name, error.message)
            )
            return
        self._terminate(process, ExitStatus(process.pid, True, value))

    def _terminate(self, process: _Process, status: ExitStatus) -> None:
        pid = process.pid
        if not status.ok:
            self._record(
                _ET.FAULT,
                _O,
                pid,
                status=ErrorCode[status.code or "PROCESS_FAULT"],
                meta={"error": status.message},
            )
        check_transition(pid, process.state, ProcessState.TERMINATED)
        process.state = ProcessState.TERMINATED
        process.exit = status
        self._exits[pid] = status
        meta: dict[str, Any] = {"ok": status.ok}
        if status.ok:
            meta["value"] = status.value
        else:
            meta["error"] = status.code
        self._record(
            _ET.PROCESS_EXIT,
            _O,
            pid,
            status=ErrorCode.OK if status.ok else ErrorCode[status.code or "PROCESS_FAULT"],
            meta=meta,
        )
        for contract_id in sorted(process.contracts):
            self._release_contract(process, process.contracts[contract_id], "exit")
        for domain in sorted(process.bindings, reverse=True):
            self._unbind(process, domain)
        revoked: list[int] = []
        while held := self._authority.held_by(pid):
            # Revoking one may revoke others it was derived into (held here or elsewhere).
            revoked.extend(capability.id for capability in self._authority.revoke(held[0].id))
        if revoked:
            self._record(_ET.CAPABILITY_REVOKE, _O, pid, meta={"ids": revoked, "reason": "exit"})
        anchor = process.anchor
        if anchor is not None:
            # An anchor's own cleanup code cannot undo its end; its failures are ignored.
            with contextlib.suppress(Exception):
                anchor.close()
        process.anchor = None
        process.delivery = None
        check_transition(pid, process.state, ProcessState.RELEASED)
        process.state = ProcessState.RELEASED
        self._record(_ET.PROCESS_STATE, _O, pid, meta={"state": ProcessState.RELEASED.name})
        if process.waiting_on is not None:
            # It ends while waiting: it is no longer a waiter of the process it waited on.
            target = self._processes[process.waiting_on]
            if process in target.waiters:  # at shutdown the target may have ended first
                target.waiters.remove(process)
            process.waiting_on = None
        waiters, process.waiters = process.waiters, []
        if self._shutting_down:
            return  # the run is over: nobody is woken, every survivor is ended in turn
        for waiter in waiters:
            waiter.waiting_on = None
            waiter.send_value = status
            self._record(_ET.WAKE, _O, waiter.pid, meta={"by": pid})
            self._enqueue(waiter, self.clock.now + 1)

    def _release_contract(self, process: _Process, contract: ResourceContract, why: str) -> None:
        self._managers[contract.domain].release(contract)
        del process.contracts[contract.id]
        self._record(
            _ET.RESOURCE_RELEASE,
            contract.domain,
            process.pid,
            capability=contract.capability,
            contract=contract.id,
            meta={"reason": why},
        )

    # ------------------------------------------------------------------ system calls
    # Each handler returns True when the process keeps running in its slice, False when it
    # left the processor (blocked, slept, yielded or ended). Operating errors are raised.

    def _sys_emit(self, process: _Process, call: Emit) -> bool:
        value = canonicalize(call.value, "emitted value")
        metadata = canonical_metadata({"v": value})  # anything that can fail, fails here
        # Queued before it is recorded, so the sync that makes its entry durable releases it.
        self._pending_outputs.append((self._writer.count, process.pid, value))
        self._append(
            self.clock.now, _EFFECT, _K, 0, process.pid, self.vhm, self.node, 0, 0, metadata
        )
        self.outputs.append((process.pid, value))
        return True

    def _sys_sleep_refused(self, process: _Process, call: Sleep) -> bool:
        """Only malformed Sleeps get here: the kernel loop handles the valid ones inline."""
        raise XdvError(
            f"Sleep takes 0 to {self._sleep_ticks_max} ticks, got {safe_repr(call.ticks)}",
            code=ErrorCode.SYSCALL_INVALID,
            where=f"process {process.pid}",
        )

    def _sys_yield(self, process: _Process, call: Yield) -> bool:
        self._record(_ET.YIELD, _O, process.pid)
        self._enqueue(process, self.clock.now + 1)
        return False

    def _sys_now(self, process: _Process, call: Now) -> bool:
        process.send_value = self.clock.now
        return True

    def _sys_self(self, process: _Process, call: Self) -> bool:
        process.send_value = process.info
        return True

    def _sys_random(self, process: _Process, call: Random) -> bool:
        _require(call.name, str, "a random stream name", process.pid)
        stream = process.streams.get(call.name)
        if stream is None:
            stream = RandomStream(self.seed, ("process", process.pid, call.name))
            process.streams[call.name] = stream
        process.send_value = stream
        return True

    def _sys_spawn(self, process: _Process, call: Spawn) -> bool:
        pid_before = self._next_pid
        try:
            child = self._create_process(
                call.anchor,
                tuple(call.args),
                call.name,
                call.priority,
                tuple(call.domains),
                parent=process.pid,
            )
        except XdvError as error:
            if self._next_pid != pid_before:
                raise _Recorded(error) from None  # the child's creation and end are recorded
            raise  # refused before a child existed: the kernel loop records the failure
        process.send_value = child
        return True

    def _sys_wait(self, process: _Process, call: Wait) -> bool:
        _require(call.pid, int, "Wait's pid", process.pid)
        target = self._processes.get(call.pid)
        if target is None or target is process:
            raise XdvError(
                f"process {process.pid} cannot wait on process {call.pid}",
                code=ErrorCode.PROCESS_UNKNOWN if target is None else ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        if target.exit is not None:
            process.send_value = target.exit
            return True
        if len(target.waiters) >= self.limits.waiters_per_process_max:
            raise XdvError(
                f"process {call.pid} already has {len(target.waiters)} waiters",
                code=ErrorCode.LIMIT_EXCEEDED,
                where=f"process {process.pid}",
            )
        target.waiters.append(process)
        process.waiting_on = call.pid
        self._record(_ET.WAIT, _O, process.pid, meta={"on": call.pid})
        return False

    def _sys_exit(self, process: _Process, call: Exit) -> bool:
        self._finish(process, call.value)
        return False

    def _sys_bind(self, process: _Process, call: Bind) -> bool:
        domain = Domain.parse(call.domain)
        self.manager(domain)
        if domain in process.bindings:
            raise XdvError(
                f"process {process.pid} is already bound to {domain.label}",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        self._check(process, Operation.ALLOCATE, Domain.K, domain)
        self._bind(process, domain)
        return True

    def _sys_unbind(self, process: _Process, call: Unbind) -> bool:
        domain = Domain.parse(call.domain)
        if domain is Domain.K or domain not in process.bindings:
            raise XdvError(
                f"process {process.pid} cannot unbind {domain.label} "
                + ("(the K anchor stays bound)" if domain is Domain.K else "(not bound)"),
                code=ErrorCode.DOMAIN_NOT_BOUND
                if domain is not Domain.K
                else ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        if any(contract.domain is domain for contract in process.contracts.values()):
            raise ContractError(
                f"process {process.pid} still holds {domain.label} contracts",
                where=f"process {process.pid}",
            )
        self._unbind(process, domain)
        return True

    def _reserve(
        self,
        process: _Process,
        domain: Domain,
        resource: str,
        amount: int,
        duration: int | None,
        capability: Capability,
        *,
        require_binding: bool = True,
        terms: Any = None,
    ) -> ResourceContract:
        if require_binding and domain not in process.bindings:
            raise DomainError(
                f"process {process.pid} is not bound to {domain.label}",
                code=ErrorCode.DOMAIN_NOT_BOUND,
                where=f"process {process.pid}",
            )
        self._check_contract_room(process, process)
        if type(amount) is not int or (
            duration is not None and (type(duration) is not int or duration < 1)
        ):
            raise ContractError(
                f"a reservation needs an integer amount and a positive duration, got "
                f"amount={safe_repr(amount)}, duration={safe_repr(duration)}",
                where=f"process {process.pid}",
            )
        if terms is None:
            terms = {}
        elif not isinstance(terms, Mapping):
            raise ContractError(
                f"reservation terms must be a mapping, got {type(terms).__name__}",
                where=f"process {process.pid}",
            )
        else:
            terms = canonicalize(dict(terms), "reservation terms")
        now = self.clock.now
        grant = self.manager(domain).request_resources(
            ResourceRequest(process.pid, domain, resource, amount, duration, now, terms)
        )
        granted = canonicalize(dict(grant.detail), "granted contract terms")
        contract = ResourceContract(
            id=self._next_contract,
            pid=process.pid,
            domain=domain,
            resource=grant.resource,
            amount=grant.amount,
            issued_at=now,
            expires_at=None if duration is None else now + duration,
            capability=capability.id,
            terms=granted,
        )
        self._next_contract += 1
        process.contracts[contract.id] = contract
        return contract

    def _sys_reserve(self, process: _Process, call: Reserve) -> bool:
        _require(call.resource, str, "Reserve's resource", process.pid)
        domain = Domain.parse(call.domain)
        self.manager(domain)
        capability = self._check(process, Operation.ALLOCATE, Domain.K, domain, call.resource)
        self.faults.visit("reserve", process.pid)
        contract = self._reserve(
            process,
            domain,
            call.resource,
            call.amount,
            call.duration,
            capability,
            terms=call.terms,
        )
        self._record(
            _ET.RESOURCE_RESERVE,
            domain,
            process.pid,
            capability=capability.id,
            contract=contract.id,
            meta=contract.to_record(),
        )
        process.send_value = contract
        return True

    def _owned_contract(
        self, process: _Process, handle: Any, *, check_expiry: bool = True
    ) -> ResourceContract:
        if not isinstance(handle, ResourceContract):
            raise ContractError(
                f"expected a resource contract, got {type(handle).__name__}",
                where=f"process {process.pid}",
            )
        owned = process.contracts.get(handle.id)
        if owned is None or owned != handle:
            raise ContractError(
                f"contract {handle.id} is not a live contract of process {process.pid}",
                where=f"process {process.pid}",
            )
        if check_expiry and owned.expires_at is not None and self.clock.now > owned.expires_at:
            raise ContractError(
                f"contract {owned.id} expired at logical time {owned.expires_at} "
                f"(now {self.clock.now})",
                code=ErrorCode.CONTRACT_EXPIRED,
                where=f"contract {owned.id}",
            )
        return owned

    def _sys_release(self, process: _Process, call: Release) -> bool:
        # An expired contract can still be released: only using it is refused.
        owned = self._owned_contract(process, call.contract, check_expiry=False)
        self._release_contract(process, owned, "released")
        return True

    def _check_contract_room(self, holder: _Process, caller: _Process) -> None:
        """LIMIT_EXCEEDED if ``holder`` already holds its limit of contracts."""
        if len(holder.contracts) >= self.limits.contracts_per_process_max:
            raise XdvError(
                f"process {holder.pid} holds its limit of "
                f"{self.limits.contracts_per_process_max} contracts",
                code=ErrorCode.LIMIT_EXCEEDED,
                where=f"process {caller.pid}",
            )

    def _sys_transfer(self, process: _Process, call: Transfer) -> bool:
        _require(call.to, int, "Transfer's receiver", process.pid)
        owned = self._owned_contract(process, call.contract)
        target = self._processes.get(call.to)
        if target is None or target.state not in (ProcessState.ACTIVE, ProcessState.SUSPENDED):
            raise XdvError(
                f"process {call.to} is not a live process",
                code=ErrorCode.PROCESS_UNKNOWN,
                where=f"process {process.pid}",
            )
        if target is process:
            raise XdvError(
                "a process cannot transfer a contract to itself",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        domain = owned.domain
        if domain not in target.bindings:
            raise DomainError(
                f"process {target.pid} is not bound to {domain.label}",
                code=ErrorCode.DOMAIN_NOT_BOUND,
                where=f"process {process.pid}",
            )
        self._check(process, Operation.ALLOCATE, Domain.K, domain, owned.resource)
        capability = self._check(target, Operation.ALLOCATE, Domain.K, domain, owned.resource)
        self._check_contract_room(target, process)
        manager = self._managers[domain]
        hand_over = getattr(manager, "transfer", None)
        detail = canonicalize(dict(hand_over(owned, target.pid)), "transfer") if hand_over else {}
        moved = dataclasses.replace(owned, pid=target.pid, capability=capability.id)
        del process.contracts[owned.id]
        target.contracts[moved.id] = moved
        self._record(
            _ET.RESOURCE_TRANSFER,
            domain,
            process.pid,
            capability=capability.id,
            contract=moved.id,
            meta={"to": target.pid, **detail},
        )
        return True

    def _sys_contracts(self, process: _Process, call: Contracts) -> bool:
        domain = None if call.domain is None else Domain.parse(call.domain)
        process.send_value = [
            contract
            for _, contract in sorted(process.contracts.items())
            if domain is None or contract.domain is domain
        ]
        return True

    def _perform(self, manager: DomainManager, invocation: Invocation) -> _Pending:
        """Run (or, in inject mode, look up) an invocation's outcome."""
        pending = _Pending(
            invocation.id,
            invocation.domain,
            invocation.contract.capability,
            invocation.contract.id,
            ErrorCode.OK,
            None,
            None,
        )
        if self._replay_outcomes is not None:
            # Looked up when delivered: an outcome that was never delivered (its process ended
            # or was suspended first) was never recorded, and is never needed.
            pending.value = _INJECTED
            return pending
        try:
            value = manager.execute(invocation).value
            pending.value = (
                value if isinstance(value, Future) else canonicalize(value, "domain outcome")
            )
        except InvariantViolation:
            raise
        except XdvError as error:
            pending.status, pending.error = error.code, error.message
        except Exception as error:  # a provider failure is a typed domain fault, not a crash
            pending.status = ErrorCode.DOMAIN_FAULT
            pending.error = describe_exception(error)
        return pending

    def _deliver(self, process: _Process) -> None:
        """Record a pending outcome at its delivery point and hand it to the process."""
        pending: _Pending = process.delivery
        process.delivery = None
        self._resolve(pending)
        if pending.domain in self._frozen and pending.status is ErrorCode.OK:
            pending.status, pending.value = ErrorCode.DOMAIN_FROZEN, None
            pending.error = f"domain {pending.domain.label} was frozen before the outcome arrived"
        self._record_result(process, pending)
        if pending.status is ErrorCode.OK:
            process.send_value = pending.value
        else:
            process.throw_error = DomainError(
                pending.error or pending.status.name,
                code=pending.status,
                where=f"invocation {pending.invocation}",
            )

    def _resolve(self, pending: _Pending) -> None:
        if pending.value is _INJECTED:
            recorded = (self._replay_outcomes or {}).get(pending.invocation)
            if recorded is None:
                raise ReplayDivergence(
                    f"invocation {pending.invocation} has no recorded outcome to inject",
                    where=f"invocation {pending.invocation}",
                )
            pending.status, pending.value, pending.error = (
                recorded.status,
                recorded.value,
                recorded.error,
            )
            return
        if isinstance(pending.value, Future):
            try:
                pending.value = canonicalize(pending.value.result(), "outcome")
            except XdvError as error:
                pending.status, pending.value, pending.error = error.code, None, error.message
            except Exception as error:  # a provider failure becomes a typed domain fault
                pending.status, pending.value = ErrorCode.DOMAIN_FAULT, None
                pending.error = describe_exception(error)

    def _record_result(self, process: _Process, pending: _Pending) -> None:
        meta: dict[str, Any] = {"inv": pending.invocation}
        if pending.status is ErrorCode.OK:
            meta["value"] = pending.value
        else:
            meta["error"] = pending.error
        self._record(
            _ET.DOMAIN_RESULT,
            pending.domain,
            process.pid,
            status=pending.status,
            capability=pending.capability,
            contract=pending.contract,
            meta=meta,
        )

    def _check_rights(
        self, process: _Process, contract: ResourceContract, operation: str, manager: Any
    ) -> None:
        """The rights an operation needs beyond EXECUTE (a Q job that measures needs
        MEASURE(Q→K), a Φ readout PROJECT(Φ→K)), as its manager declares them."""
        declare = getattr(manager, "rights", None)
        if declare is None:
            return
        for name in sorted(declare(operation)):
            right = Operation.__members__.get(name)
            if right is None:
                raise DomainError(
                    f"the {contract.domain.label} manager declares an unknown right {name!r} "
                    f"for {operation!r}",
                    code=ErrorCode.DOMAIN_FAULT,
                    where=f"domain {contract.domain.label}",
                )
            self._check(process, right, contract.domain, Domain.K, contract.resource)

    def _invoke(
        self,
        process: _Process,
        contract: ResourceContract,
        capability: Capability,
        operation: str,
        args: tuple[Any, ...],
        manager: DomainManager,
        transition: int = 0,
    ) -> tuple[_Pending, int]:
        self._check_rights(process, contract, operation, manager)
        latency = manager.latency(operation)
        prepared = manager.prepare(operation, args)
        invocation = Invocation(
            id=self._next_invocation,
            pid=process.pid,
            domain=contract.domain,
            contract=contract,
            operation=operation,
            args=args,
            seed=derive_seed(self.seed, ("invocation", self._next_invocation)),
            logical_time=self.clock.now,
            parsed=prepared.parsed,
        )
        self._next_invocation += 1
        meta = {
            "inv": invocation.id,
            "op": operation,
            "latency": latency,
            "seed": invocation.seed,
            **prepared.record,
        }
        if transition:
            meta["tr"] = transition
        self._record(
            _ET.DOMAIN_INVOKE,
            contract.domain,
            process.pid,
            capability=capability.id,
            contract=contract.id,
            meta=meta,
        )
        return self._perform(manager, invocation), latency

    def _sys_invoke(self, process: _Process, call: Invoke) -> bool:
        _require(call.operation, str, "Invoke's operation", process.pid)
        _require(call.args, (tuple, list), "Invoke's arguments", process.pid)
        contract = self._owned_contract(process, call.contract)
        capability = self._check(
            process, Operation.EXECUTE, Domain.K, contract.domain, contract.resource
        )
        self.faults.visit("invoke", process.pid)
        manager = self._managers[contract.domain]
        pending, latency = self._invoke(
            process, contract, capability, call.operation, tuple(call.args), manager
        )
        process.delivery = pending
        if latency == 0:
            self._deliver(process)
            return True
        self._enqueue(process, self.clock.now + latency)
        return False

    def _sys_transition(self, process: _Process, call: Transition) -> bool:

        value, latency = run_transition(self, process, call)
        process.send_value = value
        if latency == 0:
            return True
        self._enqueue(process, self.clock.now + latency)
        return False

    def _child(self, process: _Process, pid: int) -> _Process:
        _require(pid, int, "a child's pid", process.pid)
        target = self._live_process(pid)
        if target.info.parent != process.pid:
            raise UnauthorizedError(
                f"process {process.pid} is not the parent of process {pid}",
                where=f"process {process.pid}",
            )
        return target

    def _sys_suspend(self, process: _Process, call: Suspend) -> bool:
        target = self._child(process, call.pid)
        self._set_state(target, ProcessState.SUSPENDED)
        return True

    def _sys_resume(self, process: _Process, call: Resume) -> bool:
        target = self._child(process, call.pid)
        self._set_state(target, ProcessState.ACTIVE)
        if target.parked:
            target.parked = False
            self._enqueue(target, self.clock.now + 1)
        return True

    def _derive(
        self, process: _Process, capability_id: Any, to: int, scope: Any, expires_at: Any
    ) -> bool:
        _require(capability_id, int, "the capability id", process.pid)
        if expires_at is not None:
            _require(expires_at, int, "the expiry", process.pid)
        derive = getattr(self._authority, "derive", None)
        if derive is None:
            raise DomainError(
                "this kernel's capability authority cannot derive capabilities",
                code=ErrorCode.OPERATION_UNSUPPORTED,
                where=f"process {process.pid}",
            )
        target = self._processes.get(to)
        if target is None or target.state in (ProcessState.TERMINATED, ProcessState.RELEASED):
            raise XdvError(
                f"process {to} is not a live process",
                code=ErrorCode.PROCESS_UNKNOWN,
                where=f"process {process.pid}",
            )
        # The authority parses the scope record: the kernel knows capabilities, not their algebra.
        token = derive(
            capability_id,
            process.pid,
            self.clock.now,
            subject=to,
            scope=scope,
            expires_at=expires_at,
        )
        capability = token.as_capability()
        self._record(
            _ET.CAPABILITY_GRANT,
            capability.target,
            to,
            capability=capability.id,
            meta=capability.to_record(),
        )
        process.send_value = capability.id
        return True

    def _sys_attenuate(self, process: _Process, call: Attenuate) -> bool:
        return self._derive(process, call.capability, process.pid, call.scope, call.expires_at)

    def _sys_delegate(self, process: _Process, call: Delegate) -> bool:
        _require(call.to, int, "Delegate's process id", process.pid)
        return self._derive(process, call.capability, call.to, call.scope, call.expires_at)

    def freeze(self, domain: Domain | str, reason: str = "operator") -> list[Capability]:
        """Emergency freeze of a domain (an operator action, recorded): revoke every
        capability touching it, fail its pending outcomes, and refuse anything new."""
        with self._outside_the_loop():
            return self._freeze(Domain.parse(domain), reason, 0)

    def _freeze(self, domain: Domain, reason: str, pid: int) -> list[Capability]:
        if domain is Domain.K or domain is Domain.ORCHESTRATION:
            raise XdvError(
                f"domain {domain.label} cannot be frozen: every process runs on it",
                code=ErrorCode.INVALID_ARGUMENT,
                where="freeze",
            )
        freeze = getattr(self._authority, "freeze", None)
        if freeze is not None:
            revoked: list[Capability] = freeze(domain)
        else:  # a minimal authority: revoke what touches the domain by hand
            revoked = []
            for holder in sorted(self._processes):
                for capability in self._authority.held_by(holder):
                    if domain in (capability.origin, capability.target):
                        revoked.extend(self._authority.revoke(capability.id))
        self._frozen.add(domain)
        self._record(
            _ET.DOMAIN_FREEZE,
            domain,
            pid,
            meta={"reason": reason, "revoked": [capability.id for capability in revoked]},
        )
        return revoked

    def _sys_freeze(self, process: _Process, call: Freeze) -> bool:
        _require(call.reason, str, "Freeze's reason", process.pid)
        domain = Domain.parse(call.domain)
        self._check(process, Operation.FREEZE, Domain.K, domain)
        self._freeze(domain, call.reason, process.pid)
        return True

    def _sys_revoke(self, process: _Process, call: Revoke) -> bool:
        _require(call.capability, int, "Revoke's capability id", process.pid)
        held = {capability.id for capability in self._authority.held_by(process.pid)}
        if call.capability not in held:
            raise UnauthorizedError(
                f"process {process.pid} holds no capability #{call.capability}",
                code=ErrorCode.CAPABILITY_INVALID,
                where=f"process {process.pid}",
            )
        revoked = self._authority.revoke(call.capability)
        self._record(
            _ET.CAPABILITY_REVOKE,
            revoked[0].target,
            process.pid,
            capability=revoked[0].id,
            meta={"ids": [item.id for item in revoked], "reason": "dropped"},
        )
        return True
