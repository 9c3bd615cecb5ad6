"""The trace file format, version 2: framing, the fixed entry header, canonical metadata.

Layout (all integers little-endian; the normative description is ``docs/trace-format.md``)::

    file    := preamble frame*
    preamble:= "XDVTRACE" (8 bytes) | format version u16 | flags u16 (zero)
    frame   := body length u32 | body | check (4 bytes)
    body    := header (81 bytes, fixed layout) | metadata (canonical CBOR map)
    header  := seq u64 | logical time u64 | event type u16 | domain u8 | status u16
               | process u32 | vhm u32 | node u32 | capability u64 | contract u64
               | previous entry hash (32 bytes)

The hash of an entry is SHA-256 of its length and body (the frame without its check), and the
check is the first four bytes of that hash: one digest serves both the chain and the detection
of a damaged last entry, which no later link protects. The previous-entry hash of the first
entry is the SHA-256 of the preamble, which ties the chain to the format version. A capability
or contract reference of 0 means "none".

Metadata is a CBOR map in XDV's canonical profile: map keys are text, sorted by the length of
their UTF-8 bytes and then bytewise (the order RFC 8949 section 4.2.1 gives for text keys);
integers in the minimal encoding and within [-2**64, 2**64); floats always as binary64 and
finite; text, byte strings, arrays, booleans and null; nothing else (no tags, no indefinite
lengths). :func:`canonical_metadata` is the only writer and the reader re-encodes every map to
check it was canonical. Before a map is decoded at all, :func:`profile_violation` walks its
item heads (iteratively) and refuses any tag, indefinite length, reserved or simple value
outside the profile, and nesting deeper than ``cbor_depth_max``: a tag such as CBOR's shared
references (28/29) can build a value that contains itself, and such a value must never reach
a decoder or a walker.
"""

from __future__ import annotations

import enum
import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any

import cbor2

from xdv.errors import ErrorCode, InvariantViolation, TraceError, safe_repr
from xdv.inputs import limit
from xdv.trace._events import Domain, EventType

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "HEADER",
    "LEAF_PREFIX",
    "MAGIC",
    "PREAMBLE",
    "TraceEntry",
    "canonical_metadata",
    "canonicalize",
    "cbor_uint",
    "decode_body",
    "encode_trace",
    "entry_hash",
    "frame_entries",
    "frame_hash",
    "jsonable",
    "profile_violation",
]

MAGIC = b"XDVTRACE"
FORMAT_VERSION = 2
PREAMBLE = MAGIC + struct.pack("<HH", FORMAT_VERSION, 0)
GENESIS_HASH = hashlib.sha256(PREAMBLE).digest()

HEADER = struct.Struct("<QQHBHIIIQQ32s")
FRAME_LENGTH = struct.Struct("<I")
# The length and the header packed in one call: the start of every frame.
FRAME_HEAD = struct.Struct("<IQQHBHIIIQQ32s")
CHECK_SIZE = 4
# Where a frame holds its previous-entry hash: after the length (4) and 49 header bytes.
FRAME_PREVIOUS_HASH = slice(FRAME_LENGTH.size + 49, FRAME_LENGTH.size + 81)
FRAME_EVENT_TYPE = slice(FRAME_LENGTH.size + 16, FRAME_LENGTH.size + 18)

# One entry's metadata; keeps a corrupt length from allocating gigabytes.
metadata_bytes_max = limit("trace_metadata_bytes_max")
body_bytes_max = HEADER.size + metadata_bytes_max
depth_max = limit("cbor_depth_max")
_INT_MIN = -(2**64)
_INT_MAX = 2**64 - 1
_EMPTY_MAP = b"\xa0"


def canonicalize(value: Any, path: str = "metadata") -> Any:
    """Return ``value`` in canonical form (maps key-sorted), or raise a typed error.

    Tuples become lists. The check is strict on purpose: what enters a trace must encode to the
    same bytes on every platform and every run. The error names the path of the offending
    value below ``path``.
    """
    try:
        return _canonical(value, 0)
    except RecursionError:  # cannot happen within the depth limit; kept as a typed refusal
        raise _too_deep(path) from None
    except _Refused:
        # Walk again, tracking paths, for the error that says where (values are not mutated,
        # so the second walk meets the same refusal).
        _canonicalize_at(value, path)
        raise InvariantViolation(
            "canonicalize refused a value its path-tracking walk accepts"
        ) from None


class _Refused(Exception):
    """Raised by :func:`_canonical` (which tracks no path) at the first value it refuses."""


def _too_deep(path: str) -> TraceError:
    return TraceError(
        f"the value nests deeper than the limit cbor_depth_max = {depth_max} levels "
        "(a value that contains itself nests without end)",
        code=ErrorCode.TRACE_UNENCODABLE,
        where=path,
    )


