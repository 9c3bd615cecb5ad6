"""The minimal capability table of the core.

Every domain operation the kernel performs for a process is checked here first. A capability is
(holder, operation, origin domain, target domain, optional logical-time expiry); ids are handed
out in order, so the same run grants the same ids. This table is deliberately small: the security
layer replaces it with signed, attenuable tokens behind the same :class:`CapabilityAuthority`
protocol, without changing the trace format (capability ids stay integers in the entry header).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from xdv.errors import ErrorCode, UnauthorizedError
from xdv.trace import Domain

__all__ = [
    "Capability",
    "CapabilityAuthority",
    "CapabilityTable",
    "DerivedCapability",
    "Operation",
    "SupportsDerive",
    "SupportsFreeze",
]


class Operation(enum.IntEnum):
    """What a capability permits. Names appear in capability entries' metadata."""

    EXECUTE = 1
    ALLOCATE = 2
    MEASURE = 3
    PROJECT = 4
    TRANSITION = 5
    FREEZE = 6
    SEND = 7
    RECEIVE = 8


@dataclass(frozen=True, slots=True)
class Capability:
    """An authority held by one process."""

    id: int
    holder: int
    operation: Operation
    origin: Domain
    target: Domain
    issued_at: int
    expires_at: int | None = None
    detail: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    """Extra trace-encodable facts an authority records with the grant (a signed token's
    scope and parent, for instance); merged into :meth:`to_record`."""
    resource: str | None = None
    """The one resource the capability is limited to (a channel's name, say), or None for
    the whole domain."""

    def describe(self) -> str:
        return (
            f"{self.operation.name}({self.origin.label}→{self.target.label}) "
            f"#{self.id} held by process {self.holder}"
        )

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "op": self.operation.name,
            "from": self.origin.label,
            "to": self.target.label,
        }
        if self.expires_at is not None:
            record["expires"] = self.expires_at
        if self.resource is not None:
            record["resource"] = self.resource
        if self.detail:
            record.update(self.detail)
        return record


class CapabilityAuthority(Protocol):
    """What the kernel needs from a capability system."""

    def grant(
        self,
        holder: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        now: int,
        expires_at: int | None = None,
        resource: str | None = None,
    ) -> Capability:
        """Grant ``holder`` the right on ``resource`` only (a channel's name, say), or on
        the whole domain when ``resource`` is None."""
        ...

    def check(
        self,
        holder: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        now: int,
        resource: str | None = None,
    ) -> Capability:
        """The capability that authorizes the request, or a typed refusal. ``resource`` names
        the resource concerned, or None for the domain as a whole. Must not mutate anything
        when it refuses."""
        ...

    def revoke(self, capability_id: int) -> list[Capability]:
        """Revoke a capability and everything derived from it; the revoked root comes first."""
        ...

    def held_by(self, holder: int) -> list[Capability]: ...

    def snapshot(self) -> list[dict[str, Any]]: ...


class DerivedCapability(Protocol):
    """What an authority's :meth:`SupportsDerive.derive` returns (a signed token, say)."""

    def as_capability(self) -> Capability:
        """The capability the kernel records and checks."""
        ...


@runtime_checkable
class SupportsDerive(Protocol):
    """An authority that derives narrower capabilities (``Attenuate`` and ``Delegate``).

    Without it those system calls are refused with OPERATION_UNSUPPORTED.
    """

    def derive(
        self,
        parent_id: int,
        presenter: int,
        now: int,
        *,
        subject: int | None = None,
        scope: Any = None,
        expires_at: int | None = None,
    ) -> DerivedCapability:
        """Derive from ``parent_id`` (held by ``presenter``) a capability for ``subject``,
        within ``scope`` (a scope record, or None to keep the parent's) and no later than
        ``expires_at``; raise a typed refusal if it would widen anything."""
        ...


@runtime_checkable
class SupportsFreeze(Protocol):
    """An authority that freezes a domain itself (and refuses it from then on).

    Without it the kernel revokes every capability touching the domain one by one.
    """

    def freeze(self, domain: Domain) -> list[Capability]:
        """Revoke every capability touching ``domain``; return them in revocation order."""
        ...


class CapabilityTable:
    """An in-memory, deterministic :class:`CapabilityAuthority`.

    Invariant: ids increase by one per grant and are never reused, even after revocation.
    """

    def __init__(self) -> None:
        self._next_id = 1
        self._live: dict[int, Capability] = {}
        self._index: dict[tuple[int, Operation, Domain, Domain], list[int]] = {}
        # What each holder lost to revocation, so a refusal can say so (CAPABILITY_REVOKED).
        self._revoked: dict[tuple[int, Operation, Domain, Domain], int] = {}

    def grant(
        self,
        holder: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        now: int,
        expires_at: int | None = None,
        resource: str | None = None,
    ) -> Capability:
        capability = Capability(
            self._next_id, holder, operation, origin, target, now, expires_at, resource=resource
        )
        self._next_id += 1
        self._live[capability.id] = capability
        self._index.setdefault((holder, operation, origin, target), []).append(capability.id)
        return capability

    def check(
        self,
        holder: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        now: int,
        resource: str | None = None,
    ) -> Capability:
        ids = self._index.get((holder, operation, origin, target))
        expired: Capability | None = None
        if ids:
            for capability_id in ids:
                capability = self._live[capability_id]
                if capability.resource is not None and capability.resource != resource:
                    continue  # limited to another resource (or the request is domain-wide)
                if capability.expires_at is None or now <= capability.expires_at:
                    return capability
                expired = capability
        wanted = f"{operation.name}({origin.label}→{target.label})"
        if expired is not None:
            raise UnauthorizedError(
                f"process {holder}'s capability {wanted} #{expired.id} expired at logical "
                f"time {expired.expires_at} (now {now})",
                code=ErrorCode.CAPABILITY_EXPIRED,
                where=f"process {holder}",
            )
        revoked = self._revoked.get((holder, operation, origin, target))
        if revoked is not None:
            raise UnauthorizedError(
                f"process {holder}'s capability {wanted} #{revoked} was revoked",
                code=ErrorCode.CAPABILITY_REVOKED,
                where=f"process {holder}",
            )
        raise UnauthorizedError(
            f"process {holder} holds no capability {wanted}", where=f"process {holder}"
        )

    def revoke(self, capability_id: int) -> list[Capability]:
        capability = self._live.pop(capability_id, None)
        if capability is None:
            raise UnauthorizedError(
                f"capability #{capability_id} is not live",
                code=ErrorCode.CAPABILITY_INVALID,
                where=f"capability {capability_id}",
            )
        key = (capability.holder, capability.operation, capability.origin, capability.target)
        self._index[key].remove(capability_id)
        if not self._index[key]:
            del self._index[key]
        self._revoked[key] = capability_id
        return [capability]

    def held_by(self, holder: int) -> list[Capability]:
        return sorted(
            (capability for capability in self._live.values() if capability.holder == holder),
            key=lambda capability: capability.id,
        )

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"holder": capability.holder, **capability.to_record()}
            for capability in sorted(self._live.values(), key=lambda c: c.id)
        ]
