"""Reading and verifying traces. A bad byte is always reported, never silently accepted.

:func:`scan_trace` walks a trace and returns every intact entry plus the first problem found
(if any). :func:`read_trace` is the strict form used when opening a trace for use: it raises on
any problem, including a missing end entry, unless the caller explicitly accepts an open
(unfinished) trace. :func:`verify_trace` produces the report behind ``xdv verify``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, TraceError, XdvError
from xdv.inputs import FileBytes, open_bounded
from xdv.trace._events import Domain, EventType
from xdv.trace._format import (
    CHECK_SIZE,
    FORMAT_VERSION,
    FRAME_LENGTH,
    GENESIS_HASH,
    MAGIC,
    PREAMBLE,
    TraceEntry,
    body_bytes_max,
    decode_body,
    frame_hash,
)

__all__ = [
    "Data",
    "Trace",
    "TraceScan",
    "load_trace_bytes",
    "read_trace",
    "scan_trace",
    "split_frames",
    "verify_trace",
]


@dataclass
class TraceScan:
    """What a scan found: the intact entries, whether the run was closed, the first problem."""

    entries: list[TraceEntry] = field(default_factory=list)
    error: TraceError | None = None
    complete: bool = False
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.complete


@dataclass
class Trace:
    """A fully read trace."""

    entries: list[TraceEntry]
    complete: bool
    path: Path | None = None

    @property
    def start(self) -> dict[str, Any]:
        """The RUN_START metadata: seed, workload, kernel configuration."""
        return self.entries[0].metadata

    @property
    def end(self) -> dict[str, Any] | None:
        """The RUN_END metadata, or None for an open trace."""
        return self.entries[-1].metadata if self.complete else None

    @property
    def seed(self) -> int:
        seed = self.start.get("seed")
        if not isinstance(seed, int):
            raise TraceError("the run-start entry has no integer seed", entry_index=0)
        return seed

    @property
    def head_hash(self) -> bytes:
        return self.entries[-1].hash if self.entries else GENESIS_HASH


Data = bytes | FileBytes
"""A trace's bytes: read whole when small, else a view reading the file in windows."""


Source = str | os.PathLike[str] | bytes | FileBytes
"""A trace given by path, or as its bytes."""


def load_trace_bytes(source: Source) -> tuple[Data, Path | None]:
    """The bytes of a trace given as bytes or as a path, read with the trace limits.

    Only a regular file is read (a FIFO, device or directory is refused at once), a file over
    ``trace_bytes_max`` is refused by its size, and a large file is read on demand, so that
    neither a huge nor a sparse file is ever read whole into memory.
    """
    if isinstance(source, bytes | FileBytes):
        return source, None
    path = Path(source)
    try:
        return open_bounded(path, "trace_bytes_max", what="the trace"), path
    except XdvError as error:
        if error.code is not ErrorCode.INVALID_ARGUMENT:
            raise  # not regular, or over the limit: the typed refusal as it is
        raise TraceError(error.message, code=ErrorCode.TRACE_IO, where=str(path)) from None


_load = load_trace_bytes


def scan_trace(source: Source) -> TraceScan:
    """Walk a trace, checking framing, checks, canonical encoding, chain and ordering.

    Never raises for bad content (only for an unreadable file): the first problem is returned
    in :attr:`TraceScan.error`, with every entry before it in :attr:`TraceScan.entries`.
    """
    data, _ = _load(source)
    scan = TraceScan(size=len(data))
    scan.error = _scan_into(data, scan)
    return scan


