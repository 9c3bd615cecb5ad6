"""The conformance helper every Q and Φ provider passes: :func:`assert_provider_consistent`.

It checks a provider against the provider model the domains share
(:class:`xdv.security.AttestableProvider`): a stable id, a measurement that is a hex SHA-256
and does not drift, a canonical declaration, and an attestation that verifies and records
deterministic facts only (no key, no signature).
"""

from __future__ import annotations

from typing import Any

from xdv.errors import XdvError
from xdv.security._attestation import (
    AttestableProvider,
    AttestationVerifier,
    ProviderFacts,
    attest,
)
from xdv.security._keys import HybridKeyPair
from xdv.trace import canonicalize

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
    # An attestation of the provider as it is verifies, and records deterministic facts only.
    verifier = AttestationVerifier(embedded=False)
    verifier.register(attest(provider, HybridKeyPair.from_seed(b"provider conformance")))
    record = verifier.verify(provider, 0)
    expected = {
        "provider": facts.provider_id,
        "measurement": facts.measurement,
        "declaration": facts.declaration_digest(),
    }
    if record != expected:
        raise _fail(provider, f"its attestation records {record}, expected {expected}")
    return facts
