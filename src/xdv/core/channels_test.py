"""Channels: delivery order, capacity, blocking and timeouts, authority, refusals, peers' ends."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import (
    FaultPlan,
    FaultRule,
    KDomainManager,
    Kernel,
    Message,
    Operation,
    RoundRobinPolicy,
    channel_resource,
    crossing_cost,
)
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import (
    Channel,
    Close,
    Invoke,
    Now,
    Receive,
    Reserve,
    Resume,
    Revoke,
    Select,
    Send,
    Share,
    Sleep,
    Spawn,
    Suspend,
    Wait,
)
from xdv.trace import Domain, EventType, TraceEntry, read_trace

Steps = Generator[Any, Any, Any]


def run(anchor: Callable[..., Steps], *args: Any, **kernel_options: Any) -> tuple[Any, Kernel]:
    kernel = Kernel(seed=5, **kernel_options)
    kernel.spawn(anchor, *args)
    return kernel.run(), kernel


def entries(result: Any) -> list[TraceEntry]:
    return read_trace(result.trace_bytes).entries


def of_type(result: Any, *events: EventType) -> list[TraceEntry]:
    return [entry for entry in entries(result) if entry.event_type in events]


def drain(channel: int) -> Steps:
    """Receive until the channel is closed and drained; return the payloads."""
    got = []
    while True:
        try:
            message = yield Receive(channel)
        except XdvError as error:
            if error.code is not ErrorCode.CHANNEL_CLOSED:
                raise
            return got
        got.append(message.payload)


def caught(call: Any) -> Steps:
    """Yield ``call``; return its value, or the error code it was refused with."""
    try:
        return (yield call)
    except XdvError as error:
        return error.code


# ---------------------------------------------------------------- producer and consumer


def producer(channel: int, items: list[Any], pauses: list[int]) -> Steps:
    for index, item in enumerate(items):
        yield Send(channel, item)
        if pauses:
            yield Sleep(pauses[index % len(pauses)])
    yield Close(channel)
    return len(items)


def consumer(channel: int, pauses: list[int]) -> Steps:
    got = []
    index = 0
    while True:
        try:
            message = yield Receive(channel)
        except XdvError as error:
            assert error.code is ErrorCode.CHANNEL_CLOSED
            return got
        got.append([message.sender, message.payload])
        if pauses:
            yield Sleep(pauses[index % len(pauses)])
        index += 1


def pipeline(
    capacity: int,
    batches: list[list[int]],
    send_pauses: list[int],
    receive_pauses: list[list[int]],
) -> Callable[[], Steps]:
    """A parent opens one channel, starts a producer per batch and a consumer per pause list,
    shares the rights, and returns every consumer's (sender, payload) list."""

    def parent() -> Steps:
        channel = yield Channel(capacity, name="work")
        consumers = []
        for pauses in receive_pauses:
            pid = yield Spawn(consumer, (channel, pauses))
            yield Share(channel, pid, send=False, receive=True)
            consumers.append(pid)
        producers = []
        for batch in batches:
            pid = yield Spawn(producer, (channel, batch, send_pauses))
            yield Share(channel, pid)
            producers.append(pid)
        yield Close(channel)  # the parent's own side: the producers close theirs
        results = []
        for pid in consumers:
            status = yield Wait(pid)
            results.append(status.value)
        return results

    return parent


@pytest.mark.spec("XDV-021-3.1")
def test_producer_and_consumer_share_one_channel() -> None:
    result, kernel = run(pipeline(2, [[10, 11, 12, 13, 14]], [], [[]]))
    assert result.ok, result.exits
    (received,) = result.exits[1].value
    assert received == [[3, 10], [3, 11], [3, 12], [3, 13], [3, 14]]
    stats = kernel.channels()[1]
    assert stats["sent"] == stats["delivered"] == 5 and stats["queued"] == 0
    assert stats["closed"] and stats["name"] == "work"
    sends = of_type(result, EventType.CHANNEL_SEND)
    assert [entry.metadata["seq"] for entry in sends] == [1, 2, 3, 4, 5]
    assert all(entry.capability for entry in sends)  # each names the SEND capability used
    # Two processes, not one per item: the parent, one producer, one consumer.
    assert len(result.exits) == 3


