"""The process table: every process of a run, its lifecycle, and the ready queue.

Processes are created (PROCESS_CREATE, default capabilities, bindings, BOUND → INITIALIZED →
ACTIVE), queued by the scheduler policy's key, and ended (FAULT on failure, PROCESS_EXIT,
releases, unbindings, revocations, RELEASED, and a WAKE for each waiter). The kernel loop pops
the ready queue; everything else that changes a process's state goes through here.
"""

from __future__ import annotations

import contextlib
import heapq
import inspect
import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Operation
from xdv.core._clock import LogicalClock
from xdv.core._contracts import ContractBook
from xdv.core._domains import DomainTable
from xdv.core._k_manager import qualified_name
from xdv.core._lifecycle import ProcessState, check_transition
from xdv.core._policy import RoundRobinPolicy, SchedulerPolicy
from xdv.core._process import ExitStatus, ProcessInfo, _Process
from xdv.core._ready import PolicyQueue
from xdv.core._recorder import Recorder
from xdv.core._refusals import _require
from xdv.core._vhm import VhmTable
from xdv.errors import (
    ErrorCode,
    InvariantViolation,
    UnauthorizedError,
    XdvError,
    as_typed,
    safe_repr,
)
from xdv.trace import Domain, EventType, canonicalize

if TYPE_CHECKING:
    from xdv.core._fault_handler import FaultHandler

__all__ = ["ProcessTable"]

_ENDED = (ProcessState.TERMINATED, ProcessState.RELEASED)


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


