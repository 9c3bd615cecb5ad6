"""A cluster node: one XDV instance that runs the jobs placed on it and keeps its own trace.

:class:`ClusterNode` is a plain object; the Ray backend hosts one per actor
(``ray.remote(ClusterNode)``), the local backend in this process. Every message it takes and
every answer it gives is plain data (maps, lists, strings, bytes), so what crosses Ray is only
data. Its trace (format 2, the same framing and hash chain as a run's trace) records:
RUN_START (cluster, node id, key fingerprint), one CLUSTER_BATCH per batch it takes, one
CLUSTER_JOB_DONE per job it finished, and RUN_END when the coordinator closes it. Its logical
clock is a Lamport clock: a batch stamped with the coordinator's time ``t`` is taken at
``max(own, t) + 1``, so the merge of all traces by (logical time, node index, sequence) is a
total order that respects every message. When closed, the node signs its head with its hybrid
key and hands back its trace and the traces of its jobs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from xdv.cluster._jobs import JobSpec, run_job
from xdv.errors import ErrorCode, XdvError, invariant
from xdv.security import HybridKeyPair, KeyStore
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
    """One node (see the module docstring). ``key_seed`` gives it a fixed key (tests);
    otherwise its key is the one in ``WORKDIR/keys``, created on first use. ``workdir``
    defaults to a fresh temporary directory, removed by :meth:`shutdown`."""

    def __init__(
        self,
        node_id: str,
        *,
        key_seed: bytes | None = None,
        workdir: str | None = None,
        domains: tuple[str, ...] = _DOMAINS,
    ) -> None:
        self.node_id = node_id
        self._owned = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="xdv-node-"))
        self.key_store = self.workdir / "keys"
        if key_seed is not None:
            self.keys = HybridKeyPair.from_seed(key_seed)
        else:
            self.keys, _ = KeyStore(self.key_store).load_or_create()
        self.domains = tuple(domains)
        self._writer: TraceWriter | None = None
        self._cluster = ""
        self._index = 0
        self._time = 0
        self._run_dir = self.workdir

    def hello(self) -> dict[str, Any]:
        """Who the node is: its id, public key record and fingerprint, and its domains."""
        return {
            "node": self.node_id,
            "key": self.keys.public.to_record(),
            "fingerprint": self.keys.public.fingerprint,
            "domains": list(self.domains),
        }

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

    def shutdown(self) -> None:
        """Remove the node's working directory if the node made it."""
        if self._owned:
            shutil.rmtree(self.workdir, ignore_errors=True)
