"""Input limits and safe reading: the one place every bound on untrusted input is defined.

Everything XDV reads from a user or a tenant (DPL source, OpenQASM, G-set and bqm-json
problems, traces, audit files, proofs, witnesses, workload descriptions) is read through this
module, and every bound is a named :class:`Limit` in :data:`LIMITS`, so that ``docs/errors.md``
can list them all and a test can check that the list and the code agree.

The rules:

* Only regular files are read: a FIFO, a device, a socket or a directory is refused at once
  (:data:`ErrorCode.INPUT_NOT_REGULAR`), before anything blocks on it.
* A file is read with a bound: at most ``limit + 1`` bytes are ever read, and a file larger than
  its format's limit is refused with :data:`ErrorCode.INPUT_LIMIT_EXCEEDED`, naming the limit.
* Text is decoded strictly: invalid UTF-8 (or ASCII) is :data:`ErrorCode.INPUT_DECODE_FAILED`
  with the byte offset of the first bad byte.
* Each breach of a limit is a typed error whose message names the limit and its value.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = [
    "LIMITS",
    "FileBytes",
    "Limit",
    "decode_text",
    "exceeded",
    "limit",
    "load_json",
    "open_bounded",
    "read_bounded",
]


@dataclass(frozen=True, slots=True)
class Limit:
    """A named bound on untrusted input: ``value`` in ``unit``, applying to ``applies_to``."""

    name: str
    value: int
    unit: str
    applies_to: str


_MIB = 1 << 20

# Every bound, by name. docs/errors.md lists each row (tests/test_docs.py checks it).
LIMITS: dict[str, Limit] = {
    item.name: item
    for item in (
        # Files and documents in general.
        Limit("source_bytes_max", 4 * _MIB, "bytes", "a DPL, OpenQASM or Python source file"),
        Limit("problem_bytes_max", 64 * _MIB, "bytes", "a G-set or bqm-json problem file"),
        Limit("document_bytes_max", 16 * _MIB, "bytes", "a JSON document: witness, proof, DIR"),
        Limit("trace_bytes_max", 1 << 40, "bytes", "a trace or audit file"),
        Limit("json_depth_max", 64, "levels", "nesting of any JSON or CBOR value"),
        # DPL (names start with dpl_). The nesting bounds keep every recursive pass of the
        # toolchain (checker, DIR, code generation) far below Python's recursion limit, and the
        # generated K code below CPython's own limits (200 nested parentheses, 100 indentation
        # levels, 20 nested loops).
        Limit("dpl_source_bytes_max", _MIB // 2, "bytes", "a DPL source file (or compiled text)"),
        Limit("dpl_expression_depth_max", 64, "levels", "nesting of one DPL expression"),
        Limit("dpl_block_depth_max", 32, "levels", "nesting of DPL blocks, else-if chains, forges"),
        Limit("dpl_loop_depth_max", 16, "levels", "nesting of DPL while and for loops"),
        Limit("dpl_type_depth_max", 16, "levels", "nesting of a DPL type or constant list"),
        Limit("dpl_statements_max", 100_000, "statements", "statements in one DPL file"),
        Limit("dpl_files_max", 256, "files", "`.ds` files in one DPL source tree"),
        Limit("dpl_diagnostics_max", 100, "diagnostics", "diagnostics reported for one DPL file"),
        Limit("dpl_line_diagnostics_max", 10, "diagnostics", "diagnostics reported for one line"),
        Limit("dpl_int_bits_max", 4096, "bits", "a DPL integer (literal or computed)"),
        Limit("dpl_string_chars_max", 1 << 20, "characters", "a DPL string or shown value"),
        Limit("dpl_qubits_max", 4096, "qubits", "qubits one DPL Q process allocates"),
        Limit("dpl_value_cells_max", 1_000_000, "cells", "scalars in one DPL array value"),
        Limit("dpl_constraint_depth_max", 24, "levels", "nesting of one DPL Φ constraint"),
        Limit("dpl_constraint_nodes_max", 100_000, "nodes", "size of one DPL Φ constraint"),
        Limit("dpl_effects_max", 100_000, "effects", "effects one DPL run performs"),
        Limit("dpl_effect_chars_max", 64 * _MIB, "characters", "text of one DPL run's effects"),
        Limit("dpl_exercises_max", 1000, "exercises", "bind exercises (Q or Φ jobs) of a run"),
        # OpenQASM (names start with qasm_).
        Limit(
            "qasm_v3_bytes_max",
            128 * 1024,
            "bytes",
            "OpenQASM 3 text (its reference parser reads about 20 kB a second)",
        ),
        Limit("qasm_nesting_max", 64, "levels", "nesting of (), [] and {} in OpenQASM text"),
        Limit("qasm_qubits_max", 10_000, "qubits", "qubits one circuit declares, all registers"),
        Limit("qasm_clbits_max", 100_000, "bits", "classical bits one circuit declares"),
        Limit(
            "qasm_statements_max",
            100_000,
            "statements",
            "statements of one circuit once loops are unrolled, gate definitions inlined and "
            "gates broadcast over registers",
        ),
        Limit(
            "qasm_gate_calls_max",
            4096,
            "calls",
            "calls of gates the program defines, counted once inlined (a call inside a "
            "definition counts each time the definition is used)",
        ),
        Limit("qasm_literal_bits_max", 63, "bits", "an integer literal in OpenQASM 2 text"),
        Limit(
            "qasm_work_max",
            250_000_000,
            "work units",
            "simulation a Q job repeats when it runs shot by shot: (shots - 1) passes of the "
            "circuit (docs/q-domain.md says how a pass is counted)",
        ),
        Limit(
            "qasm_int_bits_max",
            1024,
            "bits",
            "an integer OpenQASM 3 computes before the run (constants, widths, loop bounds)",
        ),
        # Φ problems (names start with problem_).
        Limit("problem_spins_max", 1_000_000, "spins", "nodes of a G-set graph, n of a problem"),
        Limit(
            "problem_couplings_max",
            4_000_000,
            "entries",
            "edges of a G-set graph; J, Q or h entries of a bqm-json problem",
        ),
        Limit(
            "phi_sample_spins_max",
            262_144,
            "spins",
            "reads times spins of one Φ sample call (every read enters the trace)",
        ),
        Limit(
            "problem_number_max",
            1 << 53,
            "in magnitude",
            "a weight, coefficient or offset of a problem (finite numbers only)",
        ),
        # Traces, audit files, proofs and witnesses (names start with trace_, cbor_, proof_,
        # witness_).
        Limit("trace_metadata_bytes_max", _MIB, "bytes", "one trace entry's metadata"),
        Limit("cbor_depth_max", 64, "levels", "nesting of a trace entry's metadata (CBOR)"),
        Limit("trace_audit_bytes_max", 256 * _MIB, "bytes", "an audit file of signed heads"),
        Limit("trace_audit_line_max", 1 << 16, "characters", "one line of an audit file"),
        Limit("proof_path_max", 128, "hashes", "the audit path of a Merkle proof"),
        Limit(
            "witness_enumeration_spins_max",
            16,
            "spins",
            "an OPTIMAL witness re-decided by enumeration (larger ones need a trusted signer)",
        ),
        # The node service (xdv serve).
        Limit("service_body_bytes_max", 2 * _MIB, "bytes", "the body of one HTTP request"),
        Limit("service_jobs_listed_max", 1000, "jobs", "jobs one GET /v1/jobs answers"),
        Limit("service_queued_jobs_max", 10_000, "jobs", "unfinished jobs of one tenant"),
        # Isolated workloads (names start with worker_).
        Limit("worker_message_bytes_max", 16 * _MIB, "bytes", "one message of a worker process"),
    )
}


def limit(name: str) -> int:
    """The value of the limit called ``name``."""
    return LIMITS[name].value


def exceeded(name: str, found: object, where: str, *, code: ErrorCode | None = None) -> XdvError:
    """The typed error for a breach of limit ``name`` (``found`` says by how much)."""
    bound = LIMITS[name]
    return XdvError(
        f"input exceeds the limit {bound.name} = {bound.value} {bound.unit} "
        f"({bound.applies_to}): found {found}",
        code=code if code is not None else ErrorCode.INPUT_LIMIT_EXCEEDED,
        where=where,
    )


def read_bounded(path: str | os.PathLike[str], limit_name: str, *, what: str = "input") -> bytes:
    """Read the regular file ``path`` whole, refusing it if it is larger than the limit.

    A path that is not a regular file (FIFO, device, socket, directory) is refused before it is
    opened for reading; at most ``limit + 1`` bytes are read, so a huge or endless file costs
    nothing. Raises INPUT_NOT_REGULAR, INPUT_LIMIT_EXCEEDED or, when it cannot be read at all,
    INVALID_ARGUMENT.
    """
    path = Path(path)
    where = f"{what} {path}"
    bound = limit(limit_name)
    fd, size = _open_regular(path, what)
    if size > bound:  # refused by its size, before anything is read
        os.close(fd)
        raise exceeded(limit_name, f"{size} bytes", where)
    try:
        data = _read_capped(fd, size, bound)
    except OSError as error:
        raise XdvError(
            f"cannot read {what}: {error.strerror or error}",
            code=ErrorCode.INVALID_ARGUMENT,
            where=where,
        ) from None
    if len(data) > bound:
        raise exceeded(limit_name, f"more than {bound} bytes", where)
    return data


_WHOLE_BYTES_MAX = 64 * _MIB  # open_bounded reads a file this small whole
_WINDOW_BYTES = 4 * _MIB  # and reads a larger one in windows of this size


def _open_regular(path: Path, what: str) -> tuple[int, int]:
    """Open ``path`` for reading if it is a regular file: (descriptor, size). A FIFO, device,
    socket or directory is refused before it is opened (and again after, for a swapped path)."""
    where = f"{what} {path}"
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise XdvError(
            f"cannot read {what}: {error.strerror or error}",
            code=ErrorCode.INVALID_ARGUMENT,
            where=where,
        ) from None
    refusal = XdvError(
        f"{what} is not a regular file (only regular files are read)",
        code=ErrorCode.INPUT_NOT_REGULAR,
        where=where,
    )
    if not stat.S_ISREG(mode):
        raise refusal
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise XdvError(
            f"cannot read {what}: {error.strerror or error}",
            code=ErrorCode.INVALID_ARGUMENT,
            where=where,
        ) from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise refusal
    return fd, status.st_size


def _read_capped(fd: int, size: int, bound: int) -> bytes:
    """Read the open file ``fd`` (``size`` bytes by its status) to its end, but never more
    than ``bound + 1`` bytes, and close it. Reading asks for the size known, not the bound, so
    a large bound allocates nothing; a file that grew meanwhile is read on, up to the bound."""
    with os.fdopen(fd, "rb") as file:
        data = file.read(min(size, bound) + 1)
        while size < len(data) <= bound:  # grew meanwhile: read on in chunks, to the bound
            chunk = file.read(min(_MIB, bound + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    return data


class FileBytes:
    """A read-only, bytes-like view of a large regular file, read on demand.

    It supports ``len()`` and slicing (which returns :class:`bytes`), the two operations the
    trace reader and the replay comparison use, and keeps one window of the file in memory:
    a sequential walk over a file of any size costs a few megabytes, and a sparse file of
    zeros is refused at its first frame instead of being read whole. Reads use ``pread``, so a
    file cut short while it is read gives short slices (which the reader reports as a torn
    tail), never a crash.
    """

    __slots__ = ("_fd", "_size", "_start", "_window")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._start = 0
        self._window = b""

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: slice) -> bytes:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("FileBytes supports contiguous slices only")
        start, stop, _ = index.indices(self._size)
        if stop <= start:
            return b""
        window_end = self._start + len(self._window)
        if not (self._start <= start and stop <= window_end):
            span = max(stop - start, _WINDOW_BYTES)
            self._window = os.pread(self._fd, span, start)
            self._start = start
        return self._window[start - self._start : stop - self._start]

    def close(self) -> None:
        """Close the file (closing twice is allowed)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._window = b""

    def __del__(self) -> None:
        self.close()


