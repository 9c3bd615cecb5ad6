"""The pipe between the kernel and an isolated workload's worker process: framing and values.

A message is a 4-byte big-endian length followed by one CBOR item in the trace's profile
(definite lengths, no tags, 64-bit floats; see ``docs/isolation.md``). Values that are not
plain data travel as one-key maps whose key starts with ``$``; a map of the workload's own
(``dict``) always travels as ``{"$d": [key, value, ...]}``, so no workload value can be taken for
a tag. Nothing is ever pickled: each side builds only the kinds of object its decoder knows.

Both sides use :class:`Link` (a request waits for its answer and serves the other side's
requests meanwhile, so the kernel can call into the worker while the worker's setup waits for
the kernel). The codecs differ: see :mod:`xdv.runtime._isolation` (kernel side) and
:mod:`xdv.runtime._worker` (worker side).
"""

from __future__ import annotations

import math
import os
import select
import time
from collections.abc import Callable
from typing import Any

import cbor2

from xdv.errors import ErrorCode, InvariantViolation, XdvError
from xdv.inputs import limit
from xdv.trace import profile_violation

__all__ = ["Link", "LinkBroken", "decode_plain", "encode_plain"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class LinkBroken(XdvError):
    """The link to the other side failed (its code says how)."""

    default_code = ErrorCode.WORKER_PROTOCOL


def encode_plain(value: Any, encode: Callable[[Any], Any]) -> Any:
    """``value`` as link data when it is plain data (containers walked with ``encode``);
    raise ``TypeError`` for anything else, which the caller encodes itself."""
    kind = type(value)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else {"$i": str(value)}
    if kind is float:
        return value if math.isfinite(value) else {"$nf": repr(value)}
    if kind is list:
        return [encode(item) for item in value]
    if kind is tuple:
        return {"$t": [encode(item) for item in value]}
    if kind is dict:
        flat: list[Any] = []
        for key, item in value.items():
            flat.append(encode(key))
            flat.append(encode(item))
        return {"$d": flat}
    if kind is set or kind is frozenset:
        return {"$s" if kind is set else "$fs": [encode(item) for item in value]}
    raise TypeError(kind.__name__)


def decode_plain(data: Any, decode: Callable[[Any], Any]) -> Any:
    """The plain value of link data (containers walked with ``decode``); raise ``KeyError``
    for a tag that is not plain, which the caller decodes itself."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) != 1:
        raise LinkBroken("a tagged value has more than one key")
    ((tag, body),) = data.items()
    if tag == "$d":
        _expect(body, list)
        if len(body) % 2:
            raise LinkBroken("a map's items are not pairs")
        items = iter(body)
        return {decode(key): decode(item) for key, item in zip(items, items, strict=True)}
    if tag == "$t":
        return tuple(decode(item) for item in _expect(body, list))
    if tag == "$s":
        return {decode(item) for item in _expect(body, list)}
    if tag == "$fs":
        return frozenset(decode(item) for item in _expect(body, list))
    if tag == "$i":
        return int(_expect(body, str))
    if tag == "$nf":
        if body not in ("nan", "inf", "-inf"):
            raise LinkBroken("a non-finite float that is not nan or inf")
        return float(body)
    raise KeyError(tag)


def _expect(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise LinkBroken(f"expected {kind.__name__} in a tagged value, got {type(value).__name__}")
    return value


class Link:
    """One end of the pipe: ``read_fd`` and ``write_fd``, answering the other side's requests
    with ``serve`` while it waits for an answer of its own.

    ``deadline`` (a ``time.monotonic()`` value, or None) bounds every wait for the other side;
    ``on_timeout`` returns the error to raise when it passes. Every failure to read a
    well-formed message raises :class:`LinkBroken` (a WORKER_* code).
    """

    def __init__(
        self,
        read_fd: int,
        write_fd: int,
        serve: Callable[[Any], Any],
        encode_error: Callable[[BaseException], Any],
        decode_error: Callable[[Any], BaseException],
    ) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.serve = serve
        self.encode_error = encode_error
        self.decode_error = decode_error
        self.deadline: float | None = None
        self.on_timeout: Callable[[], XdvError] = lambda: LinkBroken(
            "the other side did not answer in time", code=ErrorCode.WORKER_LIMIT_EXCEEDED
        )
        self.on_eof: Callable[[], XdvError] = lambda: LinkBroken(
            "the other side closed the pipe", code=ErrorCode.WORKER_DIED
        )
        self.messages = 0
        self._buffer = bytearray()
        self.bytes_max = limit("worker_message_bytes_max")

    def send(self, message: Any) -> None:
        """Write one message (raises WORKER_DIED when the other side has gone)."""
        payload = cbor2.dumps(message)
        if len(payload) > self.bytes_max:
            raise LinkBroken(
                f"a message of {len(payload)} bytes is over the limit worker_message_bytes_max "
                f"= {self.bytes_max}",
                code=ErrorCode.WORKER_PROTOCOL,
            )
        view = memoryview(len(payload).to_bytes(4, "big") + payload)
        try:
            while view:
                written = os.write(self.write_fd, view)
                view = view[written:]
        except (BrokenPipeError, OSError):
            raise self.on_eof() from None

    def _read(self, count: int) -> bytes:
        """Exactly ``count`` bytes, read in chunks of up to 64 KiB (one read usually brings a
        whole message: its length and its body)."""
        buffer = self._buffer
        while len(buffer) < count:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                ready = left > 0 and select.select([self.read_fd], [], [], left)[0]
                if not ready:
                    raise self.on_timeout()
            try:
                chunk = os.read(self.read_fd, max(count - len(buffer), 1 << 16))
            except OSError:
                chunk = b""
            if not chunk:
                raise self.on_eof()
            buffer += chunk
        data = bytes(buffer[:count])
        del buffer[:count]
        return data

    def receive(self) -> Any:
        """Read one message, checked for size and for the CBOR profile before it is decoded."""
        size = int.from_bytes(self._read(4), "big")
        if size > self.bytes_max:
            raise LinkBroken(
                f"a message of {size} bytes is over the limit worker_message_bytes_max "
                f"= {self.bytes_max}",
                code=ErrorCode.WORKER_PROTOCOL,
            )
        payload = self._read(size)
        problem = profile_violation(payload)
        if problem is not None:
            raise LinkBroken(f"a message is not well-formed: {problem}")
        try:
            message = cbor2.loads(payload)
        except Exception as error:  # cbor2 raises several kinds for malformed input
            raise LinkBroken(f"a message does not decode: {type(error).__name__}") from None
        self.messages += 1
        return message

    def request(self, body: Any) -> Any:
        """Send request ``body`` and return the other side's answer (raising the error it
        answered with), serving its requests meanwhile."""
        self.send({"q": body})
        while True:
            message = self.receive()
            if not isinstance(message, dict) or len(message) != 1:
                raise LinkBroken("a message is not a one-key map")
            ((kind, content),) = message.items()
            if kind == "r":
                return content
            if kind == "e":
                raise self.decode_error(content)
            if kind != "q":
                raise LinkBroken(f"a message of unknown kind {kind!r}")
            try:
                answer = {"r": self.serve(content)}
            except (LinkBroken, InvariantViolation):
                raise
            except Exception as error:
                answer = {"e": self.encode_error(error)}
            self.send(answer)
