"""The signed audit log beside a trace, and the verification of both together.

A run with auditing writes CHECKPOINT entries into its trace (see :mod:`xdv.core._audit`) and,
when it has a signing key, an *audit file* beside the trace (``TRACE.audit``) of JSON lines:

* line 1, the header: ``{"xdv-audit": 1, "fingerprint": ..., "key": {...}}``, the signer's
  public key (its Ed25519 and ML-DSA-65 halves in hex; never any private material);
* then one *signed tree head* per checkpoint and a final one after RUN_END:
  ``{"run": hex, "size": n, "root": hex, "final": bool, "sig": base64}``.

A tree head's signature is the hybrid signature (context ``xdv-tree-head``) over the canonical
CBOR map ``{"audit": 1, "run": run hash, "size": n, "root": root, "final": bool}``, where the run
hash is the hash of the trace's run-start entry, tying the head to one run.

:func:`verify_audit` checks, in order: the trace itself (framing, checks, hash chain, order,
completeness); every CHECKPOINT entry's size (its own position) and root against the Merkle tree
recomputed from the entries; then, if the trace declares itself signed or an audit file is
given, the audit file: the key (against ``trusted`` fingerprints when given), every signature,
every head against the recomputed tree, non-decreasing sizes, and a final head that covers the
whole trace. A trace cut back to an earlier point, a rewritten and re-chained trace, a rolled
back or dropped head, a foreign signer: each fails with a typed error naming what was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from xdv.errors import ErrorCode, TraceError, UnauthorizedError, XdvError
from xdv.inputs import exceeded, limit, load_json, read_bounded
from xdv.security._keys import HybridKeyPair, HybridPublicKey
from xdv.trace import (
    EventType,
    MerkleAccumulator,
    Trace,
    TraceEntry,
    canonical_metadata,
    read_trace,
)

__all__ = ["AuditFile", "AuditReport", "SignedHeadLog", "audit_path_for", "verify_audit"]

_CONTEXT = b"xdv-tree-head"
HEAD_SIGNATURE_CONTEXT = _CONTEXT  # what tree-head signatures are bound to
_LINE_CHARS_MAX = limit("trace_audit_line_max")  # a head line is about 4.6 kB
AUDIT_SUFFIX = ".audit"


def audit_path_for(trace: str | os.PathLike[str]) -> Path:
    """Where the audit file of ``trace`` lives: beside it, with ``.audit`` appended."""
    path = Path(trace)
    return path.with_name(path.name + AUDIT_SUFFIX)


def head_message(run: bytes, size: int, root: bytes, final: bool) -> bytes:
    """The canonical bytes a tree-head signature covers."""
    return canonical_metadata({"audit": 1, "run": run, "size": size, "root": root, "final": final})


class SignedHeadLog:
    """An :class:`~xdv.core.AuditSink` that signs tree heads into an audit file.

    Signing (one to two milliseconds, mostly the ML-DSA half) happens on one background
    thread, in the order the heads arrive, so the kernel does not stop at a checkpoint to wait
    for it; the signature library holds the interpreter lock while it works, so each signature
    still takes that much processor time from the kernel's thread. The final head is signed,
    written and fsynced before :meth:`tree_head` returns, and any failure of the background
    thread is raised there, so a run that ended normally has a complete audit file.
    """

    def __init__(
        self, path: str | os.PathLike[str], keys: HybridKeyPair, *, fsync: bool = True
    ) -> None:
        self.path = Path(path)
        self._keys = keys
        self._fsync = fsync
        self.heads = 0
        self._queue: queue.SimpleQueue[tuple[bytes, int, bytes, bool] | None] = queue.SimpleQueue()
        self._failure: XdvError | None = None
        try:
            self._file: IO[str] = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise XdvError(
                f"cannot create the audit file: {error.strerror}",
                code=ErrorCode.TRACE_IO,
                where=str(self.path.name),
            ) from None
        header = {
            "xdv-audit": 1,
            "fingerprint": keys.public.fingerprint,
            "key": keys.public.to_record(),
        }
        self._write(header, sync=False)
        self._worker = threading.Thread(target=self._sign_heads, name="xdv-audit", daemon=True)
        self._worker.start()

    def _write(self, record: dict[str, Any], *, sync: bool) -> None:
        try:
            self._file.write(json.dumps(record, sort_keys=True) + "\n")
            self._file.flush()
            if sync and self._fsync:
                os.fsync(self._file.fileno())
        except OSError as error:
            raise XdvError(
                f"cannot write the audit file: {error.strerror}",
                code=ErrorCode.TRACE_IO,
                where=str(self.path.name),
            ) from None

    def _sign_heads(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._failure is not None:
                continue
            run, size, root, final = item
            try:
                signature = self._keys.sign(head_message(run, size, root, final), context=_CONTEXT)
                record = {
                    "run": run.hex(),
                    "size": size,
                    "root": root.hex(),
                    "final": final,
                    "sig": base64.b64encode(signature).decode("ascii"),
                }
                self._write(record, sync=final)
                self.heads += 1
            except XdvError as error:
                self._failure = error

    def tree_head(self, run: bytes, size: int, root: bytes, final: bool) -> None:
        self._queue.put((run, size, root, final))
        if final:
            self.close()

    def close(self) -> None:
        """Finish signing queued heads and close the file; raise a failure of the signer."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()
        if not self._file.closed:
            self._file.close()
        if self._failure is not None:
            raise self._failure


