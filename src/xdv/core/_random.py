"""Seeded, counter-based random streams.

All randomness in XDV derives from one *run seed* and a *stream identity* (a tuple of strings
and integers, for example ``("process", 7, "noise")`` or ``("q-job", 12)``). A stream's output is
a pure function of (run seed, identity, counter): block ``i`` is
``BLAKE2b(key = stream key, data = i as 16 bytes)``, where the stream key is
``BLAKE2b(person = "xdv-rng-v1", data = seed || canonical identity)``. Two streams with different
identities are independent; re-creating a stream reproduces it exactly, on any platform, and
nothing depends on the order in which streams were created or on how much another stream drew.

Providers that need an integer seed for a library (a simulator, a solver) get one derived with
:func:`derive_seed` from an identity naming the job; the kernel records each invocation's seed
in its DOMAIN_INVOKE entry.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import MutableSequence, Sequence
from typing import TypeVar

from xdv.errors import XdvError, invariant

__all__ = ["RandomStream", "StreamIdentity", "derive_seed", "stream_key"]

T = TypeVar("T")
StreamIdentity = tuple[str | int, ...]

_SEED_MAX = 2**64 - 1
_PERSON = b"xdv-rng-v1"
_WORDS_PER_BLOCK = 8  # a 64-byte BLAKE2b digest holds eight 64-bit words
_BLOCK = struct.Struct("<8Q")


def _encode_identity(identity: StreamIdentity) -> bytes:
    """Canonical, unambiguous bytes for a stream identity (type tag + length + value)."""
    parts: list[bytes] = []
    for item in identity:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise XdvError(
                f"stream identity items must be str or int, got {type(item).__name__}",
                where="stream identity",
            )
        if isinstance(item, int):
            raw = str(item).encode()
            parts.append(b"i" + len(raw).to_bytes(2, "big") + raw)
        else:
            raw = item.encode("utf-8")
            parts.append(b"s" + len(raw).to_bytes(4, "big") + raw)
    return b"".join(parts)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _SEED_MAX:
        raise XdvError(f"a run seed is an integer in [0, 2**64), got {seed!r}", where="seed")


def stream_key(seed: int, identity: StreamIdentity) -> bytes:
    """The 64-byte key of the stream ``identity`` under run seed ``seed``."""
    _check_seed(seed)
    material = seed.to_bytes(8, "big") + _encode_identity(identity)
    return hashlib.blake2b(material, digest_size=64, person=_PERSON).digest()


_FIRST_COUNTER = (0).to_bytes(16, "big")
_FIRST_WORD = struct.Struct("<Q")


def derive_seed(seed: int, identity: StreamIdentity, bits: int = 63) -> int:
    """A deterministic integer seed in ``[0, 2**bits)`` for a library that wants one.

    It is the first draw of the stream ``identity`` (``RandomStream(seed, identity).bits(bits)``),
    computed directly: the kernel derives one per domain invocation.
    """
    invariant(0 < bits <= 64, "derived seeds have between 1 and 64 bits")
    block = hashlib.blake2b(_FIRST_COUNTER, key=stream_key(seed, identity), digest_size=64)
    word: int = _FIRST_WORD.unpack_from(block.digest())[0]
    return word >> (64 - bits)


class RandomStream:
    """A counter-based random stream; see the module docstring for its exact definition."""

    __slots__ = ("_buffer", "_counter", "_key", "identity", "seed")

    def __init__(self, seed: int, identity: StreamIdentity) -> None:
        self.seed = seed
        self.identity = tuple(identity)
        self._key = stream_key(seed, self.identity)[:64]
        self._counter = 0
        self._buffer: list[int] = []

    def _refill(self) -> None:
        block = hashlib.blake2b(
            self._counter.to_bytes(16, "big"), key=self._key, digest_size=64
        ).digest()
        self._counter += 1
        # Reversed so that pop() hands words out in block order.
        self._buffer = list(reversed(_BLOCK.unpack(block)))

    def u64(self) -> int:
        """The next 64-bit unsigned word."""
        if not self._buffer:
            self._refill()
        return self._buffer.pop()

    def bits(self, count: int) -> int:
        """An integer of ``count`` random bits (1 to 64)."""
        invariant(0 < count <= 64, "between 1 and 64 bits per draw")
        return self.u64() >> (64 - count)

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        return (self.u64() >> 11) * (1.0 / 9007199254740992.0)

    def randbelow(self, bound: int) -> int:
        """A uniform integer in [0, bound), without modulo bias (rejection sampling)."""
        if bound <= 0:
            raise XdvError(f"randbelow needs a positive bound, got {bound}", where="random stream")
        if bound == 1:
            return 0
        width = (bound - 1).bit_length()
        if width > 64:
            raise XdvError("randbelow supports bounds up to 2**64", where="random stream")
        while True:
            candidate = self.bits(width)
            if candidate < bound:
                return candidate

    def randint(self, low: int, high: int) -> int:
        """A uniform integer in [low, high], both ends included."""
        if high < low:
            raise XdvError(f"empty range [{low}, {high}]", where="random stream")
        return low + self.randbelow(high - low + 1)

    def choice(self, items: Sequence[T]) -> T:
        """A uniformly chosen element of a non-empty sequence."""
        if not items:
            raise XdvError("choice from an empty sequence", where="random stream")
        return items[self.randbelow(len(items))]

    def shuffle(self, items: MutableSequence[T]) -> None:
        """Shuffle in place (Fisher-Yates)."""
        for i in range(len(items) - 1, 0, -1):
            j = self.randbelow(i + 1)
            items[i], items[j] = items[j], items[i]

    def child(self, *identity: str | int) -> RandomStream:
        """An independent stream whose identity extends this one's."""
        return RandomStream(self.seed, self.identity + identity)
