"""A deterministic simulated network for the consensus replicas.

Time is a tick counter. Every message a replica emits is delivered to its recipient (or to
every other member) after a delay drawn from a seeded ``random.Random`` in ``[0, delay_max]``
ticks, and messages due in the same tick are delivered in a seeded shuffled order. Before tick
``stable_after`` each delivery may also be dropped with probability ``drop_rate``; from then on
nothing is dropped and every delay is bounded, so liveness can be checked. Faulty nodes are
crashed (from a tick on) or Byzantine (:class:`Behaviour`). The same arguments always give the
same decisions, evidence and counts.
"""

from __future__ import annotations

import enum
import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from xdv.cluster._consensus import (
    Certificate,
    ConsensusEvent,
    Decision,
    Evidence,
    Header,
    Kind,
    Message,
    Phase,
    Replica,
    leader_of,
    replica_set_id,
)
from xdv.errors import ErrorCode
from xdv.security import HybridKeyPair, HybridPublicKey

__all__ = ["Behaviour", "SimResult", "node_ids", "sim_keys", "simulate"]

_DELIVERIES_PER_TICK_MAX = 200_000
_REPLAYS_PER_TICK = 3


class Behaviour(enum.Enum):
    """What a faulty node does."""

    CRASH = "crash"
    """Honest until its crash tick, then silent for good."""
    SILENT = "silent"
    """Never sends anything (a Byzantine node that withholds every vote)."""
    EQUIVOCATE = "equivocate"
    """Runs the protocol but, as leader, sends one block to half the members and a different
    block to the other half (and both to one member), votes for both, and drives whichever
    gathers a quorum of votes through every phase, both if it can."""
    COLLUDE = "collude"
    """Takes no part but votes for every block and every certificate it sees, in every phase,
    to whoever sent it: the equivocating leader's accomplice."""
    FORGE = "forge"
    """Takes no part; injects votes under other members' names, decisions with forged
    certificates, and messages from a non-member."""
    REPLAY = "replay"
    """Takes no part; re-sends old messages it saw to random members."""


def node_ids(n: int) -> tuple[str, ...]:
    """The simulated members' ids: ``n00``, ``n01``, ... (sorted = leader order)."""
    return tuple(f"n{index:02d}" for index in range(n))


@functools.lru_cache(maxsize=64)
def _key(node: str) -> HybridKeyPair:
    return HybridKeyPair.from_seed(b"xdv-consensus-sim/" + node.encode())


def sim_keys(n: int) -> dict[str, HybridKeyPair]:
    """The deterministic key pairs of :func:`node_ids` (cached: key generation costs)."""
    return {node: _key(node) for node in node_ids(n)}


@dataclass(frozen=True)
class SimResult:
    """What a simulation produced."""

    decisions: dict[str, list[Decision]]
    """Each member's decisions (faulty members' too; check the honest ones)."""
    honest: tuple[str, ...]
    """Members that followed the protocol throughout (not crashed, not Byzantine)."""
    correct: tuple[str, ...]
    """Members that never lied (the honest ones and the crashed ones)."""
    evidence: dict[str, list[Evidence]]
    events: dict[str, list[ConsensusEvent]]
    members: dict[str, HybridPublicKey]
    sent: int
    """Point-to-point deliveries scheduled (a broadcast to m members counts m)."""
    bytes_sent: int
    """Encoded bytes of all deliveries scheduled (0 unless ``count_bytes``)."""
    dropped: int
    ticks: int
    view_changes: dict[str, int]
    values: tuple[bytes, ...]
    injected: tuple[bytes, ...] = field(default=())
    """Values Byzantine nodes put forward themselves."""

    def agreement(self) -> bool:
        """Every two correct members' decision lists agree on every slot both decided."""
        logs = [[d.value for d in self.decisions[node]] for node in self.correct]
        for log in logs:
            for other in logs:
                shorter = min(len(log), len(other))
                if log[:shorter] != other[:shorter]:
                    return False
        return True

    def decided_values(self, node: str) -> list[bytes]:
        return [decision.value for decision in self.decisions[node]]


