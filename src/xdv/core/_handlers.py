"""System-call handlers: what the kernel does for each call a K anchor yields.

Each handler takes the calling process and its call, does the work through the kernel's
collaborators (which record every decision), and returns True when the process keeps the
processor for its next step, False when it left it (blocked, slept, yielded or ended).
Operating errors are raised as typed errors; the kernel loop records the failure
(:meth:`SystemCalls.record_failure`) and throws the error into the anchor. ``Sleep`` is handled
inline by the loop; only a malformed one reaches its handler here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xdv.core._admission import SHORTAGES, AdmissionQueue
from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Operation
from xdv.core._channels import ChannelTable
from xdv.core._clock import LogicalClock
from xdv.core._contracts import ContractBook
from xdv.core._domains import DomainTable
from xdv.core._fault_handler import FaultHandler
from xdv.core._invoker import Invoker
from xdv.core._lifecycle import ProcessState
from xdv.core._process import _Process
from xdv.core._process_table import ProcessTable
from xdv.core._random import RandomStream
from xdv.core._recorder import Recorder
from xdv.core._refusals import _Recorded, _require
from xdv.core._syscalls import (
    Attenuate,
    Bind,
    Channel,
    Close,
    Contracts,
    Delegate,
    Emit,
    Exit,
    Freeze,
    Invoke,
    LoadState,
    Now,
    Random,
    Receive,
    Release,
    Reserve,
    Resume,
    Revoke,
    SaveState,
    Select,
    Self,
    Send,
    Share,
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
from xdv.core._transition import Transitions
from xdv.errors import ContractError, DomainError, ErrorCode, XdvError, safe_repr
from xdv.trace import Domain, EventType, canonicalize

__all__ = ["Handler", "SystemCalls"]

Handler = Callable[[_Process, Any], bool]

# The event type used to record a failed system call.
_FAILURE_EVENT: dict[type[Syscall], EventType] = {
    Emit: EventType.EFFECT,
    Sleep: EventType.SLEEP,
    Spawn: EventType.PROCESS_CREATE,
    Wait: EventType.WAIT,
    Bind: EventType.DOMAIN_BIND,
    Unbind: EventType.DOMAIN_UNBIND,
    Reserve: EventType.RESOURCE_RESERVE,
    Release: EventType.RESOURCE_RELEASE,
    Invoke: EventType.DOMAIN_INVOKE,
    Suspend: EventType.PROCESS_STATE,
    Resume: EventType.PROCESS_STATE,
    Revoke: EventType.CAPABILITY_REVOKE,
    Attenuate: EventType.CAPABILITY_DENY,
    Delegate: EventType.CAPABILITY_DENY,
    Freeze: EventType.DOMAIN_FREEZE,
    Transfer: EventType.RESOURCE_TRANSFER,
    Channel: EventType.CHANNEL_CREATE,
    Send: EventType.CHANNEL_SEND,
    Receive: EventType.CHANNEL_RECEIVE,
    Select: EventType.CHANNEL_SELECT,
    Close: EventType.CHANNEL_CLOSE,
    Share: EventType.CHANNEL_SHARE,
    SaveState: EventType.STATE_SAVE,
}


class SystemCalls:
    """The handlers of every system call, by call type (:attr:`handlers`)."""

    def __init__(
        self,
        *,
        seed: int,
        sleep_ticks_max: int,
        recorder: Recorder,
        clock: LogicalClock,
        table: ProcessTable,
        domains: DomainTable,
        capabilities: CapabilityCheck,
        contracts: ContractBook,
        invoker: Invoker,
        transitions: Transitions,
        faults: FaultHandler,
        channels: ChannelTable,
        admission: AdmissionQueue,
    ) -> None:
        self._seed = seed
        self.admission = admission
        self._sleep_ticks_max = sleep_ticks_max
        self._recorder = recorder
        self._clock = clock
        self._table = table
        self._domains = domains
        self._capabilities = capabilities
        self._contracts = contracts
        self._invoker = invoker
        self._transitions = transitions
        self._faults = faults
        self._channels = channels
        self.handlers: dict[type[Syscall], Handler] = {
            Emit: self._emit,
            Sleep: self._sleep_refused,
            Yield: self._yield,
            Now: self._now,
            Self: self._self,
            Random: self._random,
            Spawn: self._spawn,
            Wait: self._wait,
            Exit: self._exit,
            Bind: self._bind,
            Unbind: self._unbind,
            Reserve: self._reserve,
            Release: self._release,
            Invoke: self._invoke,
            Transition: self._transition,
            Suspend: self._suspend,
            Resume: self._resume,
            Revoke: self._revoke,
            Attenuate: self._attenuate,
            Delegate: self._delegate,
            Freeze: self._freeze,
            Transfer: self._transfer,
            Contracts: self._contracts_held,
            Channel: self._channel,
            Send: self._send,
            Receive: self._receive,
            Select: self._select,
            Close: self._close,
            Share: self._share,
            SaveState: self._save_state,
            LoadState: self._load_state,
        }

    def handler_for(self, call: Any) -> Handler | None:
        """The handler of ``call``'s type, or of its nearest system-call base class."""
        handler = self.handlers.get(type(call))
        if handler is not None:
            return handler
        for kind in type(call).__mro__[1:]:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None

    def record_failure(self, process: _Process, call: Any, error: XdvError) -> None:
        """Record a refused call: the call's own event type (FAULT if it has none), with the
        error code in the status field."""
        event_type = next(
            (_FAILURE_EVENT[kind] for kind in type(call).__mro__ if kind in _FAILURE_EVENT),
            EventType.FAULT,
        )
        domain = getattr(call, "domain", None)
        try:
            parsed = Domain.parse(domain) if domain is not None else Domain.K
        except XdvError:
            parsed = Domain.K
        self._recorder.record(
            event_type,
            parsed,
            process.pid,
            status=error.code,
            meta={"error": error.message, "call": type(call).__name__},
        )

    # ------------------------------------------------------------------ the process itself

    def _emit(self, process: _Process, call: Emit) -> bool:
        self._recorder.record_effect(process.pid, call.value)
        return True

    def _sleep_refused(self, process: _Process, call: Sleep) -> bool:
        """Only malformed Sleeps get here: the kernel loop handles the valid ones inline."""
        raise XdvError(
            f"Sleep takes 0 to {self._sleep_ticks_max} ticks, got {safe_repr(call.ticks)}",
            code=ErrorCode.SYSCALL_INVALID,
            where=f"process {process.pid}",
        )

    def _yield(self, process: _Process, call: Yield) -> bool:
        self._recorder.record(EventType.YIELD, Domain.ORCHESTRATION, process.pid)
        self._table.enqueue(process, self._clock.now + 1)
        return False

    def _now(self, process: _Process, call: Now) -> bool:
        process.send_value = self._clock.now
        return True

    def _self(self, process: _Process, call: Self) -> bool:
        process.send_value = process.info
        return True

    def _random(self, process: _Process, call: Random) -> bool:
        _require(call.name, str, "a random stream name", process.pid)
        stream = process.streams.get(call.name)
        if stream is None:
            stream = RandomStream(self._seed, ("process", process.pid, call.name))
            process.streams[call.name] = stream
        process.send_value = stream
        return True

    def _save_state(self, process: _Process, call: SaveState) -> bool:
        try:
            state = canonicalize(call.state, f"state saved by process {process.pid}")
        except XdvError as error:
            raise XdvError(
                f"SaveState takes trace-encodable K data: {error.message}",
                code=ErrorCode.VHM_SNAPSHOT_INVALID,
                where=f"process {process.pid}",
            ) from None
        process.saved = state
        self._recorder.record(EventType.STATE_SAVE, Domain.K, process.pid, meta={"state": state})
        return True

    def _load_state(self, process: _Process, call: LoadState) -> bool:
        process.send_value = process.saved
        return True

    def _exit(self, process: _Process, call: Exit) -> bool:
        self._table.finish(process, call.value)
        return False

    # ------------------------------------------------------------------ other processes

    def _spawn(self, process: _Process, call: Spawn) -> bool:
        table = self._table
        count_before = len(table.processes)
        try:
            child = table.create(
                call.anchor,
                tuple(call.args),
                call.name,
                call.priority,
                tuple(call.domains),
                parent=process.pid,
                deadline=call.deadline,
            )
        except XdvError as error:
            if len(table.processes) != count_before:
                raise _Recorded(error) from None  # the child's creation and end are recorded
            raise  # refused before a child existed: the kernel loop records the failure
        process.send_value = child
        return True

    def _isolated(self, process: _Process, pid: int, what: str) -> None:
        """Refuse (VHM_ISOLATION) touching an existing process of another VHM."""
        if pid in self._table.processes:
            self._table.vhms.check_access(process.pid, pid, what)

    def _wait(self, process: _Process, call: Wait) -> bool:
        _require(call.pid, int, "Wait's pid", process.pid)
        self._isolated(process, call.pid, "wait on")
        return self._table.wait(process, call.pid)

    def _suspend(self, process: _Process, call: Suspend) -> bool:
        _require(call.pid, int, "a child's pid", process.pid)
        self._isolated(process, call.pid, "suspend")
        target = self._table.child(process, call.pid)
        self._table.set_state(target, ProcessState.SUSPENDED)
        return True

    def _resume(self, process: _Process, call: Resume) -> bool:
        _require(call.pid, int, "a child's pid", process.pid)
        self._isolated(process, call.pid, "resume")
        target = self._table.child(process, call.pid)
        self._table.set_state(target, ProcessState.ACTIVE)
        if target.parked:
            target.parked = False
            self._table.enqueue(target, self._clock.now + 1)
        elif target.admission is not None:
            # It was passed over while suspended: what fits now is granted now.
            self.admission.grant(target.admission.domain)
        return True

    # ------------------------------------------------------------------ domains and resources

    def _bind(self, process: _Process, call: Bind) -> bool:
        domain = Domain.parse(call.domain)
        self._domains.manager(domain)
        if domain in process.bindings:
            raise XdvError(
                f"process {process.pid} is already bound to {domain.label}",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        self._capabilities.check(process.pid, Operation.ALLOCATE, Domain.K, domain)
        self._domains.bind(process, domain)
        return True

    def _unbind(self, process: _Process, call: Unbind) -> bool:
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
        self._domains.unbind(process, domain)
        return True

    def _reserve(self, process: _Process, call: Reserve) -> bool:
        _require(call.resource, str, "Reserve's resource", process.pid)
        domain = Domain.parse(call.domain)
        self._domains.manager(domain)
        capability = self._capabilities.check(
            process.pid, Operation.ALLOCATE, Domain.K, domain, call.resource
        )
        self._faults.visit("reserve", process, domain)
        _require(call.wait, bool, "Reserve's wait", process.pid)
        _require(call.resolve, bool, "Reserve's resolve", process.pid)
        _require(call.deadline, (int, type(None)), "Reserve's deadline", process.pid)
        deadline = call.deadline
        now = self._clock.now
        if deadline is not None and not now < deadline < 2**63:
            raise XdvError(
                f"an admission deadline is a logical time after now (L={now}), got {deadline}",
                code=ErrorCode.DEADLINE_INVALID,
                where=f"process {process.pid}",
            )
        wait = call.wait or deadline is not None
        admission = self.admission
        if wait and admission.must_queue(domain):
            self._contracts.check_room(process, process)
            admission.wait(
                process,
                domain,
                call.resource,
                call.amount,
                call.duration,
                call.terms,
                call.resolve,
                deadline,
                "queued behind the head of the admission queue",
            )
            return False
        try:
            contract = admission.reserve_now(
                process,
                domain,
                call.resource,
                call.amount,
                call.duration,
                call.terms,
                call.resolve,
                capability,
            )
        except XdvError as error:
            if not wait or error.code not in SHORTAGES:
                raise
            admission.wait(
                process,
                domain,
                call.resource,
                call.amount,
                call.duration,
                call.terms,
                call.resolve,
                deadline,
                error.message,
            )
            return False
        self._recorder.record(
            EventType.RESOURCE_RESERVE,
            domain,
            process.pid,
            capability=capability.id,
            contract=contract.id,
            meta=contract.to_record(),
        )
        process.send_value = contract
        return True

    def _release(self, process: _Process, call: Release) -> bool:
        if self._contracts.dead and self._contracts.released_by_fault(process, call.contract):
            return True  # fault containment released it already: nothing left to do
        # An expired contract can still be released: only using it is refused.
        owned = self._contracts.owned(process, call.contract, check_expiry=False)
        self._contracts.release(process, owned, "released")
        return True

    def _transfer(self, process: _Process, call: Transfer) -> bool:
        _require(call.to, int, "Transfer's receiver", process.pid)
        owned = self._contracts.owned(process, call.contract)
        self._isolated(process, call.to, "transfer a contract to")
        target = self._table.get(call.to)
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
        check = self._capabilities.check
        check(process.pid, Operation.ALLOCATE, Domain.K, domain, owned.resource)
        capability = check(target.pid, Operation.ALLOCATE, Domain.K, domain, owned.resource)
        self._contracts.transfer(process, owned, target, capability)
        return True

    def _contracts_held(self, process: _Process, call: Contracts) -> bool:
        domain = None if call.domain is None else Domain.parse(call.domain)
        process.send_value = [
            contract
            for _, contract in sorted(process.contracts.items())
            if domain is None or contract.domain is domain
        ]
        return True

    def _invoke(self, process: _Process, call: Invoke) -> bool:
        _require(call.operation, str, "Invoke's operation", process.pid)
        _require(call.args, (tuple, list), "Invoke's arguments", process.pid)
        contract = self._contracts.owned(process, call.contract)
        capability = self._capabilities.check(
            process.pid, Operation.EXECUTE, Domain.K, contract.domain, contract.resource
        )
        self._faults.visit("invoke", process, contract.domain)
        pending, latency = self._invoker.invoke(
            process, contract, capability, call.operation, tuple(call.args)
        )
        process.delivery = pending
        if latency == 0:
            return self._invoker.deliver(process)
        self._table.enqueue(process, self._clock.now + latency)
        return False

    def _transition(self, process: _Process, call: Transition) -> bool:
        value, latency = self._transitions.run_transition(process, call)
        process.send_value = value
        if latency == 0:
            return True
        self._table.enqueue(process, self._clock.now + latency)
        return False

    # ------------------------------------------------------------------ channels

    def _channel(self, process: _Process, call: Channel) -> bool:
        channels = self._channels
        channel = channels.open(
            process.pid,
            process.info.vhm,
            call.capacity,
            call.name,
            call.source,
            call.target,
            declared=False,
        )
        channels.grant(channel, process.pid, send=True, receive=True)
        process.send_value = channel.id
        return True

    def _send(self, process: _Process, call: Send) -> bool:
        return self._channels.send(process, call.channel, call.payload, call.timeout)

    def _receive(self, process: _Process, call: Receive) -> bool:
        return self._channels.receive(process, call.channel, call.timeout, "Receive")

    def _select(self, process: _Process, call: Select) -> bool:
        return self._channels.receive(process, call.channels, call.timeout, "Select")

    def _close(self, process: _Process, call: Close) -> bool:
        self._channels.close(process, call.channel)
        return True

    def _share(self, process: _Process, call: Share) -> bool:
        process.send_value = self._channels.share(
            process, call.channel, call.to, call.send, call.receive
        )
        return True

    # ------------------------------------------------------------------ capabilities

    def _revoke(self, process: _Process, call: Revoke) -> bool:
        _require(call.capability, int, "Revoke's capability id", process.pid)
        self._capabilities.drop(process.pid, call.capability)
        return True

    def _derive(
        self, process: _Process, capability_id: Any, to: int, scope: Any, expires_at: Any
    ) -> bool:
        _require(capability_id, int, "the capability id", process.pid)
        if expires_at is not None:
            _require(expires_at, int, "the expiry", process.pid)
        capabilities = self._capabilities
        capabilities.require_derive(process.pid)
        self._isolated(process, to, "delegate a capability to")
        target = self._table.get(to)
        if target is None or target.state in (ProcessState.TERMINATED, ProcessState.RELEASED):
            raise XdvError(
                f"process {to} is not a live process",
                code=ErrorCode.PROCESS_UNKNOWN,
                where=f"process {process.pid}",
            )
        capability = capabilities.derive(process.pid, capability_id, to, scope, expires_at)
        process.send_value = capability.id
        return True

    def _attenuate(self, process: _Process, call: Attenuate) -> bool:
        return self._derive(process, call.capability, process.pid, call.scope, call.expires_at)

    def _delegate(self, process: _Process, call: Delegate) -> bool:
        _require(call.to, int, "Delegate's process id", process.pid)
        return self._derive(process, call.capability, call.to, call.scope, call.expires_at)

    def _freeze(self, process: _Process, call: Freeze) -> bool:
        _require(call.reason, str, "Freeze's reason", process.pid)
        domain = Domain.parse(call.domain)
        self._capabilities.check(process.pid, Operation.FREEZE, Domain.K, domain)
        self._capabilities.freeze(domain, call.reason, process.pid, self._table.processes)
        return True
