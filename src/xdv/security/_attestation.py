"""Provider attestation: who a Q or Φ provider is, what code and configuration it runs, and what
it declares it can do, signed by the provider's identity key.

A provider (any object with ``provider_id``, ``measurement()`` and ``declaration()``) is attested
by a :class:`ProviderAttestation`: the provider id, the identity public key, the measurement (a
SHA-256 over the provider's code and canonical configuration, computed by the provider), the
declaration (operations, sizes and limits, cryptographic compliance), a validity window in
logical time, and a hybrid signature by the identity key over all of it.

The kernel asks an :class:`AttestationVerifier` about every provider of a domain each time a
process binds to that domain, and refuses the bind (ATTESTATION_FAILED) unless: an attestation is
registered for the provider; its signature verifies; its identity is the one pinned for that
provider, when one is; the provider's measurement and declaration *now* equal the attested ones
(so a provider whose code or configuration changed, a recalibration for instance, must be
attested again); and the logical time lies within its validity. Each verdict is traced as an
ATTESTATION entry (deterministic facts only: provider, measurement, validity, verdict).

XDV's own embedded providers (simulators that run in the kernel's process, marked with
:func:`embedded_provider`) are part of the trusted base: by default the verifier attests them
itself on first use with a key of its own, recording their measurement. Any other provider,
including a subclass of an embedded one, must be registered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security._keys import HybridKeyPair, HybridPublicKey
from xdv.trace import canonical_metadata, canonicalize

__all__ = [
    "AttestableProvider",
    "AttestationVerifier",
    "ProviderAttestation",
    "attest",
    "embedded_provider",
    "measure",
]

_CONTEXT = b"xdv-attestation"


@runtime_checkable
class AttestableProvider(Protocol):
    """What a provider exposes to be attested."""

    provider_id: str

    def measurement(self) -> str:
        """Hex SHA-256 over the provider's code and canonical configuration."""
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


def measure(*sources: str, config: Mapping[str, Any] | None = None) -> str:
    """A measurement helper for providers: SHA-256 over the named source files' bytes (in
    order) and the canonical encoding of ``config``."""
    digest = hashlib.sha256(b"XDV-MEASURE-1")
    for source in sources:
        with open(source, "rb") as handle:
            data = handle.read()
        digest.update(len(data).to_bytes(8, "big") + data)
    digest.update(canonical_metadata(dict(config or {})))
    return digest.hexdigest()


def _failed(message: str, provider: str) -> XdvError:
    return XdvError(message, code=ErrorCode.ATTESTATION_FAILED, where=f"provider {provider}")


@dataclass(frozen=True, slots=True)
class ProviderAttestation:
    """A signed statement of a provider's identity, measurement and declaration."""

    provider_id: str
    identity: HybridPublicKey
    measurement: str
    declaration: Mapping[str, Any]
    issued_at: int = 0
    valid_until: int | None = None
    signature: bytes = field(default=b"", repr=False)

    def payload(self) -> bytes:
        return canonical_metadata(
            {
                "v": 1,
                "provider": self.provider_id,
                "identity": self.identity.to_record(),
                "measurement": self.measurement,
                "declaration": dict(self.declaration),
                "issued": self.issued_at,
                "valid_until": self.valid_until,
            }
        )

    def to_record(self) -> dict[str, Any]:
        """The deterministic facts the trace records (no key, no signature)."""
        record: dict[str, Any] = {
            "provider": self.provider_id,
            "measurement": self.measurement,
            "declaration": hashlib.sha256(canonical_metadata(dict(self.declaration))).hexdigest(),
        }
        if self.valid_until is not None:
            record["valid_until"] = self.valid_until
        return record


def attest(
    provider: AttestableProvider,
    identity: HybridKeyPair,
    now: int = 0,
    valid_until: int | None = None,
) -> ProviderAttestation:
    """Attest ``provider`` as it is now, signed with its ``identity`` key."""
    declaration = canonicalize(dict(provider.declaration()), "provider declaration")
    unsigned = ProviderAttestation(
        provider_id=provider.provider_id,
        identity=identity.public,
        measurement=provider.measurement(),
        declaration=declaration,
        issued_at=now,
        valid_until=valid_until,
    )
    signature = identity.sign(unsigned.payload(), context=_CONTEXT)
    return ProviderAttestation(
        unsigned.provider_id,
        unsigned.identity,
        unsigned.measurement,
        unsigned.declaration,
        unsigned.issued_at,
        unsigned.valid_until,
        signature,
    )


class AttestationVerifier:
    """Holds registered attestations and judges providers against them (see module docstring).

    ``pinned`` maps provider ids to the identity fingerprints allowed to attest them;
    ``embedded`` lets the verifier attest XDV's own in-process providers itself.
    """

    def __init__(self, *, pinned: Mapping[str, str] | None = None, embedded: bool = True) -> None:
        self._attestations: dict[str, ProviderAttestation] = {}
        self._pinned = dict(pinned or {})
        self._embedded = embedded
        self._own_key: HybridKeyPair | None = None

    def register(self, attestation: ProviderAttestation) -> None:
        """Register (or replace, after re-attestation) the attestation of a provider."""
        self._attestations[attestation.provider_id] = attestation

    def attestation(self, provider_id: str) -> ProviderAttestation | None:
        return self._attestations.get(provider_id)

    def _self_attest(self, provider: AttestableProvider, now: int) -> ProviderAttestation:
        if self._own_key is None:
            self._own_key = HybridKeyPair.generate()
        self._pinned.setdefault(provider.provider_id, self._own_key.public.fingerprint)
        attestation = attest(provider, self._own_key, now)
        self.register(attestation)
        return attestation

    def verify(self, provider: Any, now: int) -> dict[str, Any]:
        """Judge ``provider`` at logical time ``now``; return the trace record or raise
        XdvError(ATTESTATION_FAILED) saying why."""
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
            attestation.identity.verify(
                attestation.payload(), attestation.signature, context=_CONTEXT
            )
        except UnauthorizedError as error:
            raise _failed(
                f"its attestation's signature is invalid: {error.message}", provider_id
            ) from None
        pinned = self._pinned.get(provider_id)
        if pinned is not None and attestation.identity.fingerprint != pinned:
            raise _failed("its attestation is signed by an identity not pinned for it", provider_id)
        if provider.measurement() != attestation.measurement:
            raise _failed(
                "its code or configuration no longer matches the attested measurement "
                "(re-attest it after a change such as a recalibration)",
                provider_id,
            )
        declaration = canonicalize(dict(provider.declaration()), "provider declaration")
        if declaration != canonicalize(dict(attestation.declaration), "attested declaration"):
            raise _failed("its declaration differs from the attested one", provider_id)
        if attestation.valid_until is not None and now > attestation.valid_until:
            raise _failed(
                f"its attestation expired at logical time {attestation.valid_until} (now {now})",
                provider_id,
            )
        return attestation.to_record()