class ProcessTable:
    """The processes of a run and the ready queue.

    Invariants: process ids increase by one per creation and are never reused; a process is in
    the ready queue at most once (its ``queued`` flag says whether); ``exits`` holds the status
    of exactly the processes that ended.
    """

    __slots__ = (
        "_capabilities",
        "_clock",
        "_contracts",
        "_domains",
        "_next_pid",
        "_record",
        "admission",
        "exits",
        "faults",
        "next_seq",
        "node",
        "on_end",
        "policy",
        "processes",
        "processes_max",
        "queue",
        "ready",
        "round_robin",
        "shutting_down",
        "vhms",
        "waiters_max",
    )

    def __init__(
        self,
        *,
        recorder: Recorder,
        clock: LogicalClock,
        policy: SchedulerPolicy,
        capabilities: CapabilityCheck,
        domains: DomainTable,
        contracts: ContractBook,
        processes_max: int,
        waiters_max: int,
        vhms: VhmTable,
        node: int,
    ) -> None:
        self._record = recorder.record
        self._clock = clock
        self.policy = policy
        self.round_robin = type(policy) is RoundRobinPolicy
        self._capabilities = capabilities
        self._domains = domains
        self._contracts = contracts
        self.processes_max = processes_max
        self.waiters_max = waiters_max
        self.vhms = vhms
        self.node = node
        self.processes: dict[int, _Process] = {}
        self.exits: dict[int, ExitStatus] = {}
        # Enqueue sequence numbers: unique and increasing, the last element of every key.
        self.next_seq = itertools.count(1).__next__
        # Round-robin: one heap of (ready-at L, -priority, pid, process), popped by the kernel
        # loop directly. Any other policy: a PolicyQueue (timers by ready time, due processes by
        # policy key), whose ``due`` heap is ``ready``; items end with the sequence number and
        # the process, so the process itself is never compared.
        self.queue: PolicyQueue | None = None
        if self.round_robin:
            self.ready: list[tuple[Any, ...]] = []
        else:
            self.queue = PolicyQueue(policy, clock, self.next_seq)
            self.ready = self.queue.due
        # The admission queue (set by the kernel): told when a waiting process ends.
        self.admission: Any = None
        self._next_pid = 1
        self.shutting_down = False
        # Called with each process that ends (and whether the run is shutting down), after
        # its own releases: the channel table closes what the process was the last peer of.
        self.on_end: Callable[[_Process, bool], None] | None = None
        # The kernel's fault handler (attached after construction): it classifies every FAULT
        # entry and counts process faults towards escalation.
        self.faults: FaultHandler | None = None

    # ------------------------------------------------------------------ lookups

    def get(self, pid: int) -> _Process | None:
        """The process ``pid`` (live or ended), or None."""
        return self.processes.get(pid)

    def live(self, pid: int) -> _Process:
        """The live process ``pid``, or PROCESS_UNKNOWN."""
        process = self.processes.get(pid)
        if process is None or process.state in _ENDED:
            raise XdvError(
                f"no live process {pid}", code=ErrorCode.PROCESS_UNKNOWN, where=f"process {pid}"
            )
        return process

    def child(self, process: _Process, pid: int) -> _Process:
        """``process``'s live child ``pid``, or a typed refusal."""
        _require(pid, int, "a child's pid", process.pid)
        target = self.live(pid)
        if target.info.parent != process.pid:
            raise UnauthorizedError(
                f"process {process.pid} is not the parent of process {pid}",
                where=f"process {process.pid}",
            )
        return target

    def running(self) -> _Process | None:
        """The process whose anchor is executing right now (the caller, when a process's own
        code calls the kernel), or None."""
        for process in self.processes.values():
            anchor = process.anchor
            if anchor is not None and (
                getattr(anchor, "gi_running", False) or getattr(anchor, "cr_running", False)
            ):
                return process
        return None

    def snapshot(self) -> dict[int, dict[str, Any]]:
        """Each process's state, bindings and contracts, by pid."""
        return {
            pid: {
                "state": process.state.name,
                "bindings": sorted(domain.label for domain in process.bindings),
                "contracts": sorted(process.contracts),
            }
            for pid, process in sorted(self.processes.items())
        }

    # ------------------------------------------------------------------ scheduling

    def enqueue(self, process: _Process, ready_at: int) -> None:
        """Make ``process`` ready at logical time ``ready_at``."""
        if process.queued:
            raise InvariantViolation(f"process {process.pid} is queued at most once")
        process.ready_at = ready_at
        process.queued = True
        if self.round_robin:
            # The default policy's key, inlined (the kernel loop does the same for a sleep).
            # A process is queued at most once, so (ready-at L, -priority, pid) is already
            # unique and orders exactly as the policy's key with an enqueue sequence number.
            heapq.heappush(self.ready, (ready_at, -process.priority, process.pid, process))
        else:
            assert self.queue is not None
            self.queue.push(process, ready_at)

    def push_timer(self, at: int, item: Any, tag: int) -> None:
        """Queue ``item`` (not a process: an admission deadline) to be met by the kernel loop
        at logical time ``at``, ahead of the processes ready then; ``tag`` is unique."""
        if self.queue is None:
            heapq.heappush(self.ready, (at, float("-inf"), -tag, item))
        else:
            self.queue.push_timer(at, item)

    def dequeue(self, process: _Process) -> None:
        """Take a queued process out of the ready queue (a process blocked with a timeout that
        is served, or ends, before its deadline). Under a policy other than round-robin the
        process may still wait among the policy queue's timers."""
        heaps = [self.ready] if self.queue is None else [self.queue.due, self.queue.timers]
        for heap in heaps:
            for index, item in enumerate(heap):
                if item[-1] is process:
                    last = heap.pop()
                    if index < len(heap):
                        heap[index] = last
                        heapq.heapify(heap)
                    process.queued = False
                    return
        raise InvariantViolation(f"process {process.pid} is not in the ready queue")

    def set_state(self, process: _Process, state: ProcessState) -> None:
        """Move ``process`` to ``state`` (a checked lifecycle move) and record it."""
        check_transition(process.pid, process.state, state)
        process.state = state
        self._record(
            EventType.PROCESS_STATE, Domain.ORCHESTRATION, process.pid, meta={"state": state.name}
        )

    # ------------------------------------------------------------------ lifecycle

    def create(
        self,
        anchor_function: Callable[..., Any],
        args: tuple[Any, ...],
        name: str | None,
        priority: int,
        requested: tuple[Domain | str, ...],
        parent: int,
        vhm: int | None = None,
        *,
        deadline: int | None = None,
        rights: Iterable[tuple[Operation, Domain, Domain]] | None = None,
        saved: Any = None,
    ) -> int:
        """Create, bind and queue a process whose K anchor is ``anchor_function(*args)``.

        The process belongs to VHM ``vhm`` (its parent's when None, the root's for the
        operator). Its default capabilities (EXECUTE and ALLOCATE of each declared domain,
        TRANSITION between them) are granted in full when the operator spawns it
        (``parent`` 0); a process's child receives only those its parent holds at that moment:
        a spawn attenuates rights, it never amplifies them. A restart from a K snapshot passes
        the ``rights`` the original process was created with and its ``saved`` state.
        """
        _require(name, (str, type(None)), "a process name", parent)
        _require(priority, int, "a process priority", parent)
        _require(deadline, (int, type(None)), "a process deadline", parent)
        if deadline is not None and not 0 <= deadline < 2**63:
            raise XdvError(
                f"a deadline is a logical time in [0, 2**63), got {deadline}",
                code=ErrorCode.DEADLINE_INVALID,
                where=f"process {parent}",
            )
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
        if len(self.processes) >= self.processes_max:
            raise XdvError(
                f"the kernel holds its limit of {self.processes_max} processes",
                code=ErrorCode.LIMIT_EXCEEDED,
                where="spawn",
            )
        domains = tuple(sorted({Domain.parse(domain) for domain in requested}))
        vhms = self.vhms
        vhm_id = vhms.vhm_of(parent) if vhm is None else vhm
        pid = self._next_pid
        vhms.admit(pid, vhm_id, parent)  # refused (nothing charged) when a processes quota is full
        self._next_pid += 1
        label = name or str(getattr(anchor_function, "__name__", "process"))
        info = ProcessInfo(pid, label, parent, priority, vhm_id, self.node, domains)
        process = _Process(info, None)
        process.deadline = deadline
        vhm_record = vhms.get(vhm_id)
        process.account = vhm_record.chain
        process.step_bounds = vhm_record.step_bounds
        process.origin = (anchor_function, tuple(args))
        process.saved = saved
        self.processes[pid] = process
        meta: dict[str, Any] = {
            "name": label,
            "parent": parent,
            "priority": priority,
            "domains": [domain.label for domain in domains],
            "anchor": qualified_name(anchor_function),
        }
        if deadline is not None:
            meta["deadline"] = deadline
        self._record(EventType.PROCESS_CREATE, Domain.ORCHESTRATION, pid, meta=meta)
        try:
            if Domain.K not in domains:
                raise XdvError(
                    f"process {label!r} declares {[d.label for d in domains]} but every "
                    "process needs a K anchor",
                    code=ErrorCode.PROCESS_INVALID,
                    where=f"process {pid}",
                )
            for domain in domains:
                self._domains.manager(domain)
            anchor = anchor_function(*args)
            if not (inspect.isgenerator(anchor) or inspect.iscoroutine(anchor)):
                raise XdvError(
                    f"the K anchor {qualified_name(anchor_function)} returned "
                    f"{type(anchor).__name__}; it must be a generator or coroutine function",
                    code=ErrorCode.PROCESS_INVALID,
                    where=f"process {pid}",
                )
            process.anchor = anchor
            if rights is None:
                defaults = [(Operation.EXECUTE, Domain.K, domain) for domain in domains]
                defaults += [(Operation.ALLOCATE, Domain.K, domain) for domain in domains]
                defaults += [
                    (Operation.TRANSITION, origin, target)
                    for origin in domains
                    for target in domains
                ]
                holds = self._capabilities.holds
                rights = [
                    (operation, origin, target)
                    for operation, origin, target in defaults
                    if parent == 0 or holds(parent, operation, origin, target)
                ]
            process.rights = tuple(rights)
            grant = self._capabilities.grant
            for operation, origin, target in process.rights:
                grant(pid, operation, origin, target)
            for domain in domains:
                self._domains.bind(process, domain)
            self.set_state(process, ProcessState.BOUND)
            self.set_state(process, ProcessState.INITIALIZED)
            self.set_state(process, ProcessState.ACTIVE)
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
            self.terminate(process, ExitStatus(pid, False, None, error.code.name, error.message))
            raise error from None
        self.enqueue(process, self._clock.now + 1)
        return pid

    def finish(self, process: _Process, value: Any) -> None:
        """End ``process`` with its anchor's return value (which must be trace-encodable)."""
        try:
            value = canonicalize(value, f"exit value of process {process.pid}")
        except XdvError as error:
            self.terminate(
                process, ExitStatus(process.pid, False, None, error.code.name, error.message)
            )
            return
        self.terminate(process, ExitStatus(process.pid, True, value))

    def fail(self, process: _Process, code: ErrorCode, message: str) -> None:
        """End ``process`` with a failure."""
        self.terminate(process, ExitStatus(process.pid, False, None, code.name, message))

    def terminate(self, process: _Process, status: ExitStatus) -> None:
        """End ``process``: record it, release what it holds and wake its waiters."""
        pid = process.pid
        code = ErrorCode.OK if status.ok else ErrorCode[status.code or "PROCESS_FAULT"]
        faults = self.faults
        if not status.ok:
            meta: dict[str, Any] = {"error": status.message}
            if faults is not None:
                meta.update(faults.describe(code))
            self._record(EventType.FAULT, Domain.ORCHESTRATION, pid, status=code, meta=meta)
        check_transition(pid, process.state, ProcessState.TERMINATED)
        process.state = ProcessState.TERMINATED
        process.ended_at = self._clock.now
        process.exit = status
        self.exits[pid] = status
        self.vhms.leave(pid)
        exit_meta: dict[str, Any] = {"ok": status.ok}
        if status.ok:
            exit_meta["value"] = status.value
        else:
            exit_meta["error"] = status.code
        self._record(EventType.PROCESS_EXIT, Domain.ORCHESTRATION, pid, status=code, meta=exit_meta)
        if process.admission is not None:
            self.admission.cancel(process)
        if process.queued and not self.shutting_down:
            # Ended while ready (its VHM was terminated, its node panicked, it was blocked with
            # a timeout): it leaves the ready queue now, so the queue holds only live processes.
            # At shutdown every survivor ends in turn and nothing runs again: left as it is.
            self.dequeue(process)
        self._contracts.release_all(process, "exit")
        for domain in sorted(process.bindings, reverse=True):
            self._domains.unbind(process, domain)
        self._capabilities.revoke_all(pid)
        anchor = process.anchor
        if anchor is not None:
            # An anchor's own cleanup code cannot undo its end; its failures are ignored.
            with contextlib.suppress(Exception):
                anchor.close()
        process.anchor = None
        process.delivery = None
        check_transition(pid, process.state, ProcessState.RELEASED)
        process.state = ProcessState.RELEASED
        self._record(
            EventType.PROCESS_STATE,
            Domain.ORCHESTRATION,
            pid,
            meta={"state": ProcessState.RELEASED.name},
        )
        if process.waiting_on is not None:
            # It ends while waiting: it is no longer a waiter of the process it waited on.
            target = self.processes[process.waiting_on]
            if process in target.waiters:  # at shutdown the target may have ended first
                target.waiters.remove(process)
            process.waiting_on = None
        if self.on_end is not None:
            self.on_end(process, self.shutting_down)
        waiters, process.waiters = process.waiters, []
        if self.shutting_down:
            return  # the run is over: nobody is woken, every survivor is ended in turn
        for waiter in waiters:
            waiter.waiting_on = None
            waiter.send_value = status
            self._record(EventType.WAKE, Domain.ORCHESTRATION, waiter.pid, meta={"by": pid})
            self.enqueue(waiter, self._clock.now + 1)
        if faults is not None:
            if status.ok:
                faults.forget(pid)
            else:
                faults.process_failed(process, code)

    def wait(self, process: _Process, pid: int) -> bool:
        """``process`` waits for ``pid`` to end; True if it already has (its status is sent)."""
        target = self.processes.get(pid)
        if target is None or target is process:
            raise XdvError(
                f"process {process.pid} cannot wait on process {pid}",
                code=ErrorCode.PROCESS_UNKNOWN if target is None else ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        if target.exit is not None:
            process.send_value = target.exit
            return True
        if len(target.waiters) >= self.waiters_max:
            raise XdvError(
                f"process {pid} already has {len(target.waiters)} waiters",
                code=ErrorCode.LIMIT_EXCEEDED,
                where=f"process {process.pid}",
            )
        target.waiters.append(process)
        process.waiting_on = pid
        self._record(EventType.WAIT, Domain.ORCHESTRATION, process.pid, meta={"on": pid})
        return False
