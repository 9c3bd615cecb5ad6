"""The coordinator: epochs, placement, batches, lost nodes, and the cluster's own trace.

The coordinator keeps the K side of a cluster run: it decides, nodes execute. A run goes in
epochs. Epoch 0's members are every node, sorted by id. In each epoch the coordinator places
every job not yet committed (:func:`~xdv.cluster.place`, a pure function of the job id, the
members and the policy), records each placement, sends each member its batch in one message
stamped with its logical time, and then takes the answers **in member order**, whatever order
they arrive in. A member whose batch fails (its actor died, its machine went away) is lost: the
coordinator records it, and the next epoch, without it, places that member's jobs again. Since
rendezvous hashing moves only the lost member's jobs, every job ends on the node that the final
membership gives it, and its result, seeded by the job, is the fault-free run's result.

The coordinator's trace records RUN_START (cluster id, policy, the jobs' ids and digest),
CLUSTER_EPOCH, CLUSTER_PLACE (CLUSTER_JOB_MOVE for a job of a lost node), CLUSTER_NODE_LOST
and CLUSTER_COMMIT, all at logical times that depend only on the messages, never on timing.

A :class:`Backend` carries the calls to the nodes: :class:`LocalBackend` in this process,
``RayBackend`` (:mod:`xdv.cluster._ray`) to Ray actors. Either way only bytes cross: each
epoch is a :class:`~xdv.cluster._membership.Membership` (the coordinator and the epoch's nodes,
each with the signing and KEM keys it announced), the coordinator opens a sealed
:class:`~xdv.cluster._transport.Link` to every member under it (LINK_ESTABLISHED in both
traces), and every request and answer after the handshake is a sealed frame.

Before an epoch's batches run, its members agree on them: each member hosts a replica of the
agreement protocol (:mod:`xdv.cluster._consensus`, HotStuff), the coordinator proposes the
epoch's placement at the leader and carries the replicas' messages between them in rounds, in
an order fixed by the messages' content (never by arrival), ticking their logical timers when
no message is left, until every member has decided. The decision, with its quorum certificate,
goes into the manifest; a node runs only its share of the decided placement.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cbor2

from xdv.cluster._consensus import GENESIS, Decision, Message
from xdv.cluster._jobs import JobResult, JobSpec
from xdv.cluster._membership import Membership, NodeEntry, NodeIdentity
from xdv.cluster._node import HEAD_CONTEXT, ClusterNode, head_message
from xdv.cluster._placement import PlacementPolicy, assignment
from xdv.cluster._transport import Link, closed_event, established_event
from xdv.errors import ErrorCode, XdvError, invariant
from xdv.security import HybridKeyPair
from xdv.trace import Domain, EventType, TraceWriter, read_trace

__all__ = [
    "COORDINATOR",
    "COORDINATOR_FORMAT",
    "Backend",
    "ClusterRun",
    "Coordinator",
    "FirstNodes",
    "LocalBackend",
    "NodeLost",
    "cluster_id",
    "coordinator_identity",
    "jobs_digest",
    "membership_of",
    "placement_value",
]

COORDINATOR = "coordinator"
"""The name of the coordinator's trace in a cluster trace (node index 0)."""
COORDINATOR_FORMAT = "xdv-cluster-coordinator"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class NodeLost(Exception):
    """A call to a node failed because the node is gone (its actor or machine died)."""

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"node {node} lost: {reason}")
        self.node = node
        self.reason = reason


class Backend(Protocol):
    """Carries calls to the nodes. ``submit`` starts a call of a :class:`ClusterNode` method
    and returns a handle at once; ``result`` waits for it and returns its value, or raises
    :class:`NodeLost` when the node is gone."""

    @property
    def nodes(self) -> list[str]: ...

    def submit(self, node: str, method: str, *args: Any) -> Any: ...

    def result(self, node: str, handle: Any) -> Any: ...


class LocalBackend:
    """Nodes in this process; :meth:`kill` makes a node lost, as if its process died."""

    def __init__(self, nodes: Sequence[ClusterNode]) -> None:
        self._nodes = {node.node_id: node for node in nodes}
        self.killed: set[str] = set()

    @property
    def nodes(self) -> list[str]:
        return sorted(self._nodes)

    def submit(self, node: str, method: str, *args: Any) -> Any:
        if node in self.killed:
            return NodeLost(node, "killed")
        try:
            return getattr(self._nodes[node], method)(*args)
        except Exception as error:  # a node that raises is a node that failed
            return NodeLost(node, f"{type(error).__name__}: {error}")

    def result(self, node: str, handle: Any) -> Any:
        if node in self.killed:
            raise NodeLost(node, "killed")
        if isinstance(handle, NodeLost):
            raise handle
        return handle

    def kill(self, node: str) -> None:
        """Lose ``node``: its pending and later calls fail."""
        self.killed.add(node)