def _check_queue_lengths(result: Any, capacity: int) -> None:
    """Replay the channel's queue from the trace: it never holds more than its capacity."""
    queued = 0
    for entry in entries(result):
        if entry.status is not ErrorCode.OK:
            continue
        if entry.event_type is EventType.CHANNEL_SEND:
            queued += 1
        elif entry.event_type in (EventType.CHANNEL_RECEIVE, EventType.CHANNEL_SELECT):
            queued -= 1
        elif entry.event_type is EventType.CHANNEL_CLOSE:
            queued -= len(entry.metadata.get("dropped", []))
        assert 0 <= queued <= capacity


@pytest.mark.spec("XDV-021-3.3")
@pytest.mark.spec("XDV-021-7")
@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 4),
    batches=st.lists(st.lists(st.integers(0, 999), max_size=6), min_size=1, max_size=3),
    send_pauses=st.lists(st.integers(0, 3), max_size=3),
    receive_pauses=st.lists(st.lists(st.integers(0, 3), max_size=3), min_size=1, max_size=3),
    quantum=st.integers(1, 4),
)
def test_every_message_is_delivered_once_in_order_within_capacity(
    capacity: int,
    batches: list[list[int]],
    send_pauses: list[int],
    receive_pauses: list[list[int]],
    quantum: int,
) -> None:
    # The pauses and the quantum vary the interleaving of producers and consumers.
    anchor = pipeline(capacity, batches, send_pauses, receive_pauses)
    result, kernel = run(anchor, quantum=quantum)
    assert result.ok, result.exits
    received = [item for per_consumer in result.exits[1].value for item in per_consumer]
    # Process ids: the parent is 1, then the consumers, then one producer per batch.
    first_producer = 2 + len(receive_pauses)
    senders = {first_producer + index: batch for index, batch in enumerate(batches)}
    # No message lost or duplicated.
    sent = sorted([pid, item] for pid, batch in senders.items() for item in batch)
    assert sorted(received) == sent
    # FIFO per sender: each consumer sees a sender's messages in the order it sent them, and
    # all consumers together see them in that order too (one channel, one queue).
    in_order = [
        pair
        for entry in of_type(result, EventType.CHANNEL_RECEIVE)
        if entry.status is ErrorCode.OK
        for pair in [[entry.metadata["from"], entry.metadata["seq"]]]
    ]
    for pid, batch in senders.items():
        assert len([pair for pair in in_order if pair[0] == pid]) == len(batch)
    # FIFO for the channel: deliveries happen in sequence-number order.
    takes = of_type(result, EventType.CHANNEL_RECEIVE)
    seqs = [entry.metadata["seq"] for entry in takes if entry.status is ErrorCode.OK]
    assert seqs == sorted(seqs) == list(range(1, len(sent) + 1))
    _check_queue_lengths(result, capacity)
    kernel._channels.check_consistency()
    # Deterministic: the same workload gives the same trace bytes.
    again, _ = run(anchor, quantum=quantum)
    assert again.trace_bytes == result.trace_bytes


# ---------------------------------------------------------------- blocking and timeouts


def test_receive_times_out_in_logical_time() -> None:
    def anchor() -> Steps:
        channel = yield Channel(1)
        start = yield Now()
        code = yield from caught(Receive(channel, timeout=5))
        end = yield Now()
        immediate = yield from caught(Receive(channel, timeout=0))
        return [code, end - start, immediate]

    result, _ = run(anchor)
    code, elapsed, immediate = result.exits[1].value
    assert code == ErrorCode.CHANNEL_TIMEOUT and immediate == ErrorCode.CHANNEL_TIMEOUT
    assert elapsed == 6  # blocked 5 steps; the Now after it is one more step
    block = of_type(result, EventType.CHANNEL_BLOCK)[0]
    assert block.metadata == {"channel": 1, "op": "receive", "until": block.logical_time + 5}
    failures = [e for e in of_type(result, EventType.CHANNEL_RECEIVE) if e.status]
    assert [e.status for e in failures] == [ErrorCode.CHANNEL_TIMEOUT] * 2
    assert failures[0].logical_time == block.logical_time + 5


def test_send_on_a_full_channel_blocks_then_times_out() -> None:
    def anchor() -> Steps:
        channel = yield Channel(1)
        first = yield Send(channel, "a")
        full = yield from caught(Send(channel, "b", timeout=0))
        late = yield from caught(Send(channel, "c", timeout=3))
        message = yield Receive(channel)
        after = yield Send(channel, "d")  # the refused sends took no sequence number
        return [first, full, late, message.payload, after]

    result, kernel = run(anchor)
    timeout = ErrorCode.CHANNEL_TIMEOUT
    assert result.exits[1].value == [1, timeout, timeout, "a", 2]
    # The refused messages never entered the channel (atomic delivery).
    assert kernel.channels()[1]["sent"] == 2


