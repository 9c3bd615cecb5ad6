"""``xdv audit``: Merkle inclusion and consistency proofs for trace entries.

``xdv audit prove TRACE --entry N`` writes a self-contained JSON proof: the entry's frame (so a
verifier recomputes its leaf hash and can read the entry), the audit path, the tree size and
root, and, when the trace has a signed audit file with a head of that size, the signed head and
the signer's public key. ``xdv audit verify-proof PROOF`` anchors the root first, in a signed
head by a key given with ``--trusted-key`` or in a root given with ``--root``, then checks the
path. An unanchored proof is refused, since any root can be made to fit a path (and a head
signed by a key the proof supplies itself anchors nothing).
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path
from typing import Any

import click

from xdv.errors import ErrorCode, XdvError
from xdv.inputs import exceeded, limit, load_json, read_bounded
from xdv.security import HEAD_SIGNATURE_CONTEXT as _CONTEXT
from xdv.security import AuditFile, HybridPublicKey, audit_path_for, head_message
from xdv.trace import (
    FRAME_LENGTH,
    consistency_proof,
    decode_body,
    frame_hash,
    inclusion_proof,
    read_trace,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["audit"]

_EXIT_OK = 0
_EXIT_MISMATCH = 1


def _echo_failure(error: XdvError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_record()}, sort_keys=True))
    else:
        click.echo(f"FAILED: {error}")
    sys.exit(_EXIT_MISMATCH)


@click.group()
def audit() -> None:
    """Merkle audit proofs over traces."""


def _signed_head(trace_path: Path, size: int) -> dict[str, Any] | None:

    path = audit_path_for(trace_path)
    if not path.exists():
        return None
    parsed = AuditFile.parse(read_bounded(path, "trace_audit_bytes_max", what="audit file"))
    for head in parsed.heads:
        if head.size == size:
            return {
                "run": head.run.hex(),
                "size": head.size,
                "root": head.root.hex(),
                "final": head.final,
                "sig": base64.b64encode(head.signature).decode("ascii"),
                "key": parsed.key.to_record(),
            }
    return None


@audit.command("prove")
@click.argument("trace_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--entry", "index", type=click.IntRange(min=0), help="Entry to prove included.")
@click.option(
    "--consistency",
    "first",
    type=click.IntRange(min=1),
    help="Instead: prove the tree of this many entries is a prefix of the tree of --size.",
)
@click.option("--size", type=click.IntRange(min=1), help="Tree size (default: the whole trace).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
def prove(
    trace_path: Path, index: int | None, first: int | None, size: int | None, output: Path | None
) -> None:
    """Write an inclusion (--entry) or consistency (--consistency) proof as JSON."""

    if (index is None) == (first is None):
        raise click.UsageError("give exactly one of --entry N and --consistency N")
    try:
        trace = read_trace(trace_path, allow_open=True)
        leaves = [entry.hash for entry in trace.entries]
        size = len(leaves) if size is None else size
        document: dict[str, Any]
        if index is not None:
            path = inclusion_proof(leaves, index, size)
            entry = trace.entries[index]
            document = {
                "xdv-proof": 1,
                "kind": "inclusion",
                "entry": index,
                "size": size,
                "frame": (FRAME_LENGTH.pack(len(entry.body)) + entry.body).hex(),
                "leaf": leaves[index].hex(),
                "root": tree_root(leaves[:size]).hex(),
                "path": [item.hex() for item in path],
            }
        else:
            assert first is not None
            path = consistency_proof(leaves, first, size)
            document = {
                "xdv-proof": 1,
                "kind": "consistency",
                "first": first,
                "size": size,
                "first_root": tree_root(leaves[:first]).hex(),
                "root": tree_root(leaves[:size]).hex(),
                "path": [item.hex() for item in path],
            }
        head = _signed_head(trace_path, size)
        if head is not None:
            document["head"] = head
    except XdvError as error:
        _echo_failure(error, False)
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as error:
        _echo_failure(
            XdvError(
                f"cannot write the proof: {error.strerror or error}",
                code=ErrorCode.OUTPUT_FAILED,
                where=str(output),
            ),
            False,
        )


_HASH_HEX = 64  # a SHA-256 hash, in hex


def _hex(document: dict[str, Any], key: str, *, hash_size: bool = True) -> bytes:
    """The hex field ``key`` of ``document``; a hash (32 bytes) unless ``hash_size`` is off."""
    value = document.get(key) if isinstance(document, dict) else None
    try:
        if not isinstance(value, str):
            raise TypeError
        data = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise XdvError(
            f"the proof's {key!r} is missing or not hex",
            code=ErrorCode.AUDIT_PROOF_INVALID,
            where="proof",
        ) from None
    if hash_size and len(data) != _HASH_HEX // 2:
        raise XdvError(
            f"the proof's {key!r} is {len(data)} bytes, not a 32-byte hash",
            code=ErrorCode.AUDIT_PROOF_INVALID,
            where="proof",
        )
    return data


def check_proof(
    document: Any, *, root: bytes | None = None, trusted: set[str] | None = None
) -> dict[str, Any]:
    """Verify a proof document; return what it established. Raises typed errors."""

    def invalid(message: str) -> XdvError:
        return XdvError(message, code=ErrorCode.AUDIT_PROOF_INVALID, where="proof")

    if not isinstance(document, dict) or document.get("xdv-proof") != 1:
        raise invalid("not an XDV proof (version 1)")
    size = document.get("size")
    if type(size) is not int:
        raise invalid("the proof has no integer size")
    claimed_root = _hex(document, "root")
    path = document.get("path")
    if not isinstance(path, list):
        raise invalid("the proof has no path")
    if len(path) > limit("proof_path_max"):
        raise exceeded("proof_path_max", f"{len(path)} hashes", "proof")
    hashes = []
    for item in path:
        if not isinstance(item, str) or len(item) != _HASH_HEX:
            raise invalid("a path element is not a 32-byte hash in hex")
        try:
            hashes.append(bytes.fromhex(item))
        except ValueError:
            raise invalid("a path element is not hex") from None
    result: dict[str, Any] = {"kind": document.get("kind"), "size": size}
    # Anchor the root first: a path proves nothing about a root nobody vouches for.
    anchors = []
    if root is not None:
        if root != claimed_root:
            raise invalid("the proof's root is not the root given with --root")
        anchors.append("the given root")
    head = document.get("head")
    if head is not None and trusted is not None:
        if not isinstance(head, dict):
            raise invalid("the signed head is malformed")
        key = HybridPublicKey.from_record(head.get("key"))
        try:
            signature = base64.b64decode(str(head.get("sig", "")), validate=True)
        except (binascii.Error, ValueError):
            raise invalid("the signed head's signature is not base64") from None
        if head.get("size") != size or _hex(head, "root") != claimed_root:
            raise invalid("the signed head is for another tree")
        if key.fingerprint not in trusted:
            raise XdvError(
                f"the head is signed by key {key.fingerprint[:16]}…, which is not trusted",
                code=ErrorCode.SIGNATURE_INVALID,
                where="proof",
            )
        key.verify(
            head_message(_hex(head, "run"), size, claimed_root, head.get("final") is True),
            signature,
            context=_CONTEXT,
        )
        anchors.append(f"a tree head signed by trusted key {key.fingerprint}")
    elif trusted is not None:
        raise invalid("a trusted key was required but the proof carries no signed head")
    if not anchors:
        raise invalid(
            "the root is not anchored: pass --root, or --trusted-key for a proof that carries a "
            "signed head (a head signed by a key the proof itself supplies proves nothing)"
        )
    if document.get("kind") == "inclusion":
        frame = _hex(document, "frame", hash_size=False)
        if len(frame) < FRAME_LENGTH.size:
            raise invalid("the entry frame is truncated")
        leaf = frame_hash(frame)
        if leaf != _hex(document, "leaf"):
            raise invalid("the entry frame does not hash to the proof's leaf")
        index = document.get("entry")
        if type(index) is not int:
            raise invalid("the proof has no integer entry index")
        verify_inclusion(index, size, leaf, hashes, claimed_root)
        entry = decode_body(frame[FRAME_LENGTH.size :], index=index, offset=0)
        if entry.seq != index:
            raise invalid(f"the entry's own sequence number {entry.seq} is not {index}")
        result["entry"] = entry.to_json()
    elif document.get("kind") == "consistency":
        first = document.get("first")
        if type(first) is not int:
            raise invalid("the proof has no integer first size")
        verify_consistency(first, size, _hex(document, "first_root"), claimed_root, hashes)
        result["first"] = first
    else:
        raise invalid(f"unknown proof kind {document.get('kind')!r}")
    result["root"] = claimed_root.hex()
    result["anchored_by"] = anchors
    return result


def _read_proof(proof_path: str) -> bytes:
    """The proof's bytes, from a regular file or standard input, read with the document limit."""
    if proof_path != "-":
        return read_bounded(proof_path, "document_bytes_max", what="proof")
    bound = limit("document_bytes_max")
    data = sys.stdin.buffer.read(bound + 1)
    if len(data) > bound:
        raise exceeded("document_bytes_max", f"more than {bound} bytes", "proof on stdin")
    return data


