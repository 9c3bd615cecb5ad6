from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.cluster._membership import Membership, NodeIdentity
from xdv.cluster._transport import (
    FRAME_HEADER_SIZE,
    FRAME_OVERHEAD,
    FrameRefused,
    HandshakeRefused,
    Link,
    Refusal,
    _prefix,
    closed_event,
    established_event,
    initiator_of,
    refusal_event,
)
from xdv.errors import ErrorCode, XdvError
from xdv.security import SessionKeys, derive_session, kem_initiate
from xdv.trace import EventType, canonical_metadata

NAMES = ("a", "b", "c", "d")
NODES = {name: NodeIdentity.generate(name, b"transport-test") for name in NAMES}
MEMBERSHIP = Membership(7, [node.entry() for node in NODES.values()])
OUTSIDER = NodeIdentity.generate("e", b"transport-test")
IMPOSTOR = NodeIdentity.generate("a", b"not the pinned key")
GOLDEN = Path(__file__).resolve().parents[3] / "tests" / "golden" / "cluster-link.json"
REGENERATE = os.environ.get("XDV_REGENERATE_GOLDEN") == "1"


def counter_random(start: int = 0) -> Callable[[int], bytes]:
    """A seeded random source: n bytes from a hash chain."""
    state = [start]

    def draw(size: int) -> bytes:
        state[0] += 1
        return hashlib.sha256(state[0].to_bytes(8, "big")).digest()[:size]

    return draw


def handshake(
    initiator: str = "a", responder: str = "b", membership: Membership = MEMBERSHIP
) -> tuple[Link, Link]:
    left, hello = Link.initiate(NODES[initiator], responder, membership, random=counter_random())
    right, reply = Link.accept(NODES[responder], hello, membership)
    left.complete(reply)
    return left, right


@functools.cache
def fixed_keys(seed: bytes) -> SessionKeys:
    return derive_session(
        hashlib.sha256(b"classical" + seed).digest(),
        hashlib.sha256(b"post-quantum" + seed).digest(),
        hashlib.sha256(b"transcript" + seed).digest(),
    )


def pair_from_keys(seed: bytes = b"pair", membership: Membership = MEMBERSHIP) -> tuple[Link, Link]:
    """Two ends of a link over fixed session keys (no handshake: cheap, byte-stable)."""
    keys = fixed_keys(seed)
    left = Link(local="a", peer="b", role="initiator", membership=membership, keys=keys)
    right = Link(local="b", peer="a", role="responder", membership=membership, keys=keys)
    left._state = "established"
    return left, right


def refused(link: Link, frame: Any) -> Refusal:
    before = len(link.refusals)
    with pytest.raises(FrameRefused) as raised:
        link.open(frame)
    assert len(link.refusals) == before + 1
    assert link.refusals[-1] == raised.value.refusal
    assert raised.value.code is raised.value.refusal.code
    return raised.value.refusal


def forge_hello(
    signer: NodeIdentity,
    claimed: str,
    responder: str,
    membership: Membership,
    *,
    epoch: int | None = None,
    bad_tag: bool = False,
) -> bytes:
    """A hello built by hand: ``claimed`` as the initiator, signed with ``signer``'s key."""
    prefix = _prefix(
        1,
        membership.epoch if epoch is None else epoch,
        membership.digest_bytes(),
        claimed,
        responder,
    )
    encapsulation, keys = kem_initiate(membership.entry(responder).kem, context=prefix)
    tag = bytes(32) if bad_tag else keys.initiator_tag
    unsigned = prefix + encapsulation.ephemeral + encapsulation.ciphertext + tag
    return unsigned + signer.signing.sign(unsigned, context=b"xdv-link-hello")


# ---------------------------------------------------------------------- handshake


@pytest.mark.spec("XDV-040-6.3")
@pytest.mark.spec("XDV-031-6.2")
def test_handshake_establishes_a_link_both_ways() -> None:
    left, right = handshake()
    assert left.established and right.established
    assert left.link_id == right.link_id
    assert (left.role, right.role) == ("initiator", "responder")
    for size in (0, 1, 64, 4096, 1 << 20):
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        frame = left.seal(payload)
        assert len(frame) == size + FRAME_OVERHEAD
        assert payload[:64] not in frame or size < 16  # sealed, not copied
        assert right.open(frame) == payload
        assert left.open(right.seal(payload[::-1])) == payload[::-1]
    assert left.sent == right.received == 5 and right.sent == left.received == 5
    assert left.refusals == right.refusals == ()


