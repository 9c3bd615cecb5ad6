"""Channels with the real Q domain and the security layer's tokens, and replay of a channel run."""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLES, ROOT
from xdv.core import KDomainManager, Operation, channel_resource, crossing_cost
from xdv.domains.q import QDomainManager, QHandle
from xdv.domains.q.testing import BELL
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import ReplayMode, make_kernel, replay, run_workload
from xdv.security import FOREVER, Right, Scope, TokenAuthority, contains
from xdv.syscalls import Channel, Receive, Send, Share, Spawn, Wait
from xdv.trace import Domain, EventType, read_trace

Steps = Generator[Any, Any, Any]


def executor(names: dict[str, int]) -> Steps:
    """A Q-bound process: takes a circuit from the K→Q channel, runs it and sends the counts
    back on the Q→K channel; the Q handle it tries to send first is refused."""
    handle = yield from QHandle.reserve(2)
    refusals = []
    for payload in (handle, {"nested": [handle]}):
        try:
            yield Send(names["results"], payload)
        except XdvError as error:
            refusals.append(error.code.name)
    job = yield Receive(names["jobs"])
    outcome = yield from handle.run(job.payload["circuit"], job.payload["shots"])
    yield Send(names["results"], {"counts": outcome["counts"], "refusals": refusals})
    yield from handle.release()


def client(names: dict[str, int]) -> Steps:
    yield Send(names["jobs"], {"circuit": BELL, "shots": 200})
    answer = yield Receive(names["results"])
    return answer.payload


@pytest.mark.spec("XDV-081-8")
@pytest.mark.spec("XDV-021-3.2")
@pytest.mark.spec("XDV-021-4.4")
@pytest.mark.spec("XDV-021-5.1")
def test_jobs_and_results_cross_between_k_and_q_and_q_state_never_does() -> None:
    kernel = make_kernel(3, domains=[KDomainManager(), QDomainManager()])
    names: dict[str, int] = {}
    k = kernel.spawn(client, names)
    q = kernel.spawn(executor, names, domains=("K", "Q"))
    kernel.grant(q, Operation.MEASURE, "Q", "K")
    names["jobs"] = kernel.channel("jobs", source="K", target="Q", senders=[k], receivers=[q])
    names["results"] = kernel.channel("results", source="Q", target="K", senders=[q], receivers=[k])
    result = kernel.run()
    assert result.ok, result.exits
    answer = result.exits[k].value
    assert answer["refusals"] == ["NO_CLONING_VIOLATION", "NO_CLONING_VIOLATION"]
    assert set(answer["counts"]) <= {"00", "11"} and sum(answer["counts"].values()) == 200
    assert result.trace_bytes is not None
    entries = read_trace(result.trace_bytes).entries
    sends = [e for e in entries if e.event_type is EventType.CHANNEL_SEND]
    refused = [e for e in sends if e.status]
    assert [e.status for e in refused] == [ErrorCode.NO_CLONING_VIOLATION] * 2
    delivered = [e for e in sends if not e.status]
    # Both messages crossed a domain boundary and paid for it.
    assert [e.metadata["channel"] for e in delivered] == [1, 2]
    for entry, (source, target) in zip(
        delivered, [(Domain.K, Domain.Q), (Domain.Q, Domain.K)], strict=True
    ):
        cost = crossing_cost(source, target, entry.metadata["bytes"])
        assert entry.metadata["cost"] == cost.to_record() and cost.total > 0
    # A K-only process cannot take jobs from a K→Q channel (it is not bound to Q).
    assert kernel.channels()[1]["delivered"] == 1


@pytest.mark.spec("XDV-021-6")
def test_channel_rights_are_signed_tokens_scoped_to_their_channel() -> None:
    authority = TokenAuthority()

    def receiver(channel: int) -> Steps:
        message = yield Receive(channel)
        return message.payload

    def opener() -> Steps:
        channel = yield Channel(1)
        pid = yield Spawn(receiver, (channel,))
        (right,) = yield Share(channel, pid, send=False, receive=True)
        yield Send(channel, "signed")
        yield Wait(pid)
        return right

    kernel = make_kernel(1, authority=authority)
    kernel.spawn(opener)
    result = kernel.run()
    assert result.ok, result.exits
    token = authority.token(result.exits[1].value)
    receive = Right(Operation.RECEIVE, Domain.K, Domain.K)
    assert token.scope == Scope.of(receive, channel_resource(1))
    assert contains(token.scope, Scope.of(receive))  # narrower than RECEIVE on every channel
    assert not contains(Scope.of(receive), token.scope)
    # The exported token verifies at another authority that trusts the issuer, for its channel
    # only.
    other = TokenAuthority(trusted=[authority.keys.public])
    exported = authority.export(token.id)
    other.present(exported, token.subject, 5, (receive, channel_resource(1)))
    with pytest.raises(XdvError) as refused:
        TokenAuthority(trusted=[authority.keys.public]).present(
            exported, token.subject, 5, (receive, channel_resource(2))
        )
    assert refused.value.code is ErrorCode.DOMAIN_UNAUTHORIZED
    record = Scope.from_record(
        [{"op": "SEND", "from": "K", "to": "Q", "resource": "channel:4", "times": [[0, FOREVER]]}]
    )
    assert record.rights() == [Right(Operation.SEND, Domain.K, Domain.Q)]


@pytest.mark.spec("XDV-021-9")
def test_a_channel_run_replays_identically(tmp_path: Path) -> None:
    path = tmp_path / "pc.xdvt"
    result = run_workload(str(EXAMPLES / "producer_consumer.py"), seed=7, trace=path)
    assert result.ok
    entries = read_trace(path.read_bytes()).entries
    kinds = {entry.event_type for entry in entries}
    assert {EventType.CHANNEL_SEND, EventType.CHANNEL_RECEIVE, EventType.CHANNEL_BLOCK} <= kinds
    report = replay(path, ReplayMode.REEXECUTE)
    assert report.ok and report.divergence is None and report.entries == len(entries)
    again = run_workload(str(EXAMPLES / "producer_consumer.py"), seed=7)
    assert again.trace_bytes == path.read_bytes()


def doc_examples() -> list[str]:
    text = (ROOT / "docs" / "ipc.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_the_ipc_guide_examples_run(index: int) -> None:
    source = doc_examples()[index]
    exec(compile(source, f"docs/ipc.md example {index + 1}", "exec"), {"__name__": "ipc_doc"})