def _canonical(value: Any, depth: int) -> Any:
    """The fast walk of :func:`canonicalize`: no path strings are built on the way down.

    ``depth`` counts the containers above ``value``; the walk refuses to go deeper than
    ``cbor_depth_max``, so neither a deep value nor one that contains itself can exhaust the
    stack.
    """
    kind = type(value)
    if kind is str or (kind is int and _INT_MIN <= value <= _INT_MAX):
        return value
    if value is None or kind is bool or kind is bytes:
        return value
    if kind is dict:
        if depth >= depth_max:
            raise _Refused
        items = []
        for key, item in value.items():
            if type(key) is not str:
                raise _Refused
            items.append((key, _canonical(item, depth + 1)))
        items.sort(key=_key_order)
        return dict(items)
    if kind is list or kind is tuple:
        if depth >= depth_max:
            raise _Refused
        return [_canonical(item, depth + 1) for item in value]
    if kind is float and math.isfinite(value):
        return value
    if (
        kind is not int
        and kind is not float
        and isinstance(value, int | str | float)
        and not (isinstance(value, bool))
    ):
        base = int if isinstance(value, int) else str if isinstance(value, str) else float
        return _canonical(base(value), depth)
    raise _Refused


def _canonicalize_at(value: Any, path: str, depth: int = 0) -> Any:
    """:func:`canonicalize` tracking the path of every value, so a refusal names where the
    offending value sits (the slow path, taken only once a refusal is known to come)."""
    kind = type(value)
    if (kind is dict or kind is list or kind is tuple) and depth >= depth_max:
        raise _too_deep(path)
    if value is None or kind is bool or kind is str or kind is bytes:
        return value
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise TraceError(
                f"integer {value} is outside the trace range [-2**64, 2**64)",
                code=ErrorCode.TRACE_UNENCODABLE,
                where=path,
            )
        return value
    if kind is float:
        if not math.isfinite(value):
            raise TraceError(
                f"non-finite float {value!r} cannot enter a trace",
                code=ErrorCode.TRACE_UNENCODABLE,
                where=path,
            )
        return value
    if kind is dict:
        items = []
        for key, item in value.items():
            if type(key) is not str:
                raise TraceError(
                    f"map keys in a trace are text, got {type(key).__name__} {safe_repr(key)}",
                    code=ErrorCode.TRACE_UNENCODABLE,
                    where=path,
                )
            items.append((key, _canonicalize_at(item, f"{path}.{key}", depth + 1)))
        items.sort(key=_key_order)
        return dict(items)
    if kind is list or kind is tuple:
        return [
            _canonicalize_at(item, f"{path}[{index}]", depth + 1)
            for index, item in enumerate(value)
        ]
    if isinstance(value, int | str | float) and not isinstance(value, bool):
        # Enum members and other subclasses: store the plain value.
        base = int if isinstance(value, int) else str if isinstance(value, str) else float
        return _canonicalize_at(base(value), path, depth)
    refusal = getattr(value, "__xdv_refusal__", None)
    if refusal is not None:  # a value that must never be serialized says why (e.g. Q handles)
        raise refusal(f"recorded in a trace (at {path})")
    raise TraceError(
        f"a value of type {kind.__name__} cannot enter a trace "
        "(allowed: None, bool, int, float, str, bytes, list, dict with str keys)",
        code=ErrorCode.TRACE_UNENCODABLE,
        where=path,
    )


def _key_order(item: tuple[str, Any]) -> tuple[int, str]:
    # Shorter encodings first, then bytewise. UTF-8 preserves code point order, so comparing
    # the strings themselves orders them as their bytes would; only the length needs encoding.
    key = item[0]
    return (len(key) if key.isascii() else len(key.encode("utf-8")), key)


def canonical_metadata(metadata: dict[str, Any] | None) -> bytes:
    """Encode a metadata map in the canonical profile.

    Text that is not valid Unicode (a lone surrogate, which Python strings may hold but UTF-8
    cannot encode) is refused with TRACE_UNENCODABLE, like any other value outside the profile.
    """
    try:
        return _canonical_metadata(metadata)
    except UnicodeEncodeError as error:
        raise TraceError(
            f"text in the metadata is not valid Unicode ({error.reason}: "
            f"{safe_repr(error.object[error.start : error.end])})",
            code=ErrorCode.TRACE_UNENCODABLE,
            where="metadata",
        ) from None


