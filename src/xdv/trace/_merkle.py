"""RFC 9162 Merkle trees over trace entries: tree heads, inclusion and consistency proofs.

Hashing follows RFC 9162 section 2.1.1: a leaf hash is SHA-256(0x00 || leaf), an interior node
is SHA-256(0x01 || left || right), and the tree over ``n`` leaves splits at the largest power of
two below ``n``. The leaves of an XDV audit tree are trace frames, and a trace entry's hash *is*
the leaf hash of its frame (trace format 2), so the tree is built from entry hashes directly.

Proof verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and validates its inputs first
(hash lengths, index below size, sizes in order, and no consistency proof from the empty tree),
so malformed or tampered proofs are rejected with AUDIT_PROOF_INVALID rather than accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "EMPTY_ROOT",
    "MerkleAccumulator",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
HASH_SIZE = 32
EMPTY_ROOT = _sha256(b"").digest()
"""The root of the empty tree (RFC 9162: the hash of the empty string)."""


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf)."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _perfect_root(level: list[bytes]) -> bytes:
    """Root of a perfect subtree (len(level) is a power of two), level by level."""
    sha = _sha256
    while len(level) > 1:
        level = [
            sha(b"\x01" + level[index] + level[index + 1]).digest()
            for index in range(0, len(level), 2)
        ]
    return level[0]


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves`` (leaf hashes), RFC 9162 MTH."""
    if not leaves:
        return EMPTY_ROOT
    accumulator = MerkleAccumulator()
    accumulator.extend(leaves)
    return accumulator.root()


class MerkleAccumulator:
    """An append-only Merkle tree that keeps only the roots of its perfect subtrees.

    Invariant: ``_stack`` holds (size, root) pairs of strictly decreasing power-of-two sizes
    summing to ``size``; they are the maximal perfect subtrees of the tree, left to right.
    Appending costs one node hash per leaf, amortized; :meth:`extend` hashes whole aligned
    blocks a level at a time, which is what keeps auditing cheap on the kernel's hot path.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def _push(self, size: int, root: bytes) -> None:
        stack = self._stack
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            root = node_hash(left, root)
            size *= 2
        stack.append((size, root))

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        self._push(1, leaf)
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add many leaf hashes (same result as appending them one by one)."""
        index = 0
        total = len(leaves)
        while index < total:
            remaining = total - index
            # The block must keep the stack aligned: no larger than the lowest set bit of the
            # current size, and no larger than what is left.
            block = 1 << (remaining.bit_length() - 1)
            if self.size:
                block = min(block, self.size & -self.size)
            self._push(block, _perfect_root(list(leaves[index : index + block])))
            index += block
            self.size += block

    def root(self) -> bytes:
        """The current tree head (RFC 9162 MTH of all leaves so far)."""
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            root = node_hash(left, root)
        return root


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    return tree_root(leaves[start:end])


def _path(leaves: Sequence[bytes], index: int, start: int, end: int) -> list[bytes]:
    size = end - start
    if size <= 1:
        return []
    split = _split(size)
    if index < split:
        return [
            *_path(leaves, index, start, start + split),
            _subtree_root(leaves, start + split, end),
        ]
    return [
        *_path(leaves, index - split, start + split, end),
        _subtree_root(leaves, start, start + split),
    ]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise _invalid(f"no leaf {index} in a tree of {size} (have {len(leaves)} leaves)")
    return _path(leaves, index, 0, size)


def _subproof(
    leaves: Sequence[bytes], first: int, start: int, end: int, whole: bool
) -> list[bytes]:
    size = end - start
    if first == size:
        return [] if whole else [_subtree_root(leaves, start, end)]
    split = _split(size)
    if first <= split:
        return [
            *_subproof(leaves, first, start, start + split, whole),
            _subtree_root(leaves, start + split, end),
        ]
    return [
        *_subproof(leaves, first - split, start + split, end, False),
        _subtree_root(leaves, start, start + split),
    ]


def consistency_proof(
    leaves: Sequence[bytes], first: int, second: int | None = None
) -> list[bytes]:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
    second = len(leaves) if second is None else second
    if not 0 < first <= second <= len(leaves):
        raise _invalid(f"no consistency proof from size {first} to {second}")
    return _subproof(leaves, first, 0, second, True)


def _invalid(message: str) -> XdvError:
    return XdvError(message, code=ErrorCode.AUDIT_PROOF_INVALID, where="Merkle proof")


def _check_hashes(*hashes: bytes) -> None:
    for value in hashes:
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise _invalid(f"a hash must be {HASH_SIZE} bytes")


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` with head
    ``root``; raise XdvError(AUDIT_PROOF_INVALID) otherwise."""
    _check_hashes(leaf, root, *proof)
    if not 0 <= index < size:
        raise _invalid(f"leaf index {index} is outside a tree of size {size}")
    position, last, value = index, size - 1, leaf
    for sibling in proof:
        if last == 0:
            raise _invalid("the proof is longer than the path to the root")
        if position & 1 or position == last:
            value = node_hash(sibling, value)
            while not position & 1 and position != 0:
                position >>= 1
                last >>= 1
        else:
            value = node_hash(value, sibling)
        position >>= 1
        last >>= 1
    if last != 0:
        raise _invalid("the proof is shorter than the path to the root")
    if value != root:
        raise _invalid("the proof does not lead to the expected root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``first`` leaves (head ``first_root``) is a prefix of the tree of
    ``second`` leaves (head ``second_root``); raise XdvError(AUDIT_PROOF_INVALID) otherwise."""
    _check_hashes(*proof)
    if first < 1:
        raise _invalid("a consistency proof from the empty tree proves nothing")
    if first > second:
        raise _invalid(f"the first size {first} exceeds the second {second}")
    if first == second:
        if proof:
            raise _invalid("equal sizes need an empty proof")
        if first_root != second_root:
            raise _invalid("equal sizes with different roots")
        return
    _check_hashes(first_root, second_root)
    if not proof:
        raise _invalid("a consistency proof between different sizes cannot be empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    position, last = first - 1, second - 1
    while position & 1:
        position >>= 1
        last >>= 1
    first_value = second_value = path[0]
    for sibling in path[1:]:
        if last == 0:
            raise _invalid("the proof is longer than needed")
        if position & 1 or position == last:
            first_value = node_hash(sibling, first_value)
            second_value = node_hash(sibling, second_value)
            while not position & 1 and position != 0:
                position >>= 1
                last >>= 1
        else:
            second_value = node_hash(second_value, sibling)
        position >>= 1
        last >>= 1
    if last != 0:
        raise _invalid("the proof is shorter than needed")
    if first_value != first_root:
        raise _invalid("the proof does not lead to the first root")
    if second_value != second_root:
        raise _invalid("the proof does not lead to the second root")