@dataclass(frozen=True, slots=True)
class SignedHead:
    """One signed tree head from an audit file."""

    run: bytes
    size: int
    root: bytes
    final: bool
    signature: bytes
    line: int


@dataclass(frozen=True, slots=True)
class AuditFile:
    """A parsed audit file: the signer's key and its heads (signatures not yet checked)."""

    key: HybridPublicKey
    heads: list[SignedHead]

    @classmethod
    def parse(cls, data: bytes) -> AuditFile:
        # Line lengths are checked on the bytes, before anything is decoded or split: a huge
        # file of one endless line is refused at the cost of a scan, not of a copy of itself.
        start, number = 0, 1
        while start < len(data):
            end = data.find(b"\n", start, start + _LINE_CHARS_MAX * 4 + 2)
            if end < 0 and len(data) - start > _LINE_CHARS_MAX * 4 + 1:
                raise exceeded(
                    "trace_audit_line_max",
                    f"more than {_LINE_CHARS_MAX} characters",
                    f"audit file line {number}",
                    code=ErrorCode.CHECKPOINT_INVALID,
                )
            start = len(data) if end < 0 else end + 1
            number += 1
        lines = data.decode("utf-8", errors="replace").splitlines()
        if not lines:
            raise _audit_error("the audit file is empty", 0)
        for number, line in enumerate(lines, start=1):
            if len(line) > _LINE_CHARS_MAX:
                raise exceeded(
                    "trace_audit_line_max",
                    f"{len(line)} characters",
                    f"audit file line {number}",
                    code=ErrorCode.CHECKPOINT_INVALID,
                )
        try:
            header = load_json(lines[0], "audit file line 1")
            if not isinstance(header, dict) or header.get("xdv-audit") != 1:
                raise ValueError("not an XDV audit header (version 1)")
            key = HybridPublicKey.from_record(header.get("key"))
        except (ValueError, XdvError, RecursionError) as error:
            raise _audit_error(f"bad header: {_reason(error)}", 1) from None
        heads = []
        for number, text in enumerate(lines[1:], start=2):
            try:
                record = load_json(text, f"audit file line {number}")
                run = bytes.fromhex(record["run"])
                root = bytes.fromhex(record["root"])
                size = record["size"]
                final = record["final"]
                signature = base64.b64decode(record["sig"], validate=True)
                if type(size) is not int or not 1 <= size < 2**63 or type(final) is not bool:
                    raise ValueError("size must be a positive integer and final a boolean")
            except (ValueError, KeyError, TypeError, RecursionError, XdvError) as error:
                raise _audit_error(f"malformed tree head: {_reason(error)}", number) from None
            heads.append(SignedHead(run, size, root, final, signature, number))
        return cls(key, heads)


