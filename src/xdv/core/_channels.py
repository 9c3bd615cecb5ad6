"""Channels: bounded, capability-scoped message passing between processes (XDV-021).

A channel is a FIFO queue of at most ``capacity`` messages with a category, the pair of domains
it connects (``K→K`` classical IPC, ``K→Q`` job submission, ``Q→K`` measurement results,
``K→Φ`` transform submission, ``Φ→K`` structured projections). It belongs to the VHM of the
process that opened it; an operator-declared channel may connect processes of several VHMs.

Authority: sending needs ``SEND(source→target)`` and receiving ``RECEIVE(source→target)`` on
the channel's resource name (``channel:<id>``), checked through the kernel's one capability
check before anything else happens. Opening a channel grants its opener both rights on it;
``Share`` hands one of them on, and a declaration grants them to the parties it names.

Delivery is deterministic: a channel's messages are delivered in the order they were sent;
blocked receivers are served in the order they blocked, and blocked senders enter the queue in
the order they blocked; ``Select`` takes the first listed channel that has a message. Every
decision is one trace entry (CHANNEL_CREATE, CHANNEL_SEND, CHANNEL_RECEIVE, CHANNEL_SELECT,
CHANNEL_BLOCK, CHANNEL_CLOSE, CHANNEL_SHARE, and WAKE for a blocked process served), so a
replay reproduces the same order.

A message is atomic: it is validated, copied (canonical, trace-encodable data only) and
authorized before it enters the queue; otherwise it is refused and the refusal recorded, and
nothing of it remains. Q state never travels (a Q handle refuses itself with
NO_CLONING_VIOLATION), nor does a resource contract or raw Φ phase data
(MESSAGE_DOMAIN_STATE): contracts move only by the recorded ``Transfer``.

Crossing a domain boundary costs logical time (§5 of XDV-021): :func:`crossing_cost` gives
the deterministic cost of a message by category and size, the sender pays it by becoming ready
that much later, and the scheduler orders it accordingly; a policy that keeps accounts (a
``charge`` method, as a fair-share policy has) is also charged the cost, as K steps of the
sender's VHM. A K→K message costs nothing.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cbor2 import dumps as _dumps

from xdv.core._authorization import CapabilityCheck
from xdv.core._capability import Capability, Operation
from xdv.core._clock import LogicalClock
from xdv.core._fault_handler import FaultHandler
from xdv.core._interface import ResourceContract
from xdv.core._lifecycle import ProcessState
from xdv.core._process import _Process
from xdv.core._process_table import ProcessTable
from xdv.core._recorder import Recorder
from xdv.errors import ErrorCode, InvariantViolation, TraceError, XdvError, invariant, safe_repr
from xdv.trace import Domain, EventType, canonical_metadata, canonicalize

__all__ = [
    "CAPACITY_MAX",
    "CATEGORIES",
    "CHANNELS_MAX",
    "MESSAGE_BYTES_MAX",
    "SELECT_CASES_MAX",
    "ChannelTable",
    "CrossingCost",
    "Message",
    "channel_resource",
    "crossing_cost",
]

CHANNELS_MAX = 4096
"""How many channels one run may open (declared ones included)."""
CAPACITY_MAX = 1 << 16
"""The largest capacity of one channel, in messages."""
MESSAGE_BYTES_MAX = 64 * 1024
"""The largest payload of one message, in canonical CBOR bytes."""
SELECT_CASES_MAX = 64
"""How many channels one Select may wait on."""
_PAYLOAD_DEPTH_MAX = 64

_K, _Q, _PHI = Domain.K, Domain.Q, Domain.PHI
# The event a blocked call's failure is recorded on, by call.
_CALL_EVENTS = {
    "Send": EventType.CHANNEL_SEND,
    "Receive": EventType.CHANNEL_RECEIVE,
    "Select": EventType.CHANNEL_SELECT,
}
CATEGORIES: dict[tuple[Domain, Domain], str] = {
    (_K, _K): "classical IPC",
    (_K, _Q): "job submission",
    (_Q, _K): "measurement result",
    (_K, _PHI): "transform submission",
    (_PHI, _K): "structured projection",
}
"""The message categories a channel may carry, by (source, target) domain."""


@dataclass(frozen=True, slots=True)
class CrossingCost:
    """What one message costs to cross from its source to its target domain, in logical
    steps, along XDV-021 §5.1's four dimensions. The sender pays :attr:`total`."""

    latency: int = 0
    overhead: int = 0
    coherence: int = 0
    validation: int = 0

    @property
    def total(self) -> int:
        return self.latency + self.overhead + self.coherence + self.validation

    def to_record(self) -> list[int]:
        return [self.latency, self.overhead, self.coherence, self.validation]