class FirstNodes:
    """A view of a backend holding only its first ``count`` nodes (one set of node actors can
    serve clusters of every size up to theirs)."""

    def __init__(self, backend: Backend, count: int) -> None:
        self.backend = backend
        self._nodes = backend.nodes[:count]

    @property
    def nodes(self) -> list[str]:
        return list(self._nodes)

    def submit(self, node: str, method: str, *args: Any) -> Any:
        return self.backend.submit(node, method, *args)

    def result(self, node: str, handle: Any) -> Any:
        return self.backend.result(node, handle)


def coordinator_identity(keys: HybridKeyPair) -> NodeIdentity:
    """The coordinator's link identity: node id ``coordinator``, signing with ``keys``, and a
    KEM key derived from the signing key's seed."""
    seed = keys.seed_bytes()
    kem = hashlib.sha256(b"XDV-COORDINATOR-KEM-1" + seed).digest()
    return NodeIdentity(COORDINATOR, seed, kem)


def membership_of(
    epoch: int, coordinator: dict[str, Any], members: Sequence[str], entries: dict[str, Any]
) -> Membership:
    """The membership of an epoch: the coordinator's entry record and the members' (node id
    to entry record)."""
    records = [coordinator, *(entries[node] for node in members)]
    return Membership(epoch, [NodeEntry.from_record(record) for record in records])


_AGREEMENT_ROUNDS_MAX = 256


def placement_value(
    epoch: int, membership: str, members: Sequence[str], placed: dict[str, list[str]]
) -> bytes:
    """The value the members agree on for an epoch: canonical JSON of the epoch, its
    membership digest and every member's batch (job ids in order)."""
    record = {
        "epoch": epoch,
        "membership": membership,
        "batches": {node: list(placed.get(node, [])) for node in members},
    }
    return _canonical(record)


def jobs_digest(jobs: Sequence[JobSpec]) -> str:
    """SHA-256 (hex) of the canonical list of job records."""
    return hashlib.sha256(_canonical([job.to_record() for job in jobs])).hexdigest()


def cluster_id(jobs: Sequence[JobSpec], policy: PlacementPolicy, members: Sequence[str]) -> str:
    """The id of a cluster run: a digest of its jobs, policy and members (16 hex digits)."""
    record = {"jobs": jobs_digest(jobs), "policy": policy.to_record(), "members": list(members)}
    return hashlib.sha256(_canonical(record)).hexdigest()[:16]