def test_a_blocked_receiver_with_a_timeout_is_served_before_its_deadline() -> None:
    def sender(channel: int) -> Steps:
        yield Sleep(3)
        yield Send(channel, "hello")

    def anchor() -> Steps:
        channel = yield Channel(1)
        pid = yield Spawn(sender, (channel,))
        yield Share(channel, pid)
        message = yield Receive(channel, timeout=100)
        woke = yield Now()
        yield Wait(pid)
        return [message.payload, woke]

    result, _ = run(anchor)
    payload, woke = result.exits[1].value
    assert payload == "hello" and woke < 20
    assert not [e for e in of_type(result, EventType.CHANNEL_RECEIVE) if e.status]


def test_a_blocked_sender_enters_when_a_receiver_makes_room() -> None:
    def sender(channel: int) -> Steps:
        for item in range(3):
            yield Send(channel, item)
        return "sent"

    def anchor() -> Steps:
        channel = yield Channel(1)
        pid = yield Spawn(sender, (channel,))
        yield Share(channel, pid)
        yield Sleep(10)  # the sender fills the channel and blocks
        got = []
        for _ in range(3):
            message = yield Receive(channel)
            got.append(message.payload)
        status = yield Wait(pid)
        return [got, status.value]

    result, _ = run(anchor)
    assert result.exits[1].value == [[0, 1, 2], "sent"]
    blocks = of_type(result, EventType.CHANNEL_BLOCK)
    assert blocks and blocks[0].process == 2 and blocks[0].metadata["op"] == "send"
    wakes = [e for e in of_type(result, EventType.WAKE) if e.process == 2]
    assert wakes[0].metadata == {"by": 1, "channel": 1}


@pytest.mark.spec("XDV-021-3.3")
def test_select_takes_the_first_listed_channel_with_a_message() -> None:
    def late_sender(channel: int) -> Steps:
        yield Sleep(4)
        yield Send(channel, "late")

    def anchor() -> Steps:
        first = yield Channel(2)
        second = yield Channel(2)
        yield Send(second, "b1")
        yield Send(first, "a1")
        picked = yield Select([first, second])
        picked_again = yield Select([second, first])
        pid = yield Spawn(late_sender, (first,))
        yield Share(first, pid)
        waited = yield Select([first, second], timeout=50)
        yield Close(first)
        yield Close(second)
        closed = yield from caught(Select([first, second]))
        return [
            [picked.channel, picked.payload],
            [picked_again.channel, picked_again.payload],
            [waited.channel, waited.payload, waited.sender],
            closed,
        ]

    result, _ = run(anchor)
    assert result.exits[1].value == [
        [1, "a1"],
        [2, "b1"],
        [1, "late", 2],
        ErrorCode.CHANNEL_CLOSED,
    ]
    selects = [e for e in of_type(result, EventType.CHANNEL_SELECT) if not e.status]
    assert [e.metadata["channel"] for e in selects] == [1, 2, 1]
    assert selects[0].metadata["channels"] == [1, 2]


# ---------------------------------------------------------------- authority


@pytest.mark.spec("XDV-021-6")
def test_send_and_receive_need_their_rights_on_that_channel() -> None:
    def outsider(channel: int) -> Steps:
        send = yield from caught(Send(channel, 1))
        receive = yield from caught(Receive(channel, timeout=0))
        return [send, receive]

    def partial(channel: int) -> Steps:
        send = yield from caught(Send(channel, 1))
        receive = yield from caught(Receive(channel, timeout=0))
        return [send, receive]

    def anchor() -> Steps:
        mine = yield Channel(2)
        other = yield Channel(2)
        a = yield Spawn(outsider, (mine,))
        b = yield Spawn(partial, (mine,))
        yield Share(other, b, send=True, receive=True)  # rights on another channel only...
        yield Share(mine, b, send=True)  # ...and SEND on this one
        first = yield Wait(a)
        second = yield Wait(b)
        return [first.value, second.value]

    result, _ = run(anchor)
    first, second = result.exits[1].value
    assert first == [ErrorCode.DOMAIN_UNAUTHORIZED, ErrorCode.DOMAIN_UNAUTHORIZED]
    assert second == [1, ErrorCode.DOMAIN_UNAUTHORIZED]  # SEND on this channel only
    refused = [e for e in of_type(result, EventType.CHANNEL_SEND) if e.status]
    assert refused and refused[0].process == 2
    assert refused[0].status is ErrorCode.DOMAIN_UNAUTHORIZED
    grants = [
        e.metadata
        for e in of_type(result, EventType.CAPABILITY_GRANT)
        if e.metadata["op"] in ("SEND", "RECEIVE")
    ]
    assert {"op": "SEND", "from": "K", "to": "K", "resource": "channel:1"}.items() <= grants[
        0
    ].items()


