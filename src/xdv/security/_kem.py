"""Hybrid key agreement: X25519 and ML-KEM-768 combined into session keys, with key confirmation.

The initiator knows the responder's static :class:`KemPublicKey` (an X25519 key and an ML-KEM-768
encapsulation key). It makes an ephemeral X25519 key, computes the X25519 shared secret, and
encapsulates an ML-KEM shared secret; it sends the responder an :class:`Encapsulation` (its
ephemeral public key and the ML-KEM ciphertext). Both sides then derive, with HKDF-SHA256::

    ikm  = X25519 secret || ML-KEM secret
    salt = SHA-256("XDV-KEM-1" || responder keys || ephemeral key || ciphertext || context)
    okm  = HKDF(ikm, salt, info="XDV hybrid session v1", 128 bytes)
         = key initiator→responder | key responder→initiator | confirm key I | confirm key R

so the session keys stay secret as long as either exchange is unbroken, and they are bound to the
whole transcript. Each side sends an HMAC-SHA256 confirmation tag over the transcript. The tags are
mandatory: ML-KEM answers a tampered ciphertext with a different secret *without an error*
(implicit rejection), so only the confirmation tells the two sides that they agree.
:meth:`SessionKeys.confirm_peer` raises KEY_CONFIRMATION_FAILED on a mismatch.

Everything after the two shared secrets is a pure function of recorded inputs: the responder's
side (keys plus the received encapsulation) always derives the same session keys, and
:func:`derive_session` reproduces them from recorded secrets and transcript.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xdv.errors import ErrorCode, UnauthorizedError

__all__ = [
    "Encapsulation",
    "KemKeyPair",
    "KemPublicKey",
    "SessionKeys",
    "derive_session",
    "initiate",
    "respond",
]

_X25519_SIZE = 32
_MLKEM_PUBLIC_SIZE = 1184
_MLKEM_CIPHERTEXT_SIZE = 1088
_INFO = b"XDV hybrid session v1"


def _invalid(message: str) -> UnauthorizedError:
    return UnauthorizedError(message, code=ErrorCode.KEY_CONFIRMATION_FAILED, where="key agreement")


@dataclass(frozen=True, slots=True)
class KemPublicKey:
    """A responder's static public keys."""

    x25519: bytes
    mlkem768: bytes

    def __post_init__(self) -> None:
        if len(self.x25519) != _X25519_SIZE or len(self.mlkem768) != _MLKEM_PUBLIC_SIZE:
            raise _invalid("malformed hybrid KEM public key")

    def encoded(self) -> bytes:
        return self.x25519 + self.mlkem768


class KemKeyPair:
    """A responder's static X25519 + ML-KEM-768 key pair (private parts never exported)."""

    __slots__ = ("_mlkem", "_x25519", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) < 32:
            raise _invalid(f"a KEM key seed needs at least 32 bytes, got {len(seed)}")
        material = HKDF(
            algorithm=SHA256(), length=96, salt=b"XDV-KEM-KEYS-1", info=b"x25519|mlkem768"
        ).derive(seed)
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(material[:32])
        self._mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(material[32:])
        self.public = KemPublicKey(
            self._x25519.public_key().public_bytes_raw(),
            self._mlkem.public_key().public_bytes_raw(),
        )

    @classmethod
    def generate(cls) -> KemKeyPair:
        import secrets

        return cls(secrets.token_bytes(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> KemKeyPair:
        """Deterministic keys from a recorded seed (tests, reproducible setups)."""
        return cls(hashlib.sha256(b"XDV-KEM-SEED-1" + seed).digest())

    def __repr__(self) -> str:
        return "KemKeyPair(<private>)"


@dataclass(frozen=True, slots=True)
class Encapsulation:
    """What the initiator sends: its ephemeral X25519 public key and the ML-KEM ciphertext."""

    ephemeral: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if len(self.ephemeral) != _X25519_SIZE or len(self.ciphertext) != _MLKEM_CIPHERTEXT_SIZE:
            raise _invalid("malformed encapsulation")


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The keys of one session and both confirmation tags."""

    initiator_to_responder: bytes = field(repr=False)
    responder_to_initiator: bytes = field(repr=False)
    initiator_tag: bytes
    responder_tag: bytes
    transcript: bytes

    def confirm_peer(self, tag: bytes, peer: Literal["initiator", "responder"]) -> None:
        """Check the tag the peer sent; KEY_CONFIRMATION_FAILED unless both sides derived the
        same keys from the same transcript."""
        if peer not in ("initiator", "responder") or not isinstance(tag, bytes):
            raise _invalid(f"confirm_peer takes the peer's role and its tag bytes, got {peer!r}")
        expected = self.initiator_tag if peer == "initiator" else self.responder_tag
        if not hmac.compare_digest(expected, tag):
            raise _invalid(f"the {peer}'s key confirmation does not match: keys differ")


def _transcript(responder: KemPublicKey, encapsulation: Encapsulation, context: bytes) -> bytes:
    return hashlib.sha256(
        b"XDV-KEM-1"
        + responder.encoded()
        + encapsulation.ephemeral
        + encapsulation.ciphertext
        + len(context).to_bytes(4, "big")
        + context
    ).digest()


def derive_session(classical: bytes, post_quantum: bytes, transcript: bytes) -> SessionKeys:
    """The session keys from the two shared secrets and the transcript hash (pure)."""
    okm = HKDF(algorithm=SHA256(), length=128, salt=transcript, info=_INFO).derive(
        classical + post_quantum
    )
    confirm_initiator, confirm_responder = okm[64:96], okm[96:128]
    return SessionKeys(
        initiator_to_responder=okm[:32],
        responder_to_initiator=okm[32:64],
        initiator_tag=hmac.new(confirm_initiator, b"initiator" + transcript, "sha256").digest(),
        responder_tag=hmac.new(confirm_responder, b"responder" + transcript, "sha256").digest(),
        transcript=transcript,
    )


def initiate(
    responder: KemPublicKey, *, context: bytes = b"", ephemeral_seed: bytes | None = None
) -> tuple[Encapsulation, SessionKeys]:
    """Start a session with ``responder``: what to send, and this side's session keys."""
    if ephemeral_seed is not None:
        ephemeral = x25519.X25519PrivateKey.from_private_bytes(
            hashlib.sha256(b"XDV-KEM-EPHEMERAL-1" + ephemeral_seed).digest()
        )
    else:
        ephemeral = x25519.X25519PrivateKey.generate()
    try:
        classical = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(responder.x25519))
    except ValueError:  # an all-zero shared secret: the responder's key is a low-order point
        raise _invalid("the responder's X25519 key is not acceptable") from None
    post_quantum, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(
        responder.mlkem768
    ).encapsulate()
    encapsulation = Encapsulation(ephemeral.public_key().public_bytes_raw(), ciphertext)
    keys = derive_session(classical, post_quantum, _transcript(responder, encapsulation, context))
    return encapsulation, keys


def respond(keys: KemKeyPair, encapsulation: Encapsulation, *, context: bytes = b"") -> SessionKeys:
    """The responder's session keys for a received encapsulation (deterministic)."""
    peer = x25519.X25519PublicKey.from_public_bytes(encapsulation.ephemeral)
    try:
        classical = keys._x25519.exchange(peer)
    except ValueError:  # an all-zero shared secret: a low-order point
        raise _invalid("the initiator's ephemeral key is not acceptable") from None
    post_quantum = keys._mlkem.decapsulate(encapsulation.ciphertext)
    return derive_session(classical, post_quantum, _transcript(keys.public, encapsulation, context))
