"""Time sources. Logical time orders everything; wall time only ever measures.

The kernel owns one :class:`LogicalClock`. It is the sole ordering authority: every trace entry
is stamped with its value and no decision reads anything else. Wall time exists only behind the
:class:`WallClock` protocol, for progress bars and benchmark figures that never reach a trace.
"""

from __future__ import annotations

import time
from typing import Protocol

from xdv.errors import invariant

__all__ = ["FixedWallClock", "LogicalClock", "SystemWallClock", "WallClock"]


class LogicalClock:
    """A monotonic logical clock measured in kernel steps.

    Invariant: ``now`` never decreases. :meth:`tick` advances by exactly one step;
    :meth:`advance_to` jumps forward over idle logical time (it never moves backwards).
    """

    __slots__ = ("now",)

    def __init__(self, start: int = 0) -> None:
        invariant(start >= 0, "logical time starts at a non-negative value")
        self.now = start

    def tick(self) -> int:
        """Advance by one step and return the new logical time."""
        self.now += 1
        return self.now

    def advance_to(self, logical_time: int) -> int:
        """Jump forward to ``logical_time`` if it lies ahead; return the current time."""
        if logical_time > self.now:
            self.now = logical_time
        return self.now


class WallClock(Protocol):
    """Wall time, injected. Never consulted for ordering, scheduling or anything traced."""

    def monotonic_ns(self) -> int:
        """Nanoseconds from an arbitrary origin; only differences mean anything."""
        ...


class SystemWallClock:
    """The machine's monotonic clock."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class FixedWallClock:
    """A wall clock for tests: it advances only when told to."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def monotonic_ns(self) -> int:
        return self._now_ns

    def advance(self, delta_ns: int) -> None:
        invariant(delta_ns >= 0, "a wall clock never runs backwards")
        self._now_ns += delta_ns
