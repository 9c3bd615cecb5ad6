"""Provider identities: how a provider signs what it vouches for (calibration contracts).

When the security layer (:mod:`xdv.security`, hybrid Ed25519 + ML-DSA-65) is installed, a
provider's identity is a :class:`~xdv.security.HybridKeyPair` derived from its id and its
measurement. Until then a minimal stand-in signs with HMAC-SHA256 under a key derived the same
way; it proves integrity and binding to the measured provider, not third-party verifiability.

Signatures never enter a trace (ML-DSA signatures are randomized): the trace records digests of
the signed bodies, and the signed objects are kept beside it (in the manager's API).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from typing import Any

from xdv.errors import ErrorCode, UnauthorizedError

__all__ = ["ProviderIdentity"]

_CONTEXT = b"xdv-q-calibration"


class ProviderIdentity:
    """A provider's signing identity, derived deterministically from its id and measurement."""

    def __init__(self, provider_id: str, measurement: str) -> None:
        seed = hashlib.sha256(f"xdv-q-provider\0{provider_id}\0{measurement}".encode()).digest()
        self.provider_id = provider_id
        self._hybrid: Any = None
        self._secret = seed
        try:  # the security layer, when present, supplies real hybrid signatures
            security: Any = importlib.import_module("xdv.security")
        except ImportError:
            security = None
        if security is not None:
            self._hybrid = security.HybridKeyPair.from_seed(seed)
        self.scheme = "hybrid-ed25519-mldsa65" if self._hybrid is not None else "hmac-sha256"

    @property
    def fingerprint(self) -> str:
        """A stable public name of the identity (hex)."""
        if self._hybrid is not None:
            return str(self._hybrid.public.fingerprint)
        return hashlib.sha256(b"fingerprint\0" + self._secret).hexdigest()[:32]

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (a canonical encoding of a contract body)."""
        if self._hybrid is not None:
            return bytes(self._hybrid.sign(message, context=_CONTEXT))
        return hmac.new(self._secret, _CONTEXT + message, hashlib.sha256).digest()

    def verify(self, message: bytes, signature: bytes, where: str) -> None:
        """Raise SIGNATURE_INVALID unless ``signature`` is this identity's over ``message``."""
        if self._hybrid is not None:
            self._hybrid.public.verify(message, signature, context=_CONTEXT)
            return
        expected = hmac.new(self._secret, _CONTEXT + message, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise UnauthorizedError(
                f"the signature of provider {self.provider_id!r} does not verify",
                code=ErrorCode.SIGNATURE_INVALID,
                where=where,
            )