class _Net:
    def __init__(
        self, rng: random.Random, delay_max: int, drop_rate: float, stable_after: int
    ) -> None:
        self.rng = rng
        self.delay_max = delay_max
        self.drop_rate = drop_rate
        self.stable_after = stable_after
        self.queue: dict[int, list[tuple[str, Message]]] = {}
        self.sent = 0
        self.dropped = 0
        self.count_bytes = False
        self.bytes_sent = 0

    def send(self, now: int, sender: str, members: Sequence[str], message: Message) -> None:
        """Schedule ``message`` no earlier than tick ``now`` (callers in a tick's timer phase
        pass the next tick: the current tick's deliveries are over)."""
        targets = [message.recipient] if message.recipient else [m for m in members if m != sender]
        if self.count_bytes:
            self.bytes_sent += len(message.to_bytes()) * len(targets)
        for target in targets:
            self.sent += 1
            if now < self.stable_after and self.rng.random() < self.drop_rate:
                self.dropped += 1
                continue
            due = now + self.rng.randint(0, self.delay_max)
            self.queue.setdefault(due, []).append((target, message))


def simulate(
    n: int,
    values: Sequence[bytes],
    *,
    seed: int = 0,
    faults: Mapping[str, Behaviour] | None = None,
    crash_at: Mapping[str, int] | None = None,
    delay_max: int = 1,
    drop_rate: float = 0.0,
    stable_after: int = 0,
    ticks_max: int = 400,
    timeout_ticks: int = 6,
    propose_every: int = 0,
    count_bytes: bool = False,
) -> SimResult:
    """Run ``n`` replicas until every correct, live member decided every value (or
    ``ticks_max``). Value ``k`` is proposed at tick ``k * propose_every`` by the ``k``-th
    honest member in turn. ``faults`` names Byzantine behaviours; ``crash_at`` the tick at
    which a :attr:`Behaviour.CRASH` member stops (0 when absent). ``count_bytes`` sums the
    encoded size of every delivery (it costs an encoding each). Raise CONSENSUS_SIMULATION_INVALID
    for settings out of range. Faults beyond ``f`` are allowed (safety must still hold)."""
    from xdv.cluster._consensus import ConsensusError

    faults = dict(faults or {})
    crash_at = dict(crash_at or {})
    ids = node_ids(n) if isinstance(n, int) and n >= 1 else ()
    problem = None
    if not ids:
        problem = f"n is a positive integer, got {n!r}"
    elif any(node not in ids for node in [*faults, *crash_at]):
        problem = "a fault names an unknown node"
    elif delay_max < 0 or ticks_max < 1 or propose_every < 0:
        problem = "delays, tick limits and spacing are non-negative"
    elif not 0.0 <= drop_rate < 1.0:
        problem = f"drop_rate is in [0, 1), got {drop_rate}"
    if problem is not None:
        raise ConsensusError(problem, code=ErrorCode.CONSENSUS_SIMULATION_INVALID, where="simulate")
    for node in crash_at:
        faults.setdefault(node, Behaviour.CRASH)
    keys = sim_keys(n)
    members = {node: keys[node].public for node in ids}
    cluster = replica_set_id(members)
    replicas = {
        node: (_TwoFaced if faults.get(node) == Behaviour.EQUIVOCATE else Replica)(
            node, members, keys[node], timeout_ticks=timeout_ticks
        )
        for node in ids
    }
    honest = tuple(node for node in ids if node not in faults)
    correct = tuple(node for node in ids if faults.get(node) in (None, Behaviour.CRASH))
    proposers = honest or ids
    rng = random.Random(seed)
    net = _Net(rng, delay_max, drop_rate, stable_after)
    net.count_bytes = count_bytes
    seen: dict[str, list[Message]] = {node: [] for node in ids}
    injected: list[bytes] = []

    def alive(node: str, now: int) -> bool:
        behaviour = faults.get(node)
        if behaviour is None or behaviour == Behaviour.EQUIVOCATE:
            return True
        if behaviour == Behaviour.CRASH:
            return now < crash_at.get(node, 0)
        return False

    def emit(when: int, node: str, messages: list[Message]) -> None:
        replica = replicas[node]
        if isinstance(replica, _TwoFaced):
            messages = replica.split(messages, injected)
        for message in messages:
            net.send(when, node, ids, message)

    wanted = set(values)

    def done() -> bool:
        return all(
            wanted <= {decision.value for decision in replicas[node].decisions}
            for node in correct
            if alive(node, now)
        )

    now = 0
    while now < ticks_max:
        for index, value in enumerate(values):
            if index * propose_every == now:
                node = proposers[index % len(proposers)]
                if alive(node, now):
                    emit(now, node, replicas[node].propose(value))
        deliveries = 0
        while now in net.queue:
            batch = net.queue.pop(now)
            rng.shuffle(batch)
            for target, message in batch:
                deliveries += 1
                if deliveries > _DELIVERIES_PER_TICK_MAX:
                    net.dropped += 1  # a storm: the bound of one tick's work is reached
                    continue
                behaviour = faults.get(target)
                if behaviour in (Behaviour.FORGE, Behaviour.REPLAY):
                    if len(seen[target]) < 4096:
                        seen[target].append(message)
                    continue
                if behaviour == Behaviour.COLLUDE:
                    for vote in _collude(target, keys[target], cluster, message):
                        net.send(now, target, ids, vote)
                    continue
                if alive(target, now):
                    emit(now, target, replicas[target].receive(message))
        for node in ids:
            behaviour = faults.get(node)
            if behaviour == Behaviour.FORGE:
                for message in _forge(node, keys[node], cluster, ids, seen[node], now, injected):
                    net.send(now + 1, node, ids, message)
            elif behaviour == Behaviour.REPLAY and seen[node]:
                for _ in range(_REPLAYS_PER_TICK):
                    old = rng.choice(seen[node])
                    net.send(now + 1, node, ids, replace(old, recipient=rng.choice(ids)))
            elif alive(node, now):
                emit(now + 1, node, replicas[node].tick())
        now += 1
        if values and done():
            break
    return SimResult(
        decisions={node: list(replicas[node].decisions) for node in ids},
        honest=honest,
        correct=correct,
        evidence={node: list(replicas[node].evidence) for node in ids},
        events={node: list(replicas[node].events) for node in ids},
        members=members,
        sent=net.sent,
        bytes_sent=net.bytes_sent,
        dropped=net.dropped,
        ticks=now,
        view_changes={node: replicas[node].view_changes for node in ids},
        values=tuple(values),
        injected=tuple(injected),
    )


