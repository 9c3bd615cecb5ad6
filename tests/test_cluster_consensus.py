"""The cluster's Byzantine-fault-tolerant agreement (basic HotStuff) and its simulated network.

Hybrid signatures cost about 1.3 ms to sign and 0.4 ms to verify here, so the default run keeps
to a few slots and a handful of generated schedules; ``--long`` runs many more.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.cluster._consensus import (
    GENESIS,
    Certificate,
    ConsensusError,
    Decision,
    EvidenceKind,
    Header,
    Kind,
    Message,
    Phase,
    Replica,
    fault_budget,
    leader_of,
    quorum_size,
    replica_set_id,
    verify_certificate,
    verify_decision,
    verify_decisions,
)
from xdv.cluster._consensus_sim import Behaviour, SimResult, node_ids, sim_keys, simulate
from xdv.errors import ErrorCode
from xdv.security import HybridPublicKey
from xdv.trace import EventType, canonical_metadata

BYZANTINE = [
    Behaviour.SILENT,
    Behaviour.EQUIVOCATE,
    Behaviour.COLLUDE,
    Behaviour.FORGE,
    Behaviour.REPLAY,
]


def members(n: int) -> dict[str, HybridPublicKey]:
    return {node: key.public for node, key in sim_keys(n).items()}


def check_run(result: SimResult, *, live: bool = True) -> None:
    """Agreement and validity for the correct members, certificates that verify offline, and
    (``live``) every value decided once by every correct member still running."""
    assert result.agreement()
    allowed = set(result.values) | set(result.injected)
    for node in result.correct:
        values = result.decided_values(node)
        assert set(values) <= allowed
        assert len(values) == len(set(values))
        verify_decisions(result.decisions[node], result.members)
    if live:
        running = [node for node in result.honest]
        for node in running:
            assert set(result.values) <= set(result.decided_values(node)), node


# -- the normal case ---------------------------------------------------------------------------


@pytest.mark.spec("XDV-042-5.2")
def test_four_replicas_decide_every_value_in_one_order() -> None:
    result = simulate(4, [b"membership epoch 1", b"placement batch 1"], seed=1)
    check_run(result)
    first = result.decided_values("n00")
    assert all(result.decided_values(node) == first for node in node_ids(4))
    decision = result.decisions["n02"][0]
    assert decision.view == 0 and decision.slot == 0
    assert len(decision.certificate.votes) >= quorum_size(4) == 3
    assert result.view_changes == {node: 0 for node in node_ids(4)}


@pytest.mark.spec("XDV-042-5.2")
def test_fault_budget_and_quorum_are_deterministic_functions_of_n() -> None:
    assert [fault_budget(n) for n in (1, 3, 4, 6, 7, 10, 100)] == [0, 0, 1, 1, 2, 3, 33]
    assert [quorum_size(n) for n in (1, 4, 5, 7, 10, 100)] == [1, 3, 4, 5, 7, 67]
    for n in range(1, 40):
        f, q = fault_budget(n), quorum_size(n)
        assert n >= 3 * f + 1
        assert 2 * q - n >= f + 1  # two quorums share an honest member
        assert q <= n - f  # the honest members alone form a quorum
    assert leader_of(5, ["b", "a", "c"]) == "c"


# -- generated schedules and fault sets --------------------------------------------------------


def schedules(n: int) -> st.SearchStrategy[dict[str, Any]]:
    ids = node_ids(n)
    f = fault_budget(n)
    faulty = st.lists(st.sampled_from(ids), max_size=f, unique=True)
    return faulty.flatmap(
        lambda nodes: st.fixed_dictionaries(
            {
                "seed": st.integers(0, 2**16),
                "delay_max": st.integers(0, 3),
                "drop_rate": st.sampled_from([0.0, 0.1, 0.3]),
                "stable_after": st.integers(0, 30),
                "propose_every": st.integers(0, 3),
                "faults": st.fixed_dictionaries(
                    {node: st.sampled_from([Behaviour.CRASH, *BYZANTINE]) for node in nodes}
                ),
                "crash_at": st.fixed_dictionaries({node: st.integers(0, 12) for node in nodes}),
            }
        )
    )


def run_schedule(n: int, values: list[bytes], schedule: dict[str, Any]) -> SimResult:
    faults = dict(schedule["faults"])
    crash_at = {
        node: tick
        for node, tick in dict(schedule["crash_at"]).items()
        if faults.get(node) == Behaviour.CRASH
    }
    return simulate(
        n,
        values,
        seed=schedule["seed"],
        faults=faults,
        crash_at=crash_at,
        delay_max=schedule["delay_max"],
        drop_rate=schedule["drop_rate"],
        stable_after=schedule["stable_after"],
        propose_every=schedule["propose_every"],
        ticks_max=3000,
    )


@pytest.mark.spec("XDV-042-5.2")
@settings(max_examples=6, derandomize=True)
@given(schedules(4))
def test_agreement_validity_and_liveness_with_four_replicas(schedule: dict[str, Any]) -> None:
    check_run(run_schedule(4, [b"A", b"B"], schedule))


@pytest.mark.spec("XDV-042-5.2")
@settings(max_examples=3, derandomize=True)
@given(schedules(7))
def test_agreement_validity_and_liveness_with_seven_replicas(schedule: dict[str, Any]) -> None:
    check_run(run_schedule(7, [b"A"], schedule))


@pytest.mark.slow
@settings(max_examples=300, derandomize=False)
@given(st.sampled_from([4, 7]).flatmap(lambda n: st.tuples(st.just(n), schedules(n))))
def test_agreement_validity_and_liveness_long(case: tuple[int, dict[str, Any]]) -> None:
    n, schedule = case
    check_run(run_schedule(n, [b"A", b"B", b"C"], schedule))


# -- view change -------------------------------------------------------------------------------


@pytest.mark.spec("XDV-042-5.4")
def test_view_change_when_the_leader_crashes_mid_slot() -> None:
    # n00 leads view 0 and crashes after a prepare certificate formed: the new leader must
    # re-propose the certified block (with the certificate as justification), not a new one.
    result = simulate(4, [b"a"], seed=0, crash_at={"n00": 3}, delay_max=1)
    check_run(result)
    for node in result.honest:
        assert result.decisions[node][0].view == 1
        assert result.view_changes[node] >= 1
    proposals = [
        event.metadata
        for node in result.correct
        for event in result.events[node]
        if event.event_type == EventType.CONSENSUS_PROPOSAL
    ]
    assert [(p["view"], p["reproposal"]) for p in proposals] == [(0, False), (1, True)]
    changes = [
        event.metadata["reason"]
        for event in result.events["n01"]
        if event.event_type == EventType.CONSENSUS_VIEW_CHANGE
    ]
    assert changes and changes[0] in ("timeout", "peers")


@pytest.mark.spec("XDV-042-5.4")
def test_crashes_beyond_f_block_liveness_but_never_safety() -> None:
    # Two of four crashed from the start: no quorum, nothing decided, however long we wait.
    stuck = simulate(4, [b"a"], seed=3, crash_at={"n02": 0, "n03": 0}, ticks_max=150)
    assert all(stuck.decisions[node] == [] for node in node_ids(4))
    # Two crash after the first decision: what was decided stays agreed and verifiable.
    later = simulate(
        4, [b"a", b"b"], seed=3, crash_at={"n02": 6, "n03": 6}, propose_every=8, ticks_max=150
    )
    check_run(later, live=False)
    assert [later.decided_values(node) for node in ("n00", "n01")] == [[b"a"], [b"a"]]


# -- lying members -----------------------------------------------------------------------------


@pytest.mark.spec("XDV-042-6")
def test_an_equivocating_leader_cannot_split_honest_replicas() -> None:
    # The leader sends two blocks per slot, votes for both and drives whichever gathers a
    # quorum; with n = 7 an accomplice votes for everything too (f = 2 liars in all).
    for n, faults in (
        (4, {"n00": Behaviour.EQUIVOCATE}),
        (7, {"n00": Behaviour.EQUIVOCATE, "n04": Behaviour.COLLUDE}),
    ):
        result = simulate(n, [b"a", b"b"], seed=5, faults=faults)
        check_run(result)
        first = result.decided_values("n01")
        assert all(result.decided_values(node)[: len(first)] == first for node in result.honest)
        caught = [e for e in result.evidence["n01"] if e.kind == EvidenceKind.EQUIVOCATION]
        assert caught and caught[0].sender == "n00" and caught[0].attributable


def signed(message: Message, node: str, n: int = 4) -> Message:
    return message.signed_by(sim_keys(n)[node], replica_set_id(members(n)))


def replica(node: str, n: int = 4) -> Replica:
    return Replica(node, members(n), sim_keys(n)[node])


def propose_message(value: bytes, view: int = 0, slot: int = 0) -> Message:
    header = Header.for_value(slot, GENESIS, value)
    return Message(Kind.PROPOSE, leader_of(view, node_ids(4)), view, 0, header=header, value=value)


@pytest.mark.spec("XDV-042-6")
def test_equivocation_is_refused_and_recorded_at_the_replica() -> None:
    target = replica("n01")
    first = target.receive(signed(propose_message(b"x"), "n00"))
    assert [(m.kind, m.phase, m.recipient) for m in first] == [(Kind.VOTE, Phase.PREPARE, "n00")]
    assert target.receive(signed(propose_message(b"y"), "n00")) == []
    (evidence,) = target.evidence
    assert (evidence.kind, evidence.sender, evidence.attributable) == (
        EvidenceKind.EQUIVOCATION,
        "n00",
        True,
    )
    assert target.events[-1].event_type == EventType.CONSENSUS_EVIDENCE


@pytest.mark.spec("XDV-042-6")
def test_forged_signatures_non_members_and_stale_views_are_refused() -> None:
    target = replica("n01")
    good = signed(propose_message(b"x"), "n00")
    flipped = good.signature[:-1] + bytes([good.signature[-1] ^ 1])
    assert target.receive(replace(good, signature=flipped)) == []
    # n02 signs a proposal in the leader's name.
    assert target.receive(signed(propose_message(b"x"), "n02")) == []
    intruder = replace(good, sender="mallory")
    assert target.receive(intruder) == []
    assert target.receive_bytes(b"\xa1\x61k\x01") == []
    kinds = [evidence.kind for evidence in target.evidence]
    assert kinds == [
        EvidenceKind.BAD_SIGNATURE,
        EvidenceKind.BAD_SIGNATURE,
        EvidenceKind.NON_MEMBER,
        EvidenceKind.MALFORMED,
    ]
    assert not any(evidence.attributable for evidence in target.evidence)
    # The genuine message still works after the forgeries, once.
    assert len(target.receive(good)) == 1
    # A vote for view 0 reaching a replica in view 1 is stale.
    target.view = 1
    vote = Message(Kind.VOTE, "n02", 0, 0, phase=Phase.PREPARE, header=good.header)
    assert target.receive(signed(vote, "n02")) == []
    assert target.evidence[-1].kind == EvidenceKind.STALE_VIEW


@pytest.mark.spec("XDV-042-6")
def test_forger_and_replayer_change_nothing_and_are_recorded() -> None:
    forged = simulate(4, [b"a"], seed=2, faults={"n03": Behaviour.FORGE})
    check_run(forged)
    kinds = {evidence.kind for node in forged.honest for evidence in forged.evidence[node]}
    assert {
        EvidenceKind.BAD_SIGNATURE,
        EvidenceKind.INVALID_CERTIFICATE,
        EvidenceKind.NON_MEMBER,
    } <= kinds
    replayed = simulate(4, [b"a", b"b"], seed=2, faults={"n02": Behaviour.REPLAY})
    check_run(replayed)


# -- certificates and decisions offline -------------------------------------------------------


@pytest.fixture(scope="module")
def decided() -> SimResult:
    return simulate(4, [b"first", b"second"], seed=7)


@pytest.mark.spec("XDV-042-7")
def test_decisions_verify_offline_and_tampering_fails(decided: SimResult) -> None:
    keys = decided.members
    log = decided.decisions["n03"]
    verify_decisions(log, keys)
    decision = log[1]
    verify_decision(decision, keys)
    again = Decision.from_record(cbor2.loads(cbor2.dumps(decision.to_record())))
    assert again == decision
    verify_certificate(Certificate.from_bytes(decision.certificate.to_bytes()), keys)

    def code_of(bad: Decision, members_: dict[str, HybridPublicKey] = keys) -> ErrorCode:
        with pytest.raises(ConsensusError) as caught:
            verify_decision(bad, members_)
        return caught.value.code

    votes = decision.certificate.votes
    node, signature = votes[0]
    flipped = ((node, signature[:100] + bytes([signature[100] ^ 1]) + signature[101:]), *votes[1:])
    certificate = decision.certificate
    assert code_of(replace(decision, value=b"other")) == ErrorCode.CONSENSUS_DECISION_INVALID
    assert (
        code_of(replace(decision, view=decision.view + 1)) == ErrorCode.CONSENSUS_DECISION_INVALID
    )
    assert (
        code_of(replace(decision, certificate=replace(certificate, votes=flipped)))
        == ErrorCode.CONSENSUS_SIGNATURE_INVALID
    )
    assert (
        code_of(replace(decision, certificate=replace(certificate, votes=votes[:2])))
        == ErrorCode.CONSENSUS_CERTIFICATE_INVALID
    )
    doubled = (votes[0], votes[0], votes[1])
    assert (
        code_of(replace(decision, certificate=replace(certificate, votes=doubled)))
        == ErrorCode.CONSENSUS_CERTIFICATE_INVALID
    )
    # A vote moved to another phase does not verify: the phase is signed.
    precommit = replace(certificate, phase=Phase.PRECOMMIT)
    assert code_of(replace(decision, certificate=precommit)) == ErrorCode.CONSENSUS_DECISION_INVALID
    # The same certificate checked against another replica set fails.
    others = {node: key.public for node, key in sim_keys(5).items() if node != "n00"}
    renamed = dict(zip(sorted(keys), others.values(), strict=True))
    assert code_of(decision, renamed) == ErrorCode.CONSENSUS_SIGNATURE_INVALID
    with pytest.raises(ConsensusError) as caught:
        verify_decisions([log[1], log[0]], keys)
    assert caught.value.code == ErrorCode.CONSENSUS_DECISION_INVALID


@pytest.mark.spec("XDV-042-7")
def test_events_are_trace_ready_and_carry_no_signature(decided: SimResult) -> None:
    events = decided.events["n00"]
    kinds = [event.event_type for event in events]
    assert kinds.count(EventType.CONSENSUS_DECISION) == 2
    assert kinds.count(EventType.CONSENSUS_PROPOSAL) == 2
    for event in events:
        encoded = canonical_metadata(event.metadata)
        assert len(encoded) < 2000  # digests and ids only, never a 3 KiB signature
    summary = decided.decisions["n00"][0].summary()
    assert summary["signers"] == sorted(summary["signers"])
    assert len(summary["signers"]) >= 3


# -- determinism -------------------------------------------------------------------------------


def comparable(result: SimResult) -> tuple[object, ...]:
    return (
        {node: [d.summary() for d in result.decisions[node]] for node in result.decisions},
        {node: [(e.event_type, e.metadata) for e in result.events[node]] for node in result.events},
        result.sent,
        result.ticks,
    )


@pytest.mark.spec("XDV-042-4.1")
@pytest.mark.spec("XDV-042-8")
def test_same_schedule_same_decisions_and_events() -> None:
    kwargs: dict[str, Any] = {"seed": 11, "delay_max": 2, "drop_rate": 0.2, "stable_after": 10}
    first = simulate(4, [b"a", b"b"], faults={"n01": Behaviour.EQUIVOCATE}, **kwargs)
    second = simulate(4, [b"a", b"b"], faults={"n01": Behaviour.EQUIVOCATE}, **kwargs)
    assert comparable(first) == comparable(second)


@pytest.mark.spec("XDV-042-4.2")
def test_order_follows_arrival_at_the_leader_and_the_highest_certificate() -> None:
    leader = replica("n00")
    out = leader.propose(b"one")
    assert [m.kind for m in out] == [Kind.REQUEST, Kind.PROPOSE]
    request = signed(Message(Kind.REQUEST, "n02", 0, 0, value=b"two"), "n02")
    assert leader.receive(request) == []  # one slot at a time
    assert leader.pending == (b"one", b"two")
    assert out[1].header == Header.for_value(0, GENESIS, b"one")


# -- the wire format ---------------------------------------------------------------------------


@pytest.mark.spec("XDV-042-6")
def test_messages_round_trip_and_malformed_bytes_are_refused(decided: SimResult) -> None:
    decision = decided.decisions["n00"][0]
    message = signed(
        Message(
            Kind.DECIDE,
            "n01",
            decision.view,
            1,
            header=decision.certificate.header,
            value=decision.value,
            certificate=decision.certificate,
        ),
        "n01",
    )
    raw = message.to_bytes()
    assert Message.from_bytes(raw) == message
    record = cbor2.loads(raw)

    def refused(value: object) -> None:
        with pytest.raises(ConsensusError) as caught:
            Message.from_bytes(value)  # type: ignore[arg-type]
        assert caught.value.code == ErrorCode.CONSENSUS_MESSAGE_INVALID

    refused(raw[:-1])
    refused(raw + b"\x00")
    refused(cbor2.dumps({**record, "extra": 1}))
    refused(cbor2.dumps({**record, "k": 99}))
    refused(cbor2.dumps({**record, "v": -1}))
    refused(cbor2.dumps({**record, "val": b"not the header's value"}))
    refused(cbor2.dumps({**record, "p": int(Phase.PREPARE)}))
    refused(cbor2.dumps(dict(reversed(list(record.items())))))  # not canonical order
    refused(cbor2.dumps({key: value for key, value in record.items() if key != "c"}))
    refused("text")


def test_replica_settings_are_checked() -> None:
    keys = sim_keys(4)
    good = members(4)

    def code_of(build: object) -> ErrorCode:
        with pytest.raises(ConsensusError) as caught:
            build()  # type: ignore[operator]
        return caught.value.code

    assert code_of(lambda: Replica("n09", good, keys["n00"])) == ErrorCode.CONSENSUS_MEMBERS_INVALID
    assert code_of(lambda: Replica("n00", good, keys["n01"])) == ErrorCode.CONSENSUS_MEMBERS_INVALID
    assert code_of(lambda: Replica("n00", {}, keys["n00"])) == ErrorCode.CONSENSUS_MEMBERS_INVALID
    assert (
        code_of(lambda: Replica("n00", {**good, "n01": "key"}, keys["n00"]))
        == ErrorCode.CONSENSUS_MEMBERS_INVALID
    )
    assert (
        code_of(lambda: Replica("n00", good, keys["n00"], timeout_ticks=0))
        == ErrorCode.CONSENSUS_CONFIG_INVALID
    )
    assert (
        code_of(lambda: replica("n00").propose("text"))  # type: ignore[arg-type]
        == ErrorCode.CONSENSUS_VALUE_INVALID
    )
    assert code_of(lambda: simulate(0, [])) == ErrorCode.CONSENSUS_SIMULATION_INVALID
    assert (
        code_of(lambda: simulate(4, [], faults={"x": Behaviour.SILENT}))
        == ErrorCode.CONSENSUS_SIMULATION_INVALID
    )


@pytest.mark.slow
def test_ten_replicas_with_three_byzantine() -> None:
    faults = {"n00": Behaviour.EQUIVOCATE, "n04": Behaviour.FORGE, "n07": Behaviour.REPLAY}
    check_run(simulate(10, [b"a", b"b"], seed=1, faults=faults, delay_max=2))


# Golden values: the encodings a signature covers. Changing any of them changes the wire format
# and invalidates every stored certificate; that needs a new signing context, not an edit here.
GOLDEN_CLUSTER = "b1f806e3e45c5e107b845c8118b3b0d3869136c9f6006a092b68c0d205773227"
GOLDEN_BLOCK = "452fa8341efaa68256b335e4190219ff00cbccc3c7507321561ea6f4d2c24365"
GOLDEN_VOTE = (
    "a561635820b1f806e3e45c5e107b845c8118b3b0d3869136c9f6006a092b68c0d20577322761645820452fa834"
    "1efaa68256b335e4190219ff00cbccc3c7507321561ea6f4d2c24365616e636e3031617003617602"
)
GOLDEN_PROPOSE_SIGNED = (
    "b1f806e3e45c5e107b845c8118b3b0d3869136c9f6006a092b68c0d205773227a86163f6616800616b02617000"
    "6173636e303061760062686483005820000000000000000000000000000000000000000000000000000000000000"
    "000058203e8c0c904aa900e2c7bf306cbcfb2bcb3be3c1fb6379757d96fab1b9b3d4dea26376616c51706c616365"
    "6d656e742062617463682031"
)


@pytest.mark.spec("XDV-042-4.1")
def test_signed_encodings_are_pinned() -> None:
    cluster = replica_set_id(members(4))
    assert cluster.hex() == GOLDEN_CLUSTER
    header = Header.for_value(0, GENESIS, b"placement batch 1")
    assert header.digest.hex() == GOLDEN_BLOCK
    vote = Message(Kind.VOTE, "n01", 2, 0, phase=Phase.COMMIT, header=header)
    assert vote.signed_bytes(cluster)[0].hex() == GOLDEN_VOTE
    propose = Message(Kind.PROPOSE, "n00", 0, 0, header=header, value=b"placement batch 1")
    assert propose.signed_bytes(cluster)[0].hex() == GOLDEN_PROPOSE_SIGNED
    signed_vote = signed(vote, "n01")
    certificate = Certificate(Phase.COMMIT, 2, header, (("n01", signed_vote.signature),))
    with pytest.raises(ConsensusError) as caught:  # one vote is not a quorum
        verify_certificate(certificate, members(4))
    assert caught.value.code == ErrorCode.CONSENSUS_CERTIFICATE_INVALID