@pytest.mark.spec("XDV-040-10")
def test_link_events_are_deterministic_and_trace_encodable() -> None:
    first, second = handshake(), handshake()
    assert first[0].link_id != second[0].link_id  # fresh keys per session
    for one, other in zip(first, second, strict=True):
        event = established_event(one)
        assert event == established_event(other)
        assert event.event_type is EventType.LINK_ESTABLISHED and event.status is ErrorCode.OK
        assert event.metadata["membership"] == MEMBERSHIP.digest()
        canonical_metadata(event.metadata)
    assert established_event(first[0]).metadata["role"] == "initiator"
    first[0].open(first[1].seal(b"x"))
    closed = first[0].close()
    assert closed.event_type is EventType.LINK_CLOSED
    assert closed.metadata == {
        "local": "a",
        "peer": "b",
        "epoch": 7,
        "sent": 0,
        "received": 1,
        "refused": 0,
    }
    assert closed_event(first[0]) == closed
    with pytest.raises(XdvError) as raised:
        first[0].seal(b"after close")
    assert raised.value.code is ErrorCode.TRANSPORT_LINK_STATE
    with pytest.raises(XdvError):
        established_event(first[0])


@pytest.mark.spec("XDV-040-6.3")
@pytest.mark.spec("XDV-031-6.2")
def test_a_hello_from_another_epoch_or_membership_is_refused() -> None:
    following = MEMBERSHIP.next_epoch(without=["d"])
    _, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["b"], hello, following)
    assert raised.value.code is ErrorCode.TRANSPORT_EPOCH_MISMATCH
    assert raised.value.refusal.peer == "a" and raised.value.refusal.epoch == following.epoch
    # Same epoch number, other members: the digest differs, so still refused.
    same_number = Membership(7, [NODES[n].entry() for n in ("a", "b", "c")])
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["b"], hello, same_number)
    assert raised.value.code is ErrorCode.TRANSPORT_EPOCH_MISMATCH
    event = refusal_event(raised.value.refusal)
    assert event.event_type is EventType.LINK_HANDSHAKE_REFUSED
    assert event.status is ErrorCode.TRANSPORT_EPOCH_MISMATCH and "seq" not in event.metadata
    assert event.metadata["digest"] == hashlib.sha256(hello).hexdigest()


@pytest.mark.spec("XDV-040-6.3")
def test_a_reply_from_another_epoch_is_refused_and_the_link_stays_pending() -> None:
    following = MEMBERSHIP.next_epoch(without=["d"])
    left, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    _, stale_reply = Link.accept(
        NODES["b"], Link.initiate(NODES["a"], "b", following)[1], following
    )
    with pytest.raises(HandshakeRefused) as raised:
        left.complete(stale_reply)
    assert raised.value.code is ErrorCode.TRANSPORT_EPOCH_MISMATCH
    assert left.state == "pending" and left.refusals == (raised.value.refusal,)
    _, reply = Link.accept(NODES["b"], hello, MEMBERSHIP)
    left.complete(reply)
    assert left.established


@pytest.mark.spec("XDV-040-6.3")
@pytest.mark.spec("XDV-031-6.2")
def test_a_hello_from_a_node_outside_the_membership_is_refused() -> None:
    hello = forge_hello(OUTSIDER, "e", "b", MEMBERSHIP)
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["b"], hello, MEMBERSHIP)
    assert raised.value.code is ErrorCode.MEMBERSHIP_NODE_UNKNOWN
    assert raised.value.refusal.peer == "e"
    with pytest.raises(XdvError) as error:
        Link.initiate(OUTSIDER, "b", MEMBERSHIP)
    assert error.value.code is ErrorCode.MEMBERSHIP_NODE_UNKNOWN
    with pytest.raises(XdvError) as error:
        Link.initiate(NODES["a"], "e", MEMBERSHIP)
    assert error.value.code is ErrorCode.MEMBERSHIP_NODE_UNKNOWN


