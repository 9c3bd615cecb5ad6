"""The Domain Abstraction Layer: the one interface every domain manager implements.

The kernel is the only caller of a manager. A manager never receives a reference to the kernel
or to another manager, so managers cannot call each other: every cross-domain movement goes
through the core, which checks capabilities, records the decision and orders it.

A manager must be deterministic at this interface: given the same calls in the same order with
the same arguments (including :attr:`Invocation.seed`), it returns the same results and raises
the same errors. Domain-native randomness is drawn only from that seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from xdv.trace import Domain

__all__ = [
    "DomainManager",
    "Invocation",
    "Outcome",
    "PreparedCall",
    "ResourceContract",
    "ResourceGrant",
    "ResourceRequest",
    "SupportsProviders",
    "SupportsRights",
    "SupportsTransfer",
    "SupportsUsage",
]


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """A process's explicit request for a domain resource."""

    pid: int
    domain: Domain
    resource: str
    amount: int
    duration: int | None
    logical_time: int
    terms: Mapping[str, Any] = field(default_factory=dict)
    """Domain-specific terms asked for (canonical, trace-encodable); empty for plain pools."""


@dataclass(frozen=True, slots=True)
class ResourceGrant:
    """A manager's answer to a :class:`ResourceRequest`: what it set aside.

    ``detail`` becomes the contract's :attr:`ResourceContract.terms`: the terms the manager
    actually granted (it must be trace-encodable; it is recorded in RESOURCE_RESERVE).
    """

    resource: str
    amount: int
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResourceContract:
    """A reservation held by a process: the handle it passes back to use the resource."""

    id: int
    pid: int
    domain: Domain
    resource: str
    amount: int
    issued_at: int
    expires_at: int | None
    capability: int
    terms: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The domain-specific terms the manager granted (from :attr:`ResourceGrant.detail`)."""

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "domain": self.domain.label,
            "resource": self.resource,
            "amount": self.amount,
        }
        if self.expires_at is not None:
            record["expires"] = self.expires_at
        if self.terms:
            record["terms"] = dict(self.terms)
        return record


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A domain operation's arguments after its manager parsed and validated them, once.

    ``record`` is what the DOMAIN_INVOKE entry records about the inputs (trace-encodable, never
    raw Q/Φ state); ``parsed`` is the manager's own validated form, handed back to it in
    :attr:`Invocation.parsed` so :meth:`DomainManager.execute` never parses again.
    """

    operation: str
    record: Mapping[str, Any]
    parsed: Any = None
    usage: Mapping[str, int] = field(default_factory=dict)
    """What running it uses, by VHM quota name (Q: ``shots``): charged to the invoking
    process's VHM before the operation is recorded, and refused over a quota."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """One domain operation, as the kernel hands it to a manager.

    ``args`` are the arguments as the process passed them; ``parsed`` is what the manager's
    :meth:`~DomainManager.prepare` made of them.
    """

    id: int
    pid: int
    domain: Domain
    contract: ResourceContract
    operation: str
    args: tuple[Any, ...]
    seed: int
    logical_time: int
    parsed: Any = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an operation produced.

    ``value`` enters the trace, so it must be trace-encodable (and it is all a replay in inject
    mode needs). It may also be a :class:`concurrent.futures.Future` resolving to such a value:
    the kernel waits for it at the logical point the operation's latency fixes, never earlier
    and never later, so physical timing cannot change the order of events.
    """

    value: Any
    detail: Mapping[str, Any] = field(default_factory=dict)


OutcomeValue = Any | Future[Any]


