"""A cluster node: one XDV instance that runs the jobs placed on it and keeps its own trace.

:class:`ClusterNode` is a plain object; the Ray backend hosts one per actor
(``ray.remote(ClusterNode)``), the local backend in this process. Every message it takes and
every answer it gives is plain data (maps, lists, strings, bytes), so what crosses Ray is only
data. Its trace (format 2, the same framing and hash chain as a run's trace) records:
RUN_START (cluster, node id, key fingerprint), one CLUSTER_BATCH per batch it takes, one
CLUSTER_JOB_DONE per job it finished, LINK_ESTABLISHED and LINK_CLOSED for its sealed link to
the coordinator, and RUN_END when the coordinator closes it. Its logical
clock is a Lamport clock: a batch stamped with the coordinator's time ``t`` is taken at
``max(own, t) + 1``, so the merge of all traces by (logical time, node index, sequence) is a
total order that respects every message. When closed, the node signs its head with its hybrid
key and hands back its trace and the traces of its jobs.

Everything but the node's public entry and the handshake goes over a sealed link
(:class:`~xdv.cluster._transport.Link`): the coordinator opens one per membership epoch
(:meth:`ClusterNode.handshake`, the node answering as responder under the keys the epoch's
membership pins), and every request and answer after it is one AES-GCM frame
(:meth:`ClusterNode.call`); a frame the link refuses (tampered, replayed, reordered) is
recorded and answered with nothing. Ray carries only those bytes.

Each epoch's batches are agreed before they run: the node hosts a
:class:`~xdv.cluster._consensus.Replica` of the epoch's members (``consensus_start``), the
coordinator proposes the epoch's placement at the leader and carries the replicas' messages
between them in rounds (``consensus_propose``, ``consensus_deliver``, ``consensus_tick``), and a
node runs a batch only if it is exactly the node's share of the decided placement. The
replica's events (proposal, decision, view changes, evidence) enter the node's trace.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2

from xdv.cluster._consensus import Replica
from xdv.cluster._jobs import JobSpec, run_job
from xdv.cluster._membership import Membership, NodeIdentity
from xdv.cluster._transport import Link, LinkEvent, closed_event, established_event
from xdv.errors import ErrorCode, XdvError, invariant
from xdv.security import HybridPublicKey
from xdv.trace import Domain, EventType, TraceWriter

__all__ = ["HEAD_CONTEXT", "NODE_FORMAT", "ClusterNode", "head_message"]

HEAD_CONTEXT = b"xdv-cluster-head"
"""Signature context of a trace head signed by its node (or the coordinator)."""

NODE_FORMAT = "xdv-cluster-node"
_DOMAINS = ("K", "Q", "Φ")


def head_message(cluster: str, node: str, entries: int, head: str) -> bytes:
    """The bytes a node signs for its trace head: canonical JSON of the four facts."""
    record = {"cluster": cluster, "node": node, "entries": entries, "head": head}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class ClusterNode:
    """One node (see the module docstring). ``key_seed`` gives it a fixed identity (its
    signing and KEM keys a function of its id and the seed: tests, reproducible set-ups);
    otherwise a fresh one. ``coordinator`` pins the fingerprint of the coordinator's signing
    key: a membership that gives the coordinator another key is refused. ``workdir`` (default:
    a fresh temporary directory, removed by :meth:`shutdown`) holds the jobs' traces and the
    key store whose key signs their witnesses."""

    def __init__(
        self,
        node_id: str,
        *,
        key_seed: bytes | None = None,
        workdir: str | None = None,
        domains: tuple[str, ...] = _DOMAINS,
        coordinator: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.identity = NodeIdentity.generate(node_id, seed=key_seed)
        self.keys = self.identity.signing
        self._coordinator = coordinator
        self._link: Link | None = None
        self._link_events: list[LinkEvent] = []
        self._replica: Replica | None = None
        self._replica_events = 0
        self._decided: dict[int, dict[str, Any]] = {}
        self._owned = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="xdv-node-"))
        self.key_store = self.workdir / "keys"
        self.domains = tuple(domains)
        self._writer: TraceWriter | None = None
        self._cluster = ""
        self._index = 0
        self._time = 0
        self._run_dir = self.workdir

    def hello(self) -> dict[str, Any]:
        """Who the node is: its id, its public entry (signing and KEM keys), its signing key's
        fingerprint, and its domains."""
        return {
            "node": self.node_id,
            "entry": self.identity.entry().to_record(),
            "fingerprint": self.keys.public.fingerprint,
            "domains": list(self.domains),
        }

    def handshake(self, membership: dict[str, Any], hello: bytes) -> bytes:
        """Answer the coordinator's hello for the epoch ``membership`` describes: the new
        link replaces the previous epoch's; returns the reply (see :mod:`._transport`)."""
        members = Membership.from_record(membership)
        if self._coordinator is not None and (
            "coordinator" not in members
            or members.entry("coordinator").signing.fingerprint != self._coordinator
        ):
            raise XdvError(
                "the membership's coordinator is not the pinned one",
                code=ErrorCode.TRANSPORT_PEER_UNAUTHENTICATED,
                where=self.node_id,
            )
        link, reply = Link.accept(self.identity, hello, members)
        if self._link is not None:
            self._link_events.append(closed_event(self._link))
        self._link = link
        self._link_events.append(established_event(link))
        self._flush_link_events()
        return reply

    def call(self, frame: bytes) -> bytes:
        """Open a sealed request ``{"method", "args"}`` (``open``, ``run_batch``, ``close``),
        run it, and return the sealed answer ``{"ok": value}`` or ``{"error": record}``. A
        frame the link refuses raises its FrameRefused (the link records it)."""
        link = self._link
        if link is None:
            raise XdvError(
                "no link: the coordinator has not made the handshake",
                code=ErrorCode.TRANSPORT_LINK_STATE,
                where=self.node_id,
            )
        request = cbor2.loads(link.open(frame))
        method = request.get("method") if isinstance(request, dict) else None
        handlers: dict[str, Callable[..., Any]] = {
            "open": self.open,
            "run_batch": self.run_batch,
            "close": self.close,
            "consensus_start": self.consensus_start,
            "consensus_propose": self.consensus_propose,
            "consensus_deliver": self.consensus_deliver,
            "consensus_tick": self.consensus_tick,
        }
        answer: dict[str, Any]
        if method not in handlers:
            answer = {
                "error": XdvError(
                    f"unknown request {method!r}",
                    code=ErrorCode.INVALID_ARGUMENT,
                    where=self.node_id,
                ).to_record()
            }
        else:
            try:
                answer = {"ok": handlers[method](*request.get("args", []))}
            except XdvError as error:
                answer = {"error": error.to_record()}
        return link.seal(cbor2.dumps(answer))

    def consensus_start(self, members: dict[str, Any], genesis: bytes) -> None:
        """Start the replica of an epoch: ``members`` maps node ids to their signing key
        records, ``genesis`` is the previous epoch's decided block (or 32 zero bytes)."""
        keys = {node: HybridPublicKey.from_record(record) for node, record in members.items()}
        self._replica = Replica(self.node_id, keys, self.keys, genesis=genesis)
        self._replica_events = 0

    def _replica_answer(self, time: int, messages: list[Any]) -> dict[str, Any]:
        replica = self._replica
        invariant(replica is not None, "agreement runs on a started replica")
        assert replica is not None  # for the type checker
        self._time = max(self._time, int(time)) + 1
        for event in replica.events[self._replica_events :]:
            self._append(event.event_type, event.metadata)
        self._replica_events = len(replica.events)
        decision = None
        if replica.decisions:
            last = replica.decisions[-1]
            value = json.loads(last.value)
            self._decided[int(value["epoch"])] = value
            decision = cbor2.dumps(last.to_record())
        return {
            "time": self._time,
            "height": replica.height,
            "messages": [[message.recipient, message.to_bytes()] for message in messages],
            "decision": decision,
        }

    def consensus_propose(self, time: int, value: bytes) -> dict[str, Any]:
        """Propose ``value`` (the epoch's placement) at this replica."""
        replica = self._started()
        return self._replica_answer(time, replica.propose(value))

    def consensus_deliver(self, time: int, messages: list[bytes]) -> dict[str, Any]:
        """Hand the replica the messages sent to it, in the order given."""
        replica = self._started()
        out = []
        for raw in messages:
            out.extend(replica.receive_bytes(raw))
        return self._replica_answer(time, out)

    def consensus_tick(self, time: int) -> dict[str, Any]:
        """One logical tick of the replica's timer."""
        replica = self._started()
        return self._replica_answer(time, replica.tick())

    def _started(self) -> Replica:
        if self._replica is None:
            raise XdvError(
                "no replica: agreement was not started",
                code=ErrorCode.INVALID_ARGUMENT,
                where=self.node_id,
            )
        return self._replica

    def _flush_link_events(self) -> None:
        if self._writer is None:
            return
        for event in self._link_events:
            self._append(event.event_type, event.metadata, status=int(event.status))
        self._link_events.clear()

    def open(self, cluster: str, index: int) -> None:
        """Start the node's trace for the cluster run ``cluster``; ``index`` (1, 2, ...) is the
        node field of its entries (0 is the coordinator's)."""
        self._cluster, self._index, self._time = cluster, index, 0
        self._run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir))
        self._writer = TraceWriter(None)
        self._append(
            EventType.RUN_START,
            {
                "format": NODE_FORMAT,
                "cluster": cluster,
                "node": self.node_id,
                "key": self.keys.public.fingerprint,
            },
        )
        self._flush_link_events()

    def _append(self, event: EventType, metadata: dict[str, Any], status: int = 0) -> None:
        if self._writer is None:
            raise XdvError(
                "the node has no open cluster run",
                code=ErrorCode.INVALID_ARGUMENT,
                where=self.node_id,
            )
        self._writer.append(
            self._time, event, Domain.ORCHESTRATION, status, 0, 0, self._index, 0, 0, metadata
        )

    def run_batch(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run a batch: ``{"epoch", "time", "jobs": [job records]}``. Returns the node's clock
        after it and one result record per job, in the batch's order."""
        jobs = [JobSpec.from_record(record) for record in message["jobs"]]
        agreed = self._decided.get(int(message["epoch"]), {}).get("batches", {})
        if agreed.get(self.node_id) != [job.id for job in jobs]:
            raise XdvError(
                f"the batch of epoch {message['epoch']} is not this node's share of the agreed "
                "placement",
                code=ErrorCode.CLUSTER_JOB_INVALID,
                where=self.node_id,
            )
        self._time = max(self._time, int(message["time"])) + 1
        self._append(
            EventType.CLUSTER_BATCH,
            {"epoch": message["epoch"], "jobs": [job.id for job in jobs]},
        )
        results = []
        for job in jobs:
            result = run_job(
                job,
                self._run_dir / f"{job.id}.xdvt",
                self.key_store,
                self._run_dir / "witnesses",
            )
            self._time += 1
            failure = ErrorCode.__members__.get(result.code or "")
            code = 0 if failure is None else int(failure)
            self._append(
                EventType.CLUSTER_JOB_DONE,
                {
                    "job": job.id,
                    "epoch": message["epoch"],
                    "status": result.status,
                    "lines": result.lines,
                    "outputs": result.outputs,
                    "head": result.head,
                },
                status=int(code),
            )
            results.append(result.to_record())
        return {"node": self.node_id, "time": self._time, "results": results}

    def close(self) -> dict[str, Any]:
        """End the node's trace and hand it back: its bytes, entry count, head, the head's
        signature, and the traces of the jobs it ran (job id to bytes)."""
        self._time += 1
        if self._link is not None:
            self._link_events.append(closed_event(self._link))
            self._flush_link_events()
        self._append(EventType.RUN_END, {"status": "ok"})
        writer = self._writer
        invariant(writer is not None, "a node's trace is open when it is closed")
        assert writer is not None  # for the type checker
        writer.close()
        data = writer.getvalue()
        head = writer.last_hash.hex()
        message = head_message(self._cluster, self.node_id, writer.count, head)
        jobs = {path.stem: path.read_bytes() for path in sorted(self._run_dir.glob("*.xdvt"))}
        self._writer = None
        shutil.rmtree(self._run_dir, ignore_errors=True)
        return {
            "node": self.node_id,
            "trace": data,
            "entries": writer.count,
            "head": head,
            "signature": self.keys.sign(message, context=HEAD_CONTEXT).hex(),
            "jobs": jobs,
        }

    def ping(self) -> str:
        """The node's id (a liveness check)."""
        return self.node_id

    def cpu_seconds(self) -> float:
        """The processor time this node's process has used (benchmarks; never recorded)."""
        return time.process_time()

    def shutdown(self) -> None:
        """Remove the node's working directory if the node made it."""
        if self._owned:
            shutil.rmtree(self.workdir, ignore_errors=True)
