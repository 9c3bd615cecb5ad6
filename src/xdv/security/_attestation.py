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
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security._keys import HybridKeyPair, HybridPublicKey
from xdv.trace import canonical_metadata, canonicalize

__all__ = [
    "AttestableProvider",
    "AttestationVerifier",
    "ProviderAttestation",
    "ProviderFacts",
    "attest",
    "embedded_provider",
    "measure_provider",
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
    """The provider model shared by Q and Φ: who a provider is and what it runs, as judged.

    :meth:`of` reads the facts from a live provider and checks their form; :meth:`check`
    judges a live provider against facts read earlier. Both the attestation verifier (at every
    bind) and a manager that must re-attest a provider later (Q recalibration) judge through
    these two methods, so there is one attestation path.
    """

    provider_id: str
    measurement: str
    declaration: Mapping[str, Any]

    @classmethod
    def of(cls, provider: Any) -> ProviderFacts:
        """The facts of ``provider`` now; ATTESTATION_FAILED if it exposes none or they are
        malformed (a measurement that is not a hex SHA-256, a declaration that cannot be
        encoded canonically)."""
        provider_id = getattr(provider, "provider_id", None)
        if (
            not isinstance(provider_id, str)
            or not provider_id
            or not isinstance(provider, AttestableProvider)
        ):
            raise _failed("the provider exposes no identity to attest", repr(provider_id))
        measurement = provider.measurement()
        if not isinstance(measurement, str) or not _MEASUREMENT.match(measurement):
            raise _failed("its measurement is not a hex SHA-256", provider_id)
        try:
            declaration = canonicalize(dict(provider.declaration()), "provider declaration")
        except (XdvError, TypeError, ValueError):
            raise _failed("its declaration cannot be encoded canonically", provider_id) from None
        return cls(provider_id, measurement, declaration)

    def check(self, provider: Any) -> ProviderFacts:
        """Judge ``provider`` against these facts: ATTESTATION_FAILED unless its measurement and
        declaration are still the same (a provider whose code or configuration changed, a
        recalibration for instance, must be attested again). Returns the facts now."""
        now = ProviderFacts.of(provider)
        if now.provider_id != self.provider_id:
            raise _failed(f"it is not provider {self.provider_id!r}", now.provider_id)
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

    @property
    def facts(self) -> ProviderFacts:
        """The provider facts this attestation vouches for."""
        return ProviderFacts(self.provider_id, self.measurement, self.declaration)

    def to_record(self) -> dict[str, Any]:
        """The deterministic facts the trace records (no key, no signature)."""
        record: dict[str, Any] = {
            "provider": self.provider_id,
            "measurement": self.measurement,
            "declaration": self.facts.declaration_digest(),
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
    facts = ProviderFacts.of(provider)
    unsigned = ProviderAttestation(
        provider_id=facts.provider_id,
        identity=identity.public,
        measurement=facts.measurement,
        declaration=facts.declaration,
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
        attestation.facts.check(provider)
        if attestation.valid_until is not None and now > attestation.valid_until:
            raise _failed(
                f"its attestation expired at logical time {attestation.valid_until} (now {now})",
                provider_id,
            )
        return attestation.to_record()
