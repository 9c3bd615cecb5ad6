"""Byzantine-fault-tolerant agreement on the cluster's decisions: basic HotStuff, slot by slot.

A :class:`Replica` is a deterministic state machine with no I/O and no clock: it consumes
:class:`Message` objects (:meth:`Replica.receive`), proposals (:meth:`Replica.propose`) and
logical timer ticks (:meth:`Replica.tick`), and returns the messages to send. Whoever hosts it
(the cluster's transport, or the simulated network of ``_consensus_sim``) delivers them.

The protocol is basic (non-pipelined) HotStuff with a stable leader per view, deciding one slot
at a time; each slot's block names its parent, so the decisions form a hash chain:

* the leader of view ``v`` (``sorted(members)[v % n]``) sends PROPOSE(block, justify);
* every replica that finds the block safe (it extends its decided chain, and either does not
  conflict with its lock or ``justify`` is a newer certificate for it) signs a PREPARE vote to
  the leader; ``quorum`` votes form a prepare certificate, which the leader broadcasts in a PHASE
  message; replicas sign PRECOMMIT votes; their certificate, broadcast, *locks* the replicas on
  the block and they sign COMMIT votes; the commit certificate is broadcast in DECIDE, and
  every replica that checks it appends the decision;
* a replica whose timer (``timeout_ticks`` logical ticks, doubled after each unproductive view,
  capped) runs out while it has work moves to the next view and broadcasts NEW-VIEW carrying its
  highest prepare-or-precommit certificate; the next leader waits for ``quorum`` NEW-VIEWs and
  re-proposes the block of the highest certificate it received (or, if none is pending at its
  slot, a new block); ``f + 1`` NEW-VIEWs for higher views, or any valid certificate of a higher
  view, pull a lagging replica forward;
* a replica that is behind (a signed message shows a higher decided height) asks for the missing
  decisions with SYNC; the answers are DECIDE messages, checked by their certificates, so one
  honest peer suffices and a lying one cannot forge them.

Safety holds with at most ``f = (n - 1) // 3`` Byzantine members: any two quorums of
``ceil((n + f + 1) / 2)`` members (``2f + 1`` when ``n = 3f + 1``) share an honest member, honest
replicas sign at most one vote per (view, slot, phase), and locks only move to newer
certificates. Nothing here reads wall time or randomness: the only clock is :meth:`tick`.

Every message is signed by its sender with a hybrid (Ed25519 + ML-DSA-65) signature over its
canonical CBOR bytes (the routing field ``recipient`` excepted); a vote's signature covers the
vote alone, so the same bytes serve as one signature of a certificate. Messages that fail a check
are refused and recorded in :attr:`Replica.evidence`, in the order they were refused.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

import cbor2

from xdv.errors import ErrorCode, XdvError, safe_repr
from xdv.security import HybridPublicKey
from xdv.trace import EventType, canonicalize, profile_violation

__all__ = [
    "GENESIS",
    "MESSAGE_BYTES_MAX",
    "VALUE_BYTES_MAX",
    "Certificate",
    "ConsensusError",
    "ConsensusEvent",
    "Decision",
    "Evidence",
    "EvidenceKind",
    "Header",
    "Kind",
    "Message",
    "Phase",
    "Replica",
    "Signer",
    "fault_budget",
    "leader_of",
    "quorum_size",
    "replica_set_id",
    "verify_certificate",
    "verify_decision",
    "verify_decisions",
]

VALUE_BYTES_MAX = 1 << 20
"""The largest value one slot may decide (bytes)."""
MESSAGE_BYTES_MAX = 4 << 20
"""The largest encoded message :meth:`Message.from_bytes` accepts (bytes)."""
GENESIS = bytes(32)
"""The default parent of slot 0."""

_DIGEST_SIZE = 32
_MESSAGE_CONTEXT = b"XDV-BFT-MSG-1"
_VOTE_CONTEXT = b"XDV-BFT-VOTE-1"
_BACKOFF_DOUBLINGS_MAX = 6
_SYNC_BATCH_MAX = 8
_BUFFERED_PER_SENDER_MAX = 64
_PENDING_MAX = 1024
_EVIDENCE_MAX = 4096
_EVENTS_MAX = 1 << 16
_SYNC_INTERVAL_TICKS = 2
_IDLE_STATUS_TIMEOUTS = 8
_DECIDE_MESSAGES_KEPT = 256
_VERIFIED_KEPT = 8192


class ConsensusError(XdvError):
    """A consensus message, certificate, decision or setting was refused."""

    default_code = ErrorCode.CONSENSUS_MESSAGE_INVALID


class Signer(Protocol):
    """What a replica signs with: a :class:`xdv.security.HybridKeyPair` or anything alike."""

    @property
    def public(self) -> HybridPublicKey: ...

    def sign(self, message: bytes, *, context: bytes) -> bytes: ...


class Kind(enum.IntEnum):
    """What a message is for."""

    REQUEST = 1
    """A value some member wants decided (broadcast by :meth:`Replica.propose`)."""
    PROPOSE = 2
    """The leader's block for a slot, with its justification certificate."""
    VOTE = 3
    """A replica's signed vote on a block, for one phase, to the leader."""
    PHASE = 4
    """The leader's certificate of one phase, asking for the next phase's votes."""
    DECIDE = 5
    """A decided block with its commit certificate (also the answer to SYNC)."""
    NEW_VIEW = 6
    """A replica entering a view, with its highest certificate, to everyone."""
    SYNC = 7
    """A replica that is behind asks for decisions from its height on."""


class Phase(enum.IntEnum):
    """The vote phases of basic HotStuff; a certificate is named by the phase of its votes."""

    NONE = 0
    PREPARE = 1
    PRECOMMIT = 2
    COMMIT = 3


class EvidenceKind(enum.IntEnum):
    """Why a message was refused."""

    MALFORMED = 1
    BAD_SIGNATURE = 2
    NON_MEMBER = 3
    EQUIVOCATION = 4
    INVALID_CERTIFICATE = 5
    STALE_VIEW = 6
    INVALID_PROPOSAL = 7

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


def _error(message: str, code: ErrorCode, where: str) -> ConsensusError:
    return ConsensusError(message, code=code, where=where)


