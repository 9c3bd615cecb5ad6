"""The invoker: prepares, performs and delivers domain operations.

An operation is checked (the rights it needs beyond EXECUTE), prepared by its manager (parsed and
validated once), recorded (DOMAIN_INVOKE), performed (``manager.execute``, or in inject replay
looked up in the recorded trace when delivered) and, at the logical point its latency fixes,
delivered: its outcome is recorded (DOMAIN_RESULT) and handed to the process.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Capability, Operation
from xdv.core._clock import LogicalClock
from xdv.core._domains import DomainTable
from xdv.core._interface import DomainManager, Invocation, ResourceContract
from xdv.core._process import _Process
from xdv.core._random import derive_seed
from xdv.core._recorder import Recorder
from xdv.core._vhm import VhmTable
from xdv.errors import (
    DomainError,
    ErrorCode,
    InvariantViolation,
    ReplayDivergence,
    XdvError,
    describe_exception,
)
from xdv.trace import Domain, EventType, canonicalize

if TYPE_CHECKING:
    from xdv.core._fault_handler import FaultHandler
    from xdv.core._process_table import ProcessTable

__all__ = ["FUTURE_POLL_SECONDS", "Invoker", "Pending", "RecordedOutcome"]

# How often a wait for a Future outcome looks at the interrupt flag (wall time: it only bounds
# how late an interrupt is seen, never what is recorded).
FUTURE_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class RecordedOutcome:
    """A domain outcome taken from a trace, fed back in inject-mode replay."""

    status: ErrorCode
    value: Any = None
    error: str | None = None


@dataclass(slots=True)
class Pending:
    """A domain outcome waiting for its logical delivery point.

    ``operation`` and ``args`` say what was invoked (a recovery runs it again); ``attempt``
    counts the retries and ``fallback`` the fallback terms tried so far; ``injected`` is the
    index of the fault-plan rule that replaced the outcome, if one did.
    """

    invocation: int
    domain: Domain
    capability: int
    contract: int
    status: ErrorCode
    value: Any
    error: str | None
    operation: str = ""
    args: tuple[Any, ...] = ()
    attempt: int = 0
    fallback: int = 0
    injected: int | None = None


_INJECTED = object()  # marks an outcome to be taken from the recorded trace when delivered
_RETRY = object()  # marks a retry waiting for its back-off to end (see FaultHandler)


class Invoker:
    """Runs domain operations for processes.

    Invariants: invocation ids increase by one per recorded DOMAIN_INVOKE; an outcome is
    recorded exactly once, when it is delivered (or, in a transition, when it is activated).
    """

    __slots__ = (
        "_capabilities",
        "_clock",
        "_domains",
        "_interrupted",
        "_next_invocation",
        "_record",
        "_replay_outcomes",
        "_seed",
        "_vhms",
        "faults",
        "table",
    )

    def __init__(
        self,
        seed: int,
        domains: DomainTable,
        capabilities: CapabilityCheck,
        recorder: Recorder,
        clock: LogicalClock,
        replay_outcomes: Mapping[int, RecordedOutcome] | None,
        interrupted: Callable[[], str | None],
        vhms: VhmTable,
    ) -> None:
        self._seed = seed
        self._vhms = vhms
        self._domains = domains
        self._capabilities = capabilities
        self._record = recorder.record
        self._clock = clock
        self._replay_outcomes = replay_outcomes
        self._interrupted = interrupted
        self._next_invocation = 1
        # Attached by the kernel after construction (they are built on the invoker).
        self.faults: FaultHandler | None = None
        self.table: ProcessTable | None = None

    def invoke(
        self,
        process: _Process,
        contract: ResourceContract,
        capability: Capability,
        operation: str,
        args: tuple[Any, ...],
        transition: int = 0,
    ) -> tuple[Pending, int]:
        """Check, prepare, record and perform one operation under ``contract``; return its
        pending outcome and its latency in logical steps."""
        domain = contract.domain
        for right in self._domains.rights(domain, operation):
            self._capabilities.check(process.pid, right, domain, Domain.K, contract.resource)
        manager = self._domains.manager(domain)
        latency = manager.latency(operation)
        prepared = manager.prepare(operation, args)
        if prepared.usage:
            vhm = self._vhms.get(process.vhm)
            self._vhms.charge(
                vhm,
                prepared.usage,
                f"process {process.pid}",
                pid=process.pid,
                call="Invoke",
                domain=domain,
            )
        number = self._next_invocation
        invocation = Invocation(
            id=number,
            pid=process.pid,
            domain=domain,
            contract=contract,
            operation=operation,
            args=args,
            seed=derive_seed(self._seed, ("invocation", number)),
            logical_time=self._clock.now,
            parsed=prepared.parsed,
        )
        self._next_invocation = number + 1
        meta = {
            "inv": number,
            "op": operation,
            "latency": latency,
            "seed": invocation.seed,
            **prepared.record,
        }
        if transition:
            meta["tr"] = transition
        self._record(
            EventType.DOMAIN_INVOKE,
            domain,
            process.pid,
            capability=capability.id,
            contract=contract.id,
            meta=meta,
        )
        return self._perform(manager, invocation), latency

    def _perform(self, manager: DomainManager, invocation: Invocation) -> Pending:
        """Run (or, in inject mode, look up) an invocation's outcome."""
        pending = Pending(
            invocation.id,
            invocation.domain,
            invocation.contract.capability,
            invocation.contract.id,
            ErrorCode.OK,
            None,
            None,
            invocation.operation,
            invocation.args,
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

    def deliver(self, process: _Process) -> bool:
        """Record a pending outcome at its delivery point and hand it to the process.

        False when fault handling took the process over instead (a recovery queued it again,
        or an escalation ended it): then its anchor must not run this step."""
        pending: Pending = process.delivery
        process.delivery = None
        if pending.value is _RETRY:
            return self._retry(process, pending)
        self.resolve(pending)
        faults = self.faults
        if faults is not None and faults.rules:
            faults.inject_outcome(process, pending)
        capabilities = self._capabilities
        if pending.domain in capabilities.frozen and pending.status is ErrorCode.OK:
            quarantined = pending.domain in capabilities.quarantined
            pending.status = (
                ErrorCode.DOMAIN_QUARANTINED if quarantined else ErrorCode.DOMAIN_FROZEN
            )
            pending.value = None
            pending.error = (
                f"domain {pending.domain.label} was "
                f"{'quarantined' if quarantined else 'frozen'} before the outcome arrived"
            )
        self.record_result(process, pending)
        if pending.status is ErrorCode.OK:
            process.send_value = pending.value
            return True
        if faults is not None and not faults.outcome_failed(process, pending):
            return False
        process.throw_error = DomainError(
            pending.error or pending.status.name,
            code=pending.status,
            where=f"invocation {pending.invocation}",
        )
        return True

    def retry_marker(self, pending: Pending, attempt: int) -> Pending:
        """The delivery item that runs ``pending``'s operation again when its back-off ends."""
        return Pending(
            pending.invocation,
            pending.domain,
            pending.capability,
            pending.contract,
            pending.status,
            _RETRY,
            pending.error,
            pending.operation,
            pending.args,
            attempt,
            pending.fallback,
        )

    def _retry(self, process: _Process, marker: Pending) -> bool:
        """A retry's back-off ended: invoke the operation again on the same contract."""
        contract = process.contracts.get(marker.contract)
        if contract is None:  # pragma: no cover - a blocked process cannot give its contract up
            process.throw_error = DomainError(
                f"contract {marker.contract} ended before its retry",
                code=ErrorCode.CONTRACT_INVALID,
                where=f"invocation {marker.invocation}",
            )
            return True
        return self.reinvoke(
            process, contract, marker, attempt=marker.attempt, fallback=marker.fallback
        )

    def reinvoke(
        self,
        process: _Process,
        contract: ResourceContract,
        previous: Pending,
        *,
        attempt: int,
        fallback: int,
    ) -> bool:
        """Invoke ``previous``'s operation again under ``contract`` (a recovery): like an
        ``Invoke`` system call, with its checks and records. False when the process waits for
        the new outcome; True when it got one (or the refusal) at once."""
        table = self.table
        if table is None:  # pragma: no cover - attached by the kernel
            raise InvariantViolation("the invoker is attached to the process table")
        try:
            capability = self._capabilities.check(
                process.pid, Operation.EXECUTE, Domain.K, contract.domain, contract.resource
            )
            pending, latency = self.invoke(
                process, contract, capability, previous.operation, previous.args
            )
        except XdvError as error:
            self._record(
                EventType.DOMAIN_INVOKE,
                contract.domain,
                process.pid,
                status=error.code,
                contract=contract.id,
                meta={"error": error.message, "call": "recovery"},
            )
            process.throw_error = error
            return True
        pending.attempt, pending.fallback = attempt, fallback
        process.delivery = pending
        if latency == 0:
            return self.deliver(process)
        table.enqueue(process, self._clock.now + latency)
        return False

    def resolve(self, pending: Pending) -> None:
        """Fix a pending outcome's value: look it up (inject replay) or wait for its future."""
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
            future = pending.value
            try:
                if not future.done() and not self._wait(future):
                    future.cancel()
                    pending.status, pending.value = ErrorCode.RUN_INTERRUPTED, None
                    pending.error = (
                        f"the run was interrupted ({self._interrupted()}) while waiting for "
                        f"invocation {pending.invocation}'s outcome"
                    )
                    return
                pending.value = canonicalize(future.result(), "outcome")
            except XdvError as error:
                pending.status, pending.value, pending.error = error.code, None, error.message
            except Exception as error:  # a provider failure becomes a typed domain fault
                pending.status, pending.value = ErrorCode.DOMAIN_FAULT, None
                pending.error = describe_exception(error)

    def _wait(self, future: Future[Any]) -> bool:
        """Wait for ``future``; False if the run is interrupted first. The wait polls, so an
        interrupt (a signal handler or another thread setting the flag) is seen promptly."""
        while self._interrupted() is None:
            done, _ = concurrent.futures.wait((future,), timeout=FUTURE_POLL_SECONDS)
            if done:
                return True
        return False

    def record_result(self, process: _Process, pending: Pending) -> None:
        """Record DOMAIN_RESULT for ``pending``: its value, or its error."""
        meta: dict[str, Any] = {"inv": pending.invocation}
        if pending.status is ErrorCode.OK:
            meta["value"] = pending.value
        else:
            meta["error"] = pending.error
        self._record(
            EventType.DOMAIN_RESULT,
            pending.domain,
            process.pid,
            status=pending.status,
            capability=pending.capability,
            contract=pending.contract,
            meta=meta,
        )