def open_bounded(path: str | Path, limit_name: str, *, what: str = "input") -> bytes | FileBytes:
    """The content of the regular file ``path``: its bytes when it is small, else a
    :class:`FileBytes` view reading it in windows.

    As :func:`read_bounded`, a file that is not regular is refused at once and one larger than
    the limit ``limit_name`` is refused (here by its size, before anything is read).
    """
    path = Path(path)
    fd, size = _open_regular(path, what)
    if size > limit(limit_name):
        os.close(fd)
        raise exceeded(limit_name, f"{size} bytes", f"{what} {path}")
    if size > _WHOLE_BYTES_MAX:
        return FileBytes(fd, size)
    try:
        data = _read_capped(fd, size, limit(limit_name))
    except OSError as error:
        raise XdvError(
            f"cannot read {what}: {error.strerror or error}",
            code=ErrorCode.INVALID_ARGUMENT,
            where=f"{what} {path}",
        ) from None
    if len(data) > limit(limit_name):
        raise exceeded(limit_name, f"more than {limit(limit_name)} bytes", f"{what} {path}")
    return data


def decode_text(data: bytes, where: str, *, encoding: str = "utf-8") -> str:
    """Decode ``data`` strictly; a bad byte is INPUT_DECODE_FAILED with its byte offset."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise XdvError(
            f"input is not valid {encoding}: byte 0x{data[error.start]:02x} at offset "
            f"{error.start} ({error.reason})",
            code=ErrorCode.INPUT_DECODE_FAILED,
            where=where,
        ) from None


def load_json(data: bytes | str, where: str) -> Any:
    """Parse JSON strictly: UTF-8, nesting at most ``json_depth_max``, no NaN or Infinity.

    The depth is checked on the text before the parser sees it (bracket nesting outside
    strings), so a deeply nested document never reaches Python's recursive decoder.
    """
    text = decode_text(data, where) if isinstance(data, bytes) else data
    bound = limit("json_depth_max")
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > bound:
                raise exceeded("json_depth_max", f"more than {bound} levels", where)
        elif char in "]}":
            depth -= 1

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:
        raise XdvError(
            f"not valid JSON: {error}",
            code=ErrorCode.INPUT_DECODE_FAILED,
            where=where,
        ) from None