@pytest.mark.spec("XDV-021-8")
def test_a_right_that_expires_while_its_holder_waits_fails_the_wait() -> None:
    kernel = Kernel(seed=1)
    box: list[int] = []

    def receiver(box: list[int]) -> Steps:
        return (yield from caught(Receive(box[0])))

    def sender(box: list[int]) -> Steps:
        yield Sleep(20)
        return (yield Send(box[0], "too late"))

    s = kernel.spawn(sender, box)
    r = kernel.spawn(receiver, box)
    box.append(kernel.channel("expiring", 1, senders=[s]))
    kernel.grant(r, Operation.RECEIVE, "K", "K", expires_at=10, resource=channel_resource(1))
    result = kernel.run()
    assert result.exits[r].value == ErrorCode.CAPABILITY_EXPIRED
    # The message was not taken by the failed receiver: it stays queued, and is dropped when
    # the channel's last receiver ends (the sender was the channel's only other peer).
    assert result.exits[s].value == 1
    failed = [e for e in of_type(result, EventType.CHANNEL_RECEIVE) if e.status]
    assert failed[0].status is ErrorCode.CAPABILITY_EXPIRED and failed[0].process == r


def test_operator_declared_channels_grant_the_named_parties() -> None:
    kernel = Kernel(seed=2)

    def sender(channel: list[int]) -> Steps:
        yield Send(channel[0], {"n": 1})
        yield Close(channel[0])

    def receiver(channel: list[int]) -> Steps:
        return (yield from drain(channel[0]))

    box: list[int] = []
    s = kernel.spawn(sender, box)
    r = kernel.spawn(receiver, box)
    box.append(kernel.channel("jobs", 4, senders=[s], receivers=[r]))
    with pytest.raises(XdvError) as refused:
        kernel.channel("bad", 0)
    assert refused.value.code is ErrorCode.CHANNEL_INVALID
    result = kernel.run()
    assert result.exits[r].value == [{"n": 1}]
    created = of_type(result, EventType.CHANNEL_CREATE)[0]
    assert created.process == 0 and created.metadata["declared"] is True


# ---------------------------------------------------------------- payloads and categories


class PhaseCarrier:
    phases = (0.1, 0.2)


@pytest.mark.spec("XDV-021-4.4")
@pytest.mark.spec("XDV-021-7")
def test_domain_state_and_non_data_payloads_are_refused_and_recorded() -> None:
    def anchor() -> Steps:
        channel = yield Channel(4)
        contract = yield Reserve("K", "lane")
        codes = []
        for payload in (
            contract,
            {"nested": [contract]},
            PhaseCarrier(),
            print,
            b"x" * (70 * 1024),
        ):
            codes.append((yield from caught(Send(channel, payload))))
        ok = yield Send(channel, {"fine": [1, 2.5, "three", b"4", None, True]})
        message = yield Receive(channel)
        return [codes, ok, message.payload, message.seq]

    result, kernel = run(anchor, domains=[KDomainManager(lanes=1)])
    codes, ok, payload, seq = result.exits[1].value
    assert codes == [
        ErrorCode.MESSAGE_DOMAIN_STATE,
        ErrorCode.MESSAGE_DOMAIN_STATE,
        ErrorCode.MESSAGE_DOMAIN_STATE,
        ErrorCode.MESSAGE_INVALID,
        ErrorCode.MESSAGE_INVALID,
    ]
    # Refused messages took no sequence number and left nothing behind.
    assert ok == 1 and seq == 1
    assert payload == {"fine": [1, 2.5, "three", b"4", None, True]}
    refused = [e for e in of_type(result, EventType.CHANNEL_SEND) if e.status]
    assert [e.status for e in refused] == codes
    assert kernel.channels()[1]["sent"] == 1