def _scan_into(data: Data, scan: TraceScan) -> TraceError | None:
    if len(data) < len(PREAMBLE):
        return TraceError(
            f"the file is {len(data)} bytes, shorter than the {len(PREAMBLE)}-byte preamble",
            code=ErrorCode.TRACE_TORN,
            offset=0,
        )
    if data[: len(MAGIC)] != MAGIC:
        return TraceError("not an XDV trace (bad magic bytes)", offset=0)
    version = int.from_bytes(data[8:10], "little")
    if version != FORMAT_VERSION:
        return TraceError(
            f"trace format version {version} is not supported (this XDV reads {FORMAT_VERSION})",
            code=ErrorCode.TRACE_VERSION,
            offset=8,
        )
    if data[: len(PREAMBLE)] != PREAMBLE:
        return TraceError("the preamble's reserved flags are not zero", offset=10)
    offset = len(PREAMBLE)
    previous_hash = GENESIS_HASH
    previous_time = 0
    index = 0
    size = len(data)
    entries = scan.entries
    while offset < size:
        if scan.complete:
            return TraceError(
                f"{size - offset} bytes follow the run-end entry",
                entry_index=index,
                offset=offset,
            )
        if size - offset < FRAME_LENGTH.size:
            return TraceError(
                f"torn tail: the file ends inside the length of entry {index}",
                code=ErrorCode.TRACE_TORN,
                entry_index=index,
                offset=offset,
            )
        (length,) = FRAME_LENGTH.unpack(data[offset : offset + FRAME_LENGTH.size])
        if length > body_bytes_max:
            return TraceError(
                f"entry {index} declares {length} bytes, over the {body_bytes_max}-byte limit",
                entry_index=index,
                offset=offset,
            )
        frame_end = offset + FRAME_LENGTH.size + length + CHECK_SIZE
        if frame_end > size:
            return TraceError(
                f"torn tail: entry {index} needs {frame_end - offset} bytes "
                f"but only {size - offset} remain",
                code=ErrorCode.TRACE_TORN,
                entry_index=index,
                offset=offset,
            )
        digest = frame_hash(data[offset : frame_end - CHECK_SIZE])
        if digest[:CHECK_SIZE] != data[frame_end - CHECK_SIZE : frame_end]:
            return TraceError(
                f"entry {index} fails its check (corrupted bytes)",
                entry_index=index,
                offset=offset,
            )
        body = data[offset + FRAME_LENGTH.size : frame_end - CHECK_SIZE]
        try:
            entry = decode_body(body, index=index, offset=offset)
        except TraceError as error:
            return error
        problem = _check_entry(entry, index, previous_hash, previous_time)
        if problem is not None:
            problem.offset = offset
            return problem
        entries.append(entry)
        previous_hash = digest
        previous_time = entry.logical_time
        if entry.event_type is EventType.RUN_END:
            scan.complete = True
        offset = frame_end
        index += 1
    if not entries:
        return TraceError(
            "the trace holds no entries", code=ErrorCode.TRACE_INCOMPLETE, offset=offset
        )
    if not scan.complete:
        return TraceError(
            f"the trace has no run-end entry after entry {index - 1}: the run did not finish, "
            "or the file was cut at an entry boundary",
            code=ErrorCode.TRACE_INCOMPLETE,
            entry_index=index,
            offset=offset,
        )
    return None


def _check_entry(
    entry: TraceEntry, index: int, previous_hash: bytes, previous_time: int
) -> TraceError | None:
    if entry.seq != index:
        return TraceError(f"entry {index} carries sequence number {entry.seq}", entry_index=index)
    if entry.prev_hash != previous_hash:
        return TraceError(
            f"hash chain broken at entry {index}: it records previous hash "
            f"{entry.prev_hash.hex()[:16]}… but entry {index - 1} hashes to "
            f"{previous_hash.hex()[:16]}…",
            entry_index=index,
        )
    if entry.logical_time < previous_time:
        return TraceError(
            f"logical time goes backwards at entry {index} "
            f"({entry.logical_time} after {previous_time})",
            entry_index=index,
        )
    if not isinstance(entry.event_type, EventType):
        return TraceError(
            f"entry {index} has unknown event type {entry.event_type}", entry_index=index
        )
    if not isinstance(entry.domain, Domain):
        return TraceError(f"entry {index} has unknown domain {entry.domain}", entry_index=index)
    if not isinstance(entry.status, ErrorCode):
        return TraceError(f"entry {index} has unknown status {entry.status}", entry_index=index)
    if (index == 0) != (entry.event_type is EventType.RUN_START):
        return TraceError(
            f"entry {index} is {entry.event_name}; a trace starts with exactly one RUN_START",
            entry_index=index,
        )
    return None