def _sha256(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _encode(value: Any) -> bytes:
    encoded: bytes = cbor2.dumps(canonicalize(value, "message"))
    return encoded


def quorum_size(n: int) -> int:
    """Votes a certificate needs among ``n`` members: ``ceil((n + f + 1) / 2)``, which is
    ``2f + 1`` for ``n = 3f + 1``; any two such quorums share at least ``f + 1`` members."""
    f = fault_budget(n)
    return (n + f + 2) // 2


def fault_budget(n: int) -> int:
    """``f = (n - 1) // 3``: the Byzantine members ``n`` members tolerate."""
    return max(0, (n - 1) // 3)


def leader_of(view: int, members: Iterable[str]) -> str:
    """The leader of ``view``: members sorted by id, in turn."""
    ordered = sorted(members)
    return ordered[view % len(ordered)]


def _check_members(members: Mapping[str, HybridPublicKey]) -> dict[str, HybridPublicKey]:
    if not isinstance(members, Mapping) or not members:
        raise _error(
            "a replica set is a non-empty mapping of node ids to HybridPublicKey",
            ErrorCode.CONSENSUS_MEMBERS_INVALID,
            "members",
        )
    checked: dict[str, HybridPublicKey] = {}
    fingerprints: set[str] = set()
    for node_id in sorted(members):
        key = members[node_id]
        if not isinstance(node_id, str) or not node_id:
            raise _error(
                f"a member id is a non-empty string, got {safe_repr(node_id)}",
                ErrorCode.CONSENSUS_MEMBERS_INVALID,
                "members",
            )
        if not isinstance(key, HybridPublicKey):
            raise _error(
                f"member {node_id!r} maps to {safe_repr(key)}, not a HybridPublicKey",
                ErrorCode.CONSENSUS_MEMBERS_INVALID,
                f"member {node_id}",
            )
        if key.fingerprint in fingerprints:
            raise _error(
                f"member {node_id!r} has the same key as another member",
                ErrorCode.CONSENSUS_MEMBERS_INVALID,
                f"member {node_id}",
            )
        fingerprints.add(key.fingerprint)
        checked[node_id] = key
    return checked


def replica_set_id(members: Mapping[str, HybridPublicKey]) -> bytes:
    """A digest of the replica set (ids and key fingerprints): every vote signs it, so a
    certificate of one replica set is worthless in another."""
    checked = _check_members(members)
    return _sha256(
        b"XDV-BFT-CLUSTER-1", _encode([[node, key.fingerprint] for node, key in checked.items()])
    )


@dataclass(frozen=True, slots=True)
class Header:
    """A block without its value: its slot, its parent's digest and the value's SHA-256."""

    slot: int
    parent: bytes
    value_digest: bytes

    @property
    def digest(self) -> bytes:
        """The block's name: SHA-256 over the canonical header."""
        return _sha256(b"XDV-BFT-BLOCK-1", _encode(self.to_record()))

    def to_record(self) -> list[Any]:
        return [self.slot, self.parent, self.value_digest]

    @classmethod
    def from_record(cls, record: Any, where: str) -> Header:
        if not isinstance(record, list) or len(record) != 3:
            raise _invalid_message("a header is [slot, parent, value_digest]", where)
        slot, parent, value_digest = record
        return cls(
            _uint(slot, f"{where}.slot"),
            _digest(parent, f"{where}.parent"),
            _digest(value_digest, f"{where}.value_digest"),
        )

    @classmethod
    def for_value(cls, slot: int, parent: bytes, value: bytes) -> Header:
        return cls(slot, parent, _sha256(value))


def _vote_bytes(cluster: bytes, phase: Phase, view: int, block: bytes, voter: str) -> bytes:
    return _encode({"c": cluster, "d": block, "n": voter, "p": int(phase), "v": view})


@dataclass(frozen=True, slots=True)
class Certificate:
    """A quorum certificate: distinct members' signatures on one (phase, view, block) vote.

    ``votes`` is sorted by node id. Each signature is a hybrid signature over the canonical vote
    ``{c: cluster id, d: block digest, n: voter, p: phase, v: view}`` under the vote context.
    """

    phase: Phase
    view: int
    header: Header
    votes: tuple[tuple[str, bytes], ...]

    @property
    def rank(self) -> tuple[int, int]:
        """Order of certificates for choosing the highest: by view, then slot."""
        return (self.view, self.header.slot)

    def summary(self) -> dict[str, Any]:
        """The certificate without signature bytes (phase, view, header, signer ids)."""
        return {
            "p": int(self.phase),
            "v": self.view,
            "hd": self.header.to_record(),
            "signers": [node for node, _ in self.votes],
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "p": int(self.phase),
            "v": self.view,
            "hd": self.header.to_record(),
            "sg": [[node, signature] for node, signature in self.votes],
        }

    @classmethod
    def from_record(cls, record: Any, where: str) -> Certificate:
        record = _exact_map(record, {"p", "v", "hd", "sg"}, where)
        phase = _phase(record["p"], f"{where}.p")
        if phase == Phase.NONE:
            raise _invalid_message("a certificate's phase is 1, 2 or 3", f"{where}.p")
        votes_record = record["sg"]
        if not isinstance(votes_record, list):
            raise _invalid_message("a certificate's signatures are a list", f"{where}.sg")
        votes: list[tuple[str, bytes]] = []
        for index, item in enumerate(votes_record):
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not isinstance(item[0], str)
                or not isinstance(item[1], bytes)
            ):
                raise _invalid_message(
                    "a certificate signature is [node id, signature bytes]", f"{where}.sg[{index}]"
                )
            votes.append((item[0], item[1]))
        return cls(
            phase,
            _uint(record["v"], f"{where}.v"),
            Header.from_record(record["hd"], f"{where}.hd"),
            tuple(votes),
        )

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes of the certificate."""
        return _encode(self.to_record())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Certificate:
        """Strictly decode :meth:`to_bytes` output; typed error otherwise."""
        return cls.from_record(_decode(raw, "certificate"), "certificate")


def verify_certificate(
    certificate: Certificate,
    members: Mapping[str, HybridPublicKey],
    *,
    cache: set[bytes] | None = None,
) -> None:
    """Check that ``certificate`` carries at least a quorum of distinct members' valid votes.

    Raise :class:`ConsensusError` (CONSENSUS_CERTIFICATE_INVALID, or
    CONSENSUS_NOT_MEMBER / CONSENSUS_SIGNATURE_INVALID for the vote at fault). ``cache`` holds
    digests of (key, vote, signature) triples already verified; verified ones are added.
    """
    checked = _check_members(members)
    _verify_certificate(certificate, checked, replica_set_id(checked), cache)


def _verify_certificate(
    certificate: Certificate,
    members: Mapping[str, HybridPublicKey],
    cluster: bytes,
    cache: set[bytes] | None,
) -> None:
    where = f"certificate {certificate.phase.name.lower()} view {certificate.view}"
    needed = quorum_size(len(members))
    names = [node for node, _ in certificate.votes]
    if names != sorted(set(names)):
        raise _error(
            "a certificate's signers must be distinct and sorted by node id",
            ErrorCode.CONSENSUS_CERTIFICATE_INVALID,
            where,
        )
    if len(names) < needed:
        raise _error(
            f"a certificate needs {needed} distinct member signatures, has {len(names)}",
            ErrorCode.CONSENSUS_CERTIFICATE_INVALID,
            where,
        )
    block = certificate.header.digest
    for node, signature in certificate.votes:
        key = members.get(node)
        if key is None:
            raise _error(
                f"certificate signer {node!r} is not a member",
                ErrorCode.CONSENSUS_NOT_MEMBER,
                where,
            )
        vote = _vote_bytes(cluster, certificate.phase, certificate.view, block, node)
        _verify_signature(key, vote, signature, _VOTE_CONTEXT, cache, f"{where}, vote of {node}")


def _verify_signature(
    key: HybridPublicKey,
    signed: bytes,
    signature: bytes,
    context: bytes,
    cache: set[bytes] | None,
    where: str,
) -> None:
    token = _sha256(key.ed25519, context, _sha256(signed), signature) if cache is not None else b""
    if cache is not None and token in cache:
        return
    try:
        key.verify(signed, signature, context=context)
    except XdvError as error:
        raise _error(
            f"signature does not verify: {error.message}",
            ErrorCode.CONSENSUS_SIGNATURE_INVALID,
            where,
        ) from None
    if cache is not None:
        cache.add(token)


@dataclass(frozen=True, slots=True)
class Decision:
    """One decided slot: its value, the view of its commit certificate, and the certificate."""

    slot: int
    value: bytes
    view: int
    certificate: Certificate

    @property
    def digest(self) -> bytes:
        """The decided block's digest (the next slot's parent)."""
        return self.certificate.header.digest

    def summary(self) -> dict[str, Any]:
        """The decision without signature bytes: slot, view, value and block digests (hex),
        parent digest and the sorted signer ids. The same in every run, so fit for a trace
        entry; the full :meth:`to_record` goes beside the trace for :func:`verify_decision`."""
        header = self.certificate.header
        return {
            "slot": self.slot,
            "view": self.view,
            "value": header.value_digest.hex(),
            "block": header.digest.hex(),
            "parent": header.parent.hex(),
            "signers": [node for node, _ in self.certificate.votes],
        }

    def to_record(self) -> dict[str, Any]:
        """A canonical-CBOR-friendly record with the certificate's signatures."""
        return {
            "slot": self.slot,
            "value": self.value,
            "view": self.view,
            "certificate": self.certificate.to_record(),
        }

    @classmethod
    def from_record(cls, record: Any) -> Decision:
        """Rebuild a decision from :meth:`to_record`; typed error if malformed."""
        record = _exact_map(record, {"slot", "value", "view", "certificate"}, "decision")
        value = record["value"]
        if not isinstance(value, bytes):
            raise _invalid_message("a decision's value is bytes", "decision.value")
        return cls(
            _uint(record["slot"], "decision.slot"),
            value,
            _uint(record["view"], "decision.view"),
            Certificate.from_record(record["certificate"], "decision.certificate"),
        )