@dataclass
class ClusterRun:
    """What a cluster run produced: per job its result, node and epoch (in job order), the
    epochs' members, the lost nodes (node to the epoch in which it was lost), each member's
    ``hello`` record, the closed traces (node to :meth:`ClusterNode.close`'s record) and the
    coordinator's."""

    cluster: str
    policy: PlacementPolicy
    jobs: list[JobSpec]
    results: dict[str, tuple[JobResult, str, int]] = field(default_factory=dict)
    epochs: list[list[str]] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)
    hellos: dict[str, dict[str, Any]] = field(default_factory=dict)
    memberships: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    coordinator_entry: dict[str, Any] = field(default_factory=dict)
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)
    coordinator: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every job ran to a clean end."""
        return all(result.status == "ok" for result, _, _ in self.results.values())

    def lines(self) -> list[str]:
        """Every emitted line, job by job in job order."""
        return [line for job in self.jobs for line in self.results[job.id][0].lines]


DispatchHook = Callable[[int, dict[str, list[str]]], None]


class Coordinator:
    """Runs jobs on a backend's nodes (see the module docstring); its trace is signed with
    ``keys``."""

    def __init__(
        self,
        backend: Backend,
        keys: HybridKeyPair,
        *,
        policy: PlacementPolicy | None = None,
    ) -> None:
        self.backend = backend
        self.keys = keys
        self.identity = coordinator_identity(keys)
        self.policy = policy or PlacementPolicy()
        self.links: dict[str, Link] = {}
        self._genesis = GENESIS
        self._time = 0
        self._writer = TraceWriter(None)

    def _append(self, event: EventType, metadata: dict[str, Any], status: int = 0) -> None:
        self._writer.append(
            self._time, event, Domain.ORCHESTRATION, status, 0, 0, 0, 0, 0, metadata
        )

    def _tick(self, event: EventType, metadata: dict[str, Any], status: int = 0) -> None:
        self._time += 1
        self._append(event, metadata, status)

    def _request(self, node: str, method: str, *args: Any) -> Any:
        """Send a sealed request to ``node``; the handle of its answer."""
        frame = self.links[node].seal(cbor2.dumps({"method": method, "args": list(args)}))
        return self.backend.submit(node, "call", frame)

    def _answer(self, node: str, handle: Any) -> Any:
        """Open ``node``'s sealed answer; its value, or its error raised."""
        answer = cbor2.loads(self.links[node].open(self.backend.result(node, handle)))
        if "error" in answer:
            record = answer["error"]
            code = ErrorCode.__members__.get(str(record.get("code")), ErrorCode.INVALID_ARGUMENT)
            raise XdvError(str(record.get("message")), code=code, where=f"node {node}")
        return answer["ok"]

    def _close_link(self, node: str) -> None:
        event = closed_event(self.links.pop(node))
        self._tick(event.event_type, event.metadata)

    def _connect(self, run: ClusterRun, epoch: int, members: list[str]) -> list[str]:
        """Open sealed links to ``members`` under the epoch's membership; return the members
        whose handshake failed (they are lost)."""
        entries = {node: run.hellos[node]["entry"] for node in members}
        membership = membership_of(epoch, run.coordinator_entry, members, entries)
        run.memberships.append(membership.digest())
        for node in sorted(self.links):  # every link ends with its epoch
            self._close_link(node)
        pending: dict[str, tuple[Link, Any]] = {}
        for node in members:
            link, hello = Link.initiate(self.identity, node, membership)
            handle = self.backend.submit(node, "handshake", membership.to_record(), hello)
            pending[node] = (link, handle)
        failed = []
        for node in members:
            link, handle = pending[node]
            try:
                link.complete(self.backend.result(node, handle))
            except NodeLost:
                failed.append(node)
                continue
            self.links[node] = link
            event = established_event(link)
            self._tick(event.event_type, event.metadata)
        return failed

    def _agree(self, epoch: int, value: bytes, members: list[str], keys: dict[str, Any]) -> str:
        """Run the agreement of one epoch on ``value`` among ``members``; the decision (CBOR,
        hex). Raises NodeLost if a member fails, CLUSTER_NODE_LOST if no decision comes."""
        handles = {
            node: self._request(node, "consensus_start", keys, self._genesis) for node in members
        }
        for node in members:
            self._answer(node, handles[node])
        leader = members[0]
        first = self._answer(leader, self._request(leader, "consensus_propose", self._time, value))
        answers = {leader: first}
        heights = {node: 0 for node in members}
        decision: bytes | None = None
        for _ in range(_AGREEMENT_ROUNDS_MAX):
            inbox: dict[str, list[tuple[tuple[str, bytes], bytes]]] = {node: [] for node in members}
            for sender, answer in answers.items():
                heights[sender] = answer["height"]
                decision = decision or answer["decision"]
                for recipient, raw in answer["messages"]:
                    message = Message.from_bytes(raw)
                    key = (sender, message.content_digest)
                    for target in [recipient] if recipient else members:
                        if target != sender and target in inbox:
                            inbox[target].append((key, raw))
            if all(height >= 1 for height in heights.values()):
                break
            stamp = self._time
            if any(inbox.values()):
                handles = {
                    node: self._request(
                        node,
                        "consensus_deliver",
                        stamp,
                        [raw for _, raw in sorted(inbox[node], key=lambda item: item[0])],
                    )
                    for node in members
                    if inbox[node]
                }
            else:  # nothing in flight: every replica's logical timer moves on
                handles = {node: self._request(node, "consensus_tick", stamp) for node in members}
            answers = {
                node: self._answer(node, handles[node]) for node in members if node in handles
            }
            self._time = max([self._time, *(int(a["time"]) for a in answers.values())])
        else:
            raise XdvError(
                f"the members did not agree on epoch {epoch}'s placement within "
                f"{_AGREEMENT_ROUNDS_MAX} rounds",
                code=ErrorCode.CLUSTER_NODE_LOST,
                where=f"epoch {epoch}",
            )
        invariant(decision is not None, "a member that decided reports its decision")
        assert decision is not None  # for the type checker
        decided = Decision.from_record(cbor2.loads(decision))
        self._genesis = decided.digest
        self._tick(
            EventType.CLUSTER_MESSAGE,
            {"epoch": epoch, "agreement": decided.summary()},
        )
        return decision.hex()

    def run(
        self, jobs: Sequence[JobSpec], *, on_dispatch: DispatchHook | None = None
    ) -> ClusterRun:
        """Run ``jobs`` (unique ids) on the backend's nodes. ``on_dispatch(epoch, batches)`` is
        called once an epoch's batches are sent (tests kill a node there). Raises
        CLUSTER_NODE_LOST when every node is lost, CLUSTER_NO_NODE when no node can take a
        job."""
        jobs = list(jobs)
        ids = [job.id for job in jobs]
        if len(set(ids)) != len(ids):
            duplicate = next(job for job in ids if ids.count(job) > 1)
            raise XdvError(
                f"job id {duplicate!r} is used twice",
                code=ErrorCode.CLUSTER_JOB_INVALID,
                where=f"job {duplicate}",
            )
        backend = self.backend
        members = backend.nodes
        if not members:
            raise XdvError(
                "the cluster has no nodes", code=ErrorCode.CLUSTER_NO_NODE, where="cluster"
            )
        handles = {node: backend.submit(node, "hello") for node in members}
        hellos: dict[str, dict[str, Any]] = {}
        for node in members:
            try:
                hellos[node] = backend.result(node, handles[node])
            except NodeLost as error:
                raise XdvError(
                    f"node {node} did not answer before the run started ({error.reason})",
                    code=ErrorCode.CLUSTER_UNAVAILABLE,
                    where=f"node {node}",
                ) from None
        policy = self.policy
        cluster = cluster_id(jobs, policy, members)
        run = ClusterRun(cluster, policy, jobs, hellos=hellos)
        run.coordinator_entry = self.identity.entry().to_record()
        self._append(
            EventType.RUN_START,
            {
                "format": COORDINATOR_FORMAT,
                "cluster": cluster,
                "policy": policy.to_record(),
                "jobs": ids,
                "jobs_digest": jobs_digest(jobs),
                "key": self.keys.public.fingerprint,
            },
        )
        by_id = {job.id: job for job in jobs}
        needs = {job.id: job.needs for job in jobs}
        pending = list(ids)
        moved_from: dict[str, str] = {}
        epoch = 0
        index = {node: number for number, node in enumerate(members, start=1)}
        opened = False
        while pending:
            run.epochs.append(list(members))
            membership = membership_of(
                epoch,
                run.coordinator_entry,
                members,
                {node: hellos[node]["entry"] for node in members},
            )
            self._tick(
                EventType.CLUSTER_EPOCH,
                {
                    "epoch": epoch,
                    "members": [
                        {"node": node, "key": hellos[node]["fingerprint"]} for node in members
                    ],
                    "membership": membership.digest(),
                },
            )
            unreachable = self._connect(run, epoch, members)
            if not opened:
                handles = {
                    node: self._request(node, "open", cluster, index[node])
                    for node in members
                    if node not in unreachable
                }
                for node, handle in handles.items():
                    try:
                        self._answer(node, handle)
                    except NodeLost:
                        unreachable.append(node)
                opened = True
            if unreachable:
                for node in members:
                    if node in unreachable:
                        run.lost[node] = epoch
                        self._tick(
                            EventType.CLUSTER_NODE_LOST,
                            {"epoch": epoch, "node": node, "jobs": []},
                            status=int(ErrorCode.CLUSTER_NODE_LOST),
                        )
                        if node in self.links:
                            self._close_link(node)
                members = [node for node in members if node not in unreachable]
                if not members:
                    raise XdvError(
                        f"every node of the cluster was lost; {len(pending)} jobs did not run",
                        code=ErrorCode.CLUSTER_NODE_LOST,
                        where="cluster",
                    )
                epoch += 1
                continue
            placed = assignment(pending, members, policy, needs=needs)
            for job in pending:
                node = next(member for member in members if job in placed[member])
                if job in moved_from:
                    self._tick(
                        EventType.CLUSTER_JOB_MOVE,
                        {"epoch": epoch, "job": job, "from": moved_from[job], "node": node},
                    )
                else:
                    self._tick(EventType.CLUSTER_PLACE, {"epoch": epoch, "job": job, "node": node})
            agreed = placement_value(epoch, membership.digest(), members, placed)
            keys = {node: hellos[node]["entry"]["signing"] for node in members}
            try:
                run.decisions.append(self._agree(epoch, agreed, members, keys))
            except NodeLost as error:
                run.lost[error.node] = epoch
                self._tick(
                    EventType.CLUSTER_NODE_LOST,
                    {"epoch": epoch, "node": error.node, "jobs": []},
                    status=int(ErrorCode.CLUSTER_NODE_LOST),
                )
                for job in placed[error.node]:
                    moved_from[job] = error.node
                members = [node for node in members if node != error.node]
                run.decisions.append("")
                if not members:
                    raise XdvError(
                        f"every node of the cluster was lost; {len(pending)} jobs did not run",
                        code=ErrorCode.CLUSTER_NODE_LOST,
                        where="cluster",
                    ) from None
                epoch += 1
                continue
            stamp = self._time
            sent = {
                node: self._request(
                    node,
                    "run_batch",
                    {
                        "epoch": epoch,
                        "time": stamp,
                        "jobs": [by_id[job].to_record() for job in placed[node]],
                    },
                )
                for node in members
                if placed[node]
            }
            if on_dispatch is not None:
                on_dispatch(epoch, {node: list(placed[node]) for node in sent})
            lost: list[str] = []
            for node in members:  # answers taken in member order, never arrival order
                if node not in sent:
                    continue
                try:
                    answer = self._answer(node, sent[node])
                except NodeLost as error:
                    lost.append(node)
                    self._tick(
                        EventType.CLUSTER_NODE_LOST,
                        {"epoch": epoch, "node": node, "jobs": placed[node]},
                        status=int(ErrorCode.CLUSTER_NODE_LOST),
                    )
                    del error
                    continue
                results = [JobResult.from_record(record) for record in answer["results"]]
                if sorted(result.job for result in results) != sorted(placed[node]):
                    # A node answers for exactly the jobs it was given, once each; one that
                    # leaves a job out or claims another's is treated as lost, and its jobs
                    # move at the next epoch.
                    lost.append(node)
                    self._tick(
                        EventType.CLUSTER_NODE_LOST,
                        {"epoch": epoch, "node": node, "jobs": placed[node]},
                        status=int(ErrorCode.CLUSTER_NODE_LOST),
                    )
                    continue
                self._time = max(self._time, int(answer["time"]))
                for result in results:
                    run.results[result.job] = (result, node, epoch)
                    self._tick(
                        EventType.CLUSTER_COMMIT,
                        {
                            "epoch": epoch,
                            "job": result.job,
                            "node": node,
                            "status": result.status,
                            "outputs": result.outputs,
                            "head": result.head,
                        },
                    )
            pending = [job for job in pending if job not in run.results]
            for node in lost:
                run.lost[node] = epoch
                for job in placed[node]:
                    moved_from[job] = node
            members = [node for node in members if node not in lost]
            if pending and not members:
                raise XdvError(
                    f"every node of the cluster was lost; {len(pending)} jobs did not run",
                    code=ErrorCode.CLUSTER_NODE_LOST,
                    where="cluster",
                )
            epoch += 1
        closing = {node: self._request(node, "close") for node in members}
        for node in members:
            try:
                bundle = self._answer(node, closing[node])
            except NodeLost as error:
                raise XdvError(
                    f"node {node} was lost before it handed over its trace ({error.reason}); "
                    "the cluster trace cannot be complete",
                    code=ErrorCode.CLUSTER_NODE_LOST,
                    where=f"node {node}",
                ) from None
            run.bundles[node] = bundle
            self._time = max(self._time, int(_end_time(bundle)))
        for node in sorted(self.links):
            self._close_link(node)
        self._tick(EventType.RUN_END, {"status": "ok"})
        writer = self._writer
        writer.close()
        head = writer.last_hash.hex()
        message = head_message(cluster, COORDINATOR, writer.count, head)
        run.coordinator = {
            "node": COORDINATOR,
            "trace": writer.getvalue(),
            "entries": writer.count,
            "head": head,
            "signature": self.keys.sign(message, context=HEAD_CONTEXT).hex(),
        }
        run.results = {job: run.results[job] for job in ids}
        return run


def _end_time(bundle: dict[str, Any]) -> int:
    """The logical time of a closed trace's last entry."""
    return read_trace(bundle["trace"]).entries[-1].logical_time