def split_frames(source: Source) -> list[bytes]:
    """The frames (length and body, without the check) of a trace, checking only the framing.

    Replay uses it to pick out the entries it needs to decode; anything torn still raises.
    """
    data, _ = _load(source)
    if data[: len(PREAMBLE)] != PREAMBLE:
        scan = TraceScan(size=len(data))
        error = _scan_into(data, scan)
        raise error if error is not None else TraceError("bad preamble", offset=0)
    frames: list[bytes] = []
    offset, size = len(PREAMBLE), len(data)
    unpack_length = FRAME_LENGTH.unpack
    while offset < size:
        if size - offset < FRAME_LENGTH.size:
            raise TraceError(
                "torn tail", code=ErrorCode.TRACE_TORN, entry_index=len(frames), offset=offset
            )
        (length,) = unpack_length(data[offset : offset + FRAME_LENGTH.size])
        end = offset + FRAME_LENGTH.size + length
        if length > body_bytes_max:
            raise TraceError(
                f"entry {len(frames)} declares {length} bytes, over the {body_bytes_max}-byte "
                "limit",
                entry_index=len(frames),
                offset=offset,
            )
        if end + CHECK_SIZE > size:
            raise TraceError(
                f"torn tail: entry {len(frames)} runs past the end of the file",
                code=ErrorCode.TRACE_TORN,
                entry_index=len(frames),
                offset=offset,
            )
        frames.append(data[offset:end])
        offset = end + CHECK_SIZE
    return frames


def read_trace(source: Source, *, allow_open: bool = False) -> Trace:
    """Open a trace for use. Raise :class:`TraceError` on any problem.

    With ``allow_open`` a trace whose chain is intact but which has no run-end entry (a run
    that was killed) is accepted; torn or corrupted bytes never are.
    """
    data, path = _load(source)
    scan = TraceScan(size=len(data))
    error = _scan_into(data, scan)
    if error is not None and not (
        allow_open and error.code is ErrorCode.TRACE_INCOMPLETE and scan.entries
    ):
        if path is not None and error.where is None:
            error.where = str(path)
        raise error
    return Trace(entries=scan.entries, complete=scan.complete, path=path)


@dataclass
class VerifyReport:
    """The result behind ``xdv verify``.

    ``ok`` and ``complete`` say whether the trace is intact and closed by a RUN_END entry;
    ``end_status`` is what that entry says of the run (``"ok"``, ``"failed"``, ``"limit"``,
    ``"aborted"``... or ``"interrupted"``; None without a RUN_END), ``end_reason`` why an
    interrupted run was interrupted (``"SIGINT"``, say), and ``interrupted`` whether it was: an
    interrupted run's trace verifies, but it is never a normal completion.
    """

    ok: bool
    entries: int
    complete: bool
    head_hash: str
    error: TraceError | None
    end_status: str | None = None
    end_reason: str | None = None
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries_verified": self.entries,
            "complete": self.complete,
            "end_status": self.end_status,
            "end_reason": self.end_reason,
            "interrupted": self.interrupted,
            "head_hash": self.head_hash,
            "error": None
            if self.error is None
            else {
                "code": self.error.code.name,
                "message": self.error.message,
                "entry": self.error.entry_index,
                "offset": self.error.offset,
            },
        }


def verify_trace(source: Source, *, allow_open: bool = False) -> VerifyReport:
    """Check a whole trace: framing, checks, canonical form, hash chain, order, completeness."""
    scan = scan_trace(source)
    error = scan.error
    if (
        error is not None
        and allow_open
        and error.code is ErrorCode.TRACE_INCOMPLETE
        and scan.entries
    ):
        error = None
    head = scan.entries[-1].hash if scan.entries else GENESIS_HASH
    end_status = end_reason = None
    if scan.complete and scan.entries:
        # The last entry of a complete trace is its RUN_END (the reader checked it).
        metadata = scan.entries[-1].metadata
        status, reason = metadata.get("status"), metadata.get("reason")
        end_status = status if isinstance(status, str) else None
        end_reason = reason if isinstance(reason, str) else None
    return VerifyReport(
        ok=error is None,
        entries=len(scan.entries),
        complete=scan.complete,
        head_hash=head.hex(),
        error=error,
        end_status=end_status,
        end_reason=end_reason,
        interrupted=end_status == "interrupted",
    )