def verify_decision(decision: Decision, members: Mapping[str, HybridPublicKey]) -> None:
    """Check a decision offline against the pinned member keys.

    The certificate must be a COMMIT certificate of a quorum of distinct members for the block
    whose slot, value digest and view are the decision's. Raise :class:`ConsensusError`
    (CONSENSUS_DECISION_INVALID, CONSENSUS_CERTIFICATE_INVALID, CONSENSUS_NOT_MEMBER,
    CONSENSUS_SIGNATURE_INVALID or CONSENSUS_MEMBERS_INVALID) otherwise.
    """
    checked = _check_members(members)
    _verify_decision(decision, checked, replica_set_id(checked), None)


def _verify_decision(
    decision: Decision,
    members: Mapping[str, HybridPublicKey],
    cluster: bytes,
    cache: set[bytes] | None,
) -> None:
    where = f"decision slot {decision.slot}"
    certificate = decision.certificate
    if not isinstance(decision.value, bytes):
        raise _error("a decision's value is bytes", ErrorCode.CONSENSUS_DECISION_INVALID, where)
    if certificate.phase != Phase.COMMIT:
        raise _error(
            f"a decision needs a COMMIT certificate, got {certificate.phase.name}",
            ErrorCode.CONSENSUS_DECISION_INVALID,
            where,
        )
    if certificate.header.slot != decision.slot or certificate.view != decision.view:
        raise _error(
            "the certificate is for another slot or view",
            ErrorCode.CONSENSUS_DECISION_INVALID,
            where,
        )
    if _sha256(decision.value) != certificate.header.value_digest:
        raise _error(
            "the value does not match the certificate's value digest",
            ErrorCode.CONSENSUS_DECISION_INVALID,
            where,
        )
    _verify_certificate(certificate, members, cluster, cache)


def verify_decisions(
    decisions: Iterable[Decision],
    members: Mapping[str, HybridPublicKey],
    *,
    genesis: bytes = GENESIS,
) -> None:
    """Check a replica's whole decision log: each decision as :func:`verify_decision`, slots
    0, 1, 2, ... in order, and each block's parent the digest of the one before (``genesis``
    for slot 0)."""
    checked = _check_members(members)
    cluster = replica_set_id(checked)
    parent = genesis
    for index, decision in enumerate(decisions):
        if decision.slot != index or decision.certificate.header.parent != parent:
            raise _error(
                f"decision {index} does not extend the chain (slot {decision.slot})",
                ErrorCode.CONSENSUS_DECISION_INVALID,
                f"decision slot {decision.slot}",
            )
        _verify_decision(decision, checked, cluster, None)
        parent = decision.digest


_FIELDS = {"k", "s", "v", "h", "p", "hd", "val", "c", "sig", "to"}


