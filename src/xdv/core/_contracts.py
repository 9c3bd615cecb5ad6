"""The contract book: resource contracts, from reservation to release or hand-over.

A process holds a domain resource only through a :class:`~xdv.core.ResourceContract` it
reserved (or was handed). The book numbers contracts in kernel order, asks the domain's manager
for the resources, checks the handle a process passes back, and records releases and transfers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from xdv.core._capability import Capability
from xdv.core._clock import LogicalClock
from xdv.core._domains import DomainTable
from xdv.core._interface import ResourceContract, ResourceRequest
from xdv.core._process import _Process
from xdv.core._recorder import Recorder
from xdv.core._vhm import VhmTable
from xdv.errors import ContractError, DomainError, ErrorCode, XdvError, safe_repr
from xdv.trace import Domain, EventType, canonicalize

__all__ = ["ContractBook"]


class ContractBook:
    """Reserves, checks, releases and transfers resource contracts.

    Invariants: contract ids increase by one per reservation and are never reused; a process's
    ``contracts`` holds exactly its live contracts, at most ``contracts_max`` of them.
    """

    __slots__ = (
        "_charged",
        "_clock",
        "_domains",
        "_next_contract",
        "_record",
        "_vhms",
        "contracts_max",
        "dead",
        "forwarded",
        "on_release",
        "requested",
    )

    def __init__(
        self,
        domains: DomainTable,
        recorder: Recorder,
        clock: LogicalClock,
        contracts_max: int,
        vhms: VhmTable,
    ) -> None:
        self._domains = domains
        self._vhms = vhms
        # What each live contract was charged to its holder's VHM (by contract id); the held
        # part goes back when the contract is released, all of it when a rollback withdraws it.
        self._charged: dict[int, Mapping[str, int | None]] = {}
        self._record = recorder.record
        self._clock = clock
        self.contracts_max = contracts_max
        self._next_contract = 1
        # What each live contract was reserved with (resource, amount, duration, terms asked
        # for), so a fallback can reserve the same with other terms.
        self.requested: dict[int, tuple[str, int, int | None, Mapping[str, Any]]] = {}
        # Fault containment: contracts it released (id → why), and the replacement a
        # fallback reserved for a released one (old id → new id). A handle of a released
        # contract follows its replacement; without one it is refused, and releasing it again
        # is accepted and changes nothing.
        self.dead: dict[int, tuple[str, Domain]] = {}
        self.forwarded: dict[int, int] = {}
        # Told of every release (holder, contract, whether the use is charged): the admission
        # queue grants what now fits. Set by the kernel.
        self.on_release: Callable[[_Process, ResourceContract, bool], None] | None = None

    def check_room(self, holder: _Process, caller: _Process) -> None:
        """LIMIT_EXCEEDED if ``holder`` already holds its limit of contracts."""
        if len(holder.contracts) >= self.contracts_max:
            raise XdvError(
                f"process {holder.pid} holds its limit of {self.contracts_max} contracts",
                code=ErrorCode.LIMIT_EXCEEDED,
                where=f"process {caller.pid}",
            )

    def reserve(
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
        """Ask ``domain``'s manager for resources and hand ``process`` a new contract.

        Records nothing: the caller records the reservation in its own context (a RESOURCE_RESERVE
        entry, or a transition's reservation phase).
        """
        if require_binding and domain not in process.bindings:
            raise DomainError(
                f"process {process.pid} is not bound to {domain.label}",
                code=ErrorCode.DOMAIN_NOT_BOUND,
                where=f"process {process.pid}",
            )
        self.check_room(process, process)
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
        now = self._clock.now
        request = ResourceRequest(process.pid, domain, resource, amount, duration, now, terms)
        manager = self._domains.manager(domain)
        vhm = self._vhms.get(process.vhm)
        usage = self._domains.usage(request) if vhm.chain else {}
        if usage:
            where = f"process {process.pid}"
            self._vhms.charge(vhm, usage, where, pid=process.pid, call="Reserve", domain=domain)
        try:
            grant = manager.request_resources(request)
        except BaseException:
            self._vhms.refund(vhm, usage, all_=True)
            raise
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
        self.requested[contract.id] = (resource, amount, duration, terms)
        if usage:
            self._charged[contract.id] = usage
        return contract

    def owned(
        self, process: _Process, handle: Any, *, check_expiry: bool = True
    ) -> ResourceContract:
        """The live contract of ``process`` that ``handle`` names, or a typed refusal."""
        if not isinstance(handle, ResourceContract):
            raise ContractError(
                f"expected a resource contract, got {type(handle).__name__}",
                where=f"process {process.pid}",
            )
        owned = process.contracts.get(handle.id)
        if owned is None and (self.dead or self.forwarded):
            owned = self._follow(process, handle)
        elif owned is not None and owned != handle:
            owned = None
        if owned is None:
            raise ContractError(
                f"contract {handle.id} is not a live contract of process {process.pid}",
                where=f"process {process.pid}",
            )
        now = self._clock.now
        if check_expiry and owned.expires_at is not None and now > owned.expires_at:
            raise ContractError(
                f"contract {owned.id} expired at logical time {owned.expires_at} (now {now})",
                code=ErrorCode.CONTRACT_EXPIRED,
                where=f"contract {owned.id}",
            )
        return owned

    def _follow(self, process: _Process, handle: ResourceContract) -> ResourceContract | None:
        """The live contract a released handle now stands for (its fallback replacement), or
        the refusal of a handle whose contract fault containment released; None otherwise."""
        if handle.pid != process.pid and handle.id not in self.forwarded:
            return None
        current = handle.id
        while current in self.forwarded:
            current = self.forwarded[current]
        live = process.contracts.get(current)
        if live is not None:
            return live
        if current in self.dead:
            why, domain = self.dead[current]
            raise ContractError(
                f"contract {handle.id} was invalidated and released by fault containment ({why})",
                # A Φ envelope's refusal keeps the Φ domain's own code for an invalid envelope.
                code=ErrorCode.PHI_ERR_ENVELOPE_INVALID
                if domain is Domain.PHI
                else ErrorCode.CONTRACT_INVALID,
                where=f"process {process.pid}",
            )
        return None

    def released_by_fault(self, process: _Process, handle: Any) -> bool:
        """Whether ``handle`` names a contract of ``process`` that fault containment released
        (with no live replacement): releasing it again changes nothing."""
        if not isinstance(handle, ResourceContract) or handle.id in process.contracts:
            return False
        current = handle.id
        while current in self.forwarded:
            current = self.forwarded[current]
        return current in self.dead and current not in process.contracts

    def kill(self, contract: ResourceContract, why: str) -> None:
        """Mark a contract as released by fault containment."""
        self.dead[contract.id] = (why, contract.domain)

    def forward(self, old: int, new: int) -> None:
        """Make handles of the released contract ``old`` stand for its replacement ``new``."""
        self.forwarded[old] = new

    def drop(self, process: _Process, contract: ResourceContract) -> None:
        """Forget a contract whose manager failed to release it (the fault handler escalates)."""
        process.contracts.pop(contract.id, None)
        self.requested.pop(contract.id, None)

    def release(self, process: _Process, contract: ResourceContract, why: str) -> None:
        """Return the contract's resources to its manager and record RESOURCE_RELEASE."""
        self._domains.manager(contract.domain).release(contract)
        del process.contracts[contract.id]
        self.requested.pop(contract.id, None)
        self._uncharge(process, contract.id, everything=False)
        self._record(
            EventType.RESOURCE_RELEASE,
            contract.domain,
            process.pid,
            capability=contract.capability,
            contract=contract.id,
            meta={"reason": why},
        )
        if self.on_release is not None:
            self.on_release(process, contract, True)

    def release_all(self, process: _Process, why: str) -> None:
        """Release every contract ``process`` holds, in id order."""
        for contract_id in sorted(process.contracts):
            self.release(process, process.contracts[contract_id], why)

    def withdraw(self, process: _Process, contract: ResourceContract) -> None:
        """Forget a contract without recording anything (a rolled-back reservation, whose
        rollback entry says what was undone): its VHM charge is undone too."""
        self._domains.manager(contract.domain).release(contract)
        del process.contracts[contract.id]
        self.requested.pop(contract.id, None)
        self._uncharge(process, contract.id, everything=True)
        if self.on_release is not None:
            self.on_release(process, contract, False)

    def _uncharge(self, process: _Process, contract_id: int, *, everything: bool) -> None:
        usage = self._charged.pop(contract_id, None)
        if usage:
            self._vhms.refund(self._vhms.get(process.vhm), usage, all_=everything)

    def transfer(
        self,
        process: _Process,
        owned: ResourceContract,
        target: _Process,
        capability: Capability,
    ) -> ResourceContract:
        """Move ``owned`` from ``process`` to ``target`` (both checked by the caller) and record
        RESOURCE_TRANSFER; the contract keeps its id, and the old handle is dead."""
        self.check_room(target, process)
        detail = self._domains.transfer(owned, target.pid)
        moved = dataclasses.replace(owned, pid=target.pid, capability=capability.id)
        del process.contracts[owned.id]
        target.contracts[moved.id] = moved
        self._record(
            EventType.RESOURCE_TRANSFER,
            owned.domain,
            process.pid,
            capability=capability.id,
            contract=moved.id,
            meta={"to": target.pid, **detail},
        )
        return moved