def test_the_receiver_gets_its_own_copy() -> None:
    def anchor() -> Steps:
        channel = yield Channel(1)
        payload = {"items": [1, 2]}
        yield Send(channel, payload)
        payload["items"].append(3)  # changing the sender's object after sending...
        message = yield Receive(channel)
        return message.payload  # ...does not change the message

    result, _ = run(anchor)
    assert result.exits[1].value == {"items": [1, 2]}


@pytest.mark.spec("XDV-021-3.2")
def test_only_the_specified_categories_open() -> None:
    def anchor() -> Steps:
        codes = []
        for source, target in (("Q", "Φ"), ("Φ", "Q"), ("Q", "Q"), ("Φ", "Φ"), ("O", "K")):
            codes.append((yield from caught(Channel(1, source=source, target=target))))
        job = yield Channel(1, source="K", target="Q")
        # A K→Q channel carries job submissions to a process bound to Q: this one is not.
        sent = yield Send(job, "circuit text")
        unbound = yield from caught(Receive(job))
        wrong_side = yield from caught(Channel(1, source="Q", target="K"))
        return [codes, job, sent, unbound, wrong_side]

    result, _ = run(anchor)
    codes, job, sent, unbound, wrong_side = result.exits[1].value
    assert codes == [ErrorCode.CHANNEL_CATEGORY] * 5
    assert job == 1 and sent == 1
    assert unbound == ErrorCode.CHANNEL_CATEGORY
    assert wrong_side == 2  # opening Q→K is fine; sending on it needs a Q binding


@pytest.mark.spec("XDV-021-5.1")
@pytest.mark.spec("XDV-021-5.6")
def test_crossing_domains_costs_the_sender_logical_time() -> None:
    def anchor() -> Steps:
        local = yield Channel(4)
        job = yield Channel(4, source="K", target="Q")
        before = yield Now()
        yield Send(local, "x")
        after_local = yield Now()
        yield Send(job, "y" * 3000)
        after_job = yield Now()
        return [after_local - before, after_job - after_local]

    result, kernel = run(anchor)
    local, crossing = result.exits[1].value
    cost = crossing_cost(Domain.K, Domain.Q, 3000 + 6)
    assert local == 2  # two steps: the Send and the Now, nothing charged
    assert cost.total > 0 and crossing == cost.total + 1
    job_send = of_type(result, EventType.CHANNEL_SEND)[1]
    assert job_send.metadata["cost"] == cost.to_record()
    assert kernel._channels.crossing_ticks == {1: cost.total}
    assert crossing_cost(Domain.K, Domain.K, 10**4).total == 0
    # A policy that keeps accounts is charged the cost, as K steps of the sender's VHM.
    accounting = Accounting()
    run(anchor, policy=accounting)
    assert accounting.charges == [(0, Domain.K, float(cost.total))]
    # Costs grow with size and are the same every time (deterministic).
    assert crossing_cost(Domain.K, Domain.PHI, 5000) == crossing_cost(Domain.K, Domain.PHI, 5000)
    small, large = crossing_cost(Domain.Q, Domain.K, 10), crossing_cost(Domain.Q, Domain.K, 5000)
    assert large.total > small.total


class Accounting(RoundRobinPolicy):
    """Round-robin order, with the accounting hook a fair-share policy has."""

    name = "accounting"

    def __init__(self) -> None:
        self.charges: list[tuple[int, Domain, float]] = []

    def charge(self, vhm: int, domain: Domain, units: float) -> None:
        self.charges.append((vhm, domain, units))


# ---------------------------------------------------------------- closing and peers' ends


@pytest.mark.spec("XDV-021-8")
def test_when_the_last_receiver_ends_queued_messages_are_dropped_and_senders_fail() -> None:
    kernel = Kernel(seed=4)
    box: list[int] = []

    def sender(box: list[int]) -> Steps:
        results = []
        for item in range(4):
            results.append((yield from caught(Send(box[0], item))))
        return results

    def quitter(box: list[int]) -> Steps:
        message = yield Receive(box[0])
        return message.payload

    s = kernel.spawn(sender, box)
    q = kernel.spawn(quitter, box)
    box.append(kernel.channel("short-lived", 2, senders=[s], receivers=[q]))
    result = kernel.run()
    # The sender filled the channel (1, 2) and blocked on 3; the quitter took 1, which let 3
    # in, and ended: the channel closed, dropping 2 and 3, and the fourth send was refused.
    assert result.exits[s].value == [1, 2, 3, ErrorCode.CHANNEL_CLOSED]
    assert result.exits[q].value == 0
    close = of_type(result, EventType.CHANNEL_CLOSE)[0]
    assert close.process == q and close.metadata["dropped"] == [2, 3]
    stats = kernel.channels()[1]
    assert (stats["sent"], stats["delivered"], stats["dropped"]) == (3, 1, 2)


