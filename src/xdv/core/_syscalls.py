"""System calls: what a K anchor yields (or awaits) to ask the kernel for something.

System call objects are small mutable records (plain slotted dataclasses, cheaper to create
than frozen ones on the kernel's hot path); the kernel reads each once, when it is yielded.

A K anchor is a generator function, ``def anchor(...): value = yield Emit("hi")``, or a coroutine
function, ``async def anchor(...): value = await Emit("hi")``. Each system call is one
deterministic step of the process: the kernel handles it, records the decision in the trace
and resumes the process with the result (or raises a typed :class:`~xdv.errors.XdvError` at the
``yield``/``await``, which the anchor may catch).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from xdv.trace import Domain

__all__ = [
    "Attenuate",
    "Bind",
    "Channel",
    "Close",
    "Contracts",
    "Delegate",
    "Emit",
    "Exit",
    "Freeze",
    "Invoke",
    "LoadState",
    "Now",
    "Random",
    "Receive",
    "Release",
    "Reserve",
    "Resume",
    "Revoke",
    "SaveState",
    "Select",
    "Self",
    "Send",
    "Share",
    "Sleep",
    "Spawn",
    "Suspend",
    "Syscall",
    "Transfer",
    "Transition",
    "Unbind",
    "Wait",
    "Yield",
]


class Syscall:
    """Base class of every system call. Awaiting one yields it to the kernel."""

    __slots__ = ()

    def __await__(self) -> Generator[Syscall, Any, Any]:
        return (yield self)


@dataclass(slots=True)
class Emit(Syscall):
    """Record an externally visible K effect (a line of output). Returns None."""

    value: Any


@dataclass(slots=True)
class Sleep(Syscall):
    """Block until logical time now + ``ticks`` (at least one step, so ``Sleep(0)`` lets every
    other ready process go first). Returns the logical time at which it became ready again."""

    ticks: int


@dataclass(slots=True)
class Yield(Syscall):
    """Give up the rest of the time slice. Returns None."""


@dataclass(slots=True)
class Now(Syscall):
    """Return the current logical time."""


@dataclass(slots=True)
class Self(Syscall):
    """Return this process's :class:`~xdv.core.ProcessInfo`."""


@dataclass(slots=True)
class Random(Syscall):
    """Return this process's random stream named ``name`` (derived from the run seed)."""

    name: str = "default"


@dataclass(slots=True)
class Spawn(Syscall):
    """Create a child process; returns its process id.

    ``deadline`` is an absolute logical time the child should finish by (used by the
    earliest-deadline-first policy; None: no deadline).
    """

    anchor: Callable[..., Any]
    args: tuple[Any, ...] = ()
    name: str | None = None
    priority: int = 0
    domains: tuple[Domain | str, ...] = (Domain.K,)
    deadline: int | None = None


@dataclass(slots=True)
class Wait(Syscall):
    """Block until process ``pid`` terminates; returns its :class:`~xdv.core.ExitStatus`."""

    pid: int


@dataclass(slots=True)
class Exit(Syscall):
    """Terminate this process now with ``value`` as its exit value."""

    value: Any = None


@dataclass(slots=True)
class Bind(Syscall):
    """Dynamically bind this process to ``domain`` (needs its ALLOCATE capability)."""

    domain: Domain | str


@dataclass(slots=True)
class Unbind(Syscall):
    """Release this process's binding to ``domain`` (it must hold no contract there)."""

    domain: Domain | str


@dataclass(slots=True)
class Reserve(Syscall):
    """Reserve ``amount`` of ``resource`` in ``domain``; returns a resource contract.

    ``duration`` bounds the contract's validity in logical steps (None: until released).
    ``terms`` carries domain-specific contract terms (a Q calibration profile and decoherence
    budget, a Φ coherence window, ...): a trace-encodable mapping the domain's manager reads and
    answers in the contract it grants.

    Admission: with ``wait=True`` a reservation the domain cannot meet now (its resources are
    held by other contracts) waits in the admission queue instead of failing, and is granted in
    scheduler-policy order as contracts are released; ``deadline`` (an absolute logical time,
    which implies ``wait``) bounds the wait, after which the call fails with ADMISSION_TIMEOUT.
    ``resolve=True`` lets the domain resolve a conflict with another contract by adjusting the
    request (Q: other free physical qubits than the ``mapping`` asked for; Φ: the earliest free
    window start at or after the ``start`` asked for), recorded as CONFLICT_RESOLVED.
    """

    domain: Domain | str
    resource: str
    amount: int = 1
    duration: int | None = None
    terms: Mapping[str, Any] | None = None
    wait: bool = False
    deadline: int | None = None
    resolve: bool = False


@dataclass(slots=True)
class Release(Syscall):
    """Release a resource contract."""

    contract: Any


@dataclass(slots=True)
class Transfer(Syscall):
    """Move one of this process's resource contracts to process ``to``: an explicit, recorded
    hand-over (the only way a contract, and a Q container behind it, crosses processes).

    The receiver must be live and bound to the contract's domain, and both processes must hold
    ``ALLOCATE(K→domain)`` for the contract's resource; the domain's manager may refuse. The
    contract keeps its id; the handle this process held is dead afterwards. The receiver finds
    it with :class:`Contracts`.
    """

    contract: Any
    to: int


@dataclass(slots=True)
class Contracts(Syscall):
    """Return this process's live resource contracts (in ``domain`` only, if given), by id."""

    domain: Domain | str | None = None


