"""Hybrid signing keys: Ed25519 and ML-DSA-65 side by side.

A hybrid signature is valid only when *both* halves verify, so it stays unforgeable as long as
either scheme is unbroken. Both halves sign the same domain-separated message::

    "XDV-SIG-1" || u8 len(context) || context || message

(ML-DSA also receives ``context`` as its FIPS 204 context string.) The encoded signature is a
fixed-length concatenation, checked for exact length before any verification::

    b"XS1" || Ed25519 signature (64 bytes) || ML-DSA-65 signature (3309 bytes)

Ed25519 signatures are deterministic; ML-DSA-65 signatures are hedged (randomized) in the library
used, so the same message signed twice gives different bytes. Signatures therefore never enter a
trace entry (whose bytes must be reproducible); they live in side files and returned objects.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xdv.errors import ErrorCode, UnauthorizedError

__all__ = ["SIGNATURE_SIZE", "HybridKeyPair", "HybridPublicKey"]

_TAG = b"XS1"
_ED25519_SIGNATURE_SIZE = 64
_MLDSA65_SIGNATURE_SIZE = 3309
_ED25519_PUBLIC_SIZE = 32
_MLDSA65_PUBLIC_SIZE = 1952
SIGNATURE_SIZE = len(_TAG) + _ED25519_SIGNATURE_SIZE + _MLDSA65_SIGNATURE_SIZE
"""Length in bytes of every encoded hybrid signature."""

_SEED_SIZE = 32
_CONTEXT_SIZE_MAX = 255


def _message(message: bytes, context: bytes) -> bytes:
    if len(context) > _CONTEXT_SIZE_MAX:
        raise UnauthorizedError(
            f"a signature context is at most {_CONTEXT_SIZE_MAX} bytes, got {len(context)}",
            code=ErrorCode.INVALID_ARGUMENT,
            where="signature",
        )
    return b"XDV-SIG-1" + bytes([len(context)]) + context + message


def _invalid(reason: str, where: str) -> UnauthorizedError:
    return UnauthorizedError(
        f"signature rejected: {reason}", code=ErrorCode.SIGNATURE_INVALID, where=where
    )


@dataclass(frozen=True, slots=True)
class HybridPublicKey:
    """The public half of a :class:`HybridKeyPair`: what a verifier needs."""

    ed25519: bytes
    mldsa65: bytes

    def __post_init__(self) -> None:
        if len(self.ed25519) != _ED25519_PUBLIC_SIZE or len(self.mldsa65) != _MLDSA65_PUBLIC_SIZE:
            raise UnauthorizedError(
                f"a hybrid public key is {_ED25519_PUBLIC_SIZE} + {_MLDSA65_PUBLIC_SIZE} bytes, "
                f"got {len(self.ed25519)} + {len(self.mldsa65)}",
                code=ErrorCode.KEY_STORE_INVALID,
                where="public key",
            )

    @property
    def fingerprint(self) -> str:
        """SHA-256 over both public keys, in hex: the key's stable name."""
        return hashlib.sha256(b"XDV-KEY-1" + self.ed25519 + self.mldsa65).hexdigest()

    def verify(self, message: bytes, signature: bytes, *, context: bytes) -> None:
        """Check a hybrid signature; raise UnauthorizedError(SIGNATURE_INVALID) unless both
        halves verify."""
        where = f"key {self.fingerprint[:16]}"
        if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_SIZE:
            size = len(signature) if isinstance(signature, bytes | bytearray) else "no"
            raise _invalid(f"expected {SIGNATURE_SIZE} bytes, got {size}", where)
        if signature[: len(_TAG)] != _TAG:
            raise _invalid("unknown signature tag", where)
        signed = _message(message, context)
        ed_part = bytes(signature[len(_TAG) : len(_TAG) + _ED25519_SIGNATURE_SIZE])
        ml_part = bytes(signature[len(_TAG) + _ED25519_SIGNATURE_SIZE :])
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.ed25519).verify(ed_part, signed)
        except InvalidSignature:
            raise _invalid("the Ed25519 half does not verify", where) from None
        try:
            mldsa.MLDSA65PublicKey.from_public_bytes(self.mldsa65).verify(ml_part, signed, context)
        except InvalidSignature:
            raise _invalid("the ML-DSA-65 half does not verify", where) from None

    def to_record(self) -> dict[str, Any]:
        """A trace- and JSON-friendly form (hex strings)."""
        return {"ed25519": self.ed25519.hex(), "mldsa65": self.mldsa65.hex()}

    @classmethod
    def from_record(cls, record: Any) -> HybridPublicKey:
        """Rebuild a key from :meth:`to_record` output; typed error if malformed."""
        try:
            return cls(bytes.fromhex(record["ed25519"]), bytes.fromhex(record["mldsa65"]))
        except (KeyError, TypeError, ValueError) as error:
            raise UnauthorizedError(
                f"malformed public key record: {error}",
                code=ErrorCode.KEY_STORE_INVALID,
                where="public key",
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HybridPublicKey):
            return NotImplemented
        return hmac.compare_digest(self.ed25519 + self.mldsa65, other.ed25519 + other.mldsa65)

    def __hash__(self) -> int:
        return hash(self.ed25519)


class HybridKeyPair:
    """An Ed25519 + ML-DSA-65 signing key pair.

    The private material is two 32-byte seeds; it is never part of a record, a trace or a
    message. :meth:`from_seed` derives both seeds from one secret with HKDF-SHA256, so a key can
    be rebuilt from a stored seed; :meth:`generate` draws a fresh one from the OS.
    """

    __slots__ = ("_ed25519", "_mldsa65", "_seed", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) < _SEED_SIZE:
            raise UnauthorizedError(
                f"a key seed needs at least {_SEED_SIZE} bytes, got {len(seed)}",
                code=ErrorCode.KEY_STORE_INVALID,
                where="key pair",
            )
        self._seed = bytes(seed)
        material = HKDF(
            algorithm=SHA256(),
            length=2 * _SEED_SIZE,
            salt=b"XDV-KEYPAIR-1",
            info=b"ed25519|mldsa65",
        ).derive(self._seed)
        self._ed25519 = ed25519.Ed25519PrivateKey.from_private_bytes(material[:_SEED_SIZE])
        self._mldsa65 = mldsa.MLDSA65PrivateKey.from_seed_bytes(material[_SEED_SIZE:])
        self.public = HybridPublicKey(
            self._ed25519.public_key().public_bytes_raw(),
            self._mldsa65.public_key().public_bytes_raw(),
        )

    @classmethod
    def from_seed(cls, seed: bytes) -> HybridKeyPair:
        """A key pair derived deterministically from ``seed`` (any length; hashed first)."""
        return cls(hashlib.sha256(b"XDV-SEED-1" + bytes(seed)).digest())

    @classmethod
    def generate(cls) -> HybridKeyPair:
        """A fresh key pair from the operating system's random source."""
        import secrets

        return cls(secrets.token_bytes(_SEED_SIZE))

    def seed_bytes(self) -> bytes:
        """The secret seed, for the key store only."""
        return self._seed

    def sign(self, message: bytes, *, context: bytes) -> bytes:
        """Sign ``message`` with both schemes under ``context``; see the module docstring."""
        signed = _message(message, context)
        return _TAG + self._ed25519.sign(signed) + self._mldsa65.sign(signed, context)

    def __repr__(self) -> str:
        return f"HybridKeyPair(fingerprint={self.public.fingerprint[:16]}…)"
