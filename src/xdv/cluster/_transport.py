"""Sealed, authenticated links between two nodes of one membership epoch.

A :class:`Link` joins two members of a :class:`~xdv.cluster._membership.Membership`. It is made
by a two-message handshake and then carries *frames*: payloads sealed with AES-256-GCM under a
key per direction, numbered in order. ``docs/cluster-transport.md`` explains the design; the
byte layouts are:

Handshake prefix (both messages)::

    "XLH1" | kind u8 (1 hello, 2 reply) | epoch u64 | membership digest (32)
           | u8 len | initiator id | u8 len | responder id

Hello (initiator → responder)::

    prefix | X25519 ephemeral (32) | ML-KEM-768 ciphertext (1088)
           | initiator confirmation tag (32) | hybrid signature (3376) over all before it

Reply (responder → initiator)::

    prefix | SHA-256 of the hello (32) | responder confirmation tag (32)
           | hybrid signature (3376) over all before it

The session keys come from :func:`xdv.security.kem_initiate` / :func:`xdv.security.kem_respond`
with the prefix of the hello as the KEM *context*, so they are bound to the epoch, the
membership digest and both node ids. Signatures are checked against the key the membership
*pins* for the claimed node, never against a key a message carries.

Frame::

    "XLF1" | link id (16) | direction u8 (0: initiator→responder, 1: back)
           | sequence u64 | length u32 | AES-256-GCM ciphertext and tag (length bytes)

The nonce is 4 zero bytes and the sequence number (big-endian), so it never repeats under one
key; the associated data is the header followed by a hash binding the sender, the receiver,
the epoch and the membership digest. Sequence numbers start at 0 in each direction and a
receiver accepts only the next one: earlier numbers are replays, later ones are reorders (the
cluster's links are in-order), both refused. Every refusal raises a typed error *and* is kept,
in order, in :attr:`Link.refusals`; a refused frame changes nothing else, so the next good frame
still opens. :func:`refusal_event`, :func:`established_event` and :func:`closed_event` turn
them into the trace events the cluster records.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xdv.cluster._membership import Membership, NodeEntry, NodeIdentity, check_node_id
from xdv.errors import ErrorCode, UnauthorizedError, XdvError, safe_repr
from xdv.security import (
    SIGNATURE_SIZE,
    Encapsulation,
    SessionKeys,
    kem_initiate,
    kem_respond,
)
from xdv.trace import EventType, canonical_metadata

__all__ = [
    "FRAME_HEADER_SIZE",
    "FRAME_OVERHEAD",
    "PAYLOAD_MAX",
    "FrameRefused",
    "HandshakeRefused",
    "Link",
    "LinkEvent",
    "Refusal",
    "closed_event",
    "established_event",
    "initiator_of",
    "refusal_event",
]

_HANDSHAKE_TAG = b"XLH1"
_FRAME_TAG = b"XLF1"
_HELLO = 1
_REPLY = 2
_EPHEMERAL_SIZE = 32
_CIPHERTEXT_SIZE = 1088
_CONFIRM_SIZE = 32
_DIGEST_SIZE = 32
_LINK_ID_SIZE = 16
_AEAD_TAG_SIZE = 16
_HEADER = struct.Struct(">4s16sBQI")
FRAME_HEADER_SIZE = _HEADER.size
"""Bytes of a frame header (33)."""
FRAME_OVERHEAD = FRAME_HEADER_SIZE + _AEAD_TAG_SIZE
"""Bytes a frame adds to its payload (header and AEAD tag: 49)."""
PAYLOAD_MAX = 16 * 1024 * 1024
"""The default largest payload a link seals or opens (16 MiB)."""
_SEQUENCE_END = 2**64 - 1
_REFUSALS_MAX = 1024
_HELLO_CONTEXT = b"xdv-link-hello"
_REPLY_CONTEXT = b"xdv-link-reply"
_BYTES_LIKE = (bytes, bytearray, memoryview)

Role = Literal["initiator", "responder"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused handshake message or frame, as the link (or ``accept``) recorded it.

    ``peer`` is the node the bytes came from (for a handshake, the node the hello claims to
    be; empty when it cannot be read), ``sequence`` the frame's sequence number when its header
    could be read, ``code`` and ``reason`` the typed error, and ``digest`` the SHA-256 (hex) of
    the refused bytes. ``stage`` says whether a handshake message or a frame was refused.
    """

    stage: Literal["handshake", "frame"]
    local: str
    peer: str
    epoch: int
    sequence: int | None
    code: ErrorCode
    reason: str
    digest: str

    def to_record(self) -> dict[str, Any]:
        """A trace- and JSON-friendly form (``sequence`` absent when unknown)."""
        record: dict[str, Any] = {
            "stage": self.stage,
            "local": self.local,
            "peer": self.peer,
            "epoch": self.epoch,
            "code": self.code.name,
            "reason": self.reason,
            "digest": self.digest,
        }
        if self.sequence is not None:
            record["seq"] = self.sequence
        return record


