"""Provider attestation: who a Q or Φ provider is, what code and configuration it runs, and what
it declares it can do.

**The provider model** (shared by every Q and Φ provider, :class:`AttestableProvider`): a stable
``provider_id``; an ``identity``, a :class:`ProviderIdentity` whose secret hybrid key signs what
the provider vouches for (calibration contracts); a ``measurement()``, the SHA-256 over its code
and canonical configuration in the one format :func:`measure_provider` computes; and a
trace-encodable ``declaration()`` (operations, sizes, limits). :class:`ProviderFacts` reads these
from a live provider and judges a provider against facts read earlier.

**Identity keys are secret.** XDV's own providers keep their identity key in the node's key
store (``provider-<id>.key``, drawn at random on first use); another provider brings its own. The
public half is pinned per provider id in the key store's provider registry on first use
(:class:`~xdv.security.ProviderRegistry`), and a different key for the same id is refused
afterwards (PROVIDER_KEY_MISMATCH). Signatures are checked against the pinned key only.

**Attestation.** A :class:`ProviderAttestation` states a provider's facts (id, identity public
key, measurement, declaration) and a validity window in logical time, signed by an *attester*:
the node key for XDV's own embedded providers (marked with :func:`embedded_provider`), which the
verifier attests itself on first use; the provider's own identity, or a key the operator names
for it, for any other provider (including a subclass of an embedded one), which must be
registered.

The kernel asks an :class:`AttestationVerifier` about every provider of a domain each time a
process binds to that domain, and refuses the bind (ATTESTATION_FAILED) unless: an attestation is
registered for the provider; its signature verifies; its attester is one the verifier trusts for
that provider; the live provider holds the attested identity and that identity is the one
pinned for its id; the provider's measurement and declaration *now* equal the attested ones (so
a provider whose code or configuration changed, a recalibration for instance, must be attested
again); and the logical time lies within its validity. Each verdict is traced as an ATTESTATION
entry holding deterministic facts only (provider, measurement, declaration digest, validity,
verdict): never a key, a fingerprint or a signature, which differ between machines and runs, so
two nodes with different keys write the same trace for the same run.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol, runtime_checkable

from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security._keys import HybridKeyPair, HybridPublicKey
from xdv.security._keystore import KeyStore, ProviderRegistry, check_provider_id
from xdv.trace import canonical_metadata, canonicalize

__all__ = [
    "AttestableProvider",
    "AttestationVerifier",
    "ProviderAttestation",
    "ProviderFacts",
    "ProviderIdentity",
    "Signer",
    "StoredIdentity",
    "attest",
    "embedded_provider",
    "measure_provider",
]

_CONTEXT = b"xdv-attestation"


class ProviderIdentity:
    """A provider's signing identity: its id and a secret hybrid (Ed25519 + ML-DSA-65) key.

    The secret never leaves this object and its key file: it is not part of any record, repr,
    trace or message, and the object refuses to be copied or pickled. Build one with
    :meth:`from_store` (the key in a key store, pinned in its registry) or from a key pair the
    provider keeps itself.
    """

    __slots__ = ("_keys", "provider_id")
    scheme = "hybrid-ed25519-mldsa65"

    def __init__(self, provider_id: str, keys: HybridKeyPair) -> None:
        self.provider_id = check_provider_id(provider_id)
        self._keys = keys

    @classmethod
    def from_store(cls, provider_id: str, store: KeyStore | None = None) -> ProviderIdentity:
        """The identity kept in ``store`` (default: the node's key store): its key is drawn at
        random and its public half pinned in the store's registry on first use; a key file
        replaced since is refused (PROVIDER_KEY_MISMATCH)."""
        store = store if store is not None else KeyStore.default()
        keys = store.provider_key(provider_id)
        store.provider_registry().pin(provider_id, keys.public)
        return cls(provider_id, keys)

    @property
    def public(self) -> HybridPublicKey:
        """The public half: what a registry pins and a verifier checks against."""
        return self._keys.public

    @property
    def fingerprint(self) -> str:
        """The public key's fingerprint (hex). Machine-specific: never put it in a trace."""
        return self._keys.public.fingerprint

    def sign(self, message: bytes, *, context: bytes) -> bytes:
        """A hybrid signature over ``message`` under ``context`` (randomized: keep it out of
        traces)."""
        return self._keys.sign(message, context=context)

    def __repr__(self) -> str:
        return f"ProviderIdentity({self.provider_id!r}, fingerprint={self.fingerprint[:16]}…)"

    def __reduce__(self) -> NoReturn:
        raise XdvError(
            f"the identity of provider {self.provider_id!r} holds a secret key and cannot be "
            "copied or serialized",
            code=ErrorCode.KEY_STORE_INVALID,
            where=f"provider {self.provider_id}",
        )


class StoredIdentity:
    """A provider's :attr:`identity`: the one it was given, else its key in its key store
    (default: the node's), created and pinned on first use (:meth:`ProviderIdentity.from_store`).

    Mixed into XDV's providers; the provider sets ``_identity`` (or None) and ``_key_store``.
    """

    provider_id: str
    _identity: ProviderIdentity | None
    _key_store: KeyStore | None

    @property
    def identity(self) -> ProviderIdentity:
        """The identity that signs for this provider (see the class docstring)."""
        if self._identity is None:
            self._identity = ProviderIdentity.from_store(self.provider_id, self._key_store)
        return self._identity


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with a hybrid key: a :class:`HybridKeyPair` or a provider identity."""

    @property
    def public(self) -> HybridPublicKey:
        """The public half of the signing key."""
        ...

    def sign(self, message: bytes, *, context: bytes) -> bytes:
        """A hybrid signature over ``message`` under ``context``."""
        ...


@runtime_checkable
class AttestableProvider(Protocol):
    """The provider model every Q and Φ provider follows (see the module docstring)."""

    provider_id: str

    @property
    def identity(self) -> ProviderIdentity:
        """The provider's signing identity (its public half is pinned per provider id)."""
        ...

    def measurement(self) -> str:
        """Hex SHA-256 over the provider's code and canonical configuration
        (:func:`measure_provider`)."""
        ...

    def declaration(self) -> dict[str, Any]:
        """Trace-encodable declaration of capabilities and limits."""
        ...


_EMBEDDED: set[type] = set()


def embedded_provider(cls: type[Any]) -> type[Any]:
    """Mark a provider class as one of XDV's own in-process providers (class decorator).

    Only instances of exactly these classes are attested by the verifier itself; a subclass,
    or a class from elsewhere however it is named, must be attested explicitly.
    """
    _EMBEDDED.add(cls)
    return cls


def measure_provider(
    sources: Iterable[str | os.PathLike[str]], configuration: Mapping[str, Any]
) -> str:
    """The one provider measurement format, used by every Q and Φ provider.

    Hex SHA-256 over a version tag, then for each source file (in the order given) its base
    name and its bytes, each preceded by its length, then the canonical encoding of the
    provider's ``configuration`` (library versions, limits, calibration: whatever changes what
    the provider computes).
    """
    digest = hashlib.sha256(b"xdv-provider-measurement-1\0")
    for source in sources:
        path = Path(source)
        name = path.name.encode("utf-8")
        data = path.read_bytes()
        digest.update(len(name).to_bytes(2, "big") + name)
        digest.update(len(data).to_bytes(8, "big") + data)
    digest.update(canonical_metadata(dict(configuration)))
    return digest.hexdigest()


def _failed(message: str, provider: str) -> XdvError:
    return XdvError(message, code=ErrorCode.ATTESTATION_FAILED, where=f"provider {provider}")


_MEASUREMENT = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """The provider model's facts about one provider: who it is and what it runs.

    :meth:`of` reads the facts from a live provider and checks their form; :meth:`check`
    judges a live provider against facts read earlier. Both the attestation verifier (at every
    bind) and a manager that must re-attest a provider later (Q reservation and recalibration)
    judge through these two methods, so there is one attestation path.
    """

    provider_id: str
    identity: HybridPublicKey = field(repr=False)
    measurement: str
    declaration: Mapping[str, Any]

    @classmethod
    def of(cls, provider: Any) -> ProviderFacts:
        """The facts of ``provider`` now; ATTESTATION_FAILED if it does not follow the provider
        model or its facts are malformed (an identity that is not its own, a measurement that is
        not a hex SHA-256, a declaration that cannot be encoded canonically)."""
        provider_id = getattr(provider, "provider_id", None)
        if (
            not isinstance(provider_id, str)
            or not provider_id
            or not isinstance(provider, AttestableProvider)
        ):
            raise _failed("the provider exposes no identity to attest", repr(provider_id))
        identity = provider.identity
        if not isinstance(identity, ProviderIdentity) or identity.provider_id != provider_id:
            raise _failed("its identity is not a provider identity of its own", provider_id)
        measurement = provider.measurement()
        if not isinstance(measurement, str) or not _MEASUREMENT.match(measurement):
            raise _failed("its measurement is not a hex SHA-256", provider_id)
        try:
            declaration = canonicalize(dict(provider.declaration()), "provider declaration")
        except (XdvError, TypeError, ValueError):
            raise _failed("its declaration cannot be encoded canonically", provider_id) from None
        return cls(provider_id, identity.public, measurement, declaration)

    def check(self, provider: Any) -> ProviderFacts:
        """Judge ``provider`` against these facts: ATTESTATION_FAILED unless it still holds the
        same identity and its measurement and declaration are the same (a provider whose code or
        configuration changed, a recalibration for instance, must be attested again). Returns
        the facts now."""
        now = ProviderFacts.of(provider)
        if now.provider_id != self.provider_id:
            raise _failed(f"it is not provider {self.provider_id!r}", now.provider_id)
        if now.identity != self.identity:
            raise _failed("it no longer holds the attested identity key", self.provider_id)
        if now.measurement != self.measurement:
            raise _failed(
                "its code or configuration no longer matches the attested measurement "
                "(re-attest it after a change such as a recalibration)",
                self.provider_id,
            )
        if now.declaration != self.declaration:
            raise _failed("its declaration differs from the attested one", self.provider_id)
        return now

    def declaration_digest(self) -> str:
        """SHA-256 of the canonical declaration (what traces record of it)."""
        return hashlib.sha256(canonical_metadata(dict(self.declaration))).hexdigest()

    def to_record(self) -> dict[str, Any]:
        """The deterministic facts a trace may hold: no key (keys differ between machines)."""
        return {
            "provider": self.provider_id,
            "measurement": self.measurement,
            "declaration": self.declaration_digest(),
        }


@dataclass(frozen=True, slots=True)
class ProviderAttestation:
    """A signed statement of a provider's facts: its identity, measurement and declaration.

    ``signer`` is the attester's public key: the node key for an embedded provider, the
    provider's own identity or a key the operator trusts for it otherwise.
    """

    provider_id: str
    identity: HybridPublicKey
    measurement: str
    declaration: Mapping[str, Any]
    issued_at: int = 0
    valid_until: int | None = None
    signer: HybridPublicKey | None = None
    """The attester's key; None means the provider's own identity signed."""
    signature: bytes = field(default=b"", repr=False)

    @property
    def attester(self) -> HybridPublicKey:
        """The key that signed the attestation."""
        return self.signer if self.signer is not None else self.identity

    def payload(self) -> bytes:
        """The canonical bytes the attester signs."""
        return canonical_metadata(
            {
                "v": 2,
                "provider": self.provider_id,
                "identity": self.identity.to_record(),
                "measurement": self.measurement,
                "declaration": dict(self.declaration),
                "issued": self.issued_at,
                "valid_until": self.valid_until,
                "attester": self.attester.to_record(),
            }
        )

    @property
    def facts(self) -> ProviderFacts:
        """The provider facts this attestation vouches for."""
        return ProviderFacts(self.provider_id, self.identity, self.measurement, self.declaration)

    def to_record(self) -> dict[str, Any]:
        """The deterministic facts the trace records (no key, no signature)."""
        record = self.facts.to_record()
        if self.valid_until is not None:
            record["valid_until"] = self.valid_until
        return record


def attest(
    provider: AttestableProvider,
    attester: Signer,
    now: int = 0,
    valid_until: int | None = None,
) -> ProviderAttestation:
    """Attest ``provider`` as it is now, signed by ``attester`` (the node key, the provider's
    own identity, or a key the verifier is told to trust for it)."""
    facts = ProviderFacts.of(provider)
    signer = None if attester.public == facts.identity else attester.public
    unsigned = ProviderAttestation(
        facts.provider_id,
        facts.identity,
        facts.measurement,
        facts.declaration,
        now,
        valid_until,
        signer,
    )
    signature = attester.sign(unsigned.payload(), context=_CONTEXT)
    return ProviderAttestation(
        unsigned.provider_id,
        unsigned.identity,
        unsigned.measurement,
        unsigned.declaration,
        unsigned.issued_at,
        unsigned.valid_until,
        unsigned.signer,
        signature,
    )


class AttestationVerifier:
    """Holds registered attestations and judges providers against them (see module docstring).

    ``node_key`` signs the verifier's own attestations of embedded providers (default: the key
    store's node key, loaded or created on first need); ``registry`` pins provider identities
    (default: the key store's provider registry); ``key_store`` is that store (default: the
    node's, ``$XDV_HOME/keys``). ``attesters`` maps provider ids to the fingerprint of the one key
    allowed to attest them; without an entry the node key and the provider's own identity may.
    ``embedded`` lets the verifier attest XDV's own in-process providers itself.
    """

    def __init__(
        self,
        *,
        node_key: HybridKeyPair | None = None,
        key_store: KeyStore | None = None,
        registry: ProviderRegistry | None = None,
        attesters: Mapping[str, str] | None = None,
        embedded: bool = True,
    ) -> None:
        self._attestations: dict[str, ProviderAttestation] = {}
        self._attesters = dict(attesters or {})
        self._embedded = embedded
        self._node_key = node_key
        self._key_store = key_store
        self._registry = registry

    def _store(self) -> KeyStore:
        if self._key_store is None:
            self._key_store = KeyStore.default()
        return self._key_store

    @property
    def node_key(self) -> HybridKeyPair:
        """The key that signs this verifier's attestations of embedded providers."""
        if self._node_key is None:
            self._node_key = self._store().load_or_create()[0]
        return self._node_key

    @property
    def registry(self) -> ProviderRegistry:
        """The provider registry identities are pinned in."""
        if self._registry is None:
            self._registry = self._store().provider_registry()
        return self._registry

    def register(self, attestation: ProviderAttestation) -> None:
        """Register (or replace, after re-attestation) the attestation of a provider."""
        self._attestations[attestation.provider_id] = attestation

    def attestation(self, provider_id: str) -> ProviderAttestation | None:
        """The attestation registered for ``provider_id``, if any."""
        return self._attestations.get(provider_id)

    def _self_attest(self, provider: AttestableProvider, now: int) -> ProviderAttestation:
        attestation = attest(provider, self.node_key, now)
        self.register(attestation)
        return attestation

    def _check_attester(self, attestation: ProviderAttestation) -> None:
        provider_id, attester = attestation.provider_id, attestation.attester
        required = self._attesters.get(provider_id)
        if required is not None:
            if attester.fingerprint != required:
                raise _failed(
                    "its attestation is not signed by the key trusted to attest it", provider_id
                )
        elif attester != attestation.identity and attester != self.node_key.public:
            raise _failed(
                "its attestation is signed by a key that is neither the node key nor the "
                "provider's own identity",
                provider_id,
            )

    def verify(self, provider: Any, now: int) -> dict[str, Any]:
        """Judge ``provider`` at logical time ``now``; return the trace record or raise
        XdvError(ATTESTATION_FAILED) saying why (never naming a key)."""
        provider_id = getattr(provider, "provider_id", None)
        if not isinstance(provider_id, str) or not isinstance(provider, AttestableProvider):
            raise _failed("the provider exposes no identity to attest", repr(provider_id))
        attestation = self._attestations.get(provider_id)
        if attestation is None:
            if self._embedded and type(provider) in _EMBEDDED:
                attestation = self._self_attest(provider, now)
            else:
                raise _failed("the provider is not attested", provider_id)
        try:
            attestation.attester.verify(
                attestation.payload(), attestation.signature, context=_CONTEXT
            )
        except UnauthorizedError as error:
            raise _failed(
                f"its attestation's signature is invalid: {error.message}", provider_id
            ) from None
        self._check_attester(attestation)
        attestation.facts.check(provider)
        try:
            self.registry.pin(provider_id, attestation.identity)
        except XdvError as error:
            if error.code is not ErrorCode.PROVIDER_KEY_MISMATCH:
                raise
            raise _failed(
                "its identity key is not the one pinned for it in the provider registry",
                provider_id,
            ) from None
        if attestation.valid_until is not None and now > attestation.valid_until:
            raise _failed(
                f"its attestation expired at logical time {attestation.valid_until} (now {now})",
                provider_id,
            )
        return attestation.to_record()
