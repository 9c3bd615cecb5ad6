"""Refusals shared by the kernel's system-call handlers and the transition protocol."""

from __future__ import annotations

from typing import Any

from xdv.errors import ErrorCode, XdvError, safe_repr


class _Recorded(Exception):
    """Wraps an error whose failure the raising code has already written to the trace."""

    def __init__(self, error: XdvError) -> None:
        super().__init__(str(error))
        self.error = error


def _require(value: Any, kinds: type | tuple[type, ...], what: str, pid: int) -> None:
    """Refuse a system-call field of the wrong type with SYSCALL_INVALID (bool is not int)."""
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = " or ".join(
            "None" if kind is type(None) else kind.__name__
            for kind in (kinds if isinstance(kinds, tuple) else (kinds,))
        )
        raise XdvError(
            f"{what} must be {names}, got {safe_repr(value)}",
            code=ErrorCode.SYSCALL_INVALID,
            where=f"process {pid}",
        )
