from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.cluster._membership import (
    IDENTITY_PRIVATE_FILE,
    IDENTITY_PUBLIC_FILE,
    Membership,
    NodeEntry,
    NodeIdentity,
    check_node_id,
)
from xdv.errors import ErrorCode, XdvError

NODES = {name: NodeIdentity.generate(name, b"membership-test") for name in ("a", "b", "c", "d")}
MEMBERSHIP = Membership(3, [NODES[name].entry() for name in ("d", "b", "a", "c")])


def _code(raised: pytest.ExceptionInfo[XdvError]) -> ErrorCode:
    return raised.value.code


def test_seeded_identities_are_reproducible_and_distinct_per_node() -> None:
    again = NodeIdentity.generate("a", b"membership-test")
    assert again.entry() == NODES["a"].entry()
    assert again.entry().fingerprint == NODES["a"].entry().fingerprint
    assert NodeIdentity.generate("a", b"other").entry() != NODES["a"].entry()
    # The node id enters the derivation: two nodes with one seed get different keys.
    assert NODES["a"].entry().signing != NODES["b"].entry().signing
    assert "private" in repr(NODES["a"]) and NODES["a"]._signing_seed.hex() not in repr(NODES["a"])


def test_unseeded_identities_draw_from_the_injected_source() -> None:
    drawn: list[int] = []

    def source(size: int) -> bytes:
        drawn.append(size)
        return bytes([len(drawn)]) * size

    first = NodeIdentity.generate("e", random=source)
    assert drawn == [32, 32]
    drawn.clear()
    assert NodeIdentity.generate("e", random=source).entry() == first.entry()
    with pytest.raises(XdvError) as raised:
        NodeIdentity.generate("e", random=lambda size: b"short")
    assert _code(raised) is ErrorCode.MEMBERSHIP_IDENTITY_INVALID


@pytest.mark.parametrize("bad", ["", "A", "-x", "a b", "x" * 65, "é", 7, None, "a/b"])
def test_node_ids_are_validated(bad: Any) -> None:
    with pytest.raises(XdvError) as raised:
        check_node_id(bad)
    assert _code(raised) is ErrorCode.MEMBERSHIP_NODE_ID_INVALID
    with pytest.raises(XdvError):
        NodeIdentity.generate(bad, b"seed")


def test_identity_survives_a_restart_with_owner_only_private_file(tmp_path: Path) -> None:
    directory = tmp_path / "node"
    private = NODES["b"].save(directory)
    assert private.name == IDENTITY_PRIVATE_FILE
    assert os.stat(private).st_mode & 0o777 == 0o600
    assert os.stat(directory).st_mode & 0o777 == 0o700
    loaded = NodeIdentity.load(directory)
    assert loaded.node_id == "b" and loaded.entry() == NODES["b"].entry()
    # The public file holds the entry only, never a seed.
    public = (directory / IDENTITY_PUBLIC_FILE).read_text()
    assert NODES["b"]._signing_seed.hex() not in public
    assert NodeEntry.from_record(json.loads(public)["entry"]) == NODES["b"].entry()
    # Never overwritten.
    with pytest.raises(XdvError) as raised:
        NODES["c"].save(directory)
    assert _code(raised) is ErrorCode.MEMBERSHIP_IDENTITY_INVALID
    assert NodeIdentity.load(directory).node_id == "b"


