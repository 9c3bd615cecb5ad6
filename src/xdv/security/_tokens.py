"""Signed capability tokens and the Secure Domain Boundary Manager that issues and checks them.

A :class:`CapabilityToken` names its issuer (a key fingerprint), its subject process (and VHM),
its :class:`~xdv.security.Scope` (rights between domains, resources, logical-time windows), an
optional expiry in logical time, its revocation id, and its lineage: the token it was derived
from, if any, and the caveats that narrowed it. Its canonical CBOR payload carries a hybrid
Ed25519 + ML-DSA-65 signature by the issuer (context ``xdv-capability``).

:class:`TokenAuthority` is the kernel's capability authority (the SDBM). Every check runs the
same validation, in this order, and stops at the first failure with a typed error; a refusal
changes nothing:

1. **signature**: the issuer is a known key and both halves of the signature verify
   (SIGNATURE_INVALID);
2. **scope**: the scope is not empty; a derived token names a known parent, sits one level
   below it, and its scope and expiry lie within the parent's (ATTENUATION_WIDENS); the request
   (right, resource, logical time) lies within the scope (DOMAIN_UNAUTHORIZED);
3. **expiry**: the logical time has not passed the expiry (CAPABILITY_EXPIRED);
4. **policy**: the scope lies within the authority's policy, the presenter is the subject and
   no domain the scope touches is frozen (DOMAIN_UNAUTHORIZED, DOMAIN_FROZEN);
5. **revocation**: neither the token nor any token it derives from is revoked
   (CAPABILITY_REVOKED).

Tokens minted or admitted by the authority enter its table already trusted: tokens it mints are
its own statements, and presented tokens are verified in full on the way in. The table then
vouches for them (it is the kernel's own memory), so the kernel's hot path pays for a dictionary
lookup, not a signature check. A minted token is signed when it first leaves the table
(:meth:`TokenAuthority.token`, :meth:`TokenAuthority.export`), which keeps granting cheap for
the many tokens that are only ever used inside one kernel; the signature covers exactly the
payload the token was minted with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2

from xdv.core import Capability, Operation
from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security._keys import SIGNATURE_SIZE, HybridKeyPair, HybridPublicKey
from xdv.security._scope import FOREVER, Right, Scope, contains
from xdv.trace import Domain, canonical_metadata

__all__ = ["DEPTH_MAX", "CapabilityToken", "TokenAuthority"]

_CONTEXT = b"xdv-capability"
DEPTH_MAX = 16
"""How many times a token may be derived from a minted one."""


def _refuse(message: str, code: ErrorCode, token: int | None = None) -> UnauthorizedError:
    where = f"capability {token}" if token is not None else "capability"
    return UnauthorizedError(message, code=code, where=where)


@dataclass(frozen=True, slots=True)
class CapabilityToken:
    """A signed capability; see the module docstring."""

    id: int
    issuer: str
    subject: int
    scope: Scope
    issued_at: int
    expires_at: int | None = None
    parent: int | None = None
    depth: int = 0
    caveats: tuple[str, ...] = ()
    vhm: int = 0
    signature: bytes = field(default=b"", repr=False)

    @property
    def revocation_id(self) -> int:
        """The id revocation lists name: the token's own id (descendants follow it)."""
        return self.id

    def payload(self) -> bytes:
        """The canonical bytes the signature covers (everything but the signature)."""
        return canonical_metadata(self._fields())

    def _fields(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": self.id,
            "issuer": self.issuer,
            "subject": self.subject,
            "vhm": self.vhm,
            "scope": self.scope.to_record(),
            "issued": self.issued_at,
            "expires": self.expires_at,
            "parent": self.parent,
            "depth": self.depth,
            "caveats": list(self.caveats),
        }

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.payload()).digest()

    def to_bytes(self) -> bytes:
        """The exported form: the payload's fields and the signature, as canonical CBOR."""
        return canonical_metadata({**self._fields(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> CapabilityToken:
        """Parse an exported token; malformed bytes are CAPABILITY_INVALID (no signature
        check here: presenting the token to an authority does that)."""
        try:
            fields = cbor2.loads(data)
            if not isinstance(fields, dict) or fields.get("v") != 1:
                raise ValueError("not a version-1 token")
            token = cls(
                id=_int(fields["id"]),
                issuer=_str(fields["issuer"]),
                subject=_int(fields["subject"]),
                vhm=_int(fields["vhm"]),
                scope=Scope.from_record(fields["scope"]),
                issued_at=_int(fields["issued"]),
                expires_at=None if fields["expires"] is None else _int(fields["expires"]),
                parent=None if fields["parent"] is None else _int(fields["parent"]),
                depth=_int(fields["depth"]),
                caveats=tuple(_str(item) for item in _list(fields["caveats"])),
                signature=_signature(fields["sig"]),
            )
            if set(fields) != {*token._fields(), "sig"}:
                raise ValueError("unexpected fields")
            if token.to_bytes() != bytes(data):  # exactly one encoding per token
                raise ValueError("not in canonical form")
        except (
            ValueError,
            KeyError,
            TypeError,
            OverflowError,
            RecursionError,
            cbor2.CBORDecodeError,
            XdvError,
        ) as error:
            reason = error.message if isinstance(error, XdvError) else str(error)
            raise _refuse(
                f"malformed capability token: {reason}", ErrorCode.CAPABILITY_INVALID
            ) from None
        return token

    def primary_right(self) -> Right:
        rights = self.scope.rights()
        return rights[0] if rights else Right(Operation.EXECUTE, Domain.K, Domain.K)

    def to_record(self) -> dict[str, Any]:
        """What the trace records about the token: deterministic facts only (no issuer key,
        no signature, both of which differ between nodes and signings)."""
        record: dict[str, Any] = {"scope": self.scope.to_record()}
        if self.parent is not None:
            record["parent"] = self.parent
            record["caveats"] = list(self.caveats)
        return record

    def as_capability(self) -> Capability:
        right = self.primary_right()
        return Capability(
            self.id,
            self.subject,
            right.operation,
            right.origin,
            right.target,
            self.issued_at,
            self.expires_at,
            detail=None if self._is_plain() else self.to_record(),
        )

    def _is_plain(self) -> bool:
        """A minted token for one right on every resource at all times: its right alone
        describes it (the record stays as small as the minimal table's)."""
        return self.parent is None and self.scope == Scope.of(self.primary_right())


def _check_expiry(expires_at: Any) -> None:
    if expires_at is not None and (type(expires_at) is not int or not 0 <= expires_at <= FOREVER):
        raise _refuse(
            f"an expiry is a logical time in [0, 2**63), got {expires_at!r}",
            ErrorCode.CAPABILITY_INVALID,
        )


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _signature(value: Any) -> bytes:
    if type(value) is not bytes or len(value) not in (0, SIGNATURE_SIZE):
        raise ValueError("the signature is not a hybrid signature's bytes")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


class TokenAuthority:
    """The SDBM: mints, derives, checks, revokes and freezes signed capability tokens.

    It implements the kernel's :class:`~xdv.core.CapabilityAuthority` protocol. ``keys`` signs
    what it mints (a fresh key when omitted); ``trusted`` lists other issuers whose tokens it
    accepts when presented; ``policy`` bounds every scope it will honour (everything when
    omitted). Token ids count up from 1 in issue order, so a run's ids are reproducible.

    Invariants: a token id is never reused; ``_live[holder]`` holds exactly the holder's tokens
    that are neither revoked nor descended from a revoked token.
    """

    def __init__(
        self,
        keys: HybridKeyPair | None = None,
        *,
        trusted: Collection[HybridPublicKey] = (),
        policy: Scope | None = None,
    ) -> None:
        self._keys = keys
        self._trusted = tuple(trusted)
        self._issuers = {key.fingerprint: key for key in self._trusted}
        if keys is not None:
            self._issuers[keys.public.fingerprint] = keys.public
        self.policy = policy
        self._next_id = 1
        self._tokens: dict[int, CapabilityToken] = {}
        self._vouched: set[int] = set()
        self._children: dict[int, list[int]] = {}
        self._revoked: set[int] = set()
        self._live: dict[int, list[int]] = {}
        self._frozen: set[Domain] = set()
        self._views: dict[int, Capability] = {}

    def _view(self, token_id: int) -> Capability:
        """The kernel's view of a token (cached: tokens never change)."""
        view = self._views.get(token_id)
        if view is None:
            view = self._views[token_id] = self._tokens[token_id].as_capability()
        return view

    # ------------------------------------------------------------ issuing

    @property
    def keys(self) -> HybridKeyPair:
        """The issuing key (generated on first use when none was given)."""
        if self._keys is None:
            self._keys = HybridKeyPair.generate()
        self._issuers.setdefault(self._keys.public.fingerprint, self._keys.public)
        return self._keys

    def _signed(self, token_id: int) -> CapabilityToken:
        token = self._tokens[token_id]
        if not token.signature:
            token = replace(token, signature=self.keys.sign(token.payload(), context=_CONTEXT))
            self._tokens[token_id] = token
        return token

    def _issue(self, token: CapabilityToken) -> CapabilityToken:
        """Admit a freshly built token, after checking that the trace can record it: a token
        the kernel could not record must not exist (a refusal changes nothing)."""
        canonical_metadata(token.as_capability().to_record())
        self._next_id += 1
        return self._admit(token)

    def _admit(self, token: CapabilityToken) -> CapabilityToken:
        self._tokens[token.id] = token
        self._vouched.add(token.id)
        self._live.setdefault(token.subject, []).append(token.id)
        if token.parent is not None:
            self._children.setdefault(token.parent, []).append(token.id)
        return token

    def _check_policy(self, scope: Scope, token: int | None) -> None:
        if self.policy is not None and not contains(scope, self.policy):
            raise _refuse(
                f"the scope {scope.describe()} exceeds the authority's policy",
                ErrorCode.DOMAIN_UNAUTHORIZED,
                token,
            )
        for right in scope.rights():
            for domain in (right.origin, right.target):
                if domain in self._frozen:
                    raise _refuse(
                        f"domain {domain.label} is frozen", ErrorCode.DOMAIN_FROZEN, token
                    )

    def mint(
        self,
        subject: int,
        scope: Scope,
        now: int,
        expires_at: int | None = None,
        *,
        vhm: int = 0,
    ) -> CapabilityToken:
        """Issue a new root token (an operator's grant)."""
        _check_expiry(expires_at)
        if scope.is_empty():
            raise _refuse("a token needs a non-empty scope", ErrorCode.CAPABILITY_INVALID)
        self._check_policy(scope, None)
        token = CapabilityToken(
            id=self._next_id,
            issuer=self.keys.public.fingerprint,
            subject=subject,
            vhm=vhm,
            scope=scope,
            issued_at=now,
            expires_at=expires_at,
        )
        return self._issue(token)

    def derive(
        self,
        parent_id: int,
        presenter: int,
        now: int,
        *,
        subject: int | None = None,
        scope: Scope | Mapping[str, Any] | None = None,
        expires_at: int | None = None,
    ) -> CapabilityToken:
        """Attenuate (``subject`` None) or delegate a token the presenter holds.

        ``scope`` is a :class:`Scope` or its record (as a process passes it in a system call).

        The child's scope is ``scope`` (default: the parent's) and must lie within the
        parent's; its expiry must not be later than the parent's. Asking for more is refused
        with ATTENUATION_WIDENS: a derived token only ever narrows.
        """
        _check_expiry(expires_at)
        parent = self._tokens.get(parent_id)
        if parent is None or parent_id in self._revoked:
            code = ErrorCode.CAPABILITY_REVOKED if parent else ErrorCode.CAPABILITY_INVALID
            raise _refuse(f"capability #{parent_id} is not live", code, parent_id)
        self._validate(parent, presenter, None, None, now)
        if parent.depth + 1 > DEPTH_MAX:
            raise _refuse(
                f"capability #{parent_id} is already derived {DEPTH_MAX} times",
                ErrorCode.LIMIT_EXCEEDED,
                parent_id,
            )
        if scope is not None and not isinstance(scope, Scope):
            scope = Scope.from_record(scope)
        wanted = parent.scope if scope is None else scope
        if not contains(wanted, parent.scope):
            raise _refuse(
                f"the derived scope {wanted.describe()} is not within capability "
                f"#{parent_id}'s {parent.scope.describe()}",
                ErrorCode.ATTENUATION_WIDENS,
                parent_id,
            )
        if parent.expires_at is not None and (expires_at is None or expires_at > parent.expires_at):
            if expires_at is not None:
                raise _refuse(
                    f"a derived token cannot outlive capability #{parent_id} "
                    f"(expires {parent.expires_at}, asked {expires_at})",
                    ErrorCode.ATTENUATION_WIDENS,
                    parent_id,
                )
            expires_at = parent.expires_at
        if wanted.is_empty():
            raise _refuse("a derived token needs a non-empty scope", ErrorCode.CAPABILITY_INVALID)
        caveats = []
        if scope is not None and scope != parent.scope:
            caveats.append(f"scope {wanted.describe()}")
        if expires_at != parent.expires_at:
            caveats.append(f"expires {expires_at}")
        if subject is not None and subject != parent.subject:
            caveats.append(f"delegated by {parent.subject} to {subject}")
        token = CapabilityToken(
            id=self._next_id,
            issuer=self.keys.public.fingerprint,
            subject=parent.subject if subject is None else subject,
            vhm=parent.vhm,
            scope=wanted,
            issued_at=now,
            expires_at=expires_at,
            parent=parent_id,
            depth=parent.depth + 1,
            caveats=tuple(caveats),
        )
        return self._issue(token)

    def export(self, token_id: int) -> bytes:
        """The signed, self-describing bytes of a token (for another authority)."""
        if token_id not in self._tokens:
            raise _refuse(f"no capability #{token_id}", ErrorCode.CAPABILITY_INVALID, token_id)
        return self._signed(token_id).to_bytes()

    def present(
        self, data: bytes, presenter: int, now: int, request: tuple[Right, str | None] | None = None
    ) -> CapabilityToken:
        """Validate a token from outside and, if it passes, admit it for its subject.

        Every check runs on the presented bytes, the signature first. A token whose id is
        already in the table must be that very token (same signed payload)."""
        token = CapabilityToken.from_bytes(data)
        right, resource = request if request is not None else (None, None)
        self._validate(token, presenter, right, resource, now, vouched=False)
        known = self._tokens.get(token.id)
        if known is not None:
            if known.payload() != token.payload():
                raise _refuse(
                    f"a different token already has id #{token.id}",
                    ErrorCode.CAPABILITY_INVALID,
                    token.id,
                )
            return known
        if token.id >= self._next_id:
            self._next_id = token.id + 1
        return self._admit(token)

    # ------------------------------------------------------------ validation

    def _validate(
        self,
        token: CapabilityToken,
        presenter: int,
        right: Right | None,
        resource: str | None,
        now: int,
        *,
        vouched: bool = True,
    ) -> None:
        tid = token.id
        # 1. Signature authenticity.
        if not (vouched and tid in self._vouched and self._tokens.get(tid) is token):
            issuer = self._issuers.get(token.issuer)
            if issuer is None:
                raise _refuse(
                    f"capability #{tid} names an unknown issuer", ErrorCode.SIGNATURE_INVALID, tid
                )
            try:
                issuer.verify(token.payload(), token.signature, context=_CONTEXT)
            except UnauthorizedError as error:
                raise _refuse(
                    f"capability #{tid}: {error.message}", ErrorCode.SIGNATURE_INVALID, tid
                ) from None
        # 2. Scope validity.
        if token.scope.is_empty():
            raise _refuse(
                f"capability #{tid} has an empty scope", ErrorCode.CAPABILITY_INVALID, tid
            )
        if token.parent is not None:
            parent = self._tokens.get(token.parent)
            if parent is None:
                raise _refuse(
                    f"capability #{tid} derives from unknown #{token.parent}",
                    ErrorCode.CAPABILITY_INVALID,
                    tid,
                )
            if (
                token.depth != parent.depth + 1
                or not contains(token.scope, parent.scope)
                or (
                    parent.expires_at is not None
                    and (token.expires_at is None or token.expires_at > parent.expires_at)
                )
                or token.vhm != parent.vhm
            ):
                raise _refuse(
                    f"capability #{tid} exceeds its parent #{parent.id}",
                    ErrorCode.ATTENUATION_WIDENS,
                    tid,
                )
        elif token.depth != 0:
            raise _refuse(
                f"capability #{tid} claims depth {token.depth} without a parent",
                ErrorCode.CAPABILITY_INVALID,
                tid,
            )
        if right is not None and not token.scope.allows(right, resource, now):
            raise _refuse(
                f"capability #{tid} does not permit {right.label()} on "
                f"{resource or 'the domain'} at logical time {now}",
                ErrorCode.DOMAIN_UNAUTHORIZED,
                tid,
            )
        # 3. Expiry.
        if token.expires_at is not None and now > token.expires_at:
            raise _refuse(
                f"capability #{tid} expired at logical time {token.expires_at} (now {now})",
                ErrorCode.CAPABILITY_EXPIRED,
                tid,
            )
        # 4. Policy compliance.
        self._check_policy(token.scope, tid)
        if token.subject != presenter:
            raise _refuse(
                f"capability #{tid} belongs to process {token.subject}, not {presenter}",
                ErrorCode.DOMAIN_UNAUTHORIZED,
                tid,
            )
        # 5. Revocation status (the token and its whole lineage).
        ancestor: int | None = tid
        while ancestor is not None:
            if ancestor in self._revoked:
                raise _refuse(
                    f"capability #{tid} is revoked"
                    + ("" if ancestor == tid else f" (through #{ancestor})"),
                    ErrorCode.CAPABILITY_REVOKED,
                    tid,
                )
            ancestor_token = self._tokens.get(ancestor)
            ancestor = ancestor_token.parent if ancestor_token is not None else None

    def validate(
        self,
        token: CapabilityToken,
        presenter: int,
        right: Right | None,
        resource: str | None,
        now: int,
    ) -> None:
        """Run the five validation steps on ``token`` as presented; raise on the first failure.

        A token object that is not the authority's own copy is checked from its signature up.
        """
        self._validate(token, presenter, right, resource, now)

    # ------------------------------------------------------------ the kernel's protocol

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
        scope = Scope.of(Right(operation, origin, target), resource or "*", 0, FOREVER)
        return self._view(self.mint(holder, scope, now, expires_at).id)

    def check(
        self,
        holder: int,
        operation: Operation,
        origin: Domain,
        target: Domain,
        now: int,
        resource: str | None = None,
    ) -> Capability:
        right = Right(operation, origin, target)
        best: UnauthorizedError | None = None
        for token_id in self._live.get(holder, ()):
            token = self._tokens[token_id]
            if not token.scope.allows(right, resource, now):
                continue  # cannot grant this request: no need to build a refusal for it
            try:
                self._validate(token, holder, right, resource, now)
            except UnauthorizedError as error:
                if best is None or _rank(error) > _rank(best):
                    best = error
                continue
            return self._view(token_id)
        if best is not None and best.code is not ErrorCode.DOMAIN_UNAUTHORIZED:
            raise best
        if self._revoked_match(holder, right, resource, now):
            raise _refuse(
                f"process {holder}'s capability {right.label()} was revoked",
                ErrorCode.CAPABILITY_REVOKED,
            )
        for domain in (origin, target):
            if domain in self._frozen:
                raise _refuse(f"domain {domain.label} is frozen", ErrorCode.DOMAIN_FROZEN)
        raise UnauthorizedError(
            f"process {holder} holds no capability {right.label()}"
            + (f" for {resource}" if resource else ""),
            where=f"process {holder}",
        )

    def _revoked_match(self, holder: int, right: Right, resource: str | None, now: int) -> bool:
        return any(
            self._tokens[token_id].subject == holder
            and self._tokens[token_id].scope.allows(right, resource, now)
            for token_id in self._revoked
        )

    def revoke(self, capability_id: int) -> list[Capability]:
        if capability_id not in self._tokens or capability_id in self._revoked:
            raise _refuse(
                f"capability #{capability_id} is not live",
                ErrorCode.CAPABILITY_INVALID,
                capability_id,
            )
        revoked: list[int] = []
        pending = [capability_id]
        while pending:
            current = pending.pop()
            if current in self._revoked:
                continue
            self._revoked.add(current)
            revoked.append(current)
            token = self._tokens[current]
            held = self._live.get(token.subject)
            if held is not None and current in held:
                held.remove(current)
            pending.extend(sorted(self._children.get(current, ()), reverse=True))
        first, rest = revoked[0], sorted(revoked[1:])
        return [self._view(token_id) for token_id in (first, *rest)]

    def held_by(self, holder: int) -> list[Capability]:
        return [self._view(token_id) for token_id in self._live.get(holder, ())]

    def token(self, capability_id: int) -> CapabilityToken:
        """The signed token behind a capability id."""
        if capability_id not in self._tokens:
            raise _refuse(
                f"no capability #{capability_id}", ErrorCode.CAPABILITY_INVALID, capability_id
            )
        return self._signed(capability_id)

    def is_revoked(self, capability_id: int) -> bool:
        return capability_id in self._revoked

    def freeze(self, domain: Domain) -> list[Capability]:
        """Emergency freeze: revoke every live token whose scope touches ``domain`` and refuse
        new ones until :meth:`thaw`. Returns what was revoked."""
        self._frozen.add(domain)
        revoked: list[Capability] = []
        for token_id in sorted(self._tokens):
            token = self._tokens[token_id]
            if token_id in self._revoked:
                continue
            if any(domain in (right.origin, right.target) for right in token.scope.rights()):
                revoked.extend(self.revoke(token_id))
        return revoked

    def thaw(self, domain: Domain) -> None:
        self._frozen.discard(domain)

    def frozen(self) -> set[Domain]:
        return set(self._frozen)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"holder": holder, **self._view(token_id).to_record()}
            for holder in sorted(self._live)
            for token_id in self._live[holder]
        ]


def _rank(error: UnauthorizedError) -> int:
    """How informative a refusal is when several tokens fail (the most specific wins)."""
    order = {
        ErrorCode.DOMAIN_UNAUTHORIZED: 0,
        ErrorCode.CAPABILITY_EXPIRED: 1,
        ErrorCode.DOMAIN_FROZEN: 2,
        ErrorCode.CAPABILITY_REVOKED: 3,
        ErrorCode.ATTENUATION_WIDENS: 4,
        ErrorCode.CAPABILITY_INVALID: 5,
        ErrorCode.SIGNATURE_INVALID: 6,
    }
    return order.get(error.code, 0)