@dataclass(slots=True)
class Invoke(Syscall):
    """Run ``operation`` in the contract's domain; returns the domain outcome's value."""

    contract: Any
    operation: str
    args: tuple[Any, ...] = ()


@dataclass(slots=True)
class Transition(Syscall):
    """Move work from ``source`` to ``target`` through the atomic transition protocol.

    The kernel validates the TRANSITION capability, reserves ``amount`` of ``resource`` in the
    target, validates the contract (including ``latency_max`` in logical steps), binds the
    process to the target, projects ``args`` out of the source domain, activates ``operation``
    in the target and logs the commit. A failure at any phase rolls back every earlier phase.
    Returns the activation's outcome value.
    """

    source: Domain | str
    target: Domain | str
    operation: str
    args: tuple[Any, ...] = ()
    resource: str = "lane"
    amount: int = 1
    latency_max: int | None = None
    terms: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Suspend(Syscall):
    """Suspend child process ``pid``: it stays alive but is not dispatched until resumed."""

    pid: int


@dataclass(slots=True)
class Resume(Syscall):
    """Resume suspended child process ``pid``."""

    pid: int


@dataclass(slots=True)
class Revoke(Syscall):
    """Give up one of this process's own capabilities (by id)."""

    capability: int


@dataclass(slots=True)
class Attenuate(Syscall):
    """Derive a narrower capability from one this process holds; returns the new id.

    ``scope`` is a scope record (a list of grants: ``{"op", "from", "to", "resource",
    "times"}``) that must lie within the held capability's scope, or None to keep it;
    ``expires_at`` may only bring the expiry forward. Revoking the original revokes the derived
    capability too.
    """

    capability: int
    scope: Any = None
    expires_at: int | None = None


@dataclass(slots=True)
class Delegate(Syscall):
    """Give process ``to`` a capability derived (and optionally narrowed, as for
    :class:`Attenuate`) from one this process holds; returns the new id."""

    capability: int
    to: int
    scope: Any = None
    expires_at: int | None = None


@dataclass(slots=True)
class Freeze(Syscall):
    """Emergency freeze of ``domain`` (needs FREEZE(K→domain)): every capability touching it
    is revoked, pending outcomes from it fail, and nothing new reaches it."""

    domain: Domain | str
    reason: str = "emergency"


@dataclass(slots=True)
class Channel(Syscall):
    """Open a channel of ``capacity`` messages carrying ``source``→``target`` messages (one of
    XDV-021's categories: K→K, K→Q, Q→K, K→Φ, Φ→K); returns its id.

    The channel belongs to this process's VHM, and this process gets SEND and RECEIVE on it;
    :class:`Share` hands them on. ``name`` is a label for people (default ``channel-<id>``).
    """

    capacity: int = 1
    name: str | None = None
    source: Domain | str = Domain.K
    target: Domain | str = Domain.K


@dataclass(slots=True)
class Send(Syscall):
    """Send ``payload`` (plain, trace-encodable data; never Q or Φ state) on ``channel``;
    returns the message's sequence number on that channel.

    Needs SEND on the channel. If the channel is full the process blocks until a receiver
    makes room, at most ``timeout`` logical steps (None: no limit; 0: never block), then fails
    with CHANNEL_TIMEOUT. A message that crosses domains costs the sender logical time.
    """

    channel: int
    payload: Any = None
    timeout: int | None = None


@dataclass(slots=True)
class Receive(Syscall):
    """Take the oldest message of ``channel``; returns a :class:`~xdv.core.Message`.

    Needs RECEIVE on the channel. If it is empty the process blocks until a message arrives,
    at most ``timeout`` logical steps (None: no limit; 0: never block), then fails with
    CHANNEL_TIMEOUT. A closed channel that has been drained fails with CHANNEL_CLOSED.
    """

    channel: int
    timeout: int | None = None


@dataclass(slots=True)
class Select(Syscall):
    """Receive from the first of ``channels`` (in the order given) that has a message, or
    block until one of them gets one (at most ``timeout`` logical steps); returns the
    :class:`~xdv.core.Message`, whose ``channel`` says which. Fails with CHANNEL_CLOSED once
    every channel is closed and drained."""

    channels: tuple[int, ...] | list[int]
    timeout: int | None = None


@dataclass(slots=True)
class Close(Syscall):
    """Stop sending on ``channel`` (needs SEND on it). Once no sender is left (each closed,
    or ended) the channel closes: blocked senders fail with CHANNEL_CLOSED, and receivers
    still get what is queued, then CHANNEL_CLOSED."""

    channel: int


@dataclass(slots=True)
class Share(Syscall):
    """Give process ``to`` this process's SEND (``send``) and/or RECEIVE (``receive``) right on
    ``channel``, limited to that channel and no longer-lived than the right held; returns the
    new capability ids."""

    channel: int
    to: int
    send: bool = True
    receive: bool = False


@dataclass(slots=True)
class SaveState(Syscall):
    """Record ``state`` as this process's K state for snapshots of its VHM (recorded as
    STATE_SAVE). ``state`` must be trace-encodable K data: never a Q or Φ handle. Returns None.

    A process restarted from a snapshot (:meth:`~xdv.core.Kernel.restart_vhm`) starts over
    with the state it last saved before the snapshot, which :class:`LoadState` returns."""

    state: Any


@dataclass(slots=True)
class LoadState(Syscall):
    """Return this process's saved K state: the state it was restarted with, or its own last
    :class:`SaveState`, or None."""
