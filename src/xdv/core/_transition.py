"""The atomic domain transition protocol.

Phases, in order (each a fault-injection site ``transition.<phase>``):

1. ``capability``: the process holds TRANSITION(source → target).
2. ``reservation``: the target's manager sets resources aside under a new contract.
3. ``contract``: the target's manager accepts the contract for the operation (latency bound).
4. ``binding``: the process is bound to the target domain if it was not already.
5. ``projection``: the source's manager projects the arguments out of the source domain.
6. ``activation``: the target's manager runs the operation; its outcome must be a success.
7. ``logging``: the commit is recorded.

Each completed phase is recorded (TRANSITION_PHASE) and registers an undo action. A failure at
any phase runs the undo actions in reverse, so the orchestration state is exactly what it was
before the transition began (the reservation is released, a new binding is removed), and
records one TRANSITION_ROLLBACK entry naming the failed phase, the undone phases and the error.
Nothing crosses to the process but the error. On commit the transition's reservation is
released (it existed for this activation) and the binding stays.

Activation runs the operation inside the transition; the process receives the outcome after the
operation's latency, like any invocation. Whatever a rolled-back activation computed is
discarded; a domain whose operations have physical side effects must make them idempotent or
report them through its own fault path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Operation
from xdv.core._contracts import ContractBook
from xdv.core._domains import DomainTable
from xdv.core._fault_handler import FaultHandler
from xdv.core._interface import ResourceContract
from xdv.core._invoker import Invoker
from xdv.core._process import _Process
from xdv.core._recorder import Recorder
from xdv.core._refusals import _Recorded, _require
from xdv.core._syscalls import Transition
from xdv.errors import DomainError, ErrorCode, InvariantViolation, XdvError, as_typed
from xdv.trace import Domain, EventType

__all__ = ["PHASES", "Transitions"]

PHASES = (
    "capability",
    "reservation",
    "contract",
    "binding",
    "projection",
    "activation",
    "logging",
)


class Transitions:
    """Runs transitions through the kernel's collaborators.

    Invariant: transition ids increase by one per transition begun (refused ones included).
    """

    __slots__ = (
        "_capabilities",
        "_contracts",
        "_domains",
        "_faults",
        "_invoker",
        "_next",
        "_recorder",
    )

    def __init__(
        self,
        *,
        recorder: Recorder,
        domains: DomainTable,
        capabilities: CapabilityCheck,
        contracts: ContractBook,
        invoker: Invoker,
        faults: FaultHandler,
    ) -> None:
        self._recorder = recorder
        self._domains = domains
        self._capabilities = capabilities
        self._contracts = contracts
        self._invoker = invoker
        self._faults = faults
        self._next = 1

    def run_transition(self, process: _Process, call: Transition) -> tuple[Any, int]:
        """Run one transition for ``process``; return (outcome value, delivery latency).

        Raises the kernel's internal "already recorded" wrapper around the typed error on
        failure.
        """
        transition_id = self._next
        self._next += 1
        pid = process.pid
        record = self._recorder.record
        faults = self._faults
        domains = self._domains
        undo: list[tuple[str, Callable[[], None]]] = []
        completed: list[str] = []
        phase = PHASES[0]
        try:
            source = Domain.parse(call.source)
            target = Domain.parse(call.target)
            _require(call.operation, str, "Transition's operation", pid)
            _require(call.args, (tuple, list), "Transition's arguments", pid)
            _require(call.resource, str, "Transition's resource", pid)
            _require(call.amount, int, "Transition's amount", pid)
            _require(call.latency_max, (int, type(None)), "Transition's latency_max", pid)
        except XdvError as error:
            record(
                EventType.TRANSITION_ROLLBACK,
                Domain.ORCHESTRATION,
                pid,
                status=error.code,
                meta={
                    "tr": transition_id,
                    "phase": phase,
                    "completed": [],
                    "undone": [],
                    "error": error.message,
                },
            )
            raise _Recorded(error) from None
        record(
            EventType.TRANSITION_BEGIN,
            target,
            pid,
            meta={
                "tr": transition_id,
                "from": source.label,
                "to": target.label,
                "op": call.operation,
            },
        )
        capability_id = 0
        contract: ResourceContract | None = None

        def done(name: str, **detail: Any) -> None:
            completed.append(name)
            record(
                EventType.TRANSITION_PHASE,
                target,
                pid,
                capability=capability_id,
                contract=contract.id if contract else 0,
                meta={"tr": transition_id, "phase": name, **detail},
            )

        try:
            phase = "capability"
            faults.visit("transition.capability", process, target)
            for domain in (source, target):
                domains.manager(domain)
            if source not in process.bindings:
                raise DomainError(
                    f"process {pid} is not bound to the source domain {source.label}",
                    code=ErrorCode.DOMAIN_NOT_BOUND,
                    where=f"transition {transition_id}",
                )
            capability = self._capabilities.check(
                pid, Operation.TRANSITION, source, target, call.resource
            )
            capability_id = capability.id
            done(phase)

            phase = "reservation"
            faults.visit("transition.reservation", process, target)
            target_manager = domains.manager(target)
            # The binding phase comes after the reservation, so it is not required here.
            contract = self._contracts.reserve(
                process,
                target,
                call.resource,
                call.amount,
                None,
                capability,
                require_binding=False,
                terms=call.terms,
            )
            reserved = contract
            undo.append(("reservation", lambda: self._contracts.withdraw(process, reserved)))
            done(phase, resource=contract.resource, amount=contract.amount)

            phase = "contract"
            faults.visit("transition.contract", process, target)
            target_manager.validate_contract(contract, call.operation, call.latency_max)
            done(phase)

            phase = "binding"
            faults.visit("transition.binding", process, target)
            newly_bound = target not in process.bindings
            if newly_bound:
                # The same attestation check as Bind: no provider is used unattested.
                domains.attest(pid, target)
                target_manager.init(pid)
                process.bindings.add(target)

                def unbind() -> None:
                    target_manager.terminate(pid)
                    process.bindings.discard(target)

                undo.append(("binding", unbind))
            done(phase, new=newly_bound)

            phase = "projection"
            faults.visit("transition.projection", process, target)
            projected = domains.manager(source).project(pid, tuple(call.args))
            done(phase)

            phase = "activation"
            faults.visit("transition.activation", process, target)
            invoker = self._invoker
            pending, latency = invoker.invoke(
                process,
                contract,
                capability,
                call.operation,
                projected,
                transition=transition_id,
            )
            invoker.resolve(pending)
            invoker.record_result(process, pending)
            if pending.status is not ErrorCode.OK:
                raise DomainError(
                    pending.error or pending.status.name,
                    code=pending.status,
                    where=f"transition {transition_id} activation",
                )
            done(phase)

            phase = "logging"
            faults.visit("transition.logging", process, target)
        except InvariantViolation:
            raise
        except Exception as raised:
            # A typed refusal keeps its code; anything else a phase raised (a manager's bug, a
            # provider failure) is a failed transition. Either way every completed phase is
            # undone.
            failure = as_typed(
                raised,
                ErrorCode.TRANSITION_FAILED,
                f"the {phase} phase failed",
                f"transition {transition_id}",
            )
            undone = []
            for name, action in reversed(undo):
                action()
                undone.append(name)
            if phase == "activation" and isinstance(raised, DomainError):
                # A Q measurement failure or Φ instability inside the transition: detected and
                # counted like any domain fault; the rollback below is its containment.
                faults.activation_failed(process, failure, target, transition_id)
            record(
                EventType.TRANSITION_ROLLBACK,
                target,
                pid,
                status=failure.code,
                capability=capability_id,
                contract=contract.id if contract else 0,
                meta={
                    "tr": transition_id,
                    "phase": phase,
                    "completed": completed,
                    "undone": undone,
                    "error": failure.message,
                },
            )
            raise _Recorded(failure) from None
        record(
            EventType.TRANSITION_COMMIT,
            target,
            pid,
            capability=capability_id,
            contract=contract.id,
            meta={"tr": transition_id, "inv": pending.invocation},
        )
        self._contracts.release(process, contract, "transition committed")
        return pending.value, latency