def test_a_receiver_is_told_when_its_last_sender_ends() -> None:
    kernel = Kernel(seed=3)
    box: list[int] = []

    def receiver(box: list[int]) -> Steps:
        return (yield from drain(box[0]))

    def short(box: list[int]) -> Steps:
        yield Send(box[0], "only")  # and ends without closing

    s = kernel.spawn(short, box)
    r = kernel.spawn(receiver, box)
    box.append(kernel.channel("once", 2, senders=[s], receivers=[r]))
    result = kernel.run()
    assert result.ok
    assert result.exits[r].value == ["only"]
    close = of_type(result, EventType.CHANNEL_CLOSE)[0]
    assert close.process == s and "last sender" in close.metadata["reason"]


def test_closing_twice_or_sending_after_close_is_refused() -> None:
    def anchor() -> Steps:
        channel = yield Channel(2)
        yield Send(channel, 1)
        yield Close(channel)
        again = yield from caught(Close(channel))
        late = yield from caught(Send(channel, 2))
        first = yield Receive(channel)
        drained = yield from caught(Receive(channel))
        unknown = yield from caught(Receive(99))
        return [again, late, first.payload, drained, unknown]

    result, _ = run(anchor)
    assert result.exits[1].value == [
        ErrorCode.CHANNEL_CLOSED,
        ErrorCode.CHANNEL_CLOSED,
        1,
        ErrorCode.CHANNEL_CLOSED,
        ErrorCode.CHANNEL_UNKNOWN,
    ]


def test_malformed_channel_calls_are_typed_errors() -> None:
    def anchor() -> Steps:
        channel = yield Channel(1)
        return [
            (yield from caught(Channel(0))),
            (yield from caught(Channel(1, name=""))),
            (yield from caught(Send("one", 1))),
            (yield from caught(Receive(channel, timeout=-1))),
            (yield from caught(Select([]))),
            (yield from caught(Select([channel, channel]))),
            (yield from caught(Share(channel, 1))),
            (yield from caught(Share(channel, 42))),
            (yield from caught(Revoke(10**6))),
        ]

    result, _ = run(anchor)
    assert result.exits[1].value == [
        ErrorCode.CHANNEL_INVALID,
        ErrorCode.CHANNEL_INVALID,
        ErrorCode.SYSCALL_INVALID,
        ErrorCode.SYSCALL_INVALID,
        ErrorCode.SYSCALL_INVALID,
        ErrorCode.SYSCALL_INVALID,
        ErrorCode.SYSCALL_INVALID,
        ErrorCode.PROCESS_UNKNOWN,
        ErrorCode.CAPABILITY_INVALID,
    ]


@pytest.mark.spec("XDV-021-3.1")
def test_messages_carry_the_fields_of_the_ipc_model() -> None:
    def anchor() -> Steps:
        channel = yield Channel(1)
        yield Send(channel, [1, 2])
        return (yield Receive(channel))

    kernel = Kernel(seed=9)
    seen: dict[str, Message] = {}

    def keeper() -> Steps:
        seen["m"] = yield from anchor()

    kernel.spawn(keeper)
    kernel.run()
    message = seen["m"]
    assert (message.sender, message.receiver, message.source, message.target) == (
        1,
        1,
        Domain.K,
        Domain.K,
    )
    assert message.payload == [1, 2] and message.capability > 0 and message.sent_at > 0
    assert channel_resource(message.channel) == "channel:1"
    assert Operation.SEND.name == "SEND" and Operation.RECEIVE.name == "RECEIVE"


# ---------------------------------------------------------------- VHMs