class _TwoFaced(Replica):
    """A leader that equivocates: see :attr:`Behaviour.EQUIVOCATE`. It keeps a tally of votes
    per block instead of one round per slot, so a quorum for either block is used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tallies: dict[tuple[int, int, Phase, bytes], dict[str, bytes]] = {}
        self._blocks: dict[bytes, bytes] = {}  # block digest -> value

    def split(self, messages: list[Message], injected: list[bytes]) -> list[Message]:
        out: list[Message] = []
        others = [member for member in self.members if member != self.node_id]
        half = len(others) // 2
        for message in messages:
            if message.kind != Kind.PROPOSE or message.header is None or message.value is None:
                out.append(message)
                continue
            header = message.header
            self._blocks[header.digest] = message.value
            twin_value = message.value + b"/equivocation"
            twin_header = Header.for_value(header.slot, header.parent, twin_value)
            self._blocks[twin_header.digest] = twin_value
            twin = replace(message, header=twin_header, value=twin_value, signature=b"")
            twin = twin.signed_by(self._signer, self.cluster)
            injected.append(twin_value)
            out.extend(replace(message, recipient=member) for member in others[:half])
            out.extend(replace(twin, recipient=member) for member in others[half:])
            if others[:half]:
                out.append(replace(twin, recipient=others[0]))
            out.extend(self._own_vote(Phase.PREPARE, message.view, header))
            out.extend(self._own_vote(Phase.PREPARE, message.view, twin_header))
        return out

    def _own_vote(self, phase: Phase, view: int, header: Header) -> list[Message]:
        vote = Message(Kind.VOTE, self.node_id, view, self.height, phase=phase, header=header)
        vote = vote.signed_by(self._signer, self.cluster)
        return self._count_vote(self.node_id, phase, header, vote.signature, vote)

    def _count_vote(
        self, voter: str, phase: Phase, header: Header, signature: bytes, message: Message
    ) -> list[Message]:
        view = message.view
        if leader_of(view, self.members) != self.node_id or header.digest not in self._blocks:
            return []
        votes = self._tallies.setdefault((view, header.slot, phase, header.digest), {})
        if voter in votes or len(votes) >= self.quorum:
            return []
        votes[voter] = signature
        if len(votes) < self.quorum:
            return []
        certificate = Certificate(phase, view, header, tuple(sorted(votes.items())))
        value = self._blocks[header.digest]
        if phase == Phase.COMMIT:
            decide = Message(
                Kind.DECIDE,
                self.node_id,
                view,
                header.slot + 1,
                header=header,
                value=value,
                certificate=certificate,
            )
            out = [decide.signed_by(self._signer, self.cluster)]
            if header.slot == self.height:
                out.extend(self._decide(header, value, certificate))
            return out
        broadcast = Message(Kind.PHASE, self.node_id, view, self.height, certificate=certificate)
        out = [broadcast.signed_by(self._signer, self.cluster)]
        out.extend(self._own_vote(Phase(phase + 1), view, header))
        return out


def _collude(node: str, key: HybridKeyPair, cluster: bytes, message: Message) -> list[Message]:
    """Votes for whatever ``message`` proposes or certifies, to its sender."""
    if message.kind == Kind.PROPOSE and message.header is not None:
        phase, header = Phase.PREPARE, message.header
    elif (
        message.kind == Kind.PHASE
        and message.certificate is not None
        and message.certificate.phase in (Phase.PREPARE, Phase.PRECOMMIT)
    ):
        phase, header = Phase(message.certificate.phase + 1), message.certificate.header
    else:
        return []
    vote = Message(Kind.VOTE, node, message.view, 0, phase=phase, header=header)
    return [replace(vote.signed_by(key, cluster), recipient=message.sender)]


def _forge(
    node: str,
    key: HybridKeyPair,
    cluster: bytes,
    ids: Sequence[str],
    seen: list[Message],
    now: int,
    injected: list[bytes],
) -> list[Message]:
    """Every fourth tick: PREPARE votes in other members' names for the last block seen,
    a DECIDE with a certificate signed only by the forger, and a message from a non-member."""
    if now % 4 != 1:
        return []
    proposals = [m for m in seen if m.kind == Kind.PROPOSE and m.header is not None]
    out: list[Message] = []
    height = max((m.height for m in seen), default=0)
    if proposals:
        last = proposals[-1]
        assert last.header is not None
        for victim in ids:
            if victim == node:
                continue
            vote = Message(
                Kind.VOTE, victim, last.view, height, phase=Phase.PREPARE, header=last.header
            )
            # Signed with the forger's key under the victim's name.
            signed, context = vote.signed_bytes(cluster)
            out.append(
                replace(
                    vote,
                    signature=key.sign(signed, context=context),
                    recipient=ids[last.view % len(ids)],
                )
            )
        value = b"forged/" + str(now).encode()
        injected.append(value)
        header = Header.for_value(last.header.slot, last.header.parent, value)
        fake = Certificate(
            Phase.COMMIT,
            last.view,
            header,
            tuple(sorted((member, key.sign(b"x", context=b"forged")) for member in ids)),
        )
        decide = Message(
            Kind.DECIDE, node, last.view, height + 1, header=header, value=value, certificate=fake
        )
        out.append(decide.signed_by(key, cluster))
    stranger = Message(Kind.REQUEST, "intruder", 0, 0, value=b"from outside")
    out.append(stranger.signed_by(key, cluster))
    return out