@dataclass(frozen=True, slots=True)
class Message:
    """One consensus message. ``recipient`` is routing only ("" = every other member) and is
    not signed; everything else is covered by ``signature``.

    Fields by kind: REQUEST uses ``value``; PROPOSE ``header``, ``value`` and optionally
    ``certificate`` (the justification); VOTE ``phase`` and ``header``; PHASE ``certificate``;
    DECIDE ``header``, ``value`` and ``certificate``; NEW_VIEW ``certificate`` and ``value``
    (both optional: the sender's highest certificate and its block's value); SYNC nothing but
    ``height``. ``height`` is always the sender's count of decided slots.
    """

    kind: Kind
    sender: str
    view: int
    height: int
    phase: Phase = Phase.NONE
    header: Header | None = None
    value: bytes | None = None
    certificate: Certificate | None = None
    signature: bytes = b""
    recipient: str = ""

    def _record(self) -> dict[str, Any]:
        return {
            "k": int(self.kind),
            "s": self.sender,
            "v": self.view,
            "h": self.height,
            "p": int(self.phase),
            "hd": None if self.header is None else self.header.to_record(),
            "val": self.value,
            "c": None if self.certificate is None else self.certificate.to_record(),
        }

    @property
    def content_digest(self) -> bytes:
        """SHA-256 of the canonical message without any signature bytes (its own, and those of
        a certificate it carries, which count by signer id) and without the recipient: the same
        in every run, while ML-DSA signatures differ from run to run."""
        record = self._record()
        if self.certificate is not None:
            record["c"] = self.certificate.summary()
        return _sha256(_encode(record))

    def signed_bytes(self, cluster: bytes) -> tuple[bytes, bytes]:
        """(bytes, context) the signature covers: a vote's canonical vote for VOTE, else the
        canonical message without ``signature`` and ``recipient``, bound to the cluster."""
        if self.kind == Kind.VOTE:
            if self.header is None:
                raise _invalid_message("a vote names a block header", "message.hd")
            vote = _vote_bytes(cluster, self.phase, self.view, self.header.digest, self.sender)
            return vote, _VOTE_CONTEXT
        return cluster + _encode(self._record()), _MESSAGE_CONTEXT

    def signed_by(self, signer: Signer, cluster: bytes) -> Message:
        """This message with ``signature`` set by ``signer``."""
        signed, context = self.signed_bytes(cluster)
        return replace(self, signature=signer.sign(signed, context=context))

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes (every field, the signature and recipient included)."""
        record = self._record()
        record["sig"] = self.signature
        record["to"] = self.recipient
        return _encode(record)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Message:
        """Strictly decode :meth:`to_bytes` output: canonical form, exact field set, types and
        ranges, per-kind shape. Raise :class:`ConsensusError` (CONSENSUS_MESSAGE_INVALID)."""
        if not isinstance(raw, bytes | bytearray):
            raise _invalid_message(f"message bytes expected, got {safe_repr(raw)}", "message")
        if len(raw) > MESSAGE_BYTES_MAX:
            raise _invalid_message(
                f"a message is at most {MESSAGE_BYTES_MAX} bytes, got {len(raw)}", "message"
            )
        record = _exact_map(_decode(bytes(raw), "message"), _FIELDS, "message")
        header = None if record["hd"] is None else Header.from_record(record["hd"], "message.hd")
        certificate = (
            None if record["c"] is None else Certificate.from_record(record["c"], "message.c")
        )
        value = record["val"]
        if value is not None and not isinstance(value, bytes):
            raise _invalid_message("a message's value is bytes or null", "message.val")
        for name in ("s", "to", "sig"):
            expected = bytes if name == "sig" else str
            if not isinstance(record[name], expected):
                raise _invalid_message(f"field {name!r} is {expected.__name__}", f"message.{name}")
        try:
            kind = Kind(record["k"])
        except ValueError:
            raise _invalid_message(f"unknown kind {safe_repr(record['k'])}", "message.k") from None
        message = cls(
            kind,
            record["s"],
            _uint(record["v"], "message.v"),
            _uint(record["h"], "message.h"),
            _phase(record["p"], "message.p"),
            header,
            value,
            certificate,
            record["sig"],
            record["to"],
        )
        message.check_shape()
        return message

    def check_shape(self) -> None:
        """Raise CONSENSUS_MESSAGE_INVALID unless the fields present fit the kind."""
        kind = self.kind
        has = (self.header is not None, self.value is not None, self.certificate is not None)
        shapes: dict[Kind, tuple[tuple[bool, bool, bool], ...]] = {
            Kind.REQUEST: ((False, True, False),),
            Kind.PROPOSE: ((True, True, False), (True, True, True)),
            Kind.VOTE: ((True, False, False),),
            Kind.PHASE: ((False, False, True),),
            Kind.DECIDE: ((True, True, True),),
            Kind.NEW_VIEW: ((False, False, False), (False, True, True)),
            Kind.SYNC: ((False, False, False),),
        }
        if has not in shapes[kind]:
            raise _invalid_message(
                f"a {kind.name} message does not carry header/value/certificate = {has}",
                "message",
            )
        needs_phase = kind == Kind.VOTE
        if needs_phase != (self.phase != Phase.NONE):
            raise _invalid_message(f"phase {self.phase.name} on a {kind.name}", "message.p")
        if self.value is not None and len(self.value) > VALUE_BYTES_MAX:
            raise _invalid_message(f"a value is at most {VALUE_BYTES_MAX} bytes", "message.val")
        if (
            self.header is not None
            and self.value is not None
            and _sha256(self.value) != self.header.value_digest
        ):
            raise _invalid_message("the value does not match its header's digest", "message")


def _invalid_message(text: str, where: str) -> ConsensusError:
    return _error(text, ErrorCode.CONSENSUS_MESSAGE_INVALID, where)


def _decode(raw: bytes, where: str) -> Any:
    problem = profile_violation(raw)
    if problem is not None:
        raise _invalid_message(f"not canonical CBOR: {problem}", where)
    try:
        value = cbor2.loads(raw)
    except Exception as error:  # cbor2 raises several types; all mean malformed input
        raise _invalid_message(f"not CBOR: {type(error).__name__}", where) from None
    try:
        again = _encode(value)
    except XdvError:
        raise _invalid_message("a value outside the canonical profile", where) from None
    if again != raw:
        raise _invalid_message("the encoding is not canonical", where)
    return value


def _exact_map(record: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(record, dict) or set(record) != keys:
        got = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise _invalid_message(f"expected a map with fields {sorted(keys)}, got {got}", where)
    return record


def _uint(value: Any, where: str) -> int:
    if type(value) is not int or value < 0 or value >= 1 << 63:
        raise _invalid_message(f"expected an unsigned integer, got {safe_repr(value)}", where)
    return value


def _digest(value: Any, where: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != _DIGEST_SIZE:
        raise _invalid_message(f"expected a {_DIGEST_SIZE}-byte digest", where)
    return value


def _phase(value: Any, where: str) -> Phase:
    if type(value) is not int:
        raise _invalid_message(f"expected a phase number, got {safe_repr(value)}", where)
    try:
        return Phase(value)
    except ValueError:
        raise _invalid_message(f"unknown phase {value}", where) from None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A refused message: why, who it claims to be from, where it was, and the SHA-256 of its
    bytes. ``attributable`` is true when the sender's own valid signature convicts it
    (equivocation, an invalid certificate or proposal inside a message it signed); a bad
    signature, a non-member or a stale message may have been forged or replayed by anyone."""

    kind: EvidenceKind
    sender: str
    view: int
    slot: int
    detail: str
    message_digest: bytes
    attributable: bool

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.label,
            "sender": self.sender,
            "view": self.view,
            "slot": self.slot,
            "detail": self.detail,
            "message": self.message_digest.hex(),
            "attributable": self.attributable,
        }


@dataclass(frozen=True, slots=True)
class ConsensusEvent:
    """One thing a replica did that the cluster trace records: an :class:`EventType` of the
    consensus range and deterministic metadata (no signature bytes)."""

    event_type: EventType
    metadata: dict[str, Any]


class _Refused(Exception):
    def __init__(self, kind: EvidenceKind, detail: str, attributable: bool) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.attributable = attributable


@dataclass(slots=True)
class _Round:
    """The leader's state for one (view, slot): the block and the votes per phase."""

    header: Header
    value: bytes
    votes: dict[Phase, dict[str, bytes]] = field(default_factory=dict)
    done: set[Phase] = field(default_factory=set)


