"""The capability check: the kernel's one validation path, and its recorded grants and revocations.

Every cross-domain operation the kernel performs for a process (bind, reserve, invoke and the
rights an operation needs, transfer, transition, freeze) is authorized by :meth:`check`, before
any domain manager is touched. Grants, derivations, revocations and freezes go through here too,
so each is recorded once, the same way. The authority itself (the core's
:class:`~xdv.core.CapabilityTable`, or the security layer's signed tokens) is injected; the
optional things an authority may do are declared protocols (:class:`SupportsDerive`,
:class:`SupportsFreeze`), tested for once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xdv.core._capability import (
    Capability,
    CapabilityAuthority,
    Operation,
    SupportsDerive,
    SupportsFreeze,
)
from xdv.core._clock import LogicalClock
from xdv.core._recorder import Recorder
from xdv.errors import DomainError, ErrorCode, UnauthorizedError, XdvError
from xdv.trace import Domain, EventType

__all__ = ["CapabilityCheck"]


class CapabilityCheck:
    """Checks, grants, derives, revokes and freezes capabilities, recording each decision.

    Invariant: a frozen domain stays frozen for the rest of the run, and no check that involves
    it succeeds.
    """

    __slots__ = (
        "_check",
        "_clock",
        "_deriver",
        "_freezer",
        "_record",
        "authority",
        "frozen",
        "quarantined",
    )

    def __init__(
        self, authority: CapabilityAuthority, recorder: Recorder, clock: LogicalClock
    ) -> None:
        self.authority = authority
        self._check = authority.check
        self._deriver = authority if isinstance(authority, SupportsDerive) else None
        self._freezer = authority if isinstance(authority, SupportsFreeze) else None
        self._record = recorder.record
        self._clock = clock
        self.frozen: set[Domain] = set()
        # Frozen by fault escalation (XDV-024 §5.3) rather than by a Freeze call.
        self.quarantined: set[Domain] = set()

    def check(
        self,
        pid: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        resource: str | None = None,
    ) -> Capability:
        """The capability that authorizes ``pid`` to do ``operation`` from ``origin`` to
        ``target`` (on ``resource``, or the domain as a whole), or a typed refusal."""
        frozen = self.frozen
        if frozen and (origin in frozen or target in frozen):
            domain = origin if origin in frozen else target
            if domain in self.quarantined:
                raise UnauthorizedError(
                    f"domain {domain.label} is quarantined after a fault escalation",
                    code=ErrorCode.DOMAIN_QUARANTINED,
                    where=f"process {pid}",
                )
            raise UnauthorizedError(
                f"domain {domain.label} is frozen",
                code=ErrorCode.DOMAIN_FROZEN,
                where=f"process {pid}",
            )
        return self._check(pid, operation, origin, target, self._clock.now, resource)

    def holds(self, pid: int, operation: Operation, origin: Domain, target: Domain) -> bool:
        """Whether ``pid`` may do ``operation`` from ``origin`` to ``target`` on the domain as a
        whole right now (a :meth:`check` that answers instead of refusing; records nothing)."""
        try:
            self.check(pid, operation, origin, target)
        except XdvError:
            return False
        return True

    def grant(
        self,
        pid: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        expires_at: int | None = None,
        resource: str | None = None,
    ) -> Capability:
        """Grant ``pid`` a capability (on ``resource`` only, if given) and record it
        (CAPABILITY_GRANT)."""
        now = self._clock.now
        if resource is None:  # the authorities' common path keeps its old call shape
            capability = self.authority.grant(pid, operation, origin, target, now, expires_at)
        else:
            capability = self.authority.grant(
                pid, operation, origin, target, now, expires_at, resource=resource
            )
        return self._recorded_grant(capability, pid)

    def revoke(self, capability_id: int, reason: str) -> list[Capability]:
        """Revoke a capability and everything derived from it; record it for its holder."""
        revoked = self.authority.revoke(capability_id)
        capability = revoked[0]
        self._record(
            EventType.CAPABILITY_REVOKE,
            capability.target,
            capability.holder,
            capability=capability.id,
            meta={"ids": [item.id for item in revoked], "reason": reason},
        )
        return revoked

    def drop(self, pid: int, capability_id: int) -> None:
        """Process ``pid`` gives up one of its own capabilities (the Revoke system call)."""
        held = {capability.id for capability in self.authority.held_by(pid)}
        if capability_id not in held:
            raise UnauthorizedError(
                f"process {pid} holds no capability #{capability_id}",
                code=ErrorCode.CAPABILITY_INVALID,
                where=f"process {pid}",
            )
        self.revoke(capability_id, "dropped")

    def revoke_all(self, pid: int) -> None:
        """Revoke everything ``pid`` holds (it ended); one entry lists every revoked id."""
        revoked: list[int] = []
        while held := self.authority.held_by(pid):
            # Revoking one may revoke others it was derived into (held here or elsewhere).
            revoked.extend(capability.id for capability in self.authority.revoke(held[0].id))
        if revoked:
            self._record(
                EventType.CAPABILITY_REVOKE,
                Domain.ORCHESTRATION,
                pid,
                meta={"ids": revoked, "reason": "exit"},
            )

    def require_derive(self, pid: int) -> SupportsDerive:
        """The authority, if it can derive capabilities; OPERATION_UNSUPPORTED otherwise."""
        if self._deriver is None:
            raise DomainError(
                "this kernel's capability authority cannot derive capabilities",
                code=ErrorCode.OPERATION_UNSUPPORTED,
                where=f"process {pid}",
            )
        return self._deriver

    def derive(
        self,
        presenter: int,
        capability_id: int,
        subject: int,
        scope: Any,
        expires_at: int | None,
    ) -> Capability:
        """Derive from ``presenter``'s capability a narrower one for ``subject``; record it."""
        deriver = self.require_derive(presenter)
        # The authority parses the scope record: the kernel knows capabilities, not their algebra.
        token = deriver.derive(
            capability_id,
            presenter,
            self._clock.now,
            subject=subject,
            scope=scope,
            expires_at=expires_at,
        )
        return self._recorded_grant(token.as_capability(), subject)

    def _recorded_grant(self, capability: Capability, holder: int) -> Capability:
        """Record CAPABILITY_GRANT of ``capability`` to ``holder``; return it."""
        self._record(
            EventType.CAPABILITY_GRANT,
            capability.target,
            holder,
            capability=capability.id,
            meta=capability.to_record(),
        )
        return capability

    def quarantine(self, domain: Domain) -> None:
        """Mark ``domain`` as quarantined by fault escalation; :meth:`freeze` then freezes it,
        and refusals name the quarantine (DOMAIN_QUARANTINED)."""
        self.quarantined.add(domain)

    def freeze(
        self, domain: Domain, reason: str, pid: int, holders: Iterable[int]
    ) -> list[Capability]:
        """Freeze ``domain``: revoke every capability touching it (of ``holders``, when the
        authority cannot freeze by itself), refuse it from now on, and record DOMAIN_FREEZE."""
        if domain is Domain.K or domain is Domain.ORCHESTRATION:
            raise XdvError(
                f"domain {domain.label} cannot be frozen: every process runs on it",
                code=ErrorCode.INVALID_ARGUMENT,
                where="freeze",
            )
        if self._freezer is not None:
            revoked = self._freezer.freeze(domain)
        else:  # a minimal authority: revoke what touches the domain by hand
            revoked = []
            for holder in sorted(holders):
                for capability in self.authority.held_by(holder):
                    if domain in (capability.origin, capability.target):
                        revoked.extend(self.authority.revoke(capability.id))
        self.frozen.add(domain)
        self._record(
            EventType.DOMAIN_FREEZE,
            domain,
            pid,
            meta={"reason": reason, "revoked": [capability.id for capability in revoked]},
        )
        return revoked

    def deny(self, pid: int, error: XdvError, call: str) -> None:
        """Record a refused authority request of ``pid`` (CAPABILITY_DENY with the error)."""
        self._record(
            EventType.CAPABILITY_DENY,
            Domain.ORCHESTRATION,
            pid,
            status=error.code,
            meta={"error": error.message, "call": call},
        )