@pytest.mark.spec("XDV-021-2")
def test_channels_stay_in_their_vhm_unless_an_operator_declares_them() -> None:
    kernel = Kernel(seed=6)
    left, right = kernel.create_vhm("left"), kernel.create_vhm("right")
    names: dict[str, int] = {}

    def opener(names: dict[str, int]) -> Steps:
        names["own"] = yield Channel(2)
        yield Sleep(5)  # the stranger tries it meanwhile
        shared = yield from caught(Share(names["own"], names["stranger"]))
        # Not even a declared channel is shared across VHMs: only the operator connects them.
        bridged = yield from caught(Share(names["bridge"], names["stranger"]))
        declared = yield Send(names["bridge"], "across")
        return [shared, bridged, declared]

    def stranger(names: dict[str, int]) -> Steps:
        yield Sleep(2)
        send = yield from caught(Send(names["own"], "in"))
        receive = yield from caught(Receive(names["own"], timeout=0))
        message = yield Receive(names["bridge"])
        return [send, receive, message.payload, message.sender]

    a = kernel.spawn(opener, names, vhm=left)
    names["stranger"] = b = kernel.spawn(stranger, names, vhm=right)
    names["bridge"] = kernel.channel("bridge", 1, senders=[a], receivers=[b])
    result = kernel.run()
    assert result.ok, result.exits
    shared, bridged, declared = result.exits[a].value
    assert shared == bridged == ErrorCode.CHANNEL_ISOLATED and declared == 1
    send, receive, payload, sender = result.exits[b].value
    assert [send, receive] == [ErrorCode.CHANNEL_ISOLATED, ErrorCode.CHANNEL_ISOLATED]
    assert [payload, sender] == ["across", a]
    creates = of_type(result, EventType.CHANNEL_CREATE)
    assert {e.metadata["name"]: e.metadata["vhm"] for e in creates} == {
        "bridge": 0,
        "channel-2": left,
    }


def test_terminating_a_vhm_ends_its_blocked_receivers_and_closes_their_channel() -> None:
    kernel = Kernel(seed=1)
    tenant = kernel.create_vhm("t")
    names: dict[str, int] = {}

    def waiting(names: dict[str, int], timeout: int | None) -> Steps:
        yield Receive(names["c"], timeout=timeout)

    def sender(names: dict[str, int]) -> Steps:
        yield Sleep(30)
        return (yield from caught(Send(names["c"], 1)))

    def supervisor() -> Steps:
        lane = yield Reserve("K", "lane")
        yield Sleep(5)
        yield Invoke(lane, "call", (lambda: kernel.terminate_vhm(tenant),))

    a = kernel.spawn(waiting, names, 50, vhm=tenant)  # blocked with a timeout (queued)
    b = kernel.spawn(waiting, names, None, vhm=tenant)  # blocked without one
    s = kernel.spawn(sender, names)
    kernel.spawn(supervisor)
    names["c"] = kernel.channel("c", 1, senders=[s], receivers=[a, b])
    result = kernel.run()
    assert result.exits[a].code == result.exits[b].code == "VHM_TERMINATED"
    assert result.exits[s].value == ErrorCode.CHANNEL_CLOSED
    (close,) = of_type(result, EventType.CHANNEL_CLOSE)
    assert "last receiver" in close.metadata["reason"]
    # The receiver with a timeout never times out: it ended before its deadline.
    assert not [e for e in of_type(result, EventType.CHANNEL_RECEIVE) if e.status]
    kernel._channels.check_consistency()


def test_a_suspended_receiver_gets_its_message_when_resumed() -> None:
    def receiver(channel: int) -> Steps:
        message = yield Receive(channel, timeout=6)
        return message.payload

    def parent() -> Steps:
        channel = yield Channel(1)
        pid = yield Spawn(receiver, (channel,))
        yield Share(channel, pid, send=False, receive=True)
        yield Sleep(2)  # it blocks, with a deadline 6 steps later
        yield Suspend(pid)
        yield Sleep(10)  # past its deadline: it stays parked, not timed out
        yield Send(channel, "kept")
        yield Resume(pid)
        status = yield Wait(pid)
        return status.value

    result, kernel = run(parent)
    assert result.ok, result.exits
    assert result.exits[1].value == "kept"
    kernel._channels.check_consistency()