def _reason(error: BaseException) -> str:
    return error.message if isinstance(error, XdvError) else f"{type(error).__name__}: {error}"


def _audit_error(message: str, line: int) -> XdvError:
    return XdvError(message, code=ErrorCode.CHECKPOINT_INVALID, where=f"audit file line {line}")


@dataclass
class AuditReport:
    """What :func:`verify_audit` established."""

    entries: int
    checkpoints: int
    root: str
    signed: bool = False
    heads: int = 0
    signer: str | None = None
    trusted: bool | None = None
    notes: list[str] = field(default_factory=list)


def _entry_hashes(entries: list[TraceEntry]) -> list[bytes]:
    # Each entry's hash is the next entry's previous-hash field (the chain was just verified).
    hashes = [entry.prev_hash for entry in entries[1:]]
    hashes.append(entries[-1].hash)
    return hashes


def _checkpoint_error(message: str, entry: int) -> TraceError:
    return TraceError(message, code=ErrorCode.CHECKPOINT_INVALID, entry_index=entry)


def verify_audit(
    trace: str | os.PathLike[str] | bytes | Trace,
    audit: str | os.PathLike[str] | bytes | None = None,
    *,
    trusted: Collection[str] | None = None,
    require_signature: bool = False,
    allow_open: bool = False,
) -> AuditReport:
    """Verify a trace, its checkpoints and (when present or required) its signed audit file.

    ``audit`` defaults to the file beside a trace path, when it exists. ``trusted`` is a set
    of key fingerprints the signer must belong to, and implies ``require_signature``: pinning
    a signer means an unsigned trace is not acceptable. ``allow_open`` accepts a trace without
    its run end (a killed run): its checkpoints and the signed heads over its prefix are
    checked, but it cannot satisfy a signature requirement, which needs the final head.
    Raises a typed error on the first problem.
    """
    if trusted is not None:
        require_signature = True
    if isinstance(trace, Trace):
        parsed = trace
    else:
        parsed = read_trace(trace, allow_open=allow_open)
        if audit is None and not isinstance(trace, bytes):
            beside = audit_path_for(trace)
            if beside.exists():
                audit = beside
    entries = parsed.entries
    hashes = _entry_hashes(entries)
    tree = MerkleAccumulator()
    checkpoints = 0
    checkpoint_sizes: list[int] = []
    declared = parsed.start.get("audit")
    signed_declared = isinstance(declared, dict) and declared.get("signed") is True
    for index, entry in enumerate(entries):
        if entry.event_type == EventType.CHECKPOINT:
            size, root = entry.metadata.get("size"), entry.metadata.get("root")
            if size != index:
                raise _checkpoint_error(
                    f"checkpoint at entry {index} claims {size!r} entries before it", index
                )
            if root != tree.root():
                raise _checkpoint_error(
                    f"checkpoint at entry {index} does not match the Merkle tree of the "
                    "entries before it",
                    index,
                )
            checkpoints += 1
            checkpoint_sizes.append(index)
        tree.append(hashes[index])
    if checkpoints and not isinstance(declared, dict):
        raise _checkpoint_error("the trace has checkpoints but its RUN_START declares no audit", 0)
    report = AuditReport(entries=len(entries), checkpoints=checkpoints, root=tree.root().hex())
    if not parsed.complete:
        if require_signature:
            raise XdvError(
                "an open trace (no run end) has no final signed head, so it cannot meet a "
                "signature requirement",
                code=ErrorCode.CHECKPOINT_INVALID,
                where="audit file",
            )
        if audit is not None:
            data = audit if isinstance(audit, bytes) else _read(audit)
            _verify_heads(AuditFile.parse(data), hashes, trusted, report, final_required=False)
        return report
    if audit is None:
        if signed_declared or require_signature:
            raise XdvError(
                "the trace is meant to be signed but no audit file was found beside it",
                code=ErrorCode.CHECKPOINT_INVALID,
                where="audit file",
            )
        return report
    data = audit if isinstance(audit, bytes) else _read(audit)
    parsed_audit = AuditFile.parse(data)
    _verify_heads(parsed_audit, hashes, trusted, report)
    signed_sizes = [head.size for head in parsed_audit.heads]
    if signed_sizes != [*checkpoint_sizes, len(hashes)]:
        missing = sorted(set(checkpoint_sizes) - set(signed_sizes))
        raise _audit_error(
            "the signed heads do not match the trace's checkpoints"
            + (f" (no signed head for the checkpoints at {missing})" if missing else ""),
            1,
        )
    return report


