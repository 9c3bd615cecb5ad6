"""The hybrid process lifecycle as a checked state machine.

``CREATED → BOUND → INITIALIZED → ACTIVE ⇄ SUSPENDED → TERMINATED → RELEASED``

A process may also terminate from CREATED, BOUND or INITIALIZED (its binding or initialization
failed) and from ACTIVE or SUSPENDED. RELEASED is final. Any other move is a
:class:`~xdv.errors.LifecycleError` with code ``LIFECYCLE_VIOLATION``. A process that is ready,
running, sleeping or waiting is ACTIVE: SUSPENDED is the administrative state in which the
scheduler will not dispatch it until it is resumed.
"""

from __future__ import annotations

import enum

from xdv.errors import LifecycleError

__all__ = ["LEGAL_TRANSITIONS", "ProcessState", "check_transition"]


class ProcessState(enum.IntEnum):
    """Lifecycle states. Their names appear in PROCESS_STATE entries."""

    CREATED = 1
    BOUND = 2
    INITIALIZED = 3
    ACTIVE = 4
    SUSPENDED = 5
    TERMINATED = 6
    RELEASED = 7


LEGAL_TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.CREATED: frozenset({ProcessState.BOUND, ProcessState.TERMINATED}),
    ProcessState.BOUND: frozenset({ProcessState.INITIALIZED, ProcessState.TERMINATED}),
    ProcessState.INITIALIZED: frozenset({ProcessState.ACTIVE, ProcessState.TERMINATED}),
    ProcessState.ACTIVE: frozenset({ProcessState.SUSPENDED, ProcessState.TERMINATED}),
    ProcessState.SUSPENDED: frozenset({ProcessState.ACTIVE, ProcessState.TERMINATED}),
    ProcessState.TERMINATED: frozenset({ProcessState.RELEASED}),
    ProcessState.RELEASED: frozenset(),
}


def check_transition(pid: int, current: ProcessState, target: ProcessState) -> None:
    """Raise :class:`LifecycleError` unless ``current → target`` is a legal move."""
    if target not in LEGAL_TRANSITIONS[current]:
        allowed = ", ".join(state.name for state in sorted(LEGAL_TRANSITIONS[current])) or "none"
        raise LifecycleError(
            f"process {pid} cannot go from {current.name} to {target.name} "
            f"(allowed from {current.name}: {allowed})",
            where=f"process {pid}",
        )
