"""Tenants and their bearer tokens.

A tenant is a VHM of the node. Its bearer token is a capability token of the node's capability
authority (:class:`xdv.security.TokenAuthority`, the kernel's SDBM), signed with the node key
(hybrid Ed25519 + ML-DSA-65), whose subject and VHM are the tenant's id and whose scope grants
two rights on the resource ``jobs``: ``EXECUTE(K→K)`` (submit and cancel jobs) and
``RECEIVE(K→K)`` (read jobs, their results and traces). A read-only token is derived from it
(an attenuation: ``RECEIVE`` only), so it can never widen, and revoking a token revokes every
token derived from it. On the wire a token is ``xdv1.`` followed by the URL-safe base64 of its
exported bytes.

Every request is checked by :class:`Gatekeeper` on the authority's own validation path
(signature, scope, expiry, policy, revocation: ``TokenAuthority.present`` and ``validate``). The
signature is checked once per distinct token (the authority keeps the verified token, as the
kernel does); revocation is checked on every request, against the revocations table, which the
gatekeeper reads for new rows first, so a revocation made by another process applies to the
very next request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from xdv.core import QUOTA_NAMES, Operation
from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security import CapabilityToken, KeyStore, Right, Scope, TokenAuthority, union
from xdv.service._errors import ServiceError
from xdv.service._store import NodeStore
from xdv.trace import Domain

__all__ = [
    "JOBS_RESOURCE",
    "READ",
    "SUBMIT",
    "Gatekeeper",
    "Principal",
    "create_tenant",
    "decode_token",
    "encode_token",
    "node_store",
    "revoke",
    "tenant_token",
]

JOBS_RESOURCE = "jobs"
SUBMIT = Right(Operation.EXECUTE, Domain.K, Domain.K)
"""Submitting and cancelling jobs."""
READ = Right(Operation.RECEIVE, Domain.K, Domain.K)
"""Reading jobs, their results and traces."""
_PREFIX = "xdv1."
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOKEN_TEXT_MAX = 16384
DEFAULT_RATE = 2000.0
DEFAULT_BURST = 4000


def node_store(home: Path) -> NodeStore:
    """The node database under ``home`` (created on first use)."""
    return NodeStore(home / "node.db")


def _authority(home: Path, store: NodeStore) -> TokenAuthority:
    """The node's capability authority with every token the node issued admitted (each
    verified against the node key) and every revocation applied."""
    keys, _ = KeyStore(home / "keys").load_or_create()
    authority = TokenAuthority(keys)
    for _, data in store.tokens():
        token = CapabilityToken.from_bytes(data)
        authority.present(data, token.subject, 0)
    for _, token_id in store.revocations_after(0):
        if not authority.is_revoked(token_id):
            authority.revoke(token_id)
    return authority


def encode_token(data: bytes) -> str:
    """The bearer text of an exported token."""
    return _PREFIX + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_token(text: str) -> bytes:
    """The exported bytes of a bearer token; SERVICE_UNAUTHENTICATED if it is not one."""
    if not text.startswith(_PREFIX) or len(text) > _TOKEN_TEXT_MAX:
        raise ServiceError(
            "the bearer token is not an XDV token (xdv1.…)",
            code=ErrorCode.SERVICE_UNAUTHENTICATED,
            where="Authorization",
        )
    body = text[len(_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise ServiceError(
            "the bearer token is not valid base64",
            code=ErrorCode.SERVICE_UNAUTHENTICATED,
            where="Authorization",
        ) from None


def _check_quotas(quotas: dict[str, int]) -> dict[str, int]:
    for name, value in quotas.items():
        if name not in QUOTA_NAMES:
            raise ServiceError(
                f"unknown quota {name!r} (quotas: {', '.join(QUOTA_NAMES)})",
                code=ErrorCode.INVALID_ARGUMENT,
                where="--quota",
            )
        if type(value) is not int or not 1 <= value < 2**40:
            raise ServiceError(
                f"quota {name} must be an integer in [1, 2**40), got {value!r}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="--quota",
            )
    return dict(sorted(quotas.items()))


def create_tenant(
    home: Path,
    name: str,
    *,
    weight: int = 1,
    quotas: dict[str, int] | None = None,
    rate: float = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
) -> dict[str, Any]:
    """Create tenant ``name`` (a VHM of the node) and issue its token; return
    ``{"tenant": …, "token": …, "token_id": …}``. SERVICE_TENANT_EXISTS if the name is taken."""
    if not _NAME.fullmatch(name):
        raise ServiceError(
            f"a tenant name is 1-64 letters, digits, '_', '.' or '-', got {name!r}",
            code=ErrorCode.INVALID_ARGUMENT,
            where="tenant",
        )
    if type(weight) is not int or not 1 <= weight <= 1_000_000:
        raise ServiceError(
            f"a weight is an integer in [1, 1000000], got {weight!r}",
            code=ErrorCode.INVALID_ARGUMENT,
            where="--weight",
        )
    if not rate > 0 or burst < 1:
        raise ServiceError(
            "the rate limit needs a positive rate and a burst of at least 1",
            code=ErrorCode.INVALID_ARGUMENT,
            where="--rate",
        )
    checked = _check_quotas(dict(quotas or {}))
    store = node_store(home)
    try:
        authority = _authority(home, store)
        with store.transaction() as db:
            if db.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone():
                raise ServiceError(
                    f"tenant {name!r} exists", code=ErrorCode.SERVICE_TENANT_EXISTS, where="tenant"
                )
            cursor = db.execute(
                "INSERT INTO tenants (name, weight, quotas, rate, burst, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, weight, json.dumps(checked), float(rate), int(burst), time.time()),
            )
            tenant_id = int(cursor.lastrowid or 0)
            scope = union(Scope.of(SUBMIT, JOBS_RESOURCE), Scope.of(READ, JOBS_RESOURCE))
            token = authority.mint(tenant_id, scope, 0, vhm=tenant_id)
            data = authority.export(token.id)
            db.execute(
                "INSERT INTO tokens (id, tenant, parent, read_only, data, created) "
                "VALUES (?, ?, NULL, 0, ?, ?)",
                (token.id, tenant_id, data, time.time()),
            )
    finally:
        store.close()
    return {
        "tenant": {
            "id": tenant_id,
            "name": name,
            "weight": weight,
            "quotas": checked,
            "rate": rate,
            "burst": burst,
        },
        "token_id": token.id,
        "token": encode_token(data),
    }


def tenant_token(home: Path, name: str, *, read_only: bool = True) -> dict[str, Any]:
    """Derive a new token from tenant ``name``'s root token: read-only (an attenuation to
    ``RECEIVE``) or, with ``read_only=False``, a full copy (a second token that can be revoked
    on its own)."""
    store = node_store(home)
    try:
        tenant = store.tenant(name)
        authority = _authority(home, store)
        with store.transaction() as db:
            row = db.execute(
                "SELECT id FROM tokens WHERE tenant = ? AND parent IS NULL ORDER BY id LIMIT 1",
                (tenant["id"],),
            ).fetchone()
            if row is None:
                raise ServiceError(
                    f"tenant {name!r} has no root token",
                    code=ErrorCode.SERVICE_STATE_INVALID,
                    where="tenant",
                )
            scope = Scope.of(READ, JOBS_RESOURCE) if read_only else None
            child = authority.derive(int(row[0]), tenant["id"], 0, scope=scope)
            data = authority.export(child.id)
            db.execute(
                "INSERT INTO tokens (id, tenant, parent, read_only, data, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (child.id, tenant["id"], int(row[0]), int(read_only), data, time.time()),
            )
    finally:
        store.close()
    return {
        "tenant": name,
        "token_id": child.id,
        "read_only": read_only,
        "token": encode_token(data),
    }


def revoke(home: Path, name: str, token_id: int | None = None) -> list[int]:
    """Revoke tenant ``name``'s token ``token_id`` (default: its root token, which revokes
    every token derived from it). Returns the ids revoked. The server refuses them from its
    next request on."""
    store = node_store(home)
    try:
        tenant = store.tenant(name)
        authority = _authority(home, store)
        with store.transaction() as db:
            if token_id is None:
                row = db.execute(
                    "SELECT id FROM tokens WHERE tenant = ? AND parent IS NULL ORDER BY id",
                    (tenant["id"],),
                ).fetchone()
                token_id = None if row is None else int(row[0])
            owner = (
                None
                if token_id is None
                else db.execute("SELECT tenant FROM tokens WHERE id = ?", (token_id,)).fetchone()
            )
            if token_id is None or owner is None or int(owner[0]) != tenant["id"]:
                raise ServiceError(
                    f"tenant {name!r} has no token {token_id}",
                    code=ErrorCode.CAPABILITY_INVALID,
                    where="--token-id",
                )
            if authority.is_revoked(token_id):
                return []
            revoked = [capability.id for capability in authority.revoke(token_id)]
            now = time.time()
            db.executemany(
                "INSERT INTO revocations (token, at) VALUES (?, ?)",
                [(item, now) for item in revoked],
            )
    finally:
        store.close()
    return revoked


class Principal:
    """Who a request comes from: a tenant (its id is its VHM) and the token it showed."""

    __slots__ = ("burst", "name", "quotas", "rate", "read_only", "tenant", "token", "weight")

    def __init__(self, tenant: dict[str, Any], token: CapabilityToken, read_only: bool) -> None:
        self.tenant: int = tenant["id"]
        self.name: str = tenant["name"]
        self.weight: int = tenant["weight"]
        self.quotas: dict[str, int] = tenant["quotas"]
        self.rate: float = tenant["rate"]
        self.burst: int = tenant["burst"]
        self.token = token
        self.read_only = read_only


class Gatekeeper:
    """The server's check of bearer tokens (see the module docstring)."""

    def __init__(
        self, home: Path, store: NodeStore, *, authority: TokenAuthority | None = None
    ) -> None:
        self._store = store
        if authority is None:
            keys, _ = KeyStore(home / "keys").load_or_create()
            authority = TokenAuthority(keys)
        self.authority = authority  # the node's, from its measured boot (xdv serve)
        self._known: dict[bytes, CapabilityToken] = {}  # digest of bearer bytes → token
        self._tenants: dict[int, dict[str, Any]] = {}
        self._revocation_seq = 0
        self._pending_revocations: set[int] = set()

    def _refresh_revocations(self) -> None:
        for seq, token_id in self._store.revocations_after(self._revocation_seq):
            self._revocation_seq = seq
            self._pending_revocations.add(token_id)
        for token_id in sorted(self._pending_revocations):
            try:
                self.authority.token(token_id)
            except XdvError:
                continue  # not presented yet: presenting it applies the revocation
            if not self.authority.is_revoked(token_id):
                self.authority.revoke(token_id)
            self._pending_revocations.discard(token_id)

    def _admit(self, data: bytes) -> CapabilityToken:
        """Admit a token this node issued (and its ancestors), verifying each signature."""
        token = CapabilityToken.from_bytes(data)
        issued = self._store.token_row(token.id)
        if issued is None or issued[3] != data:
            raise ServiceError(
                "the token was not issued by this node",
                code=ErrorCode.SERVICE_UNAUTHENTICATED,
                where="Authorization",
            )
        if token.parent is not None:
            try:
                self.authority.token(token.parent)
            except XdvError:
                parent = self._store.token_row(token.parent)
                if parent is None:
                    raise ServiceError(
                        "the token's parent is unknown",
                        code=ErrorCode.SERVICE_UNAUTHENTICATED,
                        where="Authorization",
                    ) from None
                self._admit(parent[3])
        admitted = self.authority.present(data, token.subject, 0)
        if token.id in self._pending_revocations and not self.authority.is_revoked(token.id):
            self.authority.revoke(token.id)
            self._pending_revocations.discard(token.id)
        return admitted

    def check(self, authorization: str | None, right: Right) -> Principal:
        """The principal behind an ``Authorization: Bearer …`` header, allowed ``right`` on
        ``jobs``; a typed refusal otherwise (401 unauthenticated or revoked, 403 not allowed)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise ServiceError(
                "this route needs a bearer token (Authorization: Bearer xdv1.…)",
                code=ErrorCode.SERVICE_UNAUTHENTICATED,
                where="Authorization",
            )
        data = decode_token(authorization[7:].strip())
        self._refresh_revocations()
        digest = hashlib.sha256(data).digest()
        token = self._known.get(digest)
        if token is None:
            token = self._admit(data)
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[digest] = token
        try:
            self.authority.validate(token, token.subject, right, JOBS_RESOURCE, 0)
        except UnauthorizedError as error:
            if error.code is ErrorCode.DOMAIN_UNAUTHORIZED:
                raise ServiceError(
                    "this token may not do that (a read-only token cannot submit or cancel)",
                    code=ErrorCode.SERVICE_FORBIDDEN,
                    where="Authorization",
                ) from None
            raise
        tenant = self._tenants.get(token.vhm)
        if tenant is None:
            tenant = self._store.tenant_by_id(token.vhm)
            if tenant is None:
                raise ServiceError(
                    "the token's tenant does not exist",
                    code=ErrorCode.SERVICE_TENANT_UNKNOWN,
                    where="Authorization",
                )
            self._tenants[token.vhm] = tenant
        read_only = not token.scope.allows(SUBMIT, JOBS_RESOURCE, 0)
        return Principal(tenant, token, read_only)
