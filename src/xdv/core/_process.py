"""Hybrid processes as the kernel holds them, and the read-only views handed out."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xdv.core._interface import ResourceContract
from xdv.core._lifecycle import ProcessState
from xdv.core._random import RandomStream
from xdv.trace import Domain

if TYPE_CHECKING:
    from xdv.core._vhm import Vhm

__all__ = ["ExitStatus", "ProcessInfo"]

Anchor = Generator[Any, Any, Any] | Coroutine[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What a process may know about itself (returned by the ``Self`` system call)."""

    pid: int
    name: str
    parent: int
    priority: int
    vhm: int
    node: int
    domains: tuple[Domain, ...]


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: ``ok`` with a ``value``, or a failure with an error ``code``."""

    pid: int
    ok: bool
    value: Any = None
    code: str | None = None
    message: str | None = None


class _Process:
    """Kernel-side process record. Only the kernel touches it.

    Invariants: ``state`` only changes through the kernel's lifecycle check; a process is in
    the ready queue at most once; ``contracts`` holds exactly the live contracts it owns.
    """

    __slots__ = (
        "account",
        "admission",
        "anchor",
        "bindings",
        "contracts",
        "deadline",
        "delivery",
        "domains",
        "ended_at",
        "exit",
        "info",
        "origin",
        "parked",
        "pid",
        "priority",
        "queued",
        "ready_at",
        "rights",
        "saved",
        "send_value",
        "state",
        "step_bounds",
        "streams",
        "throw_error",
        "vhm",
        "waiters",
        "waiting_on",
    )

    def __init__(self, info: ProcessInfo, anchor: Anchor | None) -> None:
        self.info = info
        self.pid = info.pid
        self.priority = info.priority
        self.domains = info.domains
        # Its VHM's id (stamped in the header of every entry about it) and the VHMs its
        # dispatched steps are charged to (empty in the root VHM, which is not accounted).
        self.vhm = info.vhm
        self.account: tuple[Vhm, ...] = ()
        self.step_bounds: tuple[Vhm, ...] = ()
        self.anchor = anchor
        self.state = ProcessState.CREATED
        self.bindings: set[Domain] = set()
        self.contracts: dict[int, ResourceContract] = {}
        self.send_value: Any = None
        self.throw_error: BaseException | None = None
        self.delivery: Any = None
        self.waiters: list[_Process] = []
        self.waiting_on: int | None = None
        self.exit: ExitStatus | None = None
        self.parked = False
        self.queued = False
        self.ready_at = 0
        self.streams: dict[str, RandomStream] = {}
        # Scheduling: the deadline in logical time (earliest-deadline-first), and the
        # reservation this process waits to be admitted for (an admission-queue entry), if any.
        self.deadline: int | None = None
        self.admission: Any = None
        # When it ended (logical time; None while live): the scheduler snapshot bounds a ready
        # process's wait by the processes that lived during the wait.
        self.ended_at: int | None = None
        # What a restart from a K snapshot needs: the anchor function and its arguments, the
        # default rights granted at creation, and the last state saved with SaveState (or the
        # state it was restarted with), which LoadState returns.
        self.origin: tuple[Any, tuple[Any, ...]] | None = None
        self.rights: tuple[tuple[Any, Domain, Domain], ...] = ()
        self.saved: Any = None