class HandshakeRefused(UnauthorizedError):
    """A handshake message was refused; :attr:`refusal` is the record to trace."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason, code=refusal.code, where=_where(refusal))
        self.refusal = refusal


class FrameRefused(UnauthorizedError):
    """A frame was refused; :attr:`refusal` is the record the link also kept."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason, code=refusal.code, where=_where(refusal))
        self.refusal = refusal


def _where(refusal: Refusal) -> str:
    peer = refusal.peer or "?"
    return f"link {refusal.local}<-{peer} epoch {refusal.epoch}"


class _Refuse(Exception):
    """Internal: a refusal's code and reason, before the record is made."""

    def __init__(self, code: ErrorCode, reason: str, sequence: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.sequence = sequence


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A trace event the cluster should record for a link: its type, outcome status and
    metadata (trace-encodable, and free of anything drawn at random)."""

    event_type: EventType
    status: ErrorCode
    metadata: dict[str, Any]


# ---------------------------------------------------------------------- handshake encoding


def _prefix(kind: int, epoch: int, digest: bytes, initiator: str, responder: str) -> bytes:
    a, b = initiator.encode("ascii"), responder.encode("ascii")
    return (
        _HANDSHAKE_TAG
        + bytes([kind])
        + epoch.to_bytes(8, "big")
        + digest
        + bytes([len(a)])
        + a
        + bytes([len(b)])
        + b
    )


@dataclass(frozen=True, slots=True)
class _Parsed:
    kind: int
    epoch: int
    digest: bytes
    initiator: str
    responder: str
    prefix: bytes
    rest: bytes


def _parse(message: object, kind: int) -> _Parsed:
    what = "hello" if kind == _HELLO else "reply"
    if not isinstance(message, bytes | bytearray | memoryview):
        raise _Refuse(
            ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
            f"a handshake {what} is bytes, got {type(message).__name__}",
        )
    data = bytes(message)
    fixed = len(_HANDSHAKE_TAG) + 1 + 8 + _DIGEST_SIZE
    if len(data) < fixed + 2 or data[: len(_HANDSHAKE_TAG)] != _HANDSHAKE_TAG:
        raise _Refuse(ErrorCode.TRANSPORT_HANDSHAKE_INVALID, f"not a handshake {what}")
    if data[4] != kind:
        raise _Refuse(
            ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
            f"expected a handshake {what} (kind {kind}), got kind {data[4]}",
        )
    epoch = int.from_bytes(data[5:13], "big")
    digest = data[13:fixed]
    offset = fixed
    ids: list[str] = []
    for _ in range(2):
        if offset >= len(data):
            raise _Refuse(ErrorCode.TRANSPORT_HANDSHAKE_INVALID, f"the {what} is truncated")
        size = data[offset]
        raw = data[offset + 1 : offset + 1 + size]
        if len(raw) != size or size == 0:
            raise _Refuse(ErrorCode.TRANSPORT_HANDSHAKE_INVALID, f"the {what} is truncated")
        try:
            ids.append(check_node_id(raw.decode("ascii")))
        except (UnicodeDecodeError, XdvError):
            raise _Refuse(
                ErrorCode.TRANSPORT_HANDSHAKE_INVALID, f"a node id in the {what} is not valid"
            ) from None
        offset += 1 + size
    return _Parsed(kind, epoch, digest, ids[0], ids[1], data[:offset], data[offset:])


def _digest(data: object) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(repr(type(data)).encode()).hexdigest()


def _binding(epoch: int, membership: str, sender: str, receiver: str) -> bytes:
    record = {"epoch": epoch, "membership": membership, "from": sender, "to": receiver}
    return hashlib.sha256(b"XDV-LINK-AD-1" + canonical_metadata(record)).digest()


def _check_local(local: NodeIdentity, membership: Membership) -> NodeEntry:
    if not isinstance(local, NodeIdentity) or not isinstance(membership, Membership):
        raise XdvError(
            "a link needs the local NodeIdentity and a Membership",
            code=ErrorCode.INVALID_ARGUMENT,
            where="link",
        )
    pinned = membership.entry(local.node_id)
    if pinned != local.entry():
        raise XdvError(
            f"node {local.node_id!r}'s keys are not the ones membership epoch "
            f"{membership.epoch} pins for it",
            code=ErrorCode.MEMBERSHIP_IDENTITY_INVALID,
            where=f"link {local.node_id}",
        )
    return pinned


# ---------------------------------------------------------------------- the link


class Link:
    """One end of a sealed link between two members of one membership epoch.

    Make one with :meth:`initiate` (then :meth:`complete` with the peer's reply) or
    :meth:`accept`; then :meth:`seal` payloads for the peer and :meth:`open` the peer's
    frames. Not thread-safe: one owner drives a link.
    """

    __slots__ = (
        "_hello_digest",
        "_keys",
        "_receive_aead",
        "_receive_binding",
        "_receive_next",
        "_refusals",
        "_send_aead",
        "_send_binding",
        "_send_next",
        "_state",
        "epoch",
        "link_id",
        "local",
        "membership",
        "payload_max",
        "peer",
        "refusals_dropped",
        "refused_total",
        "role",
    )

    def __init__(
        self,
        *,
        local: str,
        peer: str,
        role: Role,
        membership: Membership,
        keys: SessionKeys,
        payload_max: int = PAYLOAD_MAX,
    ) -> None:
        """Internal: a link over agreed session keys (use :meth:`initiate` / :meth:`accept`)."""
        if type(payload_max) is not int or not 0 < payload_max <= 2**32 - 1 - _AEAD_TAG_SIZE:
            raise XdvError(
                f"payload_max is an integer in [1, 2**32 - 17], got {safe_repr(payload_max)}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="link",
            )
        self.local = local
        self.peer = peer
        self.role: Role = role
        self.membership = membership
        self.epoch = membership.epoch
        self.payload_max = payload_max
        self.link_id = hashlib.sha256(b"XDV-LINK-ID-1" + keys.transcript).digest()[:_LINK_ID_SIZE]
        self._keys = keys
        initiator, responder = (local, peer) if role == "initiator" else (peer, local)
        digest = membership.digest()
        forward = _binding(self.epoch, digest, initiator, responder)
        backward = _binding(self.epoch, digest, responder, initiator)
        forward_aead = AESGCM(keys.initiator_to_responder)
        backward_aead = AESGCM(keys.responder_to_initiator)
        if role == "initiator":
            self._send_aead, self._send_binding = forward_aead, forward
            self._receive_aead, self._receive_binding = backward_aead, backward
        else:
            self._send_aead, self._send_binding = backward_aead, backward
            self._receive_aead, self._receive_binding = forward_aead, forward
        self._send_next = 0
        self._receive_next = 0
        self._refusals: list[Refusal] = []
        self.refusals_dropped = 0
        self.refused_total = 0
        self._state = "pending" if role == "initiator" else "established"
        self._hello_digest = b""

    # ------------------------------------------------------------------ handshake

    @classmethod
    def initiate(
        cls,
        local: NodeIdentity,
        peer_id: str,
        membership: Membership,
        *,
        random: Callable[[int], bytes] | None = None,
        payload_max: int = PAYLOAD_MAX,
    ) -> tuple[Link, bytes]:
        """Start a link from ``local`` to member ``peer_id``: the pending link and the hello to
        send. ``random`` (``n -> n bytes``) seeds the ephemeral X25519 key; the ML-KEM
        encapsulation always draws from the operating system (the library offers no seeded
        encapsulation), so hellos differ from run to run.

        Errors (raised, nothing sent): MEMBERSHIP_NODE_UNKNOWN when either node is not a
        member, MEMBERSHIP_IDENTITY_INVALID when ``local``'s keys are not the pinned ones,
        TRANSPORT_HANDSHAKE_INVALID for a link to oneself.
        """
        _check_local(local, membership)
        peer = membership.entry(peer_id)
        if peer.node_id == local.node_id:
            raise XdvError(
                "a node does not open a link to itself",
                code=ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
                where=f"link {local.node_id}",
            )
        prefix = _prefix(
            _HELLO, membership.epoch, membership.digest_bytes(), local.node_id, peer.node_id
        )
        seed = None
        if random is not None:
            seed = bytes(random(32))
            if len(seed) != 32:
                raise XdvError(
                    "the random source must return 32 bytes when asked for them",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where=f"link {local.node_id}",
                )
        encapsulation, keys = kem_initiate(peer.kem, context=prefix, ephemeral_seed=seed)
        unsigned = prefix + encapsulation.ephemeral + encapsulation.ciphertext + keys.initiator_tag
        hello = unsigned + local.signing.sign(unsigned, context=_HELLO_CONTEXT)
        link = cls(
            local=local.node_id,
            peer=peer.node_id,
            role="initiator",
            membership=membership,
            keys=keys,
            payload_max=payload_max,
        )
        link._hello_digest = hashlib.sha256(hello).digest()
        return link, hello

    @classmethod
    def accept(
        cls,
        local: NodeIdentity,
        hello: bytes,
        membership: Membership,
        *,
        random: Callable[[int], bytes] | None = None,
        payload_max: int = PAYLOAD_MAX,
    ) -> tuple[Link, bytes]:
        """Answer a hello: the established link and the reply to send back.

        The hello must be addressed to ``local``, made under this membership (epoch and
        digest: TRANSPORT_EPOCH_MISMATCH otherwise), come from a member
        (MEMBERSHIP_NODE_UNKNOWN), carry a signature that verifies under the key this
        membership pins for that member (TRANSPORT_PEER_UNAUTHENTICATED) and a confirmation
        tag that matches the derived keys (KEY_CONFIRMATION_FAILED); malformed hellos are
        TRANSPORT_HANDSHAKE_INVALID. Each refusal raises :class:`HandshakeRefused`, whose
        ``refusal`` the caller records. ``random`` is accepted for symmetry and not used: the
        responder's side is deterministic apart from its hedged ML-DSA signature.
        """
        del random
        _check_local(local, membership)
        claimed = ""
        try:
            parsed = _parse(hello, _HELLO)
            claimed = parsed.initiator
            keys = cls._check_hello(local, parsed, membership)
        except _Refuse as refusal:
            raise HandshakeRefused(
                Refusal(
                    stage="handshake",
                    local=local.node_id,
                    peer=claimed,
                    epoch=membership.epoch,
                    sequence=None,
                    code=refusal.code,
                    reason=refusal.reason,
                    digest=_digest(hello),
                )
            ) from None
        link = cls(
            local=local.node_id,
            peer=parsed.initiator,
            role="responder",
            membership=membership,
            keys=keys,
            payload_max=payload_max,
        )
        hello_bytes = bytes(hello)
        unsigned = (
            _prefix(
                _REPLY,
                membership.epoch,
                membership.digest_bytes(),
                parsed.initiator,
                local.node_id,
            )
            + hashlib.sha256(hello_bytes).digest()
            + keys.responder_tag
        )
        reply = unsigned + local.signing.sign(unsigned, context=_REPLY_CONTEXT)
        return link, reply

    @staticmethod
    def _check_hello(local: NodeIdentity, parsed: _Parsed, membership: Membership) -> SessionKeys:
        if parsed.responder != local.node_id:
            raise _Refuse(
                ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
                f"the hello is addressed to {parsed.responder!r}, not to {local.node_id!r}",
            )
        if parsed.epoch != membership.epoch or parsed.digest != membership.digest_bytes():
            raise _Refuse(
                ErrorCode.TRANSPORT_EPOCH_MISMATCH,
                f"the hello was made under epoch {parsed.epoch} with membership "
                f"{parsed.digest.hex()[:16]}, this node is in epoch {membership.epoch} with "
                f"membership {membership.digest()[:16]}",
            )
        if parsed.initiator not in membership:
            raise _Refuse(
                ErrorCode.MEMBERSHIP_NODE_UNKNOWN,
                f"node {parsed.initiator!r} is not a member of epoch {membership.epoch}",
            )
        if parsed.initiator == local.node_id:
            raise _Refuse(ErrorCode.TRANSPORT_HANDSHAKE_INVALID, "a hello from this node itself")
        expected = _EPHEMERAL_SIZE + _CIPHERTEXT_SIZE + _CONFIRM_SIZE + SIGNATURE_SIZE
        if len(parsed.rest) != expected:
            raise _Refuse(
                ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
                f"the hello's body is {len(parsed.rest)} bytes, expected {expected}",
            )
        pinned = membership.entry(parsed.initiator).signing
        unsigned = parsed.prefix + parsed.rest[:-SIGNATURE_SIZE]
        try:
            pinned.verify(unsigned, parsed.rest[-SIGNATURE_SIZE:], context=_HELLO_CONTEXT)
        except UnauthorizedError as error:
            raise _Refuse(
                ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED,
                f"the hello is not signed by the key pinned for {parsed.initiator!r} "
                f"({error.message})",
            ) from None
        ephemeral = parsed.rest[:_EPHEMERAL_SIZE]
        ciphertext = parsed.rest[_EPHEMERAL_SIZE : _EPHEMERAL_SIZE + _CIPHERTEXT_SIZE]
        tag = parsed.rest[_EPHEMERAL_SIZE + _CIPHERTEXT_SIZE : -SIGNATURE_SIZE]
        try:
            keys = kem_respond(
                local.kem, Encapsulation(ephemeral, ciphertext), context=parsed.prefix
            )
            keys.confirm_peer(tag, "initiator")
        except UnauthorizedError as error:
            raise _Refuse(ErrorCode.KEY_CONFIRMATION_FAILED, error.message) from None
        return keys

    def complete(self, reply: bytes) -> None:
        """Finish an initiated link with the responder's reply.

        The reply must answer this link's hello under the same membership, be signed with the
        key pinned for the peer (TRANSPORT_PEER_UNAUTHENTICATED) and confirm the same keys
        (KEY_CONFIRMATION_FAILED). A refused reply raises :class:`HandshakeRefused`, is kept
        in :attr:`refusals` and leaves the link pending (a genuine reply can still complete
        it). TRANSPORT_LINK_STATE unless the link is a pending initiator.
        """
        if self.role != "initiator" or self._state != "pending":
            raise self._state_error("complete")
        try:
            self._check_reply(reply)
        except _Refuse as refusal:
            record = self._record("handshake", None, refusal, reply)
            raise HandshakeRefused(record) from None
        self._state = "established"

    def _check_reply(self, reply: bytes) -> None:
        parsed = _parse(reply, _REPLY)
        if parsed.epoch != self.epoch or parsed.digest != self.membership.digest_bytes():
            raise _Refuse(
                ErrorCode.TRANSPORT_EPOCH_MISMATCH,
                f"the reply was made under epoch {parsed.epoch} with membership "
                f"{parsed.digest.hex()[:16]}, this link is in epoch {self.epoch}",
            )
        if parsed.initiator != self.local or parsed.responder != self.peer:
            raise _Refuse(
                ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
                f"the reply is for a link {parsed.initiator!r}->{parsed.responder!r}, not "
                f"{self.local!r}->{self.peer!r}",
            )
        expected = _DIGEST_SIZE + _CONFIRM_SIZE + SIGNATURE_SIZE
        if len(parsed.rest) != expected:
            raise _Refuse(
                ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
                f"the reply's body is {len(parsed.rest)} bytes, expected {expected}",
            )
        if parsed.rest[:_DIGEST_SIZE] != self._hello_digest:
            raise _Refuse(ErrorCode.TRANSPORT_HANDSHAKE_INVALID, "the reply answers another hello")
        pinned = self.membership.entry(self.peer).signing
        try:
            pinned.verify(
                parsed.prefix + parsed.rest[:-SIGNATURE_SIZE],
                parsed.rest[-SIGNATURE_SIZE:],
                context=_REPLY_CONTEXT,
            )
        except UnauthorizedError as error:
            raise _Refuse(
                ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED,
                f"the reply is not signed by the key pinned for {self.peer!r} ({error.message})",
            ) from None
        try:
            self._keys.confirm_peer(parsed.rest[_DIGEST_SIZE:-SIGNATURE_SIZE], "responder")
        except UnauthorizedError as error:
            raise _Refuse(ErrorCode.KEY_CONFIRMATION_FAILED, error.message) from None

    # ------------------------------------------------------------------ frames

    @property
    def established(self) -> bool:
        """Whether the link carries frames (handshake done, not closed)."""
        return self._state == "established"

    def belongs_to(self, membership: Membership) -> bool:
        """Whether this link was made under ``membership`` (same epoch and digest); a link of
        any other membership must not be used, and its frames would not open."""
        return isinstance(membership, Membership) and membership == self.membership

    @property
    def state(self) -> str:
        """``pending`` (initiator awaiting the reply), ``established`` or ``closed``."""
        return self._state

    @property
    def sent(self) -> int:
        """How many frames this end has sealed (the next sequence number it uses)."""
        return self._send_next

    @property
    def received(self) -> int:
        """How many frames this end has opened (the next sequence number it accepts)."""
        return self._receive_next

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        """The refusals kept so far, in the order they happened (at most 1024 are kept;
        :attr:`refusals_dropped` counts those beyond)."""
        return tuple(self._refusals)

    def drain_refusals(self) -> tuple[Refusal, ...]:
        """The kept refusals, in order, leaving none kept (for a caller that records them as
        they come)."""
        drained, self._refusals = tuple(self._refusals), []
        return drained

    def seal(self, payload: bytes) -> bytes:
        """The frame carrying ``payload`` to the peer, under the next sequence number.

        TRANSPORT_FRAME_OVERSIZED for a payload over :attr:`payload_max`,
        TRANSPORT_LINK_EXHAUSTED once 2**64 - 1 frames were sealed, TRANSPORT_LINK_STATE when
        the link is not established (nothing is consumed by a refused seal)."""
        if self._state != "established":
            raise self._state_error("seal")
        if not isinstance(payload, _BYTES_LIKE):
            raise XdvError(
                f"a payload is bytes, got {type(payload).__name__}",
                code=ErrorCode.INVALID_ARGUMENT,
                where=self._where(),
            )
        size = len(payload)
        if size > self.payload_max:
            raise XdvError(
                f"the payload is {size} bytes, over this link's limit of {self.payload_max}",
                code=ErrorCode.TRANSPORT_FRAME_OVERSIZED,
                where=self._where(),
            )
        sequence = self._send_next
        if sequence >= _SEQUENCE_END:
            raise XdvError(
                "this link has used every sequence number; open a new link",
                code=ErrorCode.TRANSPORT_LINK_EXHAUSTED,
                where=self._where(),
            )
        direction = 0 if self.role == "initiator" else 1
        header = _HEADER.pack(_FRAME_TAG, self.link_id, direction, sequence, size + _AEAD_TAG_SIZE)
        sealed = self._send_aead.encrypt(_nonce(sequence), payload, header + self._send_binding)
        self._send_next = sequence + 1
        return header + sealed

    def open(self, frame: bytes) -> bytes:
        """The payload of the peer's next frame.

        Refused, with :class:`FrameRefused` and a record in :attr:`refusals`, leaving the link
        as it was: a frame that is not bytes, truncated, or not a frame
        (TRANSPORT_FRAME_MALFORMED); longer than this link's limit
        (TRANSPORT_FRAME_OVERSIZED); of another link or this end's own direction
        (TRANSPORT_FRAME_MISROUTED); failing authentication, i.e. any altered byte
        (TRANSPORT_FRAME_FORGED); authentic but already opened (TRANSPORT_FRAME_REPLAYED) or
        not the next in order (TRANSPORT_FRAME_REORDERED). TRANSPORT_LINK_STATE (raised, not
        kept) when the link is not established.
        """
        if self._state != "established":
            raise self._state_error("open")
        try:
            return self._open(frame)
        except _Refuse as refusal:
            record = self._record("frame", refusal.sequence, refusal, frame)
            raise FrameRefused(record) from None

    def _open(self, frame: object) -> bytes:
        if not isinstance(frame, _BYTES_LIKE):
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_MALFORMED, f"a frame is bytes, got {type(frame).__name__}"
            )
        data = bytes(frame)
        limit = FRAME_OVERHEAD + self.payload_max
        if len(data) > limit:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_OVERSIZED,
                f"the frame is {len(data)} bytes, over this link's limit of {limit}",
            )
        if len(data) < FRAME_OVERHEAD:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_MALFORMED,
                f"the frame is {len(data)} bytes, shorter than the {FRAME_OVERHEAD}-byte minimum",
            )
        tag, link_id, direction, sequence, length = _HEADER.unpack_from(data)
        if tag != _FRAME_TAG:
            raise _Refuse(ErrorCode.TRANSPORT_FRAME_MALFORMED, "not a link frame (bad tag)")
        if length != len(data) - FRAME_HEADER_SIZE:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_MALFORMED,
                f"the header announces {length} sealed bytes, the frame holds "
                f"{len(data) - FRAME_HEADER_SIZE}",
                sequence,
            )
        expected_direction = 1 if self.role == "initiator" else 0
        if link_id != self.link_id or direction != expected_direction:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_MISROUTED,
                "the frame belongs to another link or direction",
                sequence,
            )
        header = data[:FRAME_HEADER_SIZE]
        try:
            payload = self._receive_aead.decrypt(
                _nonce(sequence),
                memoryview(data)[FRAME_HEADER_SIZE:],
                header + self._receive_binding,
            )
        except InvalidTag:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_FORGED,
                f"frame {sequence} fails authentication (altered or forged)",
                sequence,
            ) from None
        if sequence < self._receive_next:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_REPLAYED,
                f"frame {sequence} was already opened (next expected: {self._receive_next})",
                sequence,
            )
        if sequence > self._receive_next:
            raise _Refuse(
                ErrorCode.TRANSPORT_FRAME_REORDERED,
                f"frame {sequence} arrived out of order (next expected: {self._receive_next})",
                sequence,
            )
        self._receive_next = sequence + 1
        return payload

    def close(self) -> LinkEvent:
        """Close this end: no more seals or opens. Returns the LINK_CLOSED event to record."""
        if self._state == "closed":
            raise self._state_error("close")
        self._state = "closed"
        return closed_event(self)

    # ------------------------------------------------------------------ internals

    def _record(
        self,
        stage: Literal["handshake", "frame"],
        sequence: int | None,
        refusal: _Refuse,
        data: object,
    ) -> Refusal:
        record = Refusal(
            stage=stage,
            local=self.local,
            peer=self.peer,
            epoch=self.epoch,
            sequence=sequence,
            code=refusal.code,
            reason=refusal.reason,
            digest=_digest(data),
        )
        self.refused_total += 1
        if len(self._refusals) < _REFUSALS_MAX:
            self._refusals.append(record)
        else:
            self.refusals_dropped += 1
        return record

    def _where(self) -> str:
        return f"link {self.local}->{self.peer} epoch {self.epoch}"

    def _state_error(self, operation: str) -> XdvError:
        return XdvError(
            f"cannot {operation} on a {self._state} {self.role} link",
            code=ErrorCode.TRANSPORT_LINK_STATE,
            where=self._where(),
        )

    def __repr__(self) -> str:
        return (
            f"Link({self.local!r}->{self.peer!r}, {self.role}, epoch {self.epoch}, {self._state}, "
            f"sent {self._send_next}, received {self._receive_next})"
        )


def _nonce(sequence: int) -> bytes:
    return b"\x00\x00\x00\x00" + sequence.to_bytes(8, "big")


def initiator_of(node_a: str, node_b: str) -> str:
    """Which of two distinct members opens the link between them: the one with the smaller
    node id. A fixed rule, so two nodes never race to open two links to each other and the
    recorded roles do not depend on timing."""
    check_node_id(node_a)
    check_node_id(node_b)
    if node_a == node_b:
        raise XdvError(
            "a node does not open a link to itself",
            code=ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
            where=f"link {node_a}",
        )
    return min(node_a, node_b)


# ---------------------------------------------------------------------- trace events


def refusal_event(refusal: Refusal) -> LinkEvent:
    """The event the cluster records for a refusal (pure): LINK_HANDSHAKE_REFUSED or
    LINK_FRAME_REFUSED, status = the refusal's code, metadata ``{local, peer, epoch, seq
    (frames whose header could be read), code, reason, digest}``."""
    event = (
        EventType.LINK_HANDSHAKE_REFUSED
        if refusal.stage == "handshake"
        else EventType.LINK_FRAME_REFUSED
    )
    metadata = refusal.to_record()
    del metadata["stage"]
    return LinkEvent(event, refusal.code, metadata)


def established_event(link: Link) -> LinkEvent:
    """The LINK_ESTABLISHED event for an established link (pure): metadata ``{local, peer,
    role, epoch, membership}`` (the membership digest). Nothing random enters it."""
    if link.state != "established":
        raise link._state_error("record the establishment of")
    return LinkEvent(
        EventType.LINK_ESTABLISHED,
        ErrorCode.OK,
        {
            "local": link.local,
            "peer": link.peer,
            "role": link.role,
            "epoch": link.epoch,
            "membership": link.membership.digest(),
        },
    )


def closed_event(link: Link) -> LinkEvent:
    """The LINK_CLOSED event for a link (pure): metadata ``{local, peer, epoch, sent,
    received, refused}`` (frames sealed, frames opened, refusals made)."""
    return LinkEvent(
        EventType.LINK_CLOSED,
        ErrorCode.OK,
        {
            "local": link.local,
            "peer": link.peer,
            "epoch": link.epoch,
            "sent": link.sent,
            "received": link.received,
            "refused": link.refused_total,
        },
    )