@audit.command("verify-proof")
@click.argument("proof_path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--root", "root_hex", help="Expected tree root (hex), e.g. from a trusted source.")
@click.option("--trusted-key", "trusted_keys", multiple=True, help="Allowed signer fingerprint.")
@click.option("--json", "as_json", is_flag=True)
def verify_proof(
    proof_path: str, root_hex: str | None, trusted_keys: tuple[str, ...], as_json: bool
) -> None:
    """Verify a proof written by ``xdv audit prove``; exit 1 if it does not hold."""
    try:
        root = bytes.fromhex(root_hex) if root_hex is not None else None
    except ValueError:
        raise click.UsageError("--root must be hex") from None
    if root is not None and len(root) != _HASH_HEX // 2:
        raise click.UsageError("--root must be a 32-byte tree root (64 hex digits)")
    try:
        document = load_json(_read_proof(proof_path), "proof")
    except XdvError as error:
        _echo_failure(error, as_json)
    try:
        result = check_proof(document, root=root, trusted=set(trusted_keys) or None)
    except XdvError as error:
        _echo_failure(error, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **result}, sort_keys=True))
    elif result["kind"] == "inclusion":
        click.echo(
            f"OK: entry {result['entry']['seq']} ({result['entry']['event']}) is in the tree of "
            f"{result['size']} entries with root {result['root']}"
        )
        click.echo(f"anchored by {', '.join(result['anchored_by'])}")
    else:
        click.echo(
            f"OK: the tree of {result['first']} entries is a prefix of the tree of "
            f"{result['size']} entries with root {result['root']}"
        )
        click.echo(f"anchored by {', '.join(result['anchored_by'])}")
    sys.exit(_EXIT_OK)