@pytest.mark.spec("XDV-040-6.3")
@pytest.mark.spec("XDV-031-6.2")
def test_impersonation_with_a_key_that_is_not_pinned_is_refused() -> None:
    hello = forge_hello(IMPOSTOR, "a", "b", MEMBERSHIP)
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["b"], hello, MEMBERSHIP)
    assert raised.value.code is ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED
    assert raised.value.refusal.peer == "a"
    # A member signing a hello in another member's name is refused the same way.
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["b"], forge_hello(NODES["c"], "a", "b", MEMBERSHIP), MEMBERSHIP)
    assert raised.value.code is ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED
    # The impostor's own identity does not match the membership: it cannot even start.
    with pytest.raises(XdvError) as error:
        Link.initiate(IMPOSTOR, "b", MEMBERSHIP)
    assert error.value.code is ErrorCode.MEMBERSHIP_IDENTITY_INVALID
    # A reply signed by a key other than the responder's pinned key.
    left, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    _, reply = Link.accept(NODES["b"], hello, MEMBERSHIP)
    forged = reply[:-3376] + NODES["c"].signing.sign(reply[:-3376], context=b"xdv-link-reply")
    with pytest.raises(HandshakeRefused) as raised:
        left.complete(forged)
    assert raised.value.code is ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED
    left.complete(reply)


@pytest.mark.spec("XDV-040-6.3")
@pytest.mark.spec("XDV-031-5.2")
def test_key_confirmation_failures_are_refused() -> None:
    # A correctly signed hello whose confirmation tag does not match the keys.
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(
            NODES["b"], forge_hello(NODES["a"], "a", "b", MEMBERSHIP, bad_tag=True), MEMBERSHIP
        )
    assert raised.value.code is ErrorCode.KEY_CONFIRMATION_FAILED
    # A correctly signed reply whose confirmation tag does not match.
    left, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    _, reply = Link.accept(NODES["b"], hello, MEMBERSHIP)
    unsigned = bytearray(reply[:-3376])
    unsigned[-1] ^= 0x01
    bad = bytes(unsigned) + NODES["b"].signing.sign(bytes(unsigned), context=b"xdv-link-reply")
    with pytest.raises(HandshakeRefused) as raised:
        left.complete(bad)
    assert raised.value.code is ErrorCode.KEY_CONFIRMATION_FAILED
    assert left.state == "pending"
    left.complete(reply)
    assert left.established