@pytest.mark.spec("XDV-021-7")
def test_an_injected_fault_refuses_a_whole_message_and_takes_nothing() -> None:
    def anchor() -> Steps:
        channel = yield Channel(4)
        first = yield Send(channel, "a")
        failed_send = yield from caught(Send(channel, "b"))
        second = yield Send(channel, "c")
        failed_receive = yield from caught(Receive(channel))
        taken = [(yield Receive(channel)).payload, (yield Receive(channel)).payload]
        return [first, failed_send, second, failed_receive, taken]

    plan = FaultPlan([FaultRule("send", 2), FaultRule("receive", 1)])
    result, kernel = run(anchor, faults=plan)
    injected = ErrorCode.INJECTED_FAULT
    assert result.exits[1].value == [1, injected, 2, injected, ["a", "c"]]
    failures = [e.event_type for e in entries(result) if e.status is injected]
    # Each injected fault is detected (FAULT_DETECTED) before the refused call is recorded.
    assert failures == [
        EventType.FAULT_DETECTED,
        EventType.CHANNEL_SEND,
        EventType.FAULT_DETECTED,
        EventType.CHANNEL_RECEIVE,
    ]
    stats = kernel.channels()[1]
    assert (stats["sent"], stats["delivered"], stats["queued"]) == (2, 2, 0)


# ---------------------------------------------------------------- random mixes of calls

channel_op = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 2), st.sampled_from([None, 0, 1, 3])),
    st.tuples(st.just("receive"), st.integers(0, 2), st.sampled_from([None, 0, 2, 5])),
    st.tuples(st.just("select"), st.integers(0, 2), st.sampled_from([None, 0, 4])),
    st.tuples(st.just("close"), st.integers(0, 2), st.none()),
    st.tuples(st.just("sleep"), st.integers(0, 3), st.none()),
)


def scripted(names: dict[str, list[int]], script: list[tuple[str, int, Any]]) -> Steps:
    channels = names["channels"]
    outcomes = []
    for index, (op, which, timeout) in enumerate(script):
        channel = channels[which % 3]
        if op == "send":
            call: Any = Send(channel, index, timeout=timeout)
        elif op == "receive":
            call = Receive(channel, timeout=timeout)
        elif op == "select":
            call = Select([channel, channels[(which + 1) % 3]], timeout=timeout)
        elif op == "close":
            call = Close(channel)
        else:
            call = Sleep(which)
        value = yield from caught(call)
        outcomes.append(value.seq if isinstance(value, Message) else value)
    return outcomes


@pytest.mark.spec("XDV-021-3.3")
@pytest.mark.spec("XDV-021-8")
@settings(max_examples=30, deadline=None)
@given(
    scripts=st.lists(st.lists(channel_op, max_size=8), min_size=1, max_size=4),
    capacities=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    quantum=st.integers(1, 3),
)
def test_any_mix_of_calls_keeps_every_channel_consistent_and_replays(
    scripts: list[list[tuple[str, int, Any]]], capacities: tuple[int, int, int], quantum: int
) -> None:
    def build() -> tuple[Any, Kernel]:
        kernel = Kernel(seed=8, quantum=quantum)
        names: dict[str, list[int]] = {"channels": []}
        pids = [kernel.spawn(scripted, names, script) for script in scripts]
        for number, capacity in enumerate(capacities):
            names["channels"].append(
                kernel.channel(f"c{number}", capacity, senders=pids, receivers=pids)
            )
        return kernel.run(), kernel

    result, kernel = build()
    # Every process ends: normally, or (blocked forever) with DEADLOCK; nothing else escapes.
    assert all(status.ok or status.code == "DEADLOCK" for status in result.exits.values())
    kernel._channels.check_consistency()
    # From the trace: each channel's queue stays within its capacity, and its messages are
    # taken at most once each, in sequence order.
    queued = dict.fromkeys((1, 2, 3), 0)
    taken: dict[int, list[int]] = {1: [], 2: [], 3: []}
    for entry in entries(result):
        if entry.status is not ErrorCode.OK:
            continue
        meta = entry.metadata
        if entry.event_type is EventType.CHANNEL_SEND:
            queued[meta["channel"]] += 1
        elif entry.event_type in (EventType.CHANNEL_RECEIVE, EventType.CHANNEL_SELECT):
            queued[meta["channel"]] -= 1
            taken[meta["channel"]].append(meta["seq"])
        elif entry.event_type is EventType.CHANNEL_CLOSE:
            queued[meta["channel"]] -= len(meta.get("dropped", []))
        for number, count in queued.items():
            assert 0 <= count <= capacities[number - 1]
    for seqs in taken.values():
        assert seqs == sorted(set(seqs))
    assert build()[0].trace_bytes == result.trace_bytes
