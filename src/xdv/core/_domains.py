"""The domain table: the installed domain managers, and binding processes to their domains.

The kernel reaches a manager only through this table. It also holds what each manager offers
beyond the base :class:`~xdv.core.DomainManager` protocol (providers to attest, rights an
operation needs, a part in contract transfers), found once, when the manager is installed, as
declared protocols that mypy checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from xdv.core._capability import Operation
from xdv.core._clock import LogicalClock
from xdv.core._interface import (
    DomainManager,
    ResourceContract,
    ResourceRequest,
    SupportsProviders,
    SupportsRights,
    SupportsTransfer,
    SupportsUsage,
)
from xdv.core._process import _Process
from xdv.core._recorder import Recorder
from xdv.errors import DomainError, ErrorCode, XdvError
from xdv.trace import Domain, EventType, canonicalize

__all__ = ["DomainTable", "ProviderVerifier"]


class ProviderVerifier(Protocol):
    """What the kernel needs from an attestation verifier (xdv.security provides one)."""

    def verify(self, provider: Any, now: int) -> dict[str, Any]:
        """Judge ``provider`` at logical time ``now``: the trace record, or a typed refusal."""
        ...


class DomainTable:
    """The installed managers, one per domain; K is always there.

    Invariant: a process is bound to a domain exactly when the domain is in its ``bindings``,
    and then the domain's manager has initialized it and not yet terminated it.
    """

    __slots__ = (
        "_clock",
        "_known_rights",
        "_managers",
        "_providers",
        "_record",
        "_rights",
        "_transfers",
        "_usage",
        "attestation",
    )

    def __init__(
        self,
        managers: Iterable[DomainManager],
        recorder: Recorder,
        clock: LogicalClock,
        attestation: ProviderVerifier | None,
    ) -> None:
        self._managers: dict[Domain, DomainManager] = {}
        self._providers: dict[Domain, SupportsProviders] = {}
        self._rights: dict[Domain, SupportsRights] = {}
        self._transfers: dict[Domain, SupportsTransfer] = {}
        self._usage: dict[Domain, SupportsUsage] = {}
        self._known_rights: dict[tuple[Domain, str], tuple[Operation, ...]] = {}
        for manager in managers:
            domain = manager.domain
            if domain in self._managers:
                raise XdvError(
                    f"two managers for domain {domain.label}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where="kernel configuration",
                )
            self._managers[domain] = manager
            if isinstance(manager, SupportsProviders):
                self._providers[domain] = manager
            if isinstance(manager, SupportsRights):
                self._rights[domain] = manager
            if isinstance(manager, SupportsTransfer):
                self._transfers[domain] = manager
            if isinstance(manager, SupportsUsage):
                self._usage[domain] = manager
        if Domain.K not in self._managers:
            raise XdvError(
                "a kernel needs a K domain manager: every process has a K anchor",
                code=ErrorCode.INVALID_ARGUMENT,
                where="kernel configuration",
            )
        self._record = recorder.record
        self._clock = clock
        # Judges every provider of a domain when a process binds to it (see xdv.security).
        self.attestation = attestation

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

    def usage(self, request: ResourceRequest) -> Mapping[str, int | None]:
        """What the manager of ``request``'s domain says granting it would use (VHM quota
        names), or nothing for a manager without :class:`SupportsUsage`."""
        manager = self._usage.get(request.domain)
        return {} if manager is None else manager.usage(request)

    def attest(self, pid: int, domain: Domain) -> None:
        """Refuse to bind a domain whose providers are not (or no longer) attested."""
        owner = self._providers.get(domain)
        if owner is None:
            return
        for provider_id, provider in sorted(owner.providers().items()):
            try:
                if self.attestation is None:
                    # Fail closed: a kernel built without a verifier admits no provider.
                    raise XdvError(
                        f"provider {provider_id!r} cannot be admitted: this kernel has no "
                        "attestation verifier (the runtime layer injects xdv.security's)",
                        code=ErrorCode.ATTESTATION_FAILED,
                        where=f"domain {domain.label}",
                    )
                record = self.attestation.verify(provider, self._clock.now)
            except XdvError as error:
                self._record(
                    EventType.ATTESTATION,
                    domain,
                    pid,
                    status=error.code,
                    meta={"provider": provider_id, "error": error.message},
                )
                raise
            self._record(EventType.ATTESTATION, domain, pid, meta=record)

    def bind(self, process: _Process, domain: Domain) -> None:
        """Attest the domain's providers, initialize the binding and record DOMAIN_BIND."""
        manager = self.manager(domain)
        self.attest(process.pid, domain)
        detail = manager.init(process.pid)
        process.bindings.add(domain)
        self._record(EventType.DOMAIN_BIND, domain, process.pid, meta=dict(detail))

    def unbind(self, process: _Process, domain: Domain) -> None:
        """Tear the binding down and record DOMAIN_UNBIND."""
        self._managers[domain].terminate(process.pid)
        process.bindings.discard(domain)
        self._record(EventType.DOMAIN_UNBIND, domain, process.pid)

    def rights(self, domain: Domain, operation: str) -> tuple[Operation, ...]:
        """The rights ``operation`` needs beyond EXECUTE, as the domain's manager declares them
        (in a fixed order; remembered per operation, see :class:`SupportsRights`)."""
        known = self._known_rights.get((domain, operation))
        if known is not None:
            return known
        declarer = self._rights.get(domain)
        if declarer is None:
            return ()
        needed = []
        for name in sorted(declarer.rights(operation)):
            right = Operation.__members__.get(name)
            if right is None:
                raise DomainError(
                    f"the {domain.label} manager declares an unknown right {name!r} "
                    f"for {operation!r}",
                    code=ErrorCode.DOMAIN_FAULT,
                    where=f"domain {domain.label}",
                )
            needed.append(right)
        self._known_rights[(domain, operation)] = result = tuple(needed)
        return result

    def transfer(self, contract: ResourceContract, pid: int) -> Mapping[str, Any]:
        """The manager's part in handing ``contract`` to ``pid`` (trace-encodable facts)."""
        manager = self._transfers.get(contract.domain)
        if manager is None:
            return {}
        detail: Mapping[str, Any] = canonicalize(dict(manager.transfer(contract, pid)), "transfer")
        return detail

    def describe(self) -> dict[str, Any]:
        """Each manager's description, by domain label (recorded in RUN_START)."""
        return {
            domain.label: manager.describe() for domain, manager in sorted(self._managers.items())
        }

    def snapshot(self) -> dict[str, Any]:
        """Each manager's orchestration-visible state, by domain label."""
        return {
            domain.label: manager.snapshot() for domain, manager in sorted(self._managers.items())
        }
