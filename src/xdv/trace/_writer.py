"""The append-only trace writer: framing, hash chaining, batching and the fsync policy.

Durability policy (``docs/trace-format.md`` has the long form):

* ``always``: every entry is written and fsynced before :meth:`TraceWriter.append` returns.
* ``batch`` (the default): entries are buffered and written with one fsync when the buffer
  holds ``batch_entries`` entries or ``batch_bytes`` bytes, when :meth:`TraceWriter.sync` is
  called, and on close. The kernel releases an externally visible effect (an emitted line, a
  run result) only after the entry that records it is durable, so nothing the outside world has
  been told is ever missing from the trace after a crash; a crash can only lose a suffix that
  nobody outside has seen, and the torn tail it may leave is detected when the file is read.
* ``never``: written on every batch boundary and on close, never fsynced (benchmarks, tests).
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from xdv.errors import ErrorCode, InvariantViolation, TraceError, invariant
from xdv.inputs import FileBytes
from xdv.trace._format import (
    CHECK_SIZE,
    FRAME_HEAD,
    GENESIS_HASH,
    HEADER,
    LEAF_PREFIX,
    PREAMBLE,
    canonical_metadata,
    frame_entries,
)

__all__ = ["EntryMismatch", "FsyncPolicy", "TraceWriteFailure", "TraceWriter"]


_pack_frame_head = FRAME_HEAD.pack
_HEADER_SIZE = HEADER.size
_leaf_hasher = hashlib.sha256(LEAF_PREFIX)
_EMPTY_MAP = b"\xa0"
DurableListener = Callable[[int], None]


class EntryMismatch(BaseException):
    """Raised by a comparing writer at the first entry that differs from the expected one.

    It derives from BaseException so that no handler in the kernel, which catches operating
    errors to hand them to processes, can swallow it.
    """

    def __init__(self, index: int, frame: bytes, *, check_failed: bool = False) -> None:
        super().__init__(index)
        self.index = index
        self.frame = frame  # the new entry's length and body
        # True when the recorded frame was identical but its recorded check was not: the
        # recorded trace is damaged there, the run did not diverge.
        self.check_failed = check_failed


class TraceWriteFailure(BaseException):
    """The trace could not be written; the run must stop at once.

    It derives from BaseException so that the kernel, which hands operating errors to the
    process that caused them, cannot mistake it for one: a failed trace is never a process's
    problem. The kernel turns it back into the typed :attr:`error` (TRACE_IO) for its caller.
    """

    def __init__(self, error: TraceError) -> None:
        super().__init__(str(error))
        self.error = error


class FsyncPolicy(enum.Enum):
    """When the writer forces entries to stable storage."""

    ALWAYS = "always"
    BATCH = "batch"
    NEVER = "never"


class TraceWriter:
    """Appends hash-chained entries to a trace file (or to memory when ``path`` is None).

    Invariant: entries are numbered 0, 1, 2, ... without gaps, and each entry's previous-hash
    field is the hash of the entry before it (the genesis hash for entry 0).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.BATCH,
        batch_entries: int = 1024,
        batch_bytes: int = 1 << 16,
        expected: bytes | FileBytes | None = None,
        retain: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.fsync = FsyncPolicy(fsync)
        invariant(batch_entries > 0 and batch_bytes > 0, "batch limits are positive")
        self._batch_entries = batch_entries
        self._batch_bytes = batch_bytes
        # A comparing writer checks every frame it produces against the recorded trace file's
        # bytes (`expected`, preamble included) at the same position, and the recorded check
        # against the hash it computes anyway: replay needs no separate pass over the file.
        self._expected = expected
        self.expected_offset = len(PREAMBLE)
        invariant(
            expected is None or expected[: len(PREAMBLE)] == PREAMBLE,
            "a comparing writer is given a trace with this format's preamble",
        )
        # retain=False keeps only the chain head (used by replay, which compares entries as
        # they are produced and needs no second copy of the bytes).
        invariant(retain or path is None, "only an in-memory writer may drop its entries")
        self._retain = retain
        if self.fsync is FsyncPolicy.ALWAYS:
            self._batch_entries = 1  # every entry is its own batch: written and fsynced at once
        self.failed: TraceError | None = None
        self._durable_listeners: list[DurableListener] = []
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._memory: bytearray | None = None
        self._file: BinaryIO | None = None
        self.count = 0
        self.durable_count = 0
        self.bytes_written = len(PREAMBLE)
        self.last_hash = GENESIS_HASH
        # When auditing, the hashes of entries not yet folded into the audit Merkle tree (an
        # entry's hash is its RFC 9162 leaf hash); the kernel takes them at each checkpoint.
        self.leaves: list[bytes] | None = None
        self.closed = False
        if self.path is None:
            self._memory = bytearray(PREAMBLE)
        else:
            self._file = _create_locked(self.path)
            try:
                self._write_file(PREAMBLE)
            except TraceWriteFailure as failure:
                self._file.close()
                raise failure.error from None
            if self.fsync is not FsyncPolicy.NEVER:
                _fsync_directory(self.path.parent)

    @property
    def retains(self) -> bool:
        """Whether the writer keeps the entries it appends (False only for replay checks)."""
        return self._retain

    def add_durable_listener(self, listener: DurableListener) -> None:
        """Call ``listener(count)`` each time the first ``count`` entries become durable."""
        self._durable_listeners.append(listener)

    def append(
        self,
        logical_time: int,
        event_type: int,
        domain: int,
        status: int,
        process: int,
        vhm: int,
        node: int,
        capability: int,
        contract: int,
        metadata: dict[str, Any] | bytes | None,
    ) -> int:
        """Append one entry; return its sequence number.

        ``metadata`` is a map, or bytes the kernel has already encoded canonically on a hot
        path (the reader re-checks every map's canonical form, so a slip cannot go unnoticed).
        """
        # Every entry that is not on the kernel's hottest path comes here (those take
        # append_encoded, which repeats this body without the general metadata handling).
        if self.closed:
            self._refuse()
        seq = self.count
        encoded = (
            metadata
            if type(metadata) is bytes
            else canonical_metadata(metadata)  # type: ignore[arg-type]
            if metadata
            else _EMPTY_MAP
        )
        frame = (
            _pack_frame_head(
                _HEADER_SIZE + len(encoded),
                seq,
                logical_time,
                event_type,
                domain,
                status,
                process,
                vhm,
                node,
                capability,
                contract,
                self.last_hash,
            )
            + encoded
        )
        hasher = _leaf_hasher.copy()
        hasher.update(frame)
        digest = hasher.digest()
        if self._expected is not None:
            self._compare(seq, frame, digest)
        self.last_hash = digest
        self.count = seq + 1
        if self.leaves is not None:
            self.leaves.append(digest)
        pending = self._pending
        pending.append(frame)
        self._pending_bytes += len(frame)
        if len(pending) >= self._batch_entries or self._pending_bytes >= self._batch_bytes:
            self.sync()
        return seq

    def append_encoded(
        self,
        logical_time: int,
        event_type: int,
        domain: int,
        process: int,
        vhm: int,
        node: int,
        metadata: bytes,
    ) -> int:
        """Append a status-OK entry without references whose metadata is already encoded.

        The kernel's hottest entries (dispatch, preemption, sleep) take this path; it does what
        :meth:`append` does with fewer steps. Its entries are byte-identical to ``append``'s.
        """
        if self.closed:
            self._refuse()
        seq = self.count
        frame = (
            _pack_frame_head(
                _HEADER_SIZE + len(metadata),
                seq,
                logical_time,
                event_type,
                domain,
                0,
                process,
                vhm,
                node,
                0,
                0,
                self.last_hash,
            )
            + metadata
        )
        hasher = _leaf_hasher.copy()
        hasher.update(frame)
        digest = hasher.digest()
        if self._expected is not None:
            self._compare(seq, frame, digest)
        self.last_hash = digest
        self.count = seq + 1
        if self.leaves is not None:
            self.leaves.append(digest)
        pending = self._pending
        pending.append(frame)
        if len(pending) >= self._batch_entries:
            self.sync()
        return seq

    def _compare(self, seq: int, frame: bytes, digest: bytes) -> None:
        expected = self._expected
        offset = self.expected_offset
        end = offset + len(frame)
        if expected is None or expected[offset:end] != frame:
            raise EntryMismatch(seq, frame)
        if expected[end : end + CHECK_SIZE] != digest[:CHECK_SIZE]:
            raise EntryMismatch(seq, frame, check_failed=True)
        self.expected_offset = end + CHECK_SIZE

    def _refuse(self) -> NoReturn:
        if self.failed is not None:
            raise TraceWriteFailure(self.failed)
        raise InvariantViolation("append to a closed trace")

    def sync(self) -> None:
        """Write buffered entries and, unless the policy is ``never``, fsync them.

        If writing fails the writer is closed for good, keeps the entries it could not write,
        reports nothing more as durable, and raises :class:`TraceWriteFailure` (now and on
        every later append or sync).
        """
        if self.failed is not None:
            raise TraceWriteFailure(self.failed)
        if self._pending and not self._retain:
            self._pending.clear()  # a comparing writer keeps nothing but the chain head
            self._pending_bytes = 0
        elif self._pending:
            # Checks are added per batch, off the per-entry path (see frame_entries). The batch
            # leaves the buffer before it is written, so an interrupted write is never repeated
            # (a repeat would duplicate frames); the writer is closed for good instead.
            frames, self._pending = self._pending, []
            self._pending_bytes = 0
            data = frame_entries(frames, self.last_hash)
            if self._memory is not None:
                self._memory += data
            else:
                try:
                    self._write_file(data)
                except BaseException:
                    if self.failed is None:
                        self.failed = TraceError(
                            "writing the trace was interrupted",
                            code=ErrorCode.TRACE_IO,
                            where=str(self.path),
                        )
                        self.closed = True
                    raise
            self.bytes_written += len(data)
        if self.durable_count != self.count:
            self.durable_count = self.count
            for listener in self._durable_listeners:
                listener(self.durable_count)

    def _write_file(self, data: bytes) -> None:
        """Write all of ``data`` and fsync it unless the policy is ``never``."""
        file = self._file
        if file is None:
            raise InvariantViolation("a file-backed writer has an open file")
        try:
            view = memoryview(data)
            while view:
                written = file.write(view)
                invariant(written is not None and written > 0, "raw file writes progress")
                view = view[written or 0 :]
            if self.fsync is not FsyncPolicy.NEVER:
                os.fsync(file.fileno())
        except OSError as error:
            self.failed = TraceError(
                f"writing the trace failed: {error.strerror}",
                code=ErrorCode.TRACE_IO,
                where=str(self.path),
            )
            self.closed = True
            raise TraceWriteFailure(self.failed) from None

    def getvalue(self) -> bytes:
        """The bytes of an in-memory trace (preamble included)."""
        invariant(self._memory is not None and self._retain, "getvalue() needs retained entries")
        self.sync()
        return bytes(self._memory or b"")

    def close(self) -> None:
        """Sync and close. Closing twice is allowed."""
        if self.closed:
            if self._file is not None:
                self._file.close()
            return
        self.sync()
        self.closed = True
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _create_locked(path: Path) -> BinaryIO:
    """Open ``path`` as a new, empty trace file that this writer alone writes.

    The file is locked (an exclusive ``flock``) before it is emptied: while one run writes a
    trace, a second run given the same path is refused with TRACE_IN_USE before it has changed
    a byte, so neither run's trace is lost. The lock goes with the file when the writer closes
    it (or when the process ends). An existing trace that no run holds is replaced, as before.
    Only a regular file can be a trace: a FIFO, a device or a directory is refused at once.
    """
    where = str(path)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        raise TraceError(
            f"cannot create the trace file: {error.strerror}", code=ErrorCode.TRACE_IO, where=where
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TraceError(
                "the trace path is not a regular file (a trace is written to a regular file)",
                code=ErrorCode.INPUT_NOT_REGULAR,
                where=where,
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TraceError(
                "another run is writing this trace file; choose another --trace path or wait "
                "for that run to end",
                code=ErrorCode.TRACE_IN_USE,
                where=where,
            ) from None
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        return os.fdopen(fd, "wb", buffering=0)
    except TraceError:
        os.close(fd)
        raise
    except OSError as error:
        os.close(fd)
        raise TraceError(
            f"cannot create the trace file: {error.strerror}", code=ErrorCode.TRACE_IO, where=where
        ) from None


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable (POSIX)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