class Replica:
    """One member's replica of the agreement protocol; see the module docstring.

    ``members`` maps node ids to their pinned :class:`HybridPublicKey` (any mapping);
    ``signer`` holds this node's key pair, whose public half must be ``members[node_id]``.
    ``timeout_ticks`` is the logical time a replica with work waits for progress before it
    moves to the next view. ``genesis`` is the parent of slot 0 (the last decided digest of a
    previous replica set, when a membership change starts a new one).
    """

    def __init__(
        self,
        node_id: str,
        members: Mapping[str, HybridPublicKey],
        signer: Signer,
        *,
        timeout_ticks: int = 8,
        genesis: bytes = GENESIS,
    ) -> None:
        self._members = _check_members(members)
        if node_id not in self._members:
            raise _error(
                f"node {node_id!r} is not a member",
                ErrorCode.CONSENSUS_MEMBERS_INVALID,
                f"replica {node_id}",
            )
        if signer.public != self._members[node_id]:
            raise _error(
                "the signer's public key is not the member's pinned key",
                ErrorCode.CONSENSUS_MEMBERS_INVALID,
                f"replica {node_id}",
            )
        if type(timeout_ticks) is not int or not 1 <= timeout_ticks <= 1 << 20:
            raise _error(
                f"timeout_ticks is an integer in [1, {1 << 20}], got {safe_repr(timeout_ticks)}",
                ErrorCode.CONSENSUS_CONFIG_INVALID,
                f"replica {node_id}",
            )
        if not isinstance(genesis, bytes) or len(genesis) != _DIGEST_SIZE:
            raise _error(
                f"genesis is a {_DIGEST_SIZE}-byte digest",
                ErrorCode.CONSENSUS_CONFIG_INVALID,
                f"replica {node_id}",
            )
        self.node_id = node_id
        self._signer = signer
        self._order = list(self._members)
        self.n = len(self._order)
        self.f = fault_budget(self.n)
        self.quorum = quorum_size(self.n)
        self.cluster = replica_set_id(self._members)
        self.timeout_ticks = timeout_ticks
        self.genesis = genesis
        self.view = 0
        self.decisions: list[Decision] = []
        """Decided slots in order; ``decisions[i].slot == i``."""
        self.evidence: list[Evidence] = []
        """Refused messages, in the order they were refused (at most 4096 kept)."""
        self.view_changes = 0
        """Views this replica entered after view 0."""
        self._head = genesis
        self._pending: dict[bytes, bytes] = {}  # value digest -> value, arrival order
        self._requests: dict[bytes, Message] = {}  # value digest -> the REQUEST as received
        self._values: dict[bytes, bytes] = {}  # value digest -> value of blocks at my height
        self._high: Certificate | None = None  # highest PREPARE/PRECOMMIT certificate
        self._lock: Certificate | None = None  # highest PRECOMMIT certificate
        self._voted: set[tuple[int, int, Phase]] = set()
        self._proposals: dict[tuple[int, int], tuple[bytes, Message]] = {}
        self._rounds: dict[tuple[int, int], _Round] = {}
        self._new_views: dict[str, Message] = {}  # latest NEW_VIEW per sender
        self._view_ready = True  # leader: may propose in this view
        self._view_high: Certificate | None = None
        self._view_high_value = b""  # the value of _view_high's block
        self._buffer: dict[str, list[Message]] = {}
        self._heights: dict[str, int] = {}
        self._ticks = 0
        self._backoff = 0
        self._busy = False
        self._sync_ticks = 0
        self._idle_ticks = 0
        self._resend_ticks = 0
        self._now = 0  # ticks since construction
        self._answered: dict[str, int] = {}  # last tick we re-sent our NEW-VIEW to a member
        self._confirmed = True  # a quorum is known to be in our view (view 0: everyone starts)
        self._cache: set[bytes] = set()
        self._decided_values: set[bytes] = set()
        self._decide_messages: dict[int, Message] = {}
        self.events: list[ConsensusEvent] = []
        """What the cluster trace records, in order: proposals, decisions, view changes and
        evidence (no signature bytes: ML-DSA signatures differ from run to run)."""

    # -- public surface ------------------------------------------------------------------------

    @property
    def members(self) -> tuple[str, ...]:
        """Member ids, sorted."""
        return tuple(self._order)

    @property
    def height(self) -> int:
        """Number of decided slots."""
        return len(self.decisions)

    @property
    def leader(self) -> str:
        """The leader of this replica's current view."""
        return self._order[self.view % self.n]

    @property
    def pending(self) -> tuple[bytes, ...]:
        """Values requested and not decided yet, in arrival order."""
        return tuple(self._pending.values())

    def propose(self, value: bytes) -> list[Message]:
        """Ask the cluster to decide ``value``: broadcast a REQUEST (and, at the leader, start
        a slot). Equal values are one request: a value is decided at most once per pending
        request. Raise CONSENSUS_VALUE_INVALID for a non-bytes or oversized value."""
        if not isinstance(value, bytes | bytearray):
            raise _error(
                f"a proposed value is bytes, got {safe_repr(value)}",
                ErrorCode.CONSENSUS_VALUE_INVALID,
                f"replica {self.node_id}",
            )
        value = bytes(value)
        if len(value) > VALUE_BYTES_MAX:
            raise _error(
                f"a proposed value is at most {VALUE_BYTES_MAX} bytes, got {len(value)}",
                ErrorCode.CONSENSUS_VALUE_INVALID,
                f"replica {self.node_id}",
            )
        request = self._sign(
            Message(Kind.REQUEST, self.node_id, self.view, self.height, value=value)
        )
        out = [request]
        self._accept_request(request)
        out.extend(self._try_propose())
        return out

    def receive(self, message: Message) -> list[Message]:
        """Handle one message from the network; return the messages to send. A message that
        fails a check is dropped and recorded in :attr:`evidence`; this never raises for a
        peer's fault."""
        if not isinstance(message, Message):
            raise _invalid_message(f"a Message expected, got {safe_repr(message)}", "receive")
        try:
            return self._receive(message)
        except _Refused as refused:
            self._record(message, refused)
            return []

    def receive_bytes(self, raw: bytes) -> list[Message]:
        """:meth:`receive` for encoded bytes; undecodable bytes are recorded as MALFORMED."""
        try:
            message = Message.from_bytes(raw)
        except ConsensusError as error:
            self._add_evidence(
                Evidence(
                    EvidenceKind.MALFORMED, "", 0, 0, error.message, _sha256(bytes(raw)), False
                )
            )
            return []
        return self.receive(message)

    def tick(self) -> list[Message]:
        """Advance the logical timer by one tick. With work outstanding and no progress for the
        timeout (doubled per unproductive view, up to 64 times the base), move to the next view."""
        out: list[Message] = []
        self._now += 1
        self._sync_ticks += 1
        known = max(self._heights.values(), default=0)
        if known > self.height and self._sync_ticks >= _SYNC_INTERVAL_TICKS:
            self._sync_ticks = 0
            ahead = [node for node in self._order if self._heights.get(node, 0) > self.height]
            target = ahead[(self.height + self._ticks) % len(ahead)]
            out.append(self._sign(Message(Kind.SYNC, self.node_id, self.view, self.height), target))
        if not (self._pending or self._busy):
            # Idle: now and then tell everyone our height, so a replica that missed the last
            # decisions (and has nothing pending to time out on) learns it is behind.
            self._ticks = 0
            self._idle_ticks += 1
            if self._idle_ticks >= self.timeout_ticks * _IDLE_STATUS_TIMEOUTS:
                self._idle_ticks = 0
                out.append(self._sign(Message(Kind.SYNC, self.node_id, self.view, self.height)))
            return out
        self._idle_ticks = 0
        if not self._confirmed:
            # Our view is not known to be a quorum's yet: wait for the others rather than run
            # ahead alone (a replica that keeps timing out alone never meets a quorum), and say
            # again that we are here, in case the NEW-VIEW was lost.
            self._resend_ticks += 1
            own = self._new_views.get(self.node_id)
            if self._resend_ticks >= self.timeout_ticks and own is not None:
                self._resend_ticks = 0
                out.append(own)
                # Others may not know there is work (the request never reached them), so they
                # have no reason to change view: send them the oldest request again.
                for request in list(self._requests.values())[:1]:
                    out.append(replace(request, recipient=""))
            return out
        self._ticks += 1
        if self._ticks >= self.timeout_ticks << min(self._backoff, _BACKOFF_DOUBLINGS_MAX):
            self._backoff += 1
            out.extend(self._enter_view(self.view + 1, announce=True, reason="timeout"))
        return out

    # -- dispatch ------------------------------------------------------------------------------

    def _receive(self, message: Message) -> list[Message]:
        if message.sender not in self._members:
            raise _Refused(EvidenceKind.NON_MEMBER, f"{message.sender!r} is not a member", False)
        if message.sender == self.node_id:
            return []
        try:
            message.check_shape()
        except ConsensusError as error:
            raise _Refused(EvidenceKind.MALFORMED, error.message, False) from None
        try:
            signed, context = message.signed_bytes(self.cluster)
            _verify_signature(
                self._members[message.sender],
                signed,
                message.signature,
                context,
                self._cache,
                f"message of {message.sender}",
            )
        except ConsensusError as error:
            raise _Refused(EvidenceKind.BAD_SIGNATURE, error.message, False) from None
        if message.height > self._heights.get(message.sender, 0):
            self._heights[message.sender] = message.height
        handler = self._handlers[message.kind]
        return handler(self, message)

    def _on_request(self, message: Message) -> list[Message]:
        self._accept_request(message)
        return self._try_propose()

    def _accept_request(self, message: Message) -> None:
        assert message.value is not None
        digest = _sha256(message.value)
        if digest in self._pending or digest in self._decided_values:
            return
        if len(self._pending) >= _PENDING_MAX:
            return
        self._pending[digest] = message.value
        self._requests[digest] = message

    def _on_propose(self, message: Message) -> list[Message]:
        header, value = message.header, message.value
        assert header is not None and value is not None
        if message.view < self.view:
            raise _Refused(EvidenceKind.STALE_VIEW, f"proposal for view {message.view}", False)
        if message.sender != leader_of(message.view, self._order):
            raise _Refused(
                EvidenceKind.INVALID_PROPOSAL,
                f"{message.sender} is not the leader of view {message.view}",
                True,
            )
        key = (message.view, header.slot)
        seen = self._proposals.get(key)
        if seen is not None:
            if seen[0] != header.digest:
                raise _Refused(
                    EvidenceKind.EQUIVOCATION,
                    f"two blocks for view {message.view} slot {header.slot}",
                    True,
                )
            return []
        if message.view > self.view or header.slot > self.height:
            self._keep(message)
            return []
        if header.slot < self.height:
            return []
        self._proposals[key] = (header.digest, message)
        justify = message.certificate
        if justify is not None:
            self._check_certificate(justify, message)
            if (
                justify.phase not in (Phase.PREPARE, Phase.PRECOMMIT)
                or justify.view >= message.view
            ):
                raise _Refused(
                    EvidenceKind.INVALID_PROPOSAL,
                    "a justification is an earlier prepare certificate",
                    True,
                )
            if justify.header.slot == header.slot and justify.header != header:
                raise _Refused(
                    EvidenceKind.INVALID_PROPOSAL, "the block is not the justified block", True
                )
            if justify.header.slot > header.slot:
                return []
        if header.parent != self._head:
            raise _Refused(
                EvidenceKind.INVALID_PROPOSAL, "the block does not extend the decided chain", True
            )
        if header.value_digest in self._decided_values:
            raise _Refused(EvidenceKind.INVALID_PROPOSAL, "the value is already decided", True)
        self._busy = True
        self._confirmed = True  # the leader of our view is here, with a quorum behind it
        self._values[header.value_digest] = value
        lock = self._lock
        if lock is not None and lock.header.slot == header.slot and lock.header != header:
            newer = justify is not None and justify.header == header and justify.view > lock.view
            if not newer:
                return []  # safe to stay silent: conflicts with our lock
        return self._vote(Phase.PREPARE, message.view, header)

    def _on_vote(self, message: Message) -> list[Message]:
        header = message.header
        assert header is not None
        if message.view < self.view:
            raise _Refused(EvidenceKind.STALE_VIEW, f"vote for view {message.view}", False)
        if message.view > self.view:
            self._keep(message)
            return []
        return self._count_vote(message.sender, message.phase, header, message.signature, message)

    def _on_phase(self, message: Message) -> list[Message]:
        certificate = message.certificate
        assert certificate is not None
        if certificate.view < self.view:
            raise _Refused(
                EvidenceKind.STALE_VIEW, f"certificate of view {certificate.view}", False
            )
        if (
            message.sender != leader_of(certificate.view, self._order)
            or certificate.phase == Phase.COMMIT
        ):
            raise _Refused(
                EvidenceKind.INVALID_PROPOSAL,
                f"a {certificate.phase.name} certificate from {message.sender} in a PHASE message",
                True,
            )
        if certificate.header.slot > self.height:
            self._keep(message)
            return []
        if certificate.header.slot < self.height:
            return []
        self._check_certificate(certificate, message)
        out: list[Message] = []
        if certificate.view > self.view:
            out.extend(self._enter_view(certificate.view, announce=False, reason="certificate"))
        header = certificate.header
        if header.parent != self._head or header.value_digest not in self._values:
            return out  # we never saw the block: as if the message were lost
        self._busy = True
        if self._high is None or certificate.rank > self._high.rank:
            self._high = certificate
        if certificate.phase == Phase.PREPARE:
            out.extend(self._vote(Phase.PRECOMMIT, certificate.view, header))
        else:
            if self._lock is None or certificate.rank > self._lock.rank:
                self._lock = certificate
            out.extend(self._vote(Phase.COMMIT, certificate.view, header))
        return out

    def _on_decide(self, message: Message) -> list[Message]:
        certificate, header, value = message.certificate, message.header, message.value
        assert certificate is not None and header is not None and value is not None
        if header.slot < self.height:
            return []
        if header.slot > self.height:
            self._keep(message)
            return []
        if certificate.header != header or certificate.phase != Phase.COMMIT:
            raise _Refused(
                EvidenceKind.INVALID_CERTIFICATE,
                "DECIDE needs the block's COMMIT certificate",
                True,
            )
        self._check_certificate(certificate, message)
        if header.parent != self._head:
            raise _Refused(EvidenceKind.INVALID_CERTIFICATE, "a decided block off our chain", True)
        out = self._decide(header, value, certificate)
        if certificate.view > self.view:
            out.extend(self._enter_view(certificate.view, announce=False, reason="certificate"))
        return out

    def _on_new_view(self, message: Message) -> list[Message]:
        if message.view < self.view:
            raise _Refused(EvidenceKind.STALE_VIEW, f"NEW-VIEW for view {message.view}", False)
        previous = self._new_views.get(message.sender)
        if previous is not None and previous.view >= message.view:
            # A repeated NEW-VIEW: its sender has not seen a quorum in its view yet, and may
            # have lost ours. Tell it again that we are in this view.
            # At most once per timeout per sender: two replicas must not answer each other's
            # answers forever (and a replayer must not make us talk without end).
            own = self._new_views.get(self.node_id)
            last = self._answered.get(message.sender)
            if (
                message.view == self.view
                and own is not None
                and own.view == self.view
                and (last is None or self._now - last >= self.timeout_ticks)
            ):
                self._answered[message.sender] = self._now
                return [replace(own, recipient=message.sender)]
            return []
        certificate = message.certificate
        if certificate is not None:
            if certificate.phase not in (Phase.PREPARE, Phase.PRECOMMIT):
                raise _Refused(
                    EvidenceKind.INVALID_CERTIFICATE, "NEW-VIEW carries a prepare certificate", True
                )
            if message.value is None or _sha256(message.value) != certificate.header.value_digest:
                raise _Refused(
                    EvidenceKind.INVALID_CERTIFICATE, "NEW-VIEW's value is not its block's", True
                )
        self._new_views[message.sender] = message
        self._check_confirmed()
        out: list[Message] = self._on_sync(message) if message.height < self.height else []
        # f + 1 others want a view change at our height: at least one honest replica has work
        # we may not know of (its request never reached us), so our timer must run too.
        wanting = sum(
            1
            for sender, other in self._new_views.items()
            if sender != self.node_id and other.view >= self.view and other.height >= self.height
        )
        if wanting > self.f:
            self._busy = True
        # f + 1 members ask for views above ours: at least one honest one timed out; join the
        # lowest view that f + 1 of them reached.
        views = sorted((m.view for m in self._new_views.values()), reverse=True)
        if len(views) > self.f and views[self.f] > self.view:
            out.extend(self._enter_view(views[self.f], announce=True, reason="peers"))
        out.extend(self._try_start_view())
        return out

    def _on_sync(self, message: Message) -> list[Message]:
        out = []
        for decision in self.decisions[message.height : message.height + _SYNC_BATCH_MAX]:
            decide = self._decide_messages.get(decision.slot)
            if decide is None:
                decide = self._sign(
                    Message(
                        Kind.DECIDE,
                        self.node_id,
                        self.view,
                        decision.slot + 1,
                        header=decision.certificate.header,
                        value=decision.value,
                        certificate=decision.certificate,
                    )
                )
                self._decide_messages[decision.slot] = decide
                while len(self._decide_messages) > _DECIDE_MESSAGES_KEPT:
                    del self._decide_messages[min(self._decide_messages)]
            out.append(replace(decide, recipient=message.sender))
        return out

    _handlers: ClassVar[dict[Kind, Callable[[Replica, Message], list[Message]]]] = {
        Kind.REQUEST: _on_request,
        Kind.PROPOSE: _on_propose,
        Kind.VOTE: _on_vote,
        Kind.PHASE: _on_phase,
        Kind.DECIDE: _on_decide,
        Kind.NEW_VIEW: _on_new_view,
        Kind.SYNC: _on_sync,
    }

    # -- the protocol's steps ------------------------------------------------------------------

    def _vote(self, phase: Phase, view: int, header: Header) -> list[Message]:
        key = (view, header.slot, phase)
        if key in self._voted:
            return []
        self._voted.add(key)
        # The slot moved on a phase: restart the timer. A leader can do this at most three
        # times per slot (each needs a new quorum certificate), so it cannot stall us forever.
        self._progress(header.value_digest)
        leader = leader_of(view, self._order)
        vote = self._sign(
            Message(Kind.VOTE, self.node_id, view, self.height, phase=phase, header=header), leader
        )
        if leader == self.node_id:
            return self._count_vote(self.node_id, phase, header, vote.signature, vote)
        return [vote]

    def _count_vote(
        self, voter: str, phase: Phase, header: Header, signature: bytes, message: Message
    ) -> list[Message]:
        view = message.view
        if leader_of(view, self._order) != self.node_id:
            return []  # votes go to the leader; others ignore them
        round_ = self._rounds.get((view, header.slot))
        if round_ is None or round_.header != header:
            if round_ is not None:
                raise _Refused(
                    EvidenceKind.EQUIVOCATION, "a vote for a block we did not propose", True
                )
            return []
        votes = round_.votes.setdefault(phase, {})
        if voter in votes or phase in round_.done:
            return []
        votes[voter] = signature
        if len(votes) < self.quorum:
            return []
        round_.done.add(phase)
        certificate = Certificate(phase, view, header, tuple(sorted(votes.items())))
        if phase == Phase.COMMIT:
            decide = self._sign(
                Message(
                    Kind.DECIDE,
                    self.node_id,
                    view,
                    self.height + 1,
                    header=header,
                    value=round_.value,
                    certificate=certificate,
                )
            )
            out = [decide]
            out.extend(self._decide(header, round_.value, certificate))
            return out
        broadcast = self._sign(
            Message(Kind.PHASE, self.node_id, view, self.height, certificate=certificate)
        )
        out = [broadcast]
        out.extend(self._on_phase_local(certificate))
        return out

    def _on_phase_local(self, certificate: Certificate) -> list[Message]:
        if self._high is None or certificate.rank > self._high.rank:
            self._high = certificate
        if certificate.phase == Phase.PREPARE:
            return self._vote(Phase.PRECOMMIT, certificate.view, certificate.header)
        if self._lock is None or certificate.rank > self._lock.rank:
            self._lock = certificate
        return self._vote(Phase.COMMIT, certificate.view, certificate.header)

    def _decide(self, header: Header, value: bytes, certificate: Certificate) -> list[Message]:
        decision = Decision(header.slot, value, certificate.view, certificate)
        self.decisions.append(decision)
        self._event(EventType.CONSENSUS_DECISION, decision.summary())
        if len(self._cache) > _VERIFIED_KEPT:
            self._cache = set()
        self._head = header.digest
        self._progress(header.value_digest)
        self._pending.pop(header.value_digest, None)
        self._decided_values.add(header.value_digest)
        self._requests.pop(header.value_digest, None)
        self._values = {}
        self._busy = False
        if certificate.view == self.view:
            self._backoff = 0  # this view makes progress
        slot = header.slot
        self._proposals = {k: v for k, v in self._proposals.items() if k[1] > slot}
        self._rounds = {k: v for k, v in self._rounds.items() if k[1] > slot}
        self._voted = {k for k in self._voted if k[1] > slot}
        out = self._try_propose()
        out.extend(self._replay_buffer())
        return out

    def _progress(self, value_digest: bytes) -> None:
        """Restart the timer for progress on a value we wait for (or on anything when we wait
        for nothing): a leader that keeps deciding other values while it leaves a request of
        ours aside (censorship) is replaced when the timer runs out."""
        if not self._pending or value_digest in self._pending:
            self._ticks = 0

    def _enter_view(self, view: int, *, announce: bool, reason: str) -> list[Message]:
        if view <= self.view:
            return []
        self._event(
            EventType.CONSENSUS_VIEW_CHANGE, {"from": self.view, "view": view, "reason": reason}
        )
        self.view = view
        self.view_changes += 1
        self._ticks = 0
        self._resend_ticks = 0
        self._confirmed = reason == "certificate"
        self._busy = False  # work seen in the old view; pending requests still count
        self._view_ready = False
        self._view_high = None
        self._rounds = {}
        out: list[Message] = []
        if announce:
            high = self._high
            value = None if high is None else self._values.get(high.header.value_digest)
            if high is not None and (value is None or high.header.slot != self.height):
                high, value = None, None
            new_view = Message(
                Kind.NEW_VIEW, self.node_id, view, self.height, value=value, certificate=high
            )
            new_view = self._sign(new_view)
            out.append(new_view)
            self._new_views[self.node_id] = new_view
            self._check_confirmed()
            # Requests the new leader may have missed.
            leader = self.leader
            if leader != self.node_id:
                for request in list(self._requests.values())[:4]:
                    out.append(replace(request, recipient=leader))
        out.extend(self._try_start_view())
        out.extend(self._replay_buffer())
        return out

    def _check_confirmed(self) -> None:
        if self._confirmed:
            return
        here = sum(1 for message in self._new_views.values() if message.view >= self.view)
        if here >= self.quorum:
            self._confirmed = True
            self._ticks = 0

    def _try_start_view(self) -> list[Message]:
        if self._view_ready or self.leader != self.node_id:
            return []
        here = [m for m in self._new_views.values() if m.view == self.view]
        if len(here) < self.quorum:
            return []
        best: tuple[Certificate, bytes] | None = None
        for message in sorted(here, key=lambda m: m.sender):
            certificate, value = message.certificate, message.value
            if certificate is None or value is None:
                continue
            if best is not None and certificate.rank <= best[0].rank:
                continue
            if message.sender != self.node_id:
                try:
                    self._check_certificate(certificate, message)
                except _Refused as refused:
                    self._record(message, refused)
                    continue
            best = (certificate, value)
        self._view_ready = True
        if best is not None:
            # Kept with its value even when the block is beyond our height: once we catch up
            # (SYNC), it is the block to re-propose.
            self._view_high = best[0]
            self._view_high_value = best[1]
        return self._try_propose()

    def _try_propose(self) -> list[Message]:
        if self.leader != self.node_id or not self._view_ready:
            return []
        slot = self.height
        if (self.view, slot) in self._rounds:
            return []
        justify = self._view_high
        if (
            justify is not None
            and justify.header.slot == slot
            and justify.header.parent == self._head
        ):
            header = justify.header
            value = self._view_high_value
        else:
            justify = None
            if not self._pending:
                return []
            value = next(iter(self._pending.values()))
            header = Header.for_value(slot, self._head, value)
        self._rounds[(self.view, slot)] = _Round(header, value)
        self._proposals[(self.view, slot)] = (
            header.digest,
            Message(Kind.PROPOSE, self.node_id, self.view, slot),
        )
        self._values[header.value_digest] = value
        self._busy = True
        self._event(
            EventType.CONSENSUS_PROPOSAL,
            {
                "view": self.view,
                "slot": slot,
                "block": header.digest.hex(),
                "value": header.value_digest.hex(),
                "reproposal": justify is not None,
            },
        )
        propose = self._sign(
            Message(
                Kind.PROPOSE,
                self.node_id,
                self.view,
                self.height,
                header=header,
                value=value,
                certificate=justify,
            )
        )
        out = [propose]
        out.extend(self._vote(Phase.PREPARE, self.view, header))
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _sign(self, message: Message, recipient: str = "") -> Message:
        signed = message.signed_by(self._signer, self.cluster)
        if message.kind == Kind.VOTE:
            vote, context = signed.signed_bytes(self.cluster)
            self._cache.add(
                _sha256(
                    self._members[self.node_id].ed25519, context, _sha256(vote), signed.signature
                )
            )
        return replace(signed, recipient=recipient)

    def _check_certificate(self, certificate: Certificate, message: Message) -> None:
        try:
            _verify_certificate(certificate, self._members, self.cluster, self._cache)
        except ConsensusError as error:
            raise _Refused(EvidenceKind.INVALID_CERTIFICATE, error.message, True) from None

    def _keep(self, message: Message) -> None:
        kept = self._buffer.setdefault(message.sender, [])
        if message in kept:
            return
        kept.append(message)
        if len(kept) > _BUFFERED_PER_SENDER_MAX:
            del kept[0]

    def _replay_buffer(self) -> list[Message]:
        if not self._buffer:
            return []
        kept = [message for sender in sorted(self._buffer) for message in self._buffer[sender]]
        self._buffer = {}
        out: list[Message] = []
        for message in kept:
            if message.view < self.view and message.kind in (Kind.PROPOSE, Kind.VOTE):
                continue
            out.extend(self.receive(message))
        return out

    def _record(self, message: Message, refused: _Refused) -> None:
        slot = (
            message.header.slot
            if message.header is not None
            else (
                message.certificate.header.slot if message.certificate is not None else self.height
            )
        )
        self._add_evidence(
            Evidence(
                refused.kind,
                message.sender,
                message.view,
                slot,
                refused.detail,
                message.content_digest,
                refused.attributable,
            )
        )

    def _add_evidence(self, evidence: Evidence) -> None:
        if len(self.evidence) < _EVIDENCE_MAX:
            self.evidence.append(evidence)
            self._event(EventType.CONSENSUS_EVIDENCE, evidence.to_record())

    def _event(self, event_type: EventType, metadata: dict[str, Any]) -> None:
        if len(self.events) < _EVENTS_MAX:
            self.events.append(ConsensusEvent(event_type, metadata))