def _read(path: str | os.PathLike[str]) -> bytes:
    """The audit file's bytes: a regular file, read with ``trace_audit_bytes_max``."""
    try:
        return read_bounded(path, "trace_audit_bytes_max", what="audit file")
    except XdvError as error:
        if error.code is not ErrorCode.INVALID_ARGUMENT:
            raise
        raise XdvError(
            f"cannot read the audit file: {error.message}",
            code=ErrorCode.TRACE_IO,
            where=Path(path).name,
        ) from None


_VERIFIED: dict[bytes, None] = {}
_VERIFIED_MAX = 4096
_VERIFIED_LOCK = threading.Lock()


def _verify_signature(key: HybridPublicKey, message: bytes, signature: bytes) -> None:
    """Hybrid verification, remembering successes (the same bytes always verify the same way),
    so re-checking one audit file against many candidate traces costs one verification."""
    digest = hashlib.sha256(key.ed25519 + key.mldsa65 + message + signature).digest()
    if digest in _VERIFIED:
        return
    key.verify(message, signature, context=_CONTEXT)
    with _VERIFIED_LOCK:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.pop(next(iter(_VERIFIED)))
        _VERIFIED[digest] = None


def _verify_heads(
    audit: AuditFile,
    hashes: list[bytes],
    trusted: Collection[str] | None,
    report: AuditReport,
    *,
    final_required: bool = True,
) -> None:
    fingerprint = audit.key.fingerprint
    report.signer = fingerprint
    if trusted is not None:
        report.trusted = fingerprint in trusted
        if not report.trusted:
            raise UnauthorizedError(
                f"the audit file is signed by key {fingerprint[:16]}…, which is not trusted",
                code=ErrorCode.SIGNATURE_INVALID,
                where="audit file line 1",
            )
    run = hashes[0]
    previous = 0
    final_seen = False
    # Heads come in increasing size; the tree is rebuilt incrementally as they are checked.
    tree = MerkleAccumulator()
    for head in audit.heads:
        where = head.line
        if final_seen:
            raise _audit_error("a tree head follows the final one", where)
        if not final_required and head.size > len(hashes):
            break  # an open trace: heads past its end cover entries it lost; checked up to it
        try:
            _verify_signature(
                audit.key, head_message(head.run, head.size, head.root, head.final), head.signature
            )
        except UnauthorizedError as error:
            raise UnauthorizedError(
                f"tree head for size {head.size}: {error.message}",
                code=ErrorCode.SIGNATURE_INVALID,
                where=f"audit file line {where}",
            ) from None
        if head.run != run:
            raise _audit_error("the tree head belongs to another run", where)
        if head.size < previous:
            raise _audit_error(f"tree head sizes go backwards ({previous} then {head.size})", where)
        if head.size > len(hashes):
            raise _audit_error(
                f"a signed tree head covers {head.size} entries but the trace holds only "
                f"{len(hashes)}: the trace was cut back",
                where,
            )
        tree.extend(hashes[tree.size : head.size])
        if tree.root() != head.root:
            raise _audit_error(
                f"the trace's first {head.size} entries do not match the signed tree head",
                where,
            )
        previous = head.size
        final_seen = head.final
        report.heads += 1
    if not final_required:
        report.signed = report.heads > 0
        return
    if not final_seen:
        raise _audit_error("the audit file has no final tree head", len(audit.heads) + 1)
    if previous != len(hashes):
        raise _audit_error(
            f"the final signed head covers {previous} entries but the trace holds {len(hashes)}",
            len(audit.heads) + 1,
        )
    report.signed = True