# (latency, overhead, coherence, validation) per category, before the size term; see
# docs/ipc.md for what each stands for.
_COSTS: dict[tuple[Domain, Domain], tuple[int, int, int, int]] = {
    (_K, _K): (0, 0, 0, 0),
    (_K, _Q): (2, 1, 1, 1),
    (_Q, _K): (1, 1, 1, 1),
    (_K, _PHI): (1, 1, 2, 1),
    (_PHI, _K): (1, 1, 1, 1),
}


def crossing_cost(source: Domain, target: Domain, size: int) -> CrossingCost:
    """The deterministic cost of a ``size``-byte message from ``source`` to ``target``.

    A message within K costs nothing; a crossing costs its category's fixed steps plus one
    step of serialization overhead per started KiB beyond the first.
    """
    latency, overhead, coherence, validation = _COSTS[(source, target)]
    if not (latency or overhead or coherence or validation):
        return _FREE
    overhead += max(0, (size - 1) // 1024)
    return CrossingCost(latency, overhead, coherence, validation)


_FREE = CrossingCost()


def _encoded(meta: dict[str, Any]) -> bytes:
    """A channel entry's metadata in the trace's canonical CBOR: the caller lists the keys in
    canonical order (shorter first, then bytewise) with unsigned integers, text and lists of
    them as values, so the plain encoding is the canonical one (the reader re-checks it)."""
    return _dumps(meta)


def channel_resource(channel: int) -> str:
    """The resource name SEND and RECEIVE capabilities name a channel by."""
    return f"channel:{channel}"


@dataclass(frozen=True, slots=True)
class Message:
    """A delivered message (XDV-021 §3.1): who sent it to whom, across which domains, with
    which capability, at which logical time, and its payload (the receiver's own copy)."""

    channel: int
    seq: int
    sender: int
    receiver: int
    source: Domain
    target: Domain
    payload: Any
    capability: int
    sent_at: int


@dataclass(slots=True)
class _Queued:
    """A message in a channel's queue (or held by its blocked sender)."""

    seq: int
    sender: int
    payload: Any
    size: int
    digest: str
    capability: int
    sent_at: int


class _Wait:
    """A process blocked on channels: a sender with its message, or a receiver (Receive or
    Select). ``done`` is set once it is served, timed out or failed; stale entries left in
    other channels' deques are skipped when met."""

    __slots__ = ("call", "channels", "done", "message", "process")

    def __init__(
        self, process: _Process, call: str, channels: tuple[int, ...], message: _Queued | None
    ) -> None:
        self.process = process
        self.call = call
        self.channels = channels
        self.message = message
        self.done = False


class _Channel:
    """One channel's state. Invariant: ``len(queue) <= capacity``; receivers wait only while
    the queue is empty, and senders only while it is full."""

    __slots__ = (
        "capacity",
        "close_reason",
        "closed",
        "declared",
        "delivered",
        "dropped",
        "id",
        "name",
        "next_seq",
        "queue",
        "receivers",
        "receiving_peers",
        "resource",
        "senders",
        "sending_peers",
        "sent",
        "source",
        "stopped",
        "target",
        "vhm",
    )

    def __init__(
        self,
        channel_id: int,
        name: str,
        capacity: int,
        source: Domain,
        target: Domain,
        vhm: int,
        declared: bool,
    ) -> None:
        self.id = channel_id
        self.name = name
        self.capacity = capacity
        self.source = source
        self.target = target
        self.vhm = vhm
        self.declared = declared
        self.resource = channel_resource(channel_id)  # what SEND and RECEIVE rights name
        self.queue: deque[_Queued] = deque()
        self.senders: deque[_Wait] = deque()
        self.receivers: deque[_Wait] = deque()
        self.sending_peers: set[int] = set()
        self.receiving_peers: set[int] = set()
        self.stopped: set[int] = set()  # the senders that closed their side
        self.closed = False
        self.close_reason = ""
        self.next_seq = 1
        self.sent = 0
        self.delivered = 0
        self.dropped = 0

    @property
    def category(self) -> str:
        return f"{self.source.label}→{self.target.label}"

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "capacity": self.capacity,
            "vhm": self.vhm,
            "declared": self.declared,
            "queued": len(self.queue),
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "closed": self.closed,
        }


def _invalid(message: str, pid: int, code: ErrorCode = ErrorCode.CHANNEL_INVALID) -> XdvError:
    return XdvError(message, code=code, where=f"process {pid}" if pid else "channel declaration")