def test_loading_refuses_exposed_malformed_or_inconsistent_identities(tmp_path: Path) -> None:
    NODES["a"].save(tmp_path / "x")
    private = tmp_path / "x" / IDENTITY_PRIVATE_FILE
    os.chmod(private, 0o640)
    with pytest.raises(XdvError) as raised:
        NodeIdentity.load(tmp_path / "x")
    assert _code(raised) is ErrorCode.MEMBERSHIP_IDENTITY_INVALID
    assert "chmod 600" in raised.value.message
    os.chmod(private, 0o600)
    # A public file that names other keys than the private file holds.
    (tmp_path / "x" / IDENTITY_PUBLIC_FILE).write_text(
        json.dumps({"version": 1, "entry": NODES["c"].entry().to_record()})
    )
    with pytest.raises(XdvError) as raised:
        NodeIdentity.load(tmp_path / "x")
    assert "does not match" in raised.value.message
    # Malformed private files; the message never quotes their content.
    for content in ("not json", '{"version": 2}', '{"version": 1, "node": "a"}'):
        private.write_text(content)
        with pytest.raises(XdvError) as raised:
            NodeIdentity.load(tmp_path / "x")
        assert _code(raised) is ErrorCode.MEMBERSHIP_IDENTITY_INVALID
        assert content not in raised.value.message
    with pytest.raises(XdvError) as raised:
        NodeIdentity.load(tmp_path / "missing")
    assert _code(raised) is ErrorCode.MEMBERSHIP_IDENTITY_INVALID


def test_membership_is_sorted_canonical_and_round_trips() -> None:
    assert MEMBERSHIP.node_ids == ("a", "b", "c", "d")
    assert MEMBERSHIP.epoch == 3 and len(MEMBERSHIP) == 4 and "c" in MEMBERSHIP
    record = MEMBERSHIP.to_record()
    again = Membership.from_record(json.loads(json.dumps(record)))
    assert again == MEMBERSHIP and again.digest() == MEMBERSHIP.digest()
    assert again.canonical() == MEMBERSHIP.canonical()
    shuffled = Membership(3, [NODES[name].entry() for name in ("b", "a", "d", "c")])
    assert shuffled.digest() == MEMBERSHIP.digest()
    assert Membership(4, MEMBERSHIP.nodes).digest() != MEMBERSHIP.digest()
    assert MEMBERSHIP.entry("c") == NODES["c"].entry()
    assert len(MEMBERSHIP.digest_bytes()) == 32
    # Memberships and entries travel between processes (pickle), checked again on arrival.
    copied = pickle.loads(pickle.dumps(MEMBERSHIP))
    assert copied == MEMBERSHIP and copied.entry("c") == MEMBERSHIP.entry("c")


def test_unknown_nodes_are_typed_errors() -> None:
    for bad in ("z", 3):
        with pytest.raises(XdvError) as raised:
            MEMBERSHIP.entry(bad)  # type: ignore[arg-type]
        assert _code(raised) is ErrorCode.MEMBERSHIP_NODE_UNKNOWN
    with pytest.raises(XdvError) as raised:
        MEMBERSHIP.is_quorum(["a", "b", "z"])
    assert _code(raised) is ErrorCode.MEMBERSHIP_NODE_UNKNOWN
    with pytest.raises(XdvError) as raised:
        MEMBERSHIP.next_epoch(without=["z"])
    assert _code(raised) is ErrorCode.MEMBERSHIP_NODE_UNKNOWN


def _bad_record(mutate: Any) -> dict[str, Any]:
    record = json.loads(json.dumps(MEMBERSHIP.to_record()))
    mutate(record)
    return record  # type: ignore[no-any-return]


BAD_RECORDS: list[tuple[str, Any, str]] = [
    ("extra key", lambda r: r.update(extra=1), "membership"),
    ("no epoch", lambda r: r.pop("epoch"), "membership"),
    ("negative epoch", lambda r: r.update(epoch=-1), "membership.epoch"),
    ("bool epoch", lambda r: r.update(epoch=True), "membership.epoch"),
    ("nodes not a list", lambda r: r.update(nodes={}), "membership.nodes"),
    ("no nodes", lambda r: r.update(nodes=[]), "membership.nodes"),
    ("unsorted", lambda r: r["nodes"].reverse(), "membership.nodes[1]"),
    ("repeated", lambda r: r["nodes"].__setitem__(1, r["nodes"][0]), "membership.nodes[1]"),
    ("entry not a map", lambda r: r["nodes"].__setitem__(2, "c"), "membership.nodes[2]"),
    ("short key", lambda r: r["nodes"][1]["signing"].update(ed25519="00"), "nodes[1] (b)"),
    ("not hex", lambda r: r["nodes"][1]["kem"].update(x25519="zz"), "nodes[1] (b).kem"),
    ("kem size", lambda r: r["nodes"][2]["kem"].update(x25519="00" * 31), "nodes[2] (c).kem"),
    ("missing kem", lambda r: r["nodes"][3].pop("kem"), "membership.nodes[3]"),
    (
        "shared key",
        lambda r: r["nodes"][1].update(signing=r["nodes"][0]["signing"]),
        "membership.nodes",
    ),
]


