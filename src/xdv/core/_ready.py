"""The ready queue of every policy but round-robin.

Round-robin keys begin with the logical time a process becomes ready, so one heap orders both
"when" and "who" and the kernel pops it directly (the fast path). Other policies order by
something else (priority, virtual time, deadline), so a process that becomes ready later must
not be dispatched earlier: :class:`PolicyQueue` keeps two heaps, ``timers`` by ready time and
``due`` by policy key. A process moves from ``timers`` to ``due`` once its ready time is at most
the next step's logical time, and gets its policy key then; when nothing is due, the earliest
timers move (the kernel then skips the idle logical time, as it does for round-robin).

Items that are not processes (an admission deadline, an interruption) sort ahead of every
process once due: their key is ``(-inf, sequence number)``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from xdv.core._clock import LogicalClock
from xdv.core._policy import SchedulerPolicy
from xdv.core._process import _Process

__all__ = ["PolicyQueue"]

_MINUS_INFINITY = float("-inf")


class PolicyQueue:
    """Ready processes of a non-round-robin policy (see the module docstring).

    Invariants: every process item of ``due`` has ``ready_at <= clock.now + 1`` when it was
    moved there; every item of ``timers`` is ``(ready_at, seq, item)``; every item of ``due``
    ends with ``(seq, item)``.
    """

    __slots__ = ("_clock", "_policy", "_seq", "due", "timers")

    def __init__(self, policy: SchedulerPolicy, clock: LogicalClock, seq: Callable[[], int]):
        self._policy = policy
        self._clock = clock
        self._seq = seq
        self.due: list[tuple[Any, ...]] = []
        self.timers: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.due) + len(self.timers)

    def push(self, process: _Process, ready_at: int) -> None:
        """Queue ``process`` (its ``ready_at`` already set)."""
        now = self._clock.now
        if ready_at <= now + 1:
            key = self._policy.key(process, now)
            heapq.heappush(self.due, (*key, self._seq(), process))
        else:
            heapq.heappush(self.timers, (ready_at, self._seq(), process))

    def push_timer(self, at: int, item: Any) -> None:
        """Queue a non-process item that becomes due at logical time ``at``."""
        heapq.heappush(self.timers, (at, self._seq(), item))

    def _move(self, horizon: int) -> None:
        timers = self.timers
        due = self.due
        key = self._policy.key
        while timers and timers[0][0] <= horizon:
            _, seq, item = heapq.heappop(timers)
            if type(item) is _Process:
                heapq.heappush(due, (*key(item, horizon - 1), seq, item))
            else:
                heapq.heappush(due, (_MINUS_INFINITY, seq, item))

    def pop_item(self) -> tuple[Any, ...]:
        """The due item with the smallest key (moving the timers that are due first)."""
        timers = self.timers
        if timers:
            horizon = self._clock.now + 1
            if timers[0][0] <= horizon:
                self._move(horizon)
            if not self.due:
                self._move(timers[0][0])
        item = heapq.heappop(self.due)
        process = item[-1]
        if type(process) is _Process:
            self._policy.dispatched(process)
        return item

    def keys(self) -> list[tuple[Any, ...]]:
        """The keys of the due processes, in dispatch order (for checks and tests)."""
        return [item[:-1] for item in sorted(self.due, key=lambda entry: entry[:-1])]
