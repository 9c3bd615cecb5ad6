"""Provider identities: how a provider signs what it vouches for (calibration contracts).

A provider's identity is a hybrid Ed25519 + ML-DSA-65 key pair (:mod:`xdv.security`) derived
deterministically from its id and its measurement, so a provider whose code or configuration
changes gets a different identity.

Signatures never enter a trace (ML-DSA signatures are randomized): the trace records digests of
the signed bodies, and the signed objects are kept beside it (in the manager's API).
"""

from __future__ import annotations

import hashlib

from xdv.security import HybridKeyPair, HybridPublicKey

__all__ = ["ProviderIdentity"]

_CONTEXT = b"xdv-q-calibration"


class ProviderIdentity:
    """A provider's signing identity, derived deterministically from its id and measurement."""

    scheme = "hybrid-ed25519-mldsa65"

    def __init__(self, provider_id: str, measurement: str) -> None:
        seed = hashlib.sha256(f"xdv-q-provider\0{provider_id}\0{measurement}".encode()).digest()
        self.provider_id = provider_id
        self._keys = HybridKeyPair.from_seed(seed)

    @property
    def public(self) -> HybridPublicKey:
        """The public half, for anyone checking a calibration contract."""
        return self._keys.public

    @property
    def fingerprint(self) -> str:
        """A stable public name of the identity (hex)."""
        return str(self._keys.public.fingerprint)

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (a canonical encoding of a contract body)."""
        return bytes(self._keys.sign(message, context=_CONTEXT))

    def verify(self, message: bytes, signature: bytes, where: str) -> None:
        """Raise SIGNATURE_INVALID unless ``signature`` is this identity's over ``message``."""
        self._keys.public.verify(message, signature, context=_CONTEXT)