def _domain_state(value: Any, path: str, channel: int, pid: int, depth: int = 0) -> None:
    """Refuse domain-native state anywhere in a payload, before it is copied: a value that
    declares its own refusal (a Q handle: NO_CLONING_VIOLATION), a resource contract, or an
    object carrying phases (MESSAGE_DOMAIN_STATE)."""
    if depth > _PAYLOAD_DEPTH_MAX:
        raise _invalid(
            f"the payload nests deeper than {_PAYLOAD_DEPTH_MAX} levels (at {path})",
            pid,
            ErrorCode.MESSAGE_INVALID,
        )
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            _domain_state(item, f"{path}.{key}", channel, pid, depth + 1)
        return
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            _domain_state(item, f"{path}[{index}]", channel, pid, depth + 1)
        return
    if value is None or kind in (bool, int, float, str, bytes):
        return
    refusal = getattr(value, "__xdv_refusal__", None)
    if refusal is not None and callable(refusal):
        raise refusal(f"sent in a message on channel {channel} (at {path})")
    if isinstance(value, ResourceContract):
        raise _invalid(
            f"the payload holds {value.domain.label} resource contract {value.id} (at {path}): "
            "a contract moves between processes only by Transfer",
            pid,
            ErrorCode.MESSAGE_DOMAIN_STATE,
        )
    if hasattr(value, "phases"):
        raise _invalid(
            f"the payload holds phase data (a {kind.__name__}, at {path}): raw Φ state never "
            "leaves its provider",
            pid,
            ErrorCode.MESSAGE_DOMAIN_STATE,
        )