def _canonical_metadata(metadata: dict[str, Any] | None) -> bytes:
    if not metadata:
        return _EMPTY_MAP
    if len(metadata) == 1:
        # Fast path for the kernel's common one-key maps holding a plain scalar: one key needs
        # no sorting, and these scalars are canonical as they are.
        ((key, value),) = metadata.items()
        kind = type(value)
        if type(key) is str and (
            kind is str
            or value is None
            or kind is bool
            or (kind is int and _INT_MIN <= value <= _INT_MAX)
        ):
            return cbor2.dumps(metadata)
    encoded: bytes = cbor2.dumps(canonicalize(metadata))
    if len(encoded) > metadata_bytes_max:
        raise TraceError(
            f"entry metadata is {len(encoded)} bytes; the limit is {metadata_bytes_max}",
            code=ErrorCode.TRACE_UNENCODABLE,
            where="metadata",
        )
    return encoded


def _outside_profile(byte: int) -> bool:
    """Whether an initial byte can never begin an item of the profile: any tag (major type
    6), any reserved or indefinite additional information (28..31), and in major type 7
    anything but false, true, null and a binary64 float."""
    major, info = byte >> 5, byte & 31
    if major == 6 or info >= 28:
        return True
    return major == 7 and info not in (20, 21, 22, 27)


_OUTSIDE = bytes(byte for byte in range(256) if _outside_profile(byte))
_CONTAINERS = bytes(range(0x80, 0xC0))  # array and map heads
_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


def profile_violation(raw: bytes) -> str | None:
    """Why ``raw`` is not one CBOR item within the trace profile's forms, or None.

    The walk is iterative and looks only at item heads (string payloads are skipped, arrays
    and maps counted), so it costs no recursion whatever the input: it refuses tags, indefinite
    lengths, reserved and simple values, nesting deeper than ``cbor_depth_max``, truncation and
    trailing bytes. What it passes is safe to hand to the decoder; key order, minimal integers
    and float widths are then checked by re-encoding (see :func:`decode_body`).
    """
    size = len(raw)
    # Fast path: no byte anywhere could begin an item outside the profile and there are too
    # few container heads to nest too deep; such bytes decode safely (the decoder reports any
    # truncation itself).
    if len(raw.translate(None, _OUTSIDE)) == size and (
        size - len(raw.translate(None, _CONTAINERS)) <= depth_max
    ):
        return None
    offset = 0
    remaining = [1]  # items still expected at each open level
    while remaining:
        if remaining[-1] == 0:
            remaining.pop()
            continue
        remaining[-1] -= 1
        if offset >= size:
            return f"the value is truncated at byte {offset}"
        byte = raw[offset]
        if _outside_profile(byte):
            major, info = byte >> 5, byte & 31
            if major == 6:
                return f"a CBOR tag at byte {offset} (tags are outside the trace format)"
            if info == 31:
                return f"an indefinite length at byte {offset}"
            return f"initial byte 0x{byte:02x} at byte {offset} is outside the trace format"
        major, info = byte >> 5, byte & 31
        offset += 1
        if info < 24:
            argument = info
        else:
            width = _ARGUMENT_BYTES[info]
            if offset + width > size:
                return f"the value is truncated at byte {offset}"
            argument = int.from_bytes(raw[offset : offset + width], "big")
            offset += width
        if major in (2, 3):
            if argument > size - offset:
                return f"a string at byte {offset} runs past the end"
            offset += argument
        elif major in (4, 5):
            if argument:
                if len(remaining) > depth_max:
                    return f"nesting deeper than the limit cbor_depth_max = {depth_max}"
                remaining.append(argument if major == 4 else 2 * argument)
        elif major == 7 and info == 27:
            pass  # the float's eight bytes were its argument
    if offset != size:
        return f"{size - offset} bytes follow the value"
    return None


_SMALL_UINTS = [bytes((value,)) for value in range(24)]


def cbor_uint(value: int) -> bytes:
    """The canonical CBOR encoding of an unsigned integer below 2**64 (major type 0)."""
    if value < 24:
        return _SMALL_UINTS[value]
    if value < 0x100:
        return b"\x18" + value.to_bytes(1, "big")
    if value < 0x10000:
        return b"\x19" + value.to_bytes(2, "big")
    if value < 0x100000000:
        return b"\x1a" + value.to_bytes(4, "big")
    return b"\x1b" + value.to_bytes(8, "big")


LEAF_PREFIX = b"\x00"
"""RFC 9162 leaf prefix: an entry's hash is the Merkle leaf hash of its frame (length + body)."""

_LEAF_HASHER = hashlib.sha256(LEAF_PREFIX)


def frame_hash(frame: bytes) -> bytes:
    """SHA-256 of the leaf prefix 0x00 and ``frame`` (the u32 length and the body)."""
    hasher = _LEAF_HASHER.copy()
    hasher.update(frame)
    return hasher.digest()


