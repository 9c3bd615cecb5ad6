"""Node identities and cluster membership: who may speak on a sealed link, under which keys.

A :class:`NodeIdentity` is what a node keeps secret: its node id, a hybrid signing key pair
(Ed25519 + ML-DSA-65, :class:`~xdv.security.HybridKeyPair`) and a hybrid KEM key pair (X25519 +
ML-KEM-768, :class:`~xdv.security.KemKeyPair`). Its public half is a :class:`NodeEntry`.

A :class:`Membership` is one *epoch* of the cluster: an epoch number and the entries of its nodes,
sorted by node id. Its canonical record is encoded with the trace's canonical CBOR, so every
node computes the same :meth:`Membership.digest`; links bind to that digest, so a link made
under one membership cannot be used under another (see ``_transport``). A new epoch is made
with :meth:`Membership.next_epoch`, never by editing one in place.

Fault threshold: with ``n`` members the membership tolerates ``f = (n - 1) // 3`` Byzantine
members (``n >= 3f + 1``); a quorum is ``ceil((n + f + 1) / 2)`` distinct members, so any two
quorums share at least ``f + 1`` members, one of them correct.

On disk (:meth:`NodeIdentity.save` / :meth:`NodeIdentity.load`), a directory holds::

    node-identity.key    {"version": 1, "node": id, "signing_seed": hex, "kem_seed": hex}  0600
    node-identity.json   {"version": 1, "entry": <the NodeEntry record>}                 0644

The private file is created atomically (written under a temporary name, then linked into
place, never overwritten); loading refuses a private file that the group or others may read or
write, and a public file that does not match the private keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError, safe_repr
from xdv.inputs import load_json, read_bounded
from xdv.security import HybridKeyPair, HybridPublicKey, KemKeyPair, KemPublicKey
from xdv.trace import canonical_metadata

__all__ = [
    "IDENTITY_PRIVATE_FILE",
    "IDENTITY_PUBLIC_FILE",
    "Membership",
    "NodeEntry",
    "NodeIdentity",
    "check_node_id",
]

IDENTITY_PRIVATE_FILE = "node-identity.key"
"""Name of the private identity file in an identity directory."""
IDENTITY_PUBLIC_FILE = "node-identity.json"
"""Name of the public identity file (the node's entry) in an identity directory."""

_NODE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
_SEED_SIZE = 32
_NODES_MAX = 1024
_EPOCH_MAX = 2**63 - 1


def _membership_error(message: str, where: str) -> XdvError:
    return XdvError(message, code=ErrorCode.MEMBERSHIP_INVALID, where=where)


def _identity_error(message: str, where: str) -> XdvError:
    return XdvError(message, code=ErrorCode.MEMBERSHIP_IDENTITY_INVALID, where=where)


def check_node_id(node_id: object, where: str = "node id") -> str:
    """``node_id`` if it is a valid node id (1-64 characters: lowercase letters, digits, ``.``,
    ``_`` and ``-``, starting with a letter or digit); MEMBERSHIP_NODE_ID_INVALID otherwise."""
    if type(node_id) is not str or not _NODE_ID.match(node_id):
        raise XdvError(
            f"a node id is 1-64 lowercase letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; got {safe_repr(node_id)}",
            code=ErrorCode.MEMBERSHIP_NODE_ID_INVALID,
            where=where,
        )
    return node_id


def _hex_field(record: Mapping[str, Any], key: str, where: str) -> bytes:
    value = record.get(key)
    if type(value) is not str:
        raise _membership_error(f"{key!r} must be a hex string, got {safe_repr(value)}", where)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _membership_error(f"{key!r} is not valid hex", where) from None


def _exact_keys(record: object, keys: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise _membership_error(f"expected a map, got {type(record).__name__}", where)
    found = set(record)
    if found != keys:
        missing, extra = sorted(keys - found), sorted(str(k) for k in found - keys)
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise _membership_error(f"the map's keys are wrong: {detail}", where)
    return record


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """A member's public identity: its node id, its pinned signing key and its KEM key."""

    node_id: str
    signing: HybridPublicKey
    kem: KemPublicKey

    def __post_init__(self) -> None:
        check_node_id(self.node_id)
        if not isinstance(self.signing, HybridPublicKey) or not isinstance(self.kem, KemPublicKey):
            raise _membership_error(
                "a node entry holds a HybridPublicKey and a KemPublicKey", f"node {self.node_id}"
            )

    def to_record(self) -> dict[str, Any]:
        """The canonical record (hex strings): ``{node, signing: {ed25519, mldsa65}, kem:
        {x25519, mlkem768}}``."""
        return {
            "node": self.node_id,
            "signing": self.signing.to_record(),
            "kem": {"x25519": self.kem.x25519.hex(), "mlkem768": self.kem.mlkem768.hex()},
        }

    @classmethod
    def from_record(cls, record: object, where: str = "node entry") -> NodeEntry:
        """Rebuild an entry from :meth:`to_record` output; MEMBERSHIP_INVALID (or
        MEMBERSHIP_NODE_ID_INVALID) saying what is wrong and where."""
        fields = _exact_keys(record, {"node", "signing", "kem"}, where)
        node_id = check_node_id(fields["node"], f"{where}.node")
        where = f"{where} ({node_id})"
        signing = _exact_keys(fields["signing"], {"ed25519", "mldsa65"}, f"{where}.signing")
        kem = _exact_keys(fields["kem"], {"x25519", "mlkem768"}, f"{where}.kem")
        try:
            signing_key = HybridPublicKey(
                _hex_field(signing, "ed25519", f"{where}.signing"),
                _hex_field(signing, "mldsa65", f"{where}.signing"),
            )
        except XdvError as error:
            if error.code is ErrorCode.MEMBERSHIP_INVALID:
                raise
            raise _membership_error(error.message, f"{where}.signing") from None
        try:
            kem_key = KemPublicKey(
                _hex_field(kem, "x25519", f"{where}.kem"),
                _hex_field(kem, "mlkem768", f"{where}.kem"),
            )
        except XdvError as error:
            if error.code is ErrorCode.MEMBERSHIP_INVALID:
                raise
            raise _membership_error(
                "the KEM key is not 32 + 1184 bytes (X25519 + ML-KEM-768)", f"{where}.kem"
            ) from None
        return cls(node_id, signing_key, kem_key)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the entry's canonical CBOR record: the entry's stable name."""
        return hashlib.sha256(b"XDV-NODE-1" + canonical_metadata(self.to_record())).hexdigest()


class NodeIdentity:
    """A node's private identity: node id, hybrid signing keys and hybrid KEM keys.

    The private material is two 32-byte seeds; they never appear in a record, an error or a
    trace, only in the identity file written by :meth:`save`.
    """

    __slots__ = ("_kem_seed", "_signing_seed", "kem", "node_id", "signing")

    def __init__(self, node_id: str, signing_seed: bytes, kem_seed: bytes) -> None:
        self.node_id = check_node_id(node_id)
        for name, seed in (("signing", signing_seed), ("kem", kem_seed)):
            if type(seed) is not bytes or len(seed) != _SEED_SIZE:
                raise _identity_error(
                    f"the {name} seed must be {_SEED_SIZE} bytes", f"node {node_id}"
                )
        self._signing_seed = signing_seed
        self._kem_seed = kem_seed
        self.signing = HybridKeyPair(signing_seed)
        self.kem = KemKeyPair(kem_seed)

    @classmethod
    def generate(
        cls,
        node_id: str,
        seed: bytes | None = None,
        *,
        random: Callable[[int], bytes] | None = None,
    ) -> NodeIdentity:
        """A new identity for ``node_id``.

        With ``seed`` the keys are a pure function of ``(node_id, seed)`` (tests, reproducible
        set-ups); without it both key seeds are drawn from ``random`` (``secrets.token_bytes``
        when not given).
        """
        check_node_id(node_id)
        if seed is not None:
            if not isinstance(seed, bytes | bytearray):
                raise _identity_error("an identity seed is bytes", f"node {node_id}")
            base = node_id.encode() + b"\x00" + bytes(seed)
            signing = hashlib.sha256(b"XDV-NODE-SIGNING-1" + base).digest()
            kem = hashlib.sha256(b"XDV-NODE-KEM-1" + base).digest()
            return cls(node_id, signing, kem)
        draw = random if random is not None else secrets.token_bytes
        signing, kem = bytes(draw(_SEED_SIZE)), bytes(draw(_SEED_SIZE))
        if len(signing) != _SEED_SIZE or len(kem) != _SEED_SIZE:
            raise _identity_error(
                f"the random source must return {_SEED_SIZE} bytes when asked for them",
                f"node {node_id}",
            )
        return cls(node_id, signing, kem)

    def entry(self) -> NodeEntry:
        """The public entry a membership lists for this node."""
        return NodeEntry(self.node_id, self.signing.public, self.kem.public)

    # ------------------------------------------------------------------ files

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the identity into ``directory`` (created 0700 if missing): the private file
        0600, atomically and never over an existing one (MEMBERSHIP_IDENTITY_INVALID), and the
        public entry beside it. Returns the private file's path."""
        base = Path(directory)
        private = base / IDENTITY_PRIVATE_FILE
        where = f"identity {private.name}"
        try:
            if not base.exists():
                base.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(base, 0o700)
            if private.exists():
                raise _identity_error(
                    f"{private.name} already exists; refusing to overwrite it", where
                )
            record = {
                "version": 1,
                "node": self.node_id,
                "signing_seed": self._signing_seed.hex(),
                "kem_seed": self._kem_seed.hex(),
            }
            temporary = base / f".{IDENTITY_PRIVATE_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(descriptor, "w") as handle:
                    json.dump(record, handle)
                    handle.write("\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(temporary, private)
                except FileExistsError:
                    raise _identity_error(
                        f"{private.name} already exists; refusing to overwrite it", where
                    ) from None
            finally:
                os.unlink(temporary)
            public = base / IDENTITY_PUBLIC_FILE
            staged = base / f".{IDENTITY_PUBLIC_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            staged.write_text(
                json.dumps({"version": 1, "entry": self.entry().to_record()}, indent=1) + "\n"
            )
            os.chmod(staged, 0o644)
            os.replace(staged, public)
        except OSError as error:
            raise _identity_error(
                f"cannot write the identity: {error.strerror or type(error).__name__}", where
            ) from None
        return private

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> NodeIdentity:
        """Load the identity saved in ``directory``; MEMBERSHIP_IDENTITY_INVALID when the files
        are missing, malformed, readable or writable by others, or disagree."""
        base = Path(directory)
        private = base / IDENTITY_PRIVATE_FILE
        where = f"identity {private.name}"
        try:
            mode = os.stat(private, follow_symlinks=False).st_mode
        except OSError as error:
            raise _identity_error(
                f"cannot read {private.name}: {error.strerror or type(error).__name__}", where
            ) from None
        if not stat.S_ISREG(mode):
            raise _identity_error(f"{private.name} is not a regular file", where)
        if mode & 0o077:
            raise _identity_error(
                f"{private.name} is accessible to the group or others (mode "
                f"{stat.S_IMODE(mode):03o}); make it owner-only (chmod 600)",
                where,
            )
        try:
            record = load_json(read_bounded(private, "document_bytes_max", what=where), where)
        except XdvError as error:
            # Only the code: a parser's message may quote the (secret) content.
            raise _identity_error(
                f"{private.name} is malformed ({error.code.name})", where
            ) from None
        if (
            not isinstance(record, dict)
            or record.get("version") != 1
            or set(record) != {"version", "node", "signing_seed", "kem_seed"}
        ):
            raise _identity_error(
                f"{private.name} is not a version-1 identity (keys: version, node, "
                "signing_seed, kem_seed)",
                where,
            )
        try:
            signing = bytes.fromhex(record["signing_seed"])
            kem = bytes.fromhex(record["kem_seed"])
        except (TypeError, ValueError):
            raise _identity_error(f"{private.name} holds a seed that is not hex", where) from None
        identity = cls(record["node"], signing, kem)
        public = base / IDENTITY_PUBLIC_FILE
        if public.exists():
            try:
                stored = load_json(read_bounded(public, "document_bytes_max", what=where), where)
                entry = NodeEntry.from_record(
                    stored.get("entry") if isinstance(stored, dict) else None, public.name
                )
            except XdvError as error:
                raise _identity_error(
                    f"{public.name} is malformed: {error.message}", f"identity {public.name}"
                ) from None
            if entry != identity.entry():
                raise _identity_error(
                    f"{public.name} does not match the private keys in {private.name}",
                    f"identity {public.name}",
                )
        return identity

    def __repr__(self) -> str:
        return f"NodeIdentity({self.node_id!r}, <private>)"


def _entries_checked(entries: Iterable[NodeEntry], where: str) -> tuple[NodeEntry, ...]:
    listed = list(entries)
    for index, entry in enumerate(listed):
        if not isinstance(entry, NodeEntry):
            raise _membership_error(
                f"a membership lists NodeEntry values, got {type(entry).__name__}",
                f"{where}[{index}]",
            )
    if not listed:
        raise _membership_error("a membership has at least one node", where)
    if len(listed) > _NODES_MAX:
        raise _membership_error(
            f"a membership has at most {_NODES_MAX} nodes, got {len(listed)}", where
        )
    ordered = tuple(sorted(listed, key=lambda entry: entry.node_id))
    signing: dict[str, str] = {}
    kem: dict[bytes, str] = {}
    for previous, entry in zip((None, *ordered), ordered, strict=False):
        if previous is not None and previous.node_id == entry.node_id:
            raise _membership_error(f"node {entry.node_id!r} is listed twice", where)
        other = signing.setdefault(entry.signing.fingerprint, entry.node_id)
        if other != entry.node_id:
            raise _membership_error(
                f"nodes {other!r} and {entry.node_id!r} share one signing key", where
            )
        other = kem.setdefault(entry.kem.encoded(), entry.node_id)
        if other != entry.node_id:
            raise _membership_error(
                f"nodes {other!r} and {entry.node_id!r} share one KEM key", where
            )
    return ordered


class Membership:
    """One epoch of the cluster's membership: an epoch number and its nodes, sorted by id.

    Immutable; equal memberships have equal :meth:`digest`.
    """

    __slots__ = ("_by_id", "_digest", "epoch", "nodes")

    def __init__(self, epoch: int, nodes: Iterable[NodeEntry]) -> None:
        if type(epoch) is not int or not 0 <= epoch <= _EPOCH_MAX:
            raise _membership_error(
                f"the epoch is an integer in [0, 2**63), got {safe_repr(epoch)}", "membership.epoch"
            )
        self.epoch = epoch
        self.nodes: tuple[NodeEntry, ...] = _entries_checked(nodes, "membership.nodes")
        self._by_id = {entry.node_id: entry for entry in self.nodes}
        self._digest = hashlib.sha256(b"XDV-MEMBERSHIP-1" + self.canonical()).hexdigest()

    def __reduce__(self) -> tuple[type[Membership], tuple[int, tuple[NodeEntry, ...]]]:
        # Pickled (e.g. to another process) as its epoch and entries, checked again on arrival.
        return (Membership, (self.epoch, self.nodes))

    # ------------------------------------------------------------------ records

    def to_record(self) -> dict[str, Any]:
        """``{"epoch": int, "nodes": [NodeEntry records sorted by node id]}``."""
        return {"epoch": self.epoch, "nodes": [entry.to_record() for entry in self.nodes]}

    def canonical(self) -> bytes:
        """The canonical CBOR encoding of :meth:`to_record` (the trace's metadata profile)."""
        return canonical_metadata(self.to_record())

    def digest(self) -> str:
        """SHA-256 (hex) over a domain tag and :meth:`canonical`: the membership's name."""
        return self._digest

    def digest_bytes(self) -> bytes:
        """:meth:`digest` as 32 raw bytes."""
        return bytes.fromhex(self._digest)

    @classmethod
    def from_record(cls, record: object) -> Membership:
        """Rebuild a membership from :meth:`to_record` output, strictly: exact keys, an
        integer epoch, node entries in ascending node-id order without repeats. Errors are
        MEMBERSHIP_INVALID (or MEMBERSHIP_NODE_ID_INVALID) naming the offending place."""
        fields = _exact_keys(record, {"epoch", "nodes"}, "membership")
        nodes = fields["nodes"]
        if not isinstance(nodes, list | tuple):
            raise _membership_error(
                f"'nodes' is a list, got {type(nodes).__name__}", "membership.nodes"
            )
        entries = [
            NodeEntry.from_record(item, f"membership.nodes[{index}]")
            for index, item in enumerate(nodes)
        ]
        for index in range(1, len(entries)):
            if entries[index - 1].node_id >= entries[index].node_id:
                raise _membership_error(
                    f"nodes must be listed once each in ascending id order; "
                    f"{entries[index].node_id!r} follows {entries[index - 1].node_id!r}",
                    f"membership.nodes[{index}]",
                )
        return cls(fields["epoch"], entries)

    # ------------------------------------------------------------------ queries

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def __len__(self) -> int:
        return len(self.nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Membership):
            return NotImplemented
        return self._digest == other._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return (
            f"Membership(epoch={self.epoch}, nodes={[e.node_id for e in self.nodes]}, "
            f"digest={self._digest[:16]}…)"
        )

    @property
    def node_ids(self) -> tuple[str, ...]:
        """The members' ids, ascending."""
        return tuple(entry.node_id for entry in self.nodes)

    def entry(self, node_id: str) -> NodeEntry:
        """The entry of ``node_id``; MEMBERSHIP_NODE_UNKNOWN if it is not a member."""
        found = self._by_id.get(node_id) if isinstance(node_id, str) else None
        if found is None:
            raise XdvError(
                f"node {safe_repr(node_id)} is not a member of epoch {self.epoch}",
                code=ErrorCode.MEMBERSHIP_NODE_UNKNOWN,
                where=f"membership epoch {self.epoch}",
            )
        return found

    def next_epoch(
        self, *, without: Iterable[str] = (), adding: Iterable[NodeEntry] = ()
    ) -> Membership:
        """The membership of the next epoch: these nodes less ``without`` (each must be a
        member: MEMBERSHIP_NODE_UNKNOWN) plus ``adding`` (none may be a member already:
        MEMBERSHIP_INVALID)."""
        removed = set()
        for node_id in without:
            self.entry(node_id)
            removed.add(node_id)
        added = list(adding)
        for entry in added:
            if (
                isinstance(entry, NodeEntry)
                and entry.node_id in self._by_id
                and entry.node_id not in removed
            ):
                raise _membership_error(
                    f"node {entry.node_id!r} is already a member", "next_epoch.adding"
                )
        kept = [entry for entry in self.nodes if entry.node_id not in removed]
        return Membership(self.epoch + 1, [*kept, *added])

    def max_faulty(self) -> int:
        """The most Byzantine members this membership tolerates: the largest ``f`` with
        ``n >= 3f + 1``."""
        return (len(self.nodes) - 1) // 3

    def quorum_size(self) -> int:
        """The fewest distinct members that form a quorum: ``ceil((n + f + 1) / 2)``, so two
        quorums always share at least ``f + 1`` members (``2f + 1`` when ``n = 3f + 1``)."""
        n, f = len(self.nodes), self.max_faulty()
        return (n + f + 2) // 2

    def is_quorum(self, node_ids: Iterable[str]) -> bool:
        """Whether ``node_ids`` (repeats count once) form a quorum; MEMBERSHIP_NODE_UNKNOWN for
        an id that is not a member."""
        distinct = set()
        for node_id in node_ids:
            distinct.add(self.entry(node_id).node_id)
        return len(distinct) >= self.quorum_size()