@pytest.mark.spec("XDV-040-6.3")
def test_damaged_or_misaddressed_handshake_messages_are_refused() -> None:
    left, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    # Any altered byte of the signed body: the pinned-key signature fails.
    for position in (len(hello) - 4000, len(hello) - 3400, len(hello) - 1):
        damaged = bytearray(hello)
        damaged[position] ^= 0x40
        with pytest.raises(HandshakeRefused) as raised:
            Link.accept(NODES["b"], bytes(damaged), MEMBERSHIP)
        assert raised.value.code is ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED
    cases = [
        (hello[:100], ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
        (hello + b"\x00", ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
        (b"", ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
        (b"XLH1\x02" + hello[5:], ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
        ("text", ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
        (hello.replace(b"\x01a\x01b", b"\x01A\x01b", 1), ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
        (hello.replace(b"\x01a\x01b", b"\x01\xff\x01b", 1), ErrorCode.TRANSPORT_HANDSHAKE_INVALID),
    ]
    for message, code in cases:
        with pytest.raises(HandshakeRefused) as raised:
            Link.accept(NODES["b"], message, MEMBERSHIP)  # type: ignore[arg-type]
        assert raised.value.code is code
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["c"], hello, MEMBERSHIP)  # addressed to b
    assert raised.value.code is ErrorCode.TRANSPORT_HANDSHAKE_INVALID
    # A reply to another hello (of the same two nodes).
    _, other_hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    _, other_reply = Link.accept(NODES["b"], other_hello, MEMBERSHIP)
    with pytest.raises(HandshakeRefused) as raised:
        left.complete(other_reply)
    assert raised.value.code is ErrorCode.TRANSPORT_HANDSHAKE_INVALID
    with pytest.raises(HandshakeRefused):
        left.complete(hello)  # a hello is not a reply
    assert left.state == "pending" and len(left.refusals) == 2


FIXED_LEFT, FIXED_HELLO = Link.initiate(NODES["a"], "b", MEMBERSHIP, random=counter_random(7))
FIXED_RIGHT, FIXED_REPLY = Link.accept(NODES["b"], FIXED_HELLO, MEMBERSHIP)
HANDSHAKE_REFUSALS = {
    ErrorCode.TRANSPORT_HANDSHAKE_INVALID,
    ErrorCode.TRANSPORT_EPOCH_MISMATCH,
    ErrorCode.MEMBERSHIP_NODE_UNKNOWN,
    ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED,
}


@pytest.mark.spec("XDV-040-6.3")
@given(st.data())
def test_any_altered_handshake_byte_is_refused(data: st.DataObject) -> None:
    which = data.draw(st.sampled_from(["hello", "reply"]))
    message = FIXED_HELLO if which == "hello" else FIXED_REPLY
    position = data.draw(st.integers(0, len(message) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = message[:position] + bytes([message[position] ^ flip]) + message[position + 1 :]
    if which == "hello":
        with pytest.raises(HandshakeRefused) as raised:
            Link.accept(NODES["b"], damaged, MEMBERSHIP)
        assert raised.value.code in HANDSHAKE_REFUSALS
    else:
        # A refused reply leaves the link pending, so one pending link serves every example.
        with pytest.raises(HandshakeRefused) as raised:
            FIXED_LEFT.complete(damaged)
        assert raised.value.code in HANDSHAKE_REFUSALS
        assert FIXED_LEFT.state == "pending"


def test_link_state_errors() -> None:
    left, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP)
    for operation in (lambda: left.seal(b"x"), lambda: left.open(b"x" * 60)):
        with pytest.raises(XdvError) as raised:
            operation()
        assert raised.value.code is ErrorCode.TRANSPORT_LINK_STATE
    right, reply = Link.accept(NODES["b"], hello, MEMBERSHIP)
    left.complete(reply)
    with pytest.raises(XdvError) as raised:
        left.complete(reply)
    assert raised.value.code is ErrorCode.TRANSPORT_LINK_STATE
    with pytest.raises(XdvError) as raised:
        right.complete(reply)
    assert raised.value.code is ErrorCode.TRANSPORT_LINK_STATE
    with pytest.raises(XdvError) as raised:
        Link.initiate(NODES["a"], "a", MEMBERSHIP)
    assert raised.value.code is ErrorCode.TRANSPORT_HANDSHAKE_INVALID
    assert initiator_of("b", "a") == initiator_of("a", "b") == "a"
    with pytest.raises(XdvError) as raised:
        initiator_of("c", "c")
    assert raised.value.code is ErrorCode.TRANSPORT_HANDSHAKE_INVALID
    assert left.refusals == ()


# ---------------------------------------------------------------------- frames


def _expected_tamper_code(position: int, frame_size: int) -> ErrorCode:
    if position < 4:
        return ErrorCode.TRANSPORT_FRAME_MALFORMED  # the frame tag
    if position < 21:
        return ErrorCode.TRANSPORT_FRAME_MISROUTED  # link id and direction
    if position < 29:
        return ErrorCode.TRANSPORT_FRAME_FORGED  # sequence: authenticated
    if position < FRAME_HEADER_SIZE:
        return ErrorCode.TRANSPORT_FRAME_MALFORMED  # length field
    return ErrorCode.TRANSPORT_FRAME_FORGED  # ciphertext and tag


@pytest.mark.spec("XDV-040-3.2")
@pytest.mark.spec("XDV-040-6.2")
def test_every_tampered_byte_is_refused_recorded_and_the_link_stays_usable() -> None:
    left, right = pair_from_keys()
    payload = b"cluster decision 42"
    frame = left.seal(payload)
    size = len(frame)
    positions = list(range(FRAME_HEADER_SIZE))  # every header byte
    positions += [FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + 7, size - 17]  # ciphertext
    positions += list(range(size - 16, size))  # every tag byte
    for position in positions:
        for flip in (0x01, 0x80):
            damaged = bytearray(frame)
            damaged[position] ^= flip
            refusal = refused(right, bytes(damaged))
            assert refusal.code is _expected_tamper_code(position, size), position
            assert refusal.digest == hashlib.sha256(damaged).hexdigest()
            assert refusal.peer == "a" and refusal.local == "b" and refusal.epoch == 7
    assert right.received == 0
    assert right.open(frame) == payload  # the good frame still opens
    assert len(right.refusals) == 2 * len(positions)
    assert right.refused_total == len(right.refusals)


@pytest.mark.spec("XDV-040-3.2")
def test_truncated_extended_oversized_and_malformed_frames() -> None:
    left, right = pair_from_keys()
    small_left, small_right = pair_from_keys(b"small")
    small_left.payload_max = small_right.payload_max = 32
    frame = left.seal(b"x" * 40)
    for cut in (0, 1, 20, FRAME_HEADER_SIZE, FRAME_OVERHEAD - 1, len(frame) - 1):
        assert refused(right, frame[:cut]).code is ErrorCode.TRANSPORT_FRAME_MALFORMED
    assert refused(right, frame + b"\x00").code is ErrorCode.TRANSPORT_FRAME_MALFORMED
    assert refused(right, "frame").code is ErrorCode.TRANSPORT_FRAME_MALFORMED
    assert refused(right, None).sequence is None
    assert right.open(bytearray(frame)) == b"x" * 40
    with pytest.raises(XdvError) as raised:
        small_left.seal(b"x" * 33)
    assert raised.value.code is ErrorCode.TRANSPORT_FRAME_OVERSIZED
    assert small_left.sent == 0  # a refused seal uses no sequence number
    big = pair_from_keys(b"small")[0].seal(b"y" * 33)
    assert refused(small_right, big).code is ErrorCode.TRANSPORT_FRAME_OVERSIZED
    assert small_right.open(small_left.seal(b"y" * 32)) == b"y" * 32


@pytest.mark.spec("XDV-040-3.2")
def test_replay_reorder_and_drop_then_continue() -> None:
    left, right = pair_from_keys()
    frames = [left.seal(f"m{i}".encode()) for i in range(5)]
    assert right.open(frames[0]) == b"m0"
    replay = refused(right, frames[0])
    assert (replay.code, replay.sequence) == (ErrorCode.TRANSPORT_FRAME_REPLAYED, 0)
    # Frame 1 is lost: every later frame is a reorder until it arrives.
    for later in (2, 4, 3):
        reorder = refused(right, frames[later])
        assert (reorder.code, reorder.sequence) == (ErrorCode.TRANSPORT_FRAME_REORDERED, later)
    assert right.open(frames[1]) == b"m1"
    assert [right.open(frames[i]) for i in (2, 3, 4)] == [b"m2", b"m3", b"m4"]
    assert [r.sequence for r in right.refusals] == [0, 2, 4, 3]
    assert refused(right, frames[4]).code is ErrorCode.TRANSPORT_FRAME_REPLAYED


@pytest.mark.spec("XDV-040-3.2")
@pytest.mark.spec("XDV-040-6.3")
def test_frames_of_another_link_direction_or_epoch_are_refused() -> None:
    left, right = pair_from_keys()
    other_left, _ = pair_from_keys(b"other")
    assert refused(right, other_left.seal(b"x")).code is ErrorCode.TRANSPORT_FRAME_MISROUTED
    # A frame reflected back to its own sender.
    reflected = left.seal(b"x")
    assert refused(left, reflected).code is ErrorCode.TRANSPORT_FRAME_MISROUTED
    # The same session keys under another membership: the associated data differs.
    following = MEMBERSHIP.next_epoch(without=["d"])
    old_left, _ = pair_from_keys(b"epoch")
    _, new_right = pair_from_keys(b"epoch", following)
    assert old_left.link_id == new_right.link_id
    assert old_left.belongs_to(MEMBERSHIP) and not old_left.belongs_to(following)
    assert refused(new_right, old_left.seal(b"x")).code is ErrorCode.TRANSPORT_FRAME_FORGED
    assert right.open(reflected) == b"x"  # meant for right, it opens there
    assert right.open(left.seal(b"fine")) == b"fine"


@pytest.mark.spec("XDV-040-10")
def test_refusals_are_kept_in_order_drained_and_turned_into_events() -> None:
    left, right = pair_from_keys()
    frame = left.seal(b"payload")
    right.open(frame)
    refused(right, frame)
    refused(right, b"junk")
    kept = right.refusals
    assert [r.code for r in kept] == [
        ErrorCode.TRANSPORT_FRAME_REPLAYED,
        ErrorCode.TRANSPORT_FRAME_MALFORMED,
    ]
    event = refusal_event(kept[0])
    assert event.event_type is EventType.LINK_FRAME_REFUSED
    assert event.status is ErrorCode.TRANSPORT_FRAME_REPLAYED
    assert event.metadata == {
        "local": "b",
        "peer": "a",
        "epoch": 7,
        "seq": 0,
        "code": "TRANSPORT_FRAME_REPLAYED",
        "reason": "frame 0 was already opened (next expected: 1)",
        "digest": hashlib.sha256(frame).hexdigest(),
    }
    assert refusal_event(kept[0]) == event  # pure
    assert canonical_metadata(event.metadata) == canonical_metadata(dict(event.metadata))
    assert "seq" not in refusal_event(kept[1]).metadata
    assert right.drain_refusals() == kept and right.refusals == ()
    assert right.refused_total == 2 and closed_event(right).metadata["refused"] == 2
    for _ in range(1030):
        with pytest.raises(FrameRefused):
            right.open(b"")
    assert len(right.refusals) == 1024 and right.refusals_dropped == 6


# ---------------------------------------------------------------------- properties

_OPERATION = st.one_of(
    st.tuples(st.just("seal"), st.sampled_from("ab"), st.binary(max_size=40)),
    st.tuples(
        st.just("deliver"),
        st.sampled_from("ab"),
        st.integers(0, 30),
        st.one_of(st.none(), st.integers(0, 200), st.just(-1)),
    ),
)


@pytest.mark.spec("XDV-040-3.2")
@pytest.mark.spec("XDV-031-3.3")
@given(st.lists(_OPERATION, max_size=40))
def test_exactly_the_untampered_in_order_frames_open(operations: list[tuple[Any, ...]]) -> None:
    ends = dict(zip("ab", pair_from_keys(), strict=True))
    wire: dict[str, list[tuple[bytes, bytes]]] = {"a": [], "b": []}  # frames sent by a node
    expected_next = {"a": 0, "b": 0}  # next frame the other end accepts, by sender
    refusals = {"a": 0, "b": 0}
    for operation in operations:
        sender = operation[1]
        receiver = "b" if sender == "a" else "a"
        if operation[0] == "seal":
            wire[sender].append((operation[2], ends[sender].seal(operation[2])))
            continue
        if not wire[sender]:
            continue
        index = operation[2] % len(wire[sender])
        payload, frame = wire[sender][index]
        damage = operation[3]
        if damage == -1:
            frame = frame[:-1]
        elif damage is not None:
            position = damage % len(frame)
            frame = frame[:position] + bytes([frame[position] ^ 0x10]) + frame[position + 1 :]
        if damage is None and index == expected_next[sender]:
            assert ends[receiver].open(frame) == payload
            expected_next[sender] += 1
        else:
            with pytest.raises(FrameRefused):
                ends[receiver].open(frame)
            refusals[receiver] += 1
    for node in "ab":
        assert ends[node].refused_total == refusals[node]
        other = "b" if node == "a" else "a"
        assert ends[node].received == expected_next[other]


@pytest.mark.spec("XDV-031-3.3")
@given(st.lists(st.tuples(st.binary(max_size=24), st.integers(-1, 60)), max_size=12))
def test_opening_decisions_replay_identically(items: list[tuple[bytes, int]]) -> None:
    """The same frames fed to two fresh receivers give the same results and refusal list."""
    left, _ = pair_from_keys(b"replay")
    frames = []
    for payload, damage in items:
        frame = left.seal(payload)
        if 0 <= damage < len(frame):
            frame = frame[:damage] + bytes([frame[damage] ^ 1]) + frame[damage + 1 :]
        frames.append(frame)
    frames += frames[:2]  # and some replays

    def run() -> tuple[list[bytes | str], tuple[Refusal, ...]]:
        _, right = pair_from_keys(b"replay")
        results: list[bytes | str] = []
        for frame in frames:
            try:
                results.append(right.open(frame))
            except FrameRefused as error:
                results.append(error.code.name)
        return results, right.refusals

    assert run() == run()


@pytest.mark.spec("XDV-040-3.2")
@given(st.binary(max_size=120), st.binary(max_size=120))
def test_arbitrary_bytes_are_refused_with_a_typed_refusal(junk: bytes, junk_hello: bytes) -> None:
    left, right = pair_from_keys()
    with pytest.raises(FrameRefused):
        right.open(junk)
    with pytest.raises(FrameRefused):
        right.open(b"XLF1" + right.link_id + b"\x00" + junk)
    assert right.received == 0 and right.open(left.seal(b"ok")) == b"ok"
    with pytest.raises(HandshakeRefused) as raised:
        Link.accept(NODES["b"], b"XLH1\x01" + junk_hello, MEMBERSHIP)
    assert raised.value.code in HANDSHAKE_REFUSALS


# ---------------------------------------------------------------------- golden formats


def _golden_frames() -> list[dict[str, Any]]:
    left, right = pair_from_keys(b"golden")
    out = []
    for sender, receiver, payload in (
        (left, right, b""),
        (left, right, b"hello, b"),
        (right, left, b"hello, a"),
        (left, right, bytes(range(64))),
    ):
        frame = sender.seal(payload)
        assert receiver.open(frame) == payload
        out.append({"from": sender.local, "payload": payload.hex(), "frame": frame.hex()})
    return out


def _layout(message: bytes, prefix_size: int, fields: list[tuple[str, int]]) -> list[Any]:
    layout: list[Any] = [["prefix", 0, prefix_size]]
    offset = prefix_size
    for name, size in fields:
        layout.append([name, offset, size])
        offset += size
    assert offset == len(message)
    return layout


def _golden_handshake() -> dict[str, Any]:
    left, hello = Link.initiate(NODES["a"], "b", MEMBERSHIP, random=counter_random(100))
    _, reply = Link.accept(NODES["b"], hello, MEMBERSHIP)
    left.complete(reply)
    hello_prefix = _prefix(1, 7, MEMBERSHIP.digest_bytes(), "a", "b")
    reply_prefix = _prefix(2, 7, MEMBERSHIP.digest_bytes(), "a", "b")
    assert hello.startswith(hello_prefix) and reply.startswith(reply_prefix)
    return {
        "membership": MEMBERSHIP.digest(),
        "hello_prefix": hello_prefix.hex(),
        "hello_ephemeral": hello[len(hello_prefix) : len(hello_prefix) + 32].hex(),
        "hello_layout": _layout(
            hello,
            len(hello_prefix),
            [("ephemeral", 32), ("ciphertext", 1088), ("confirmation", 32), ("signature", 3376)],
        ),
        "reply_prefix": reply_prefix.hex(),
        "reply_layout": _layout(
            reply,
            len(reply_prefix),
            [("hello_sha256", 32), ("confirmation", 32), ("signature", 3376)],
        ),
        "reply_hello_sha256_matches": reply[len(reply_prefix) : len(reply_prefix) + 32]
        == hashlib.sha256(hello).digest(),
    }


@pytest.mark.spec("XDV-040-3.2")
def test_frame_and_handshake_formats_match_the_golden_file() -> None:
    current = {"frames": _golden_frames(), "handshake": _golden_handshake()}
    if REGENERATE:
        GOLDEN.write_text(json.dumps(current, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert current == golden
    # The golden frames still open on a fresh pair (the format is readable, not just stable).
    left, right = pair_from_keys(b"golden")
    for item in golden["frames"]:
        receiver = right if item["from"] == "a" else left
        assert receiver.open(bytes.fromhex(item["frame"])) == bytes.fromhex(item["payload"])