def entry_hash(body: bytes) -> bytes:
    """The chain hash of an entry: the RFC 9162 leaf hash of its length (u32) and body."""
    return frame_hash(FRAME_LENGTH.pack(len(body)) + body)


def frame_entries(frames: list[bytes], last_hash: bytes) -> bytes:
    """Complete frames (length and body) with their checks, ready to write.

    ``last_hash`` is the hash of the last frame. Every other frame's check is read from the next
    frame's previous-entry hash, which is that same digest: no hash is computed twice.
    """
    if not frames:
        return b""
    checks = [
        frame[FRAME_PREVIOUS_HASH.start : FRAME_PREVIOUS_HASH.start + CHECK_SIZE]
        for frame in frames[1:]
    ]
    checks.append(last_hash[:CHECK_SIZE])
    return b"".join([frame + check for frame, check in zip(frames, checks, strict=True)])


def encode_trace(bodies: list[bytes]) -> bytes:
    """A whole trace file from entry bodies whose previous-entry hashes are already right."""
    frames = [FRAME_LENGTH.pack(len(body)) + body for body in bodies]
    last = frame_hash(frames[-1]) if frames else GENESIS_HASH
    return PREAMBLE + frame_entries(frames, last)


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One decoded trace entry."""

    seq: int
    logical_time: int
    event_type: EventType | int
    domain: Domain | int
    status: ErrorCode | int
    process: int
    vhm: int
    node: int
    capability: int
    contract: int
    prev_hash: bytes
    metadata: dict[str, Any]
    body: bytes

    @property
    def hash(self) -> bytes:
        return entry_hash(self.body)

    @property
    def event_name(self) -> str:
        return _name(self.event_type)

    @property
    def status_name(self) -> str:
        return _name(self.status)

    @property
    def domain_label(self) -> str:
        return self.domain.label if isinstance(self.domain, Domain) else str(self.domain)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly view (bytes as hex)."""
        return {
            "seq": self.seq,
            "L": self.logical_time,
            "event": self.event_name,
            "domain": self.domain_label,
            "status": self.status_name,
            "process": self.process,
            "vhm": self.vhm,
            "node": self.node,
            "capability": self.capability or None,
            "contract": self.contract or None,
            "metadata": jsonable(self.metadata),
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
        }


def _name(value: enum.IntEnum | int) -> str:
    return value.name if isinstance(value, enum.IntEnum) else str(value)


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy of a trace value: byte strings become ``{"hex": ...}``."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def _as_enum(kind: type[enum.IntEnum], value: int) -> Any:
    try:
        return kind(value)
    except ValueError:
        return value


def decode_body(body: bytes, *, index: int, offset: int) -> TraceEntry:
    """Decode and validate one entry body; raise :class:`TraceError` saying where it is bad."""
    if len(body) < HEADER.size + 1:
        raise TraceError(
            f"entry {index} is {len(body)} bytes, shorter than the {HEADER.size + 1}-byte minimum",
            entry_index=index,
            offset=offset,
        )
    (
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
        prev_hash,
    ) = HEADER.unpack_from(body)
    raw_metadata = body[HEADER.size :]
    violation = profile_violation(raw_metadata)
    if violation is not None:
        raise TraceError(
            f"entry {index} metadata is outside the trace's CBOR profile: {violation}",
            entry_index=index,
            offset=offset,
        )
    try:
        metadata = cbor2.loads(raw_metadata)
    except Exception as error:  # cbor2 raises several unrelated types on bad input
        raise TraceError(
            f"entry {index} has undecodable metadata ({type(error).__name__}: {error})",
            entry_index=index,
            offset=offset,
        ) from None
    if type(metadata) is not dict:
        raise TraceError(
            f"entry {index} metadata is a {type(metadata).__name__}, not a map",
            entry_index=index,
            offset=offset,
        )
    try:
        canonical = canonical_metadata(metadata)
    except TraceError as error:
        raise TraceError(
            f"entry {index} metadata holds a value outside the trace profile: {error.message}",
            entry_index=index,
            offset=offset,
        ) from None
    if canonical != raw_metadata:
        raise TraceError(
            f"entry {index} metadata is not canonically encoded",
            entry_index=index,
            offset=offset,
        )
    return TraceEntry(
        seq=seq,
        logical_time=logical_time,
        event_type=_as_enum(EventType, event_type),
        domain=_as_enum(Domain, domain),
        status=_as_enum(ErrorCode, status),
        process=process,
        vhm=vhm,
        node=node,
        capability=capability,
        contract=contract,
        prev_hash=prev_hash,
        metadata=metadata,
        body=body,
    )
