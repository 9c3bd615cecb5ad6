"""Scheduler policies: the order in which ready processes are dispatched.

A policy maps a ready process to a sort key; the kernel always dispatches the ready process with
the smallest key. Keys must be total and deterministic: they may use only the process's
orchestration data (priority, id, logical times), never wall time or randomness. Every key ends
with the enqueue sequence number, which is unique, so no two entries ever compare equal.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RoundRobinPolicy", "SchedulerPolicy"]


class SchedulerPolicy(Protocol):
    """Orders ready processes. ``name`` is recorded in the trace."""

    name: str

    def key(self, ready_at: int, priority: int, pid: int, seq: int) -> tuple[int, ...]:
        """Sort key of a process that became ready at logical time ``ready_at``."""
        ...


class RoundRobinPolicy:
    """The default: oldest-ready first, then higher priority, then lower pid, then FIFO.

    A process preempted at the end of its time slice becomes ready one step later than the
    step it was preempted at, so every process that was already waiting runs before it again.
    """

    name = "round-robin"

    def key(self, ready_at: int, priority: int, pid: int, seq: int) -> tuple[int, ...]:
        return (ready_at, -priority, pid, seq)