@pytest.mark.parametrize(("what", "mutate", "where"), BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_membership_records_are_validated_strictly(what: str, mutate: Any, where: str) -> None:
    with pytest.raises(XdvError) as raised:
        Membership.from_record(_bad_record(mutate))
    assert _code(raised) is ErrorCode.MEMBERSHIP_INVALID, what
    assert raised.value.where is not None and where in raised.value.where, raised.value


def test_bad_node_id_in_a_record() -> None:
    record = _bad_record(lambda r: r["nodes"][0].update(node="A"))
    with pytest.raises(XdvError) as raised:
        Membership.from_record(record)
    assert _code(raised) is ErrorCode.MEMBERSHIP_NODE_ID_INVALID
    assert raised.value.where == "membership.nodes[0].node"


def test_next_epoch_removes_and_adds_members() -> None:
    e = NodeIdentity.generate("e", b"membership-test").entry()
    following = MEMBERSHIP.next_epoch(without=["b"], adding=[e])
    assert following.epoch == 4 and following.node_ids == ("a", "c", "d", "e")
    assert following.digest() != MEMBERSHIP.digest()
    assert MEMBERSHIP.node_ids == ("a", "b", "c", "d")  # the old epoch is unchanged
    with pytest.raises(XdvError) as raised:
        MEMBERSHIP.next_epoch(adding=[NODES["a"].entry()])
    assert _code(raised) is ErrorCode.MEMBERSHIP_INVALID
    # A node may come back with new keys in the epoch that removes its old entry.
    rekeyed = NodeIdentity.generate("a", b"new keys").entry()
    assert MEMBERSHIP.next_epoch(without=["a"], adding=[rekeyed]).entry("a") == rekeyed
    with pytest.raises(XdvError) as raised:
        MEMBERSHIP.next_epoch(without=["a", "b", "c", "d"])
    assert _code(raised) is ErrorCode.MEMBERSHIP_INVALID


POOL = [NodeIdentity.generate(f"n{i:02d}", b"q").entry() for i in range(22)]


@pytest.mark.parametrize(
    ("n", "faulty", "quorum"),
    [(1, 0, 1), (2, 0, 2), (3, 0, 2), (4, 1, 3), (5, 1, 4), (6, 1, 4), (7, 2, 5), (10, 3, 7)],
)
def test_fault_threshold_and_quorum(n: int, faulty: int, quorum: int) -> None:
    membership = Membership(0, POOL[:n])
    assert membership.max_faulty() == faulty
    assert membership.quorum_size() == quorum
    ids = membership.node_ids
    assert membership.is_quorum(ids[:quorum]) and not membership.is_quorum(ids[: quorum - 1])
    assert membership.is_quorum([ids[0]] * n) is (quorum == 1)  # repeats count once


@given(n=st.integers(1, len(POOL)))
def test_the_threshold_meets_n_3f_1_and_quorums_intersect_in_a_correct_member(n: int) -> None:
    membership = Membership(0, POOL[:n])
    f, quorum = membership.max_faulty(), membership.quorum_size()
    assert n >= 3 * f + 1 and n < 3 * (f + 1) + 1  # the largest f with n >= 3f + 1
    assert 2 * quorum - n >= f + 1  # two quorums share at least one correct member
    assert quorum <= n - f  # the correct members alone form a quorum
    assert membership.is_quorum(membership.node_ids[f:])
