"""The conformance helper every Q and Φ provider passes: :func:`assert_provider_consistent`.

It checks a provider against the provider model the domains share
(:class:`xdv.security.AttestableProvider`): a stable id, an identity of its own whose secret key
signs (and cannot be pickled), a measurement that is a hex SHA-256 and does not drift, a
canonical declaration, and an attestation (by a node key or by its own identity) that verifies
and records deterministic facts only (no key, no fingerprint, no signature).
"""

from __future__ import annotations

import pickle
from typing import Any

from xdv.errors import XdvError
from xdv.security._attestation import (
    AttestableProvider,
    AttestationVerifier,
    ProviderFacts,
    ProviderIdentity,
    attest,
)
from xdv.security._keys import HybridKeyPair
from xdv.security._keystore import ProviderRegistry
from xdv.trace import canonical_metadata, canonicalize

__all__ = ["assert_provider_consistent"]


def _fail(provider: Any, message: str) -> AssertionError:
    return AssertionError(f"{type(provider).__name__}: {message}")


def assert_provider_consistent(provider: Any) -> ProviderFacts:
    """Check ``provider`` against the provider model Q and Φ share; return its facts."""
    if not isinstance(provider, AttestableProvider):
        raise _fail(provider, "does not follow the provider model (AttestableProvider)")
    if not isinstance(provider.provider_id, str) or not provider.provider_id:
        raise _fail(provider, "provider_id must be a non-empty string")
    try:
        facts = ProviderFacts.of(provider)
    except XdvError as error:
        raise _fail(provider, f"its facts are malformed: {error.message}") from None
    if provider.measurement() != facts.measurement:
        raise _fail(provider, "measurement() must not drift between calls")
    if canonicalize(provider.declaration(), "declaration()") != facts.declaration:
        raise _fail(provider, "declaration() must be canonical and stable")
    facts.check(provider)
    identity = provider.identity
    if not isinstance(identity, ProviderIdentity) or identity.public != facts.identity:
        raise _fail(provider, "its identity must be a ProviderIdentity of its own")
    probe = b"provider conformance probe"
    identity.public.verify(probe, identity.sign(probe, context=b"probe"), context=b"probe")
    try:
        pickle.dumps(identity)
    except XdvError:
        pass
    else:
        raise _fail(provider, "its identity, which holds a secret key, could be pickled")
    # Attested by a node key, or by its own identity, it verifies; the verdict records the
    # deterministic facts only, never a key or a fingerprint (they differ between machines).
    node_key = HybridKeyPair.from_seed(b"provider conformance node key")
    expected = facts.to_record()
    for attester in (node_key, identity):
        verifier = AttestationVerifier(node_key=node_key, registry=ProviderRegistry())
        verifier.register(attest(provider, attester))
        record = verifier.verify(provider, 0)
        if record != expected:
            raise _fail(provider, f"its attestation records {record}, expected {expected}")
        encoded = canonical_metadata(record).decode("utf-8", "replace")
        if any(
            secret in encoded
            for secret in (
                identity.fingerprint,
                identity.public.ed25519.hex(),
                node_key.public.fingerprint,
            )
        ):
            raise _fail(provider, "its attestation record names a key")
    return facts