class ChannelTable:
    """Every channel of a run, and the Send/Receive/Select/Close/Share decisions on them.

    Invariants: channel ids count up from 1 and are never reused; a message's sequence number
    counts up from 1 per channel, and it is delivered at most once, in sequence order; a
    process is blocked on channels through at most one :class:`_Wait`.
    """

    __slots__ = (
        "_capabilities",
        "_charge_policy",
        "_clock",
        "_faults",
        "_peer_of",
        "_record",
        "_table",
        "_ticks_max",
        "channels",
        "crossing_ticks",
        "waits",
    )

    def __init__(
        self,
        *,
        recorder: Recorder,
        clock: LogicalClock,
        table: ProcessTable,
        capabilities: CapabilityCheck,
        ticks_max: int,
        charge: Callable[[int, Domain, float], None] | None = None,
        faults: FaultHandler | None = None,
    ) -> None:
        self._faults = faults
        self._record = recorder.record
        self._ticks_max = ticks_max
        # The scheduler policy's accounting hook, when it keeps accounts (fair share does):
        # crossing costs are charged to the sender's VHM there too.
        self._charge_policy = charge
        self._clock = clock
        self._table = table
        self._capabilities = capabilities
        self.channels: dict[int, _Channel] = {}
        self.waits: dict[int, _Wait] = {}  # by pid: the processes blocked on channels
        self._peer_of: dict[int, set[int]] = {}  # pid -> the channels it is a peer of
        self.crossing_ticks: dict[int, int] = {}  # pid -> the crossing cost it has paid

    # ------------------------------------------------------------------ lookups

    def snapshot(self) -> dict[int, dict[str, Any]]:
        """Each channel's counters and state, by id."""
        return {cid: channel.stats() for cid, channel in sorted(self.channels.items())}

    def _channel(self, process: _Process, channel_id: Any) -> _Channel:
        if type(channel_id) is not int:
            raise XdvError(
                f"a channel is named by its id (an int), got {safe_repr(channel_id)}",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        channel = self.channels.get(channel_id)
        if channel is None:
            raise _invalid(f"no channel {channel_id}", process.pid, ErrorCode.CHANNEL_UNKNOWN)
        self._same_vhm(channel, process.info.vhm, process.pid)
        return channel

    @staticmethod
    def _same_vhm(channel: _Channel, vhm: int, pid: int) -> None:
        """A process uses only its own VHM's channels, or channels an operator declared."""
        if not channel.declared and channel.vhm != vhm:
            raise _invalid(
                f"channel {channel.id} belongs to VHM {channel.vhm}, not to VHM {vhm}; across "
                "VHMs only a declared channel carries messages",
                pid,
                ErrorCode.CHANNEL_ISOLATED,
            )

    def _check(self, process: _Process, operation: Operation, channel: _Channel) -> Capability:
        return self._capabilities.check(
            process.pid, operation, channel.source, channel.target, channel.resource
        )

    @staticmethod
    def _timeout(process: _Process, timeout: Any, ticks_max: int) -> int | None:
        if timeout is None:
            return None
        if type(timeout) is not int or not 0 <= timeout <= ticks_max:
            raise XdvError(
                f"a timeout is None or 0 to {ticks_max} logical steps, got {safe_repr(timeout)}",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {process.pid}",
            )
        return timeout

    # ------------------------------------------------------------------ opening

    def open(
        self,
        opener: int,
        vhm: int,
        capacity: Any,
        name: Any,
        source: Any,
        target: Any,
        *,
        declared: bool,
    ) -> _Channel:
        """Create a channel (CHANNEL_CREATE); the caller grants the rights on it."""
        if type(capacity) is not int or not 1 <= capacity <= CAPACITY_MAX:
            raise _invalid(
                f"a channel's capacity is 1 to {CAPACITY_MAX} messages, got {safe_repr(capacity)}",
                opener,
            )
        if name is not None and (not isinstance(name, str) or not name or len(name) > 128):
            raise _invalid(
                f"a channel's name is 1 to 128 characters, got {safe_repr(name)}", opener
            )
        try:
            category = (Domain.parse(source), Domain.parse(target))
        except XdvError as error:
            raise _invalid(error.message, opener, ErrorCode.CHANNEL_CATEGORY) from None
        if category not in CATEGORIES:
            source_label, target_label = category[0].label, category[1].label
            why = (
                "a direct Q↔Φ interaction needs hardware support no installed provider declares"
                if set(category) == {_Q, _PHI}
                else "state within Q or Φ is shared only through a resource contract (Transfer)"
                if category[0] is category[1]
                else "it is not one of XDV-021's message categories"
            )
            raise _invalid(
                f"no channel carries {source_label}→{target_label} messages: {why}",
                opener,
                ErrorCode.CHANNEL_CATEGORY,
            )
        if len(self.channels) >= CHANNELS_MAX:
            raise XdvError(
                f"the run holds its limit of {CHANNELS_MAX} channels",
                code=ErrorCode.LIMIT_EXCEEDED,
                where=f"process {opener}" if opener else "channel declaration",
            )
        channel_id = len(self.channels) + 1
        channel = _Channel(
            channel_id,
            name if name is not None else f"channel-{channel_id}",
            capacity,
            category[0],
            category[1],
            vhm,
            declared,
        )
        self.channels[channel_id] = channel
        self._record(
            EventType.CHANNEL_CREATE,
            Domain.ORCHESTRATION,
            opener,
            meta={
                "channel": channel_id,
                "name": channel.name,
                "capacity": capacity,
                "from": channel.source.label,
                "to": channel.target.label,
                "vhm": vhm,
                "declared": declared,
            },
        )
        return channel

    def grant(
        self,
        channel: _Channel,
        pid: int,
        send: bool,
        receive: bool,
        expires_at: int | None = None,
    ) -> list[Capability]:
        """Grant ``pid`` SEND and/or RECEIVE on ``channel`` and make it a peer of that side."""
        granted = []
        peers = self._peer_of.setdefault(pid, set())
        for wanted, operation, side in (
            (send, Operation.SEND, channel.sending_peers),
            (receive, Operation.RECEIVE, channel.receiving_peers),
        ):
            if not wanted:
                continue
            granted.append(
                self._capabilities.grant(
                    pid, operation, channel.source, channel.target, expires_at, channel.resource
                )
            )
            side.add(pid)
            peers.add(channel.id)
            if operation is Operation.SEND:
                channel.stopped.discard(pid)
        return granted

    def share(
        self, process: _Process, channel_id: Any, to: Any, send: Any, receive: Any
    ) -> list[int]:
        """``process`` hands ``to`` its SEND and/or RECEIVE right on a channel (CHANNEL_SHARE
        and a grant per right); it must hold each right it shares."""
        channel = self._channel(process, channel_id)
        pid = process.pid
        if type(to) is not int or type(send) is not bool or type(receive) is not bool:
            raise XdvError(
                "Share takes a process id and two flags (send, receive)",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {pid}",
            )
        if not (send or receive):
            raise XdvError(
                "Share needs at least one of send and receive",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {pid}",
            )
        held = [
            self._check(process, operation, channel)
            for wanted, operation in ((send, Operation.SEND), (receive, Operation.RECEIVE))
            if wanted
        ]
        target = self._table.live(to)
        if target is process:
            raise XdvError(
                "a process cannot share a channel with itself",
                code=ErrorCode.SYSCALL_INVALID,
                where=f"process {pid}",
            )
        if target.info.vhm != process.info.vhm:
            raise _invalid(
                f"process {to} belongs to VHM {target.info.vhm}, not to VHM "
                f"{process.info.vhm}: only an operator connects VHMs (a declared channel)",
                pid,
                ErrorCode.CHANNEL_ISOLATED,
            )
        self._same_vhm(channel, target.info.vhm, pid)
        expiries = [cap.expires_at for cap in held if cap.expires_at is not None]
        rights = [name for name, wanted in (("send", send), ("receive", receive)) if wanted]
        self._record(
            EventType.CHANNEL_SHARE,
            Domain.ORCHESTRATION,
            pid,
            capability=held[0].id,
            meta={"channel": channel.id, "to": to, "rights": rights},
        )
        granted = self.grant(channel, to, send, receive, min(expiries) if expiries else None)
        return [capability.id for capability in granted]

    # ------------------------------------------------------------------ sending

    def send(self, process: _Process, channel_id: Any, payload: Any, timeout: Any) -> bool:
        """The Send system call; see :class:`~xdv.core._syscalls.Send`."""
        channel = self._channel(process, channel_id)
        capability = self._check(process, Operation.SEND, channel)
        pid = process.pid
        if channel.closed or pid in channel.stopped:
            raise _invalid(
                f"channel {channel.id} is closed "
                + (f"({channel.close_reason})" if channel.closed else f"by process {pid}"),
                pid,
                ErrorCode.CHANNEL_CLOSED,
            )
        if channel.source not in process.bindings:
            raise _invalid(
                f"channel {channel.id} carries {channel.category} messages and process {pid} "
                f"is not bound to {channel.source.label}",
                pid,
                ErrorCode.CHANNEL_CATEGORY,
            )
        deadline = self._timeout(process, timeout, self._ticks_max)
        message = self._admit(process, channel, payload, capability)
        if self._faults is not None:
            self._faults.visit("send", process)  # an injected fault refuses the whole message
        self._attach(channel.sending_peers, pid, channel.id)
        if len(channel.queue) >= channel.capacity:  # (receivers wait only on empty channels)
            if deadline == 0:
                raise _invalid(
                    f"channel {channel.id} is full ({channel.capacity} messages)",
                    pid,
                    ErrorCode.CHANNEL_TIMEOUT,
                )
            wait = _Wait(process, "Send", (channel.id,), message)
            channel.senders.append(wait)
            self._block(wait, deadline, {"channel": channel.id, "op": "send"})
            return False
        self._enqueue(channel, message)
        process.send_value = message.seq
        return self._charge(process, channel, message.size, 0)

    def _admit(
        self, process: _Process, channel: _Channel, payload: Any, capability: Capability
    ) -> _Queued:
        """Validate and copy a payload; nothing of a refused message remains."""
        pid = process.pid
        kind = type(payload)
        try:
            if kind is str or kind is bytes or (kind is int and 0 <= payload < 1 << 63):
                # Scalars need neither the walk nor a copy: their plain encoding is canonical.
                copied = payload
                encoded = _dumps({"m": payload})
            else:
                _domain_state(payload, "payload", channel.id, pid)
                copied = canonicalize(payload, "payload")
                encoded = canonical_metadata({"m": copied})
        except TraceError as error:
            raise _invalid(
                f"a message carries plain data only: {error.message}",
                pid,
                ErrorCode.MESSAGE_INVALID,
            ) from None
        size = len(encoded)
        if size > MESSAGE_BYTES_MAX:
            raise _invalid(
                f"the message is {size} bytes; a message holds at most {MESSAGE_BYTES_MAX}",
                pid,
                ErrorCode.MESSAGE_INVALID,
            )
        digest = hashlib.sha256(encoded).hexdigest()[:32]
        # The sequence number is given when the message enters the channel (a blocked send
        # that never does takes none).
        return _Queued(0, pid, copied, size, digest, capability.id, self._clock.now)

    def _enqueue(self, channel: _Channel, message: _Queued) -> None:
        """The message enters the channel (CHANNEL_SEND), or goes straight to the first
        receiver that waits for it."""
        channel.sent += 1
        message.seq = channel.next_seq
        channel.next_seq += 1
        meta: dict[str, Any] = {"seq": message.seq}
        cost = crossing_cost(channel.source, channel.target, message.size)
        if cost.total:
            meta["cost"] = cost.to_record()
        meta["bytes"] = message.size
        meta["digest"] = message.digest
        meta["channel"] = channel.id
        self._record(
            EventType.CHANNEL_SEND,
            Domain.ORCHESTRATION,
            message.sender,
            capability=message.capability,
            meta=_encoded(meta),
        )
        channel.queue.append(message)
        invariant(len(channel.queue) <= channel.capacity, "a channel never exceeds its capacity")
        while channel.queue and channel.receivers:
            wait = channel.receivers.popleft()
            if wait.done:
                continue
            self._serve_receiver(wait, channel)

    def _charge(self, process: _Process, channel: _Channel, size: int, at_least: int) -> bool:
        """The sender pays the crossing cost: it becomes ready that many steps later. Returns
        whether it keeps the processor (a K→K message that did not block)."""
        cost = crossing_cost(channel.source, channel.target, size).total
        if cost:
            pid = process.pid
            self.crossing_ticks[pid] = self.crossing_ticks.get(pid, 0) + cost
            if self._charge_policy is not None:
                self._charge_policy(process.info.vhm, Domain.K, float(cost))
        delay = max(cost, at_least)
        if delay == 0:
            return True
        self._ready(process, self._clock.now + delay)
        return False

    def _ready(self, process: _Process, at: int) -> None:
        """Queue ``process`` to run at ``at``: out of its timeout's place if it waited with
        one, and not at all if it is suspended and parked (``Resume`` queues it)."""
        if process.queued:
            self._table.dequeue(process)
        if process.parked:
            return
        self._table.enqueue(process, at)

    # ------------------------------------------------------------------ receiving

    def receive(self, process: _Process, channel_ids: Any, timeout: Any, call: str) -> bool:
        """The Receive (one channel) and Select (several) system calls."""
        pid = process.pid
        if call == "Select":
            if not isinstance(channel_ids, list | tuple) or not channel_ids:
                raise XdvError(
                    f"Select takes a non-empty list of channel ids, got {safe_repr(channel_ids)}",
                    code=ErrorCode.SYSCALL_INVALID,
                    where=f"process {pid}",
                )
            if len(channel_ids) > SELECT_CASES_MAX or len(set(channel_ids)) != len(channel_ids):
                raise XdvError(
                    f"Select takes 1 to {SELECT_CASES_MAX} distinct channels",
                    code=ErrorCode.SYSCALL_INVALID,
                    where=f"process {pid}",
                )
            ids = tuple(channel_ids)
        else:
            ids = (channel_ids,)
        channels = [self._channel(process, channel_id) for channel_id in ids]
        rights = []
        for channel in channels:
            rights.append(self._check(process, Operation.RECEIVE, channel))
            if channel.target not in process.bindings:
                raise _invalid(
                    f"channel {channel.id} carries {channel.category} messages and process "
                    f"{pid} is not bound to {channel.target.label}",
                    pid,
                    ErrorCode.CHANNEL_CATEGORY,
                )
        deadline = self._timeout(process, timeout, self._ticks_max)
        if self._faults is not None:
            self._faults.visit("receive", process)  # an injected fault takes nothing
        wait = _Wait(process, call, tuple(channel.id for channel in channels), None)
        for channel in channels:
            self._attach(channel.receiving_peers, pid, channel.id)
        for channel, right in zip(channels, rights, strict=True):
            if channel.queue:
                self._serve_receiver(wait, channel, right)
                return True
        if all(channel.closed for channel in channels):
            reasons = "; ".join(f"{c.id}: {c.close_reason}" for c in channels)
            raise _invalid(
                f"channel{'s' if len(channels) > 1 else ''} closed and drained ({reasons})",
                pid,
                ErrorCode.CHANNEL_CLOSED,
            )
        if deadline == 0:
            raise _invalid(
                f"no message on channel{'s' if len(channels) > 1 else ''} "
                + ", ".join(str(c.id) for c in channels),
                pid,
                ErrorCode.CHANNEL_TIMEOUT,
            )
        for channel in channels:
            if not channel.closed:
                channel.receivers.append(wait)
        where: dict[str, Any] = (
            {"channel": ids[0]} if call == "Receive" else {"channels": list(ids)}
        )
        self._block(wait, deadline, {**where, "op": call.lower()})
        return False

    def _serve_receiver(
        self, wait: _Wait, channel: _Channel, capability: Capability | None = None
    ) -> None:
        """Hand the channel's oldest message to a receiver (CHANNEL_RECEIVE or CHANNEL_SELECT)
        and let the first blocked sender's message into the freed place. A receiver that
        blocked has its right checked again at this point (``capability`` None): it may have
        expired or been revoked while it waited."""
        process = wait.process
        blocked = capability is None
        if capability is None:
            try:
                capability = self._check(process, Operation.RECEIVE, channel)
            except XdvError as error:
                self._fail(wait, error)
                return
        message = channel.queue.popleft()
        channel.delivered += 1
        select = wait.call == "Select"
        meta: dict[str, Any] = {"seq": message.seq, "from": message.sender, "channel": channel.id}
        if select:
            meta["channels"] = list(wait.channels)
        self._record(
            EventType.CHANNEL_SELECT if select else EventType.CHANNEL_RECEIVE,
            Domain.ORCHESTRATION,
            process.pid,
            capability=capability.id,
            meta=_encoded(meta),
        )
        process.send_value = Message(
            channel.id,
            message.seq,
            message.sender,
            process.pid,
            channel.source,
            channel.target,
            message.payload,
            message.capability,
            message.sent_at,
        )
        if blocked:
            self._wake(wait, {"by": message.sender, "channel": channel.id}, 1)
        self._admit_blocked_sender(channel, process.pid)

    def _admit_blocked_sender(self, channel: _Channel, by: int) -> None:
        while channel.senders and len(channel.queue) < channel.capacity:
            wait = channel.senders.popleft()
            if wait.done:
                continue
            message = wait.message
            invariant(message is not None, "a blocked sender holds its message")
            assert message is not None
            try:
                self._check(wait.process, Operation.SEND, channel)
            except XdvError as error:
                self._fail(wait, error)
                continue
            self._enqueue(channel, message)
            wait.process.send_value = message.seq
            self._wake(wait, {"by": by, "channel": channel.id}, 0, channel, message.size)

    # ------------------------------------------------------------------ blocking and waking

    def _block(self, wait: _Wait, deadline: int | None, meta: dict[str, Any]) -> None:
        process = wait.process
        invariant(process.pid not in self.waits, "a process blocks on channels once at a time")
        self.waits[process.pid] = wait
        if deadline is not None:
            until = self._clock.now + deadline
            meta["until"] = until
            process.delivery = wait  # the kernel calls expire() if it is still blocked then
            self._table.enqueue(process, until)
        process.waiting_on = None
        self._record(EventType.CHANNEL_BLOCK, Domain.ORCHESTRATION, process.pid, meta=meta)

    def _wake(
        self,
        wait: _Wait,
        meta: dict[str, Any],
        at_least: int,
        channel: _Channel | None = None,
        size: int = 0,
    ) -> None:
        wait.done = True
        process = wait.process
        del self.waits[process.pid]
        process.delivery = None
        self._record(EventType.WAKE, Domain.ORCHESTRATION, process.pid, meta=meta)
        if channel is not None:
            self._charge(process, channel, size, 1)
        else:
            self._ready(process, self._clock.now + at_least)

    def _fail(self, wait: _Wait, error: XdvError) -> None:
        """End a blocked call with ``error``: recorded on the call's event, thrown when the
        process next runs."""
        self._record_failure(wait, error)
        wait.process.send_value = None
        self._wake(wait, {"by": 0, "channel": wait.channels[0]}, 1)

    def _record_failure(self, wait: _Wait, error: XdvError) -> None:
        """Record a blocked call's failure on its own event; it is thrown when the process
        next runs."""
        self._record(
            _CALL_EVENTS[wait.call],
            Domain.ORCHESTRATION,
            wait.process.pid,
            status=error.code,
            meta={"error": error.message, "call": wait.call},
        )
        wait.process.throw_error = error

    def expire(self, process: _Process) -> None:
        """Called by the kernel when a process blocked with a timeout is dispatched at its
        deadline: the call fails with CHANNEL_TIMEOUT."""
        wait = self.waits.pop(process.pid, None)
        invariant(wait is not None, "only a blocked process expires")
        assert wait is not None
        wait.done = True
        process.delivery = None
        error = _invalid(
            f"{wait.call} on channel{'s' if len(wait.channels) > 1 else ''} "
            + ", ".join(map(str, wait.channels))
            + " timed out",
            process.pid,
            ErrorCode.CHANNEL_TIMEOUT,
        )
        self._record_failure(wait, error)

    # ------------------------------------------------------------------ closing

    def close(self, process: _Process, channel_id: Any) -> None:
        """The Close system call: this process stops sending on the channel (it needs SEND
        on it). When no sender is left the channel closes: blocked senders fail with
        CHANNEL_CLOSED, and receivers still get what is queued, then CHANNEL_CLOSED."""
        channel = self._channel(process, channel_id)
        self._check(process, Operation.SEND, channel)
        pid = process.pid
        if channel.closed or pid in channel.stopped:
            raise _invalid(
                f"channel {channel.id} is already closed "
                + (f"({channel.close_reason})" if channel.closed else f"by process {pid}"),
                pid,
                ErrorCode.CHANNEL_CLOSED,
            )
        channel.stopped.add(pid)
        channel.sending_peers.discard(pid)
        if channel.sending_peers:
            self._record(
                EventType.CHANNEL_CLOSE,
                Domain.ORCHESTRATION,
                pid,
                meta={"channel": channel.id, "reason": "a sender closed", "closed": False},
            )
            return
        self._close(channel, pid, f"closed by its last sender, process {pid}", drop=False)

    def _close(self, channel: _Channel, pid: int, reason: str, *, drop: bool) -> None:
        channel.closed = True
        channel.close_reason = reason
        dropped = [message.seq for message in channel.queue] if drop else []
        if drop:
            channel.dropped += len(channel.queue)
            channel.queue.clear()
        meta: dict[str, Any] = {"channel": channel.id, "reason": reason, "closed": True}
        if dropped:
            meta["dropped"] = dropped
        self._record(EventType.CHANNEL_CLOSE, Domain.ORCHESTRATION, pid, meta=meta)
        error = _invalid(
            f"channel {channel.id} is closed ({reason})", pid, ErrorCode.CHANNEL_CLOSED
        )
        while channel.senders:
            wait = channel.senders.popleft()
            if not wait.done:
                self._fail(wait, error)
        if channel.queue:
            return  # receivers wait only on empty channels: none is blocked here
        while channel.receivers:
            wait = channel.receivers.popleft()
            if wait.done:
                continue
            others = [self.channels[cid] for cid in wait.channels if cid != channel.id]
            if any(not other.closed or other.queue for other in others):
                continue  # a Select still has an open channel to wait on
            self._fail(wait, error)

    def process_ended(self, process: _Process, shutting_down: bool) -> None:
        """A process ended: it stops waiting, and each channel whose last sender (or last
        receiver) it was closes: receivers then drain what is queued and get CHANNEL_CLOSED;
        with no receiver left, queued messages are dropped (and recorded) and blocked senders
        get CHANNEL_CLOSED."""
        pid = process.pid
        wait = self.waits.pop(pid, None)
        if wait is not None:
            wait.done = True
            process.delivery = None
            if process.queued:  # blocked with a timeout
                self._table.dequeue(process)
        for channel_id in sorted(self._peer_of.pop(pid, ())):
            channel = self.channels[channel_id]
            had_senders = bool(channel.sending_peers)
            had_receivers = bool(channel.receiving_peers)
            channel.sending_peers.discard(pid)
            channel.receiving_peers.discard(pid)
            if shutting_down or channel.closed:
                continue
            if had_receivers and not channel.receiving_peers:
                self._close(channel, pid, f"its last receiver, process {pid}, ended", drop=True)
            elif had_senders and not channel.sending_peers:
                self._close(channel, pid, f"its last sender, process {pid}, ended", drop=False)

    def _attach(self, side: set[int], pid: int, channel_id: int) -> None:
        if pid not in side:
            side.add(pid)
            self._peer_of.setdefault(pid, set()).add(channel_id)

    def blocked_on(self, pid: int) -> tuple[int, ...] | None:
        """The channels process ``pid`` is blocked on, if it is."""
        wait = self.waits.get(pid)
        return wait.channels if wait is not None else None

    def declare(
        self,
        name: Any,
        capacity: Any,
        source: Any,
        target: Any,
        senders: Iterable[int],
        receivers: Iterable[int],
        vhm: int,
        live: Iterable[int],
    ) -> int:
        """An operator declares a channel and grants SEND to ``senders`` and RECEIVE to
        ``receivers`` (live processes)."""
        alive = set(live)
        sides = (senders, receivers)
        if not all(isinstance(side, list | tuple | set | frozenset) for side in sides):
            raise _invalid("a channel's senders and receivers are lists of process ids", 0)
        senders, receivers = list(senders), list(receivers)
        for pid in (*senders, *receivers):
            if type(pid) is not int or pid not in alive:
                raise _invalid(f"no live process {safe_repr(pid)} to connect", 0)
        channel = self.open(0, vhm, capacity, name, source, target, declared=True)
        for pid in sorted(set(senders) | set(receivers)):
            self.grant(channel, pid, pid in senders, pid in receivers)
        return channel.id

    def check_consistency(self) -> None:
        """Invariant checks (used by tests): capacities hold, waits are registered once."""
        for channel in self.channels.values():
            if len(channel.queue) > channel.capacity:
                raise InvariantViolation(f"channel {channel.id} exceeds its capacity")
            if channel.sent != channel.delivered + channel.dropped + len(channel.queue):
                raise InvariantViolation(f"channel {channel.id} lost or duplicated a message")
        for pid, wait in self.waits.items():
            invariant(not wait.done and wait.process.pid == pid, "a live wait per process")
            invariant(
                wait.process.state in (ProcessState.ACTIVE, ProcessState.SUSPENDED),
                "only live processes wait",
            )