@runtime_checkable
class DomainManager(Protocol):
    """The DAL contract (init, request resources, execute, project, terminate, report fault)."""

    domain: Domain

    def describe(self) -> dict[str, Any]:
        """Trace-encodable description of the manager and its resources (for RUN_START)."""
        ...

    def init(self, pid: int) -> dict[str, Any]:
        """Initialize ``pid``'s binding to this domain; return metadata to record."""
        ...

    def request_resources(self, request: ResourceRequest) -> ResourceGrant:
        """Set resources aside or raise :class:`~xdv.errors.ResourceError`."""
        ...

    def release(self, contract: ResourceContract) -> None:
        """Return a contract's resources."""
        ...

    def latency(self, operation: str) -> int:
        """Logical steps between invoking ``operation`` and delivering its outcome.

        Raise :class:`~xdv.errors.DomainError` (OPERATION_UNSUPPORTED) for an unknown operation.
        """
        ...

    def validate_contract(
        self, contract: ResourceContract, operation: str, latency_max: int | None
    ) -> None:
        """Raise :class:`~xdv.errors.ContractError` if ``operation`` cannot run under it."""
        ...

    def prepare(self, operation: str, args: tuple[Any, ...]) -> PreparedCall:
        """Parse and validate an invocation's arguments and describe them for the trace.

        Called once, before anything is recorded; a refusal raises a typed error and changes
        nothing. The kernel passes :attr:`PreparedCall.parsed` back in :attr:`Invocation.parsed`.
        """
        ...

    def execute(self, invocation: Invocation) -> Outcome:
        """Run a prepared operation (or start it and return a future in :attr:`Outcome.value`).

        Uses :attr:`Invocation.parsed`; never parses :attr:`Invocation.args` again."""
        ...

    def project(self, pid: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Project data out of this domain for a transition (the only way data leaves it)."""
        ...

    def terminate(self, pid: int) -> None:
        """Tear down ``pid``'s binding; its contracts have already been released."""
        ...

    def report_fault(self, pid: int, error: BaseException) -> dict[str, Any]:
        """Describe a fault of this domain for the trace (deterministic, encodable)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The manager's orchestration-visible state (no raw Q/Φ state), for audits and tests."""
        ...


# Optional manager capabilities. A manager implements the base protocol above and, where its
# domain needs them, any of these; the kernel tests for each once, when the manager is installed,
# and mypy checks every call through them.


@runtime_checkable
class SupportsProviders(Protocol):
    """A manager whose domain runs on providers: a process may bind to the domain only after
    every provider is attested (see :mod:`xdv.security`)."""

    def providers(self) -> Mapping[str, Any]:
        """The providers by id, each judged by the kernel's attestation verifier."""
        ...


@runtime_checkable
class SupportsRights(Protocol):
    """A manager whose operations need rights beyond EXECUTE (a Q job that measures needs
    MEASURE(Q→K), a Φ readout PROJECT(Φ→K))."""

    def rights(self, operation: str) -> Set[str]:
        """The :class:`~xdv.core.Operation` names ``operation`` needs, besides EXECUTE.

        The answer depends on the operation alone: the kernel asks once per operation and
        remembers it."""
        ...


@runtime_checkable
class SupportsTransfer(Protocol):
    """A manager that takes part in a contract's hand-over to another process (the Q manager
    moves the container behind it); without it a transfer is the kernel's bookkeeping alone."""

    def transfer(self, contract: ResourceContract, pid: int) -> Mapping[str, Any]:
        """Hand ``contract`` (still owned by its current holder) to process ``pid``, or raise a
        typed refusal; return trace-encodable facts for the RESOURCE_TRANSFER entry."""
        ...


@runtime_checkable
class SupportsUsage(Protocol):
    """A manager whose reservations count against VHM quotas (Q qubits and qubit·time, Φ
    envelopes and window steps). The kernel asks before the manager grants anything and
    charges the answer to the reserving process's VHM and its ancestors; the core knows the
    quota names (:data:`~xdv.core.QUOTA_NAMES`), never a domain's rules."""

    def usage(self, request: ResourceRequest) -> Mapping[str, int | None]:
        """What granting ``request`` would use, by quota name; ``None`` for an amount with no
        bound (a reservation without a duration has no qubit·time), which a VHM bounding that
        quota refuses. Must not change anything; a malformed request may answer anything, since
        :meth:`DomainManager.request_resources` refuses it afterwards."""
        ...
