"""The cluster trace: a directory of signed node traces, merged in one global order.

Layout (``docs/cluster.md`` and ``docs/trace-format.md`` have the normative description)::

    DIR/manifest.json       the signed manifest
    DIR/coordinator.xdvt    the coordinator's trace (node index 0)
    DIR/nodes/NODE.xdvt     each node's trace (node index 1, 2, ... in id order)
    DIR/jobs/JOB.xdvt       each job's run trace, from the node that ran it

The manifest names the cluster, the placement policy, every epoch's members with their hybrid
public keys, every trace with its entry count, head hash and the head's signature by the
trace's own node, every job with its spec, final node, epoch, status, output digest and trace
head, and two Merkle roots (RFC 9162, :func:`xdv.trace.tree_root`): ``heads_root`` over the
trace heads (coordinator first, then nodes in index order) and ``merge.root`` over the hashes
of all entries of all traces in the global order: logical time, then node index, then sequence
number. The coordinator signs the manifest's canonical JSON (without its ``signature`` field).

:func:`verify_cluster_trace` checks all of it: each trace verifies on its own and its head is
the signed one; the roots are the ones the traces give; every placement recorded is the one the
policy gives for that epoch's members; every job's result is committed by the coordinator as
the node recorded it, from a node that was not lost, and its trace verifies to the recorded
head.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from xdv.cluster._consensus import Decision, verify_decision
from xdv.cluster._coordinator import (
    COORDINATOR,
    COORDINATOR_FORMAT,
    ClusterRun,
    jobs_digest,
    membership_of,
    placement_value,
)
from xdv.cluster._jobs import JobSpec, outputs_digest
from xdv.cluster._membership import check_node_id
from xdv.cluster._node import HEAD_CONTEXT, NODE_FORMAT, head_message
from xdv.cluster._placement import PlacementPolicy, place
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import load_json, read_bounded
from xdv.security import HybridPublicKey
from xdv.trace import EventType, TraceEntry, read_trace, tree_root, verify_trace

__all__ = [
    "MANIFEST",
    "MANIFEST_CONTEXT",
    "MANIFEST_FORMAT",
    "ClusterVerifyReport",
    "heads_root",
    "is_cluster_trace",
    "manifest_body",
    "merge_order",
    "verify_cluster_trace",
    "write_cluster_trace",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "xdv-cluster-trace"
MANIFEST_VERSION = 1
MANIFEST_CONTEXT = b"xdv-cluster-manifest"
"""Signature context of the coordinator's signature over the manifest."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _invalid(
    message: str, where: str, code: ErrorCode = ErrorCode.CLUSTER_TRACE_INVALID
) -> XdvError:
    return XdvError(message, code=code, where=where)


def _leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def heads_root(heads: Iterable[dict[str, Any]]) -> str:
    """The Merkle root (hex) over trace heads: one leaf per ``{"node", "entries", "head"}``."""
    leaves = [
        _leaf_hash(_canonical({"node": h["node"], "entries": h["entries"], "head": h["head"]}))
        for h in heads
    ]
    return tree_root(leaves).hex()


def merge_order(traces: dict[int, list[TraceEntry]]) -> list[TraceEntry]:
    """All entries of the traces (node index to entries) in the global order: logical time,
    node index, sequence number."""
    merged = [
        (entry.logical_time, index, entry.seq, entry) for index in traces for entry in traces[index]
    ]
    merged.sort(key=lambda item: item[:3])
    return [item[3] for item in merged]


def manifest_body(run: ClusterRun, coordinator_key: HybridPublicKey) -> dict[str, Any]:
    """The manifest of a finished cluster run, without its signature."""
    members = sorted(run.hellos)
    index = {node: position for position, node in enumerate(members, start=1)}
    traces = [{**_trace_record(run.coordinator), "index": 0, "file": "coordinator.xdvt"}]
    nodes = []
    for node in members:
        hello = run.hellos[node]
        bundle = run.bundles.get(node)
        nodes.append(
            {
                "node": node,
                "index": index[node],
                "entry": hello["entry"],
                "fingerprint": hello["fingerprint"],
                "domains": hello["domains"],
                "lost_in_epoch": run.lost.get(node),
            }
        )
        if bundle is not None:
            traces.append(
                {**_trace_record(bundle), "index": index[node], "file": f"nodes/{node}.xdvt"}
            )
    parsed = {
        record["index"]: read_trace(
            run.coordinator["trace"]
            if record["index"] == 0
            else run.bundles[record["node"]]["trace"]
        ).entries
        for record in traces
    }
    merged = merge_order(parsed)
    jobs = []
    for job in run.jobs:
        result, node, epoch = run.results[job.id]
        jobs.append(
            {
                "spec": job.to_record(),
                "node": node,
                "epoch": epoch,
                "status": result.status,
                "code": result.code,
                "outputs": result.outputs,
                "head": result.head,
                "file": f"jobs/{job.id}.xdvt" if result.head else None,
            }
        )
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "cluster": run.cluster,
        "policy": run.policy.to_record(),
        "coordinator": {"entry": run.coordinator_entry, "fingerprint": coordinator_key.fingerprint},
        "epochs": [
            {
                "epoch": number,
                "members": list(epoch),
                "membership": run.memberships[number],
                "decision": run.decisions[number] if number < len(run.decisions) else "",
            }
            for number, epoch in enumerate(run.epochs)
        ],
        "nodes": nodes,
        "traces": traces,
        "jobs": jobs,
        "jobs_digest": jobs_digest(run.jobs),
        "heads_root": heads_root(traces),
        "merge": {
            "entries": len(merged),
            "root": tree_root([entry.hash for entry in merged]).hex(),
        },
    }


def _trace_record(bundle: dict[str, Any]) -> dict[str, Any]:
    return {
        "node": bundle["node"],
        "entries": bundle["entries"],
        "head": bundle["head"],
        "signature": bundle["signature"],
    }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_cluster_trace(run: ClusterRun, directory: Path, keys: Any) -> dict[str, Any]:
    """Write the cluster trace of ``run`` into ``directory`` (created; it must not hold a
    manifest yet) with the manifest signed by ``keys`` (the coordinator's
    :class:`~xdv.security.HybridKeyPair`). Returns the signed manifest."""
    directory = Path(directory)
    if (directory / MANIFEST).exists():
        raise _invalid(f"{directory} already holds a cluster trace", str(directory))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise XdvError(
            f"cannot make the cluster trace's folder: {error.strerror or error}",
            code=ErrorCode.INVALID_ARGUMENT,
            where=str(directory),
        ) from None
    body = manifest_body(run, keys.public)
    _write(directory / "coordinator.xdvt", run.coordinator["trace"])
    for node, bundle in sorted(run.bundles.items()):
        _write(directory / "nodes" / f"{node}.xdvt", bundle["trace"])
        for job, data in sorted(bundle["jobs"].items()):
            if run.results.get(job, (None, None, None))[1] == node:
                _write(directory / "jobs" / f"{job}.xdvt", data)
    manifest = {**body, "signature": keys.sign(_canonical(body), context=MANIFEST_CONTEXT).hex()}
    _write(
        directory / MANIFEST,
        json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False).encode() + b"\n",
    )
    return manifest


def is_cluster_trace(path: Path) -> bool:
    """Whether ``path`` is a directory holding a cluster trace manifest."""
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


@dataclass
class ClusterVerifyReport:
    """What :func:`verify_cluster_trace` found (it raises on the first problem)."""

    cluster: str
    traces: int
    nodes: int
    lost: list[str]
    jobs: int
    epochs: int
    entries: int
    heads_root: str
    merge_root: str
    signer: str
    trusted: bool | None
    job_status: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "kind": "cluster",
            "cluster": self.cluster,
            "traces": self.traces,
            "nodes": self.nodes,
            "lost": self.lost,
            "jobs": self.jobs,
            "epochs": self.epochs,
            "entries": self.entries,
            "heads_root": self.heads_root,
            "merge_root": self.merge_root,
            "signer": self.signer,
            "trusted": self.trusted,
        }


def _load_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:  # bounded in size and nesting, like every document XDV reads
        manifest = load_json(read_bounded(path, "document_bytes_max", what="manifest"), str(path))
    except XdvError as error:
        raise _invalid(f"cannot read the manifest: {error.message}", str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise _invalid(f"the manifest is not a {MANIFEST_FORMAT} manifest", str(path))
    if manifest.get("version") != MANIFEST_VERSION:
        raise _invalid(
            f"manifest version {manifest.get('version')!r} is not {MANIFEST_VERSION}", str(path)
        )
    return manifest


def _public(record: Any, where: str) -> HybridPublicKey:
    try:
        return HybridPublicKey.from_record(record)
    except XdvError as error:
        raise _invalid(f"a public key is malformed: {error.message}", where) from None


def _signature(hex_text: Any, where: str) -> bytes:
    try:
        return bytes.fromhex(str(hex_text))
    except ValueError:
        raise _invalid(
            "a signature is not hex", where, ErrorCode.CLUSTER_SIGNATURE_INVALID
        ) from None


def _check_signature(
    key: HybridPublicKey, message: bytes, signature: Any, context: bytes, where: str
) -> None:
    try:
        key.verify(message, _signature(signature, where), context=context)
    except XdvError as error:
        raise _invalid(f"{error.message}", where, ErrorCode.CLUSTER_SIGNATURE_INVALID) from None


def verify_cluster_trace(
    directory: Path, *, trusted: set[str] | None = None
) -> ClusterVerifyReport:
    """Check the cluster trace in ``directory`` (see the module docstring); raise the first
    problem as CLUSTER_TRACE_INVALID, CLUSTER_MERGE_MISMATCH or CLUSTER_SIGNATURE_INVALID.
    ``trusted``: fingerprints allowed to sign the manifest (None: any key)."""
    directory = Path(directory)
    manifest = _load_manifest(directory)
    try:
        return _verify(directory, manifest, trusted)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise _invalid(
            f"the manifest is malformed: {type(error).__name__}: {error}", str(directory / MANIFEST)
        ) from None


def _verify(
    directory: Path, manifest: dict[str, Any], trusted: set[str] | None
) -> ClusterVerifyReport:
    body = {key: value for key, value in manifest.items() if key != "signature"}
    coordinator_key = _public(manifest["coordinator"]["entry"]["signing"], "manifest.coordinator")
    _check_signature(
        coordinator_key, _canonical(body), manifest.get("signature"), MANIFEST_CONTEXT, "manifest"
    )
    signer = coordinator_key.fingerprint
    if trusted is not None and signer not in trusted:
        raise _invalid(
            f"the manifest is signed by {signer}, not a trusted key",
            "manifest",
            ErrorCode.CLUSTER_SIGNATURE_INVALID,
        )
    cluster = manifest["cluster"]
    policy = PlacementPolicy.from_record(manifest["policy"])
    nodes = {record["node"]: record for record in manifest["nodes"]}
    keys = {COORDINATOR: coordinator_key}
    for node, record in nodes.items():
        try:  # node ids name files of the trace: only well-formed ids reach a path
            check_node_id(node, "manifest.nodes")
        except XdvError as error:
            raise _invalid(error.message, "manifest.nodes") from None
        key = _public(record["entry"]["signing"], f"node {node}")
        if record["entry"]["node"] != node:
            raise _invalid("the node's entry names another node", f"node {node}")
        if key.fingerprint != record["fingerprint"]:
            raise _invalid(
                "the node's fingerprint is not its key's",
                f"node {node}",
                ErrorCode.CLUSTER_SIGNATURE_INVALID,
            )
        keys[node] = key
    indexes = {COORDINATOR: 0, **{node: record["index"] for node, record in nodes.items()}}
    if sorted(indexes[node] for node in nodes) != list(range(1, len(nodes) + 1)) or [
        indexes[node] for node in sorted(nodes)
    ] != list(range(1, len(nodes) + 1)):
        raise _invalid("nodes are indexed 1, 2, ... in id order", "manifest.nodes")
    # Every trace: intact, complete, its head the signed one, its entries the node's.
    entries: dict[int, list[TraceEntry]] = {}
    seen: set[str] = set()
    for record in manifest["traces"]:
        node = record["node"]
        where = f"trace of {node}"
        if node not in keys or node in seen or record["index"] != indexes[node]:
            raise _invalid("a trace names an unknown node, or a node twice", where)
        seen.add(node)
        if node != COORDINATOR and nodes[node]["lost_in_epoch"] is not None:
            raise _invalid("a lost node has no trace", where)
        expected_file = "coordinator.xdvt" if node == COORDINATOR else f"nodes/{node}.xdvt"
        if record["file"] != expected_file:
            raise _invalid(f"the trace file is {expected_file}", where)
        path = directory / expected_file
        if not path.is_file():
            raise _invalid(f"{expected_file} is missing", where)
        report = verify_trace(path)
        if not report.ok:
            problem = report.error
            raise _invalid(f"{expected_file} does not verify: {problem}", where)
        if report.entries != record["entries"] or report.head_hash != record["head"]:
            raise _invalid(
                f"{expected_file} has {report.entries} entries, head "
                f"{report.head_hash[:16]}…, not the manifest's",
                where,
            )
        _check_signature(
            keys[node],
            head_message(cluster, node, record["entries"], record["head"]),
            record["signature"],
            HEAD_CONTEXT,
            where,
        )
        trace = read_trace(path).entries
        start = trace[0].metadata
        wanted_format = COORDINATOR_FORMAT if node == COORDINATOR else NODE_FORMAT
        if (
            start.get("format") != wanted_format
            or start.get("cluster") != cluster
            or start.get("key") != keys[node].fingerprint
        ):
            raise _invalid("the trace's start does not name this cluster, format and key", where)
        if any(entry.node != indexes[node] for entry in trace):
            raise _invalid("an entry carries another node's index", where)
        entries[indexes[node]] = trace
    if COORDINATOR not in seen:
        raise _invalid("the coordinator's trace is missing", "manifest.traces")
    for node, record in nodes.items():
        if record["lost_in_epoch"] is None and node not in seen:
            raise _invalid("a node that was not lost has no trace", f"node {node}")
    # The two roots.
    ordered = [record for record in manifest["traces"]]
    if [record["index"] for record in ordered] != sorted(record["index"] for record in ordered):
        raise _invalid(
            "traces are listed in node-index order",
            "manifest.traces",
            ErrorCode.CLUSTER_MERGE_MISMATCH,
        )
    if heads_root(ordered) != manifest["heads_root"]:
        raise _invalid(
            "the heads root is not the root over the trace heads",
            "manifest.heads_root",
            ErrorCode.CLUSTER_MERGE_MISMATCH,
        )
    merged = merge_order(entries)
    merge_root = tree_root([entry.hash for entry in merged]).hex()
    if manifest["merge"] != {"entries": len(merged), "root": merge_root}:
        raise _invalid(
            "the merge root is not the root of the traces' global order",
            "manifest.merge",
            ErrorCode.CLUSTER_MERGE_MISMATCH,
        )
    # Every epoch's membership: the digest its links were bound to, from the announced keys.
    announced = {node: record["entry"] for node, record in nodes.items()}
    for number, record in enumerate(manifest["epochs"]):
        if record["epoch"] != number:
            raise _invalid("epochs are numbered 0, 1, ...", "manifest.epochs")
        try:
            digest = membership_of(
                number, manifest["coordinator"]["entry"], record["members"], announced
            ).digest()
        except XdvError as error:
            raise _invalid(f"epoch {number}: {error.message}", "manifest.epochs") from None
        if digest != record["membership"]:
            raise _invalid(
                f"epoch {number}'s membership digest is not its members'",
                "manifest.epochs",
                ErrorCode.CLUSTER_MERGE_MISMATCH,
            )
    _check_coordination(directory, manifest, entries, policy, indexes)
    return ClusterVerifyReport(
        cluster=cluster,
        traces=len(entries),
        nodes=len(nodes),
        lost=sorted(node for node, record in nodes.items() if record["lost_in_epoch"] is not None),
        jobs=len(manifest["jobs"]),
        epochs=len(manifest["epochs"]),
        entries=len(merged),
        heads_root=manifest["heads_root"],
        merge_root=merge_root,
        signer=signer,
        trusted=None if trusted is None else True,
        job_status={job["spec"]["id"]: job["status"] for job in manifest["jobs"]},
    )


def _check_agreements(
    manifest: dict[str, Any],
    placements: dict[int, dict[str, list[str]]],
    epochs: list[list[str]],
    lost_in: dict[str, int],
    committed_in: set[int],
) -> None:
    """Every epoch that ran batches carries the members' decision on exactly its placement,
    with a quorum certificate under the members' announced keys. Only an epoch that a lost
    member ended before its members agreed (a CLUSTER_NODE_LOST entry of that epoch in the
    coordinator's trace, and no commit in it) may carry none."""
    entries = {record["node"]: record["entry"] for record in manifest["nodes"]}
    for number, record in enumerate(manifest["epochs"]):
        where = f"epoch {number}"
        if not record["decision"]:
            if number not in lost_in.values() or number in committed_in:
                raise _invalid(
                    "the epoch carries no agreement, and no member was lost before it",
                    where,
                    ErrorCode.CLUSTER_SIGNATURE_INVALID,
                )
            continue  # an epoch ended by a lost member before its members agreed
        try:
            decision = Decision.from_record(cbor2.loads(bytes.fromhex(record["decision"])))
            keys = {
                node: HybridPublicKey.from_record(entries[node]["signing"])
                for node in epochs[number]
            }
            verify_decision(decision, keys)
        except (XdvError, ValueError, cbor2.CBORDecodeError) as error:
            raise _invalid(
                f"the agreement does not verify: {error}",
                where,
                ErrorCode.CLUSTER_SIGNATURE_INVALID,
            ) from None
        expected = placement_value(
            number, record["membership"], epochs[number], placements.get(number, {})
        )
        if decision.value != expected:
            raise _invalid(
                "the members agreed on another placement than the recorded one",
                where,
                ErrorCode.CLUSTER_MERGE_MISMATCH,
            )


def _check_coordination(
    directory: Path,
    manifest: dict[str, Any],
    entries: dict[int, list[TraceEntry]],
    policy: PlacementPolicy,
    indexes: dict[str, int],
) -> None:
    """Placements, commits and job traces against the policy and the node traces."""
    directory_jobs = manifest["jobs"]
    specs = [JobSpec.from_record(job["spec"]) for job in directory_jobs]
    if jobs_digest(specs) != manifest["jobs_digest"]:
        raise _invalid("the jobs digest is not the jobs'", "manifest.jobs")
    coordinator = entries[0]
    if (
        coordinator[0].metadata.get("jobs") != [spec.id for spec in specs]
        or coordinator[0].metadata.get("jobs_digest") != manifest["jobs_digest"]
    ):
        raise _invalid("the coordinator's trace names other jobs", "coordinator.xdvt")
    if coordinator[0].metadata.get("policy") != policy.to_record():
        raise _invalid("the coordinator's trace names another policy", "coordinator.xdvt")
    needs = {spec.id: spec.needs for spec in specs}
    epochs = [record["members"] for record in manifest["epochs"]]
    commits: dict[str, dict[str, Any]] = {}
    placements: dict[int, dict[str, list[str]]] = {}
    lost_in: dict[str, int] = {}
    for entry in coordinator:
        data = entry.metadata
        if entry.event_type is EventType.CLUSTER_EPOCH:
            members = [member["node"] for member in data["members"]]
            if (
                data["epoch"] >= len(epochs)
                or members != epochs[data["epoch"]]
                or data["membership"] != manifest["epochs"][data["epoch"]]["membership"]
            ):
                raise _invalid(
                    f"epoch {data['epoch']} has other members than the manifest's",
                    "coordinator.xdvt",
                )
        elif entry.event_type in (EventType.CLUSTER_PLACE, EventType.CLUSTER_JOB_MOVE):
            members = epochs[data["epoch"]]
            expected = place(data["job"], members, policy, needs=needs[data["job"]])
            placements.setdefault(data["epoch"], {}).setdefault(data["node"], []).append(
                data["job"]
            )
            if data["node"] != expected:
                raise _invalid(
                    f"job {data['job']} was placed on {data['node']} in epoch "
                    f"{data['epoch']}; the policy places it on {expected}",
                    "coordinator.xdvt",
                    ErrorCode.CLUSTER_MERGE_MISMATCH,
                )
        elif entry.event_type is EventType.CLUSTER_COMMIT:
            if data["job"] in commits:
                raise _invalid(
                    f"job {data['job']} is committed twice",
                    "coordinator.xdvt",
                    ErrorCode.CLUSTER_MERGE_MISMATCH,
                )
            if data["job"] not in placements.get(data["epoch"], {}).get(data["node"], []):
                raise _invalid(
                    f"job {data['job']} is committed from {data['node']} in epoch "
                    f"{data['epoch']}, where it was not placed",
                    "coordinator.xdvt",
                    ErrorCode.CLUSTER_MERGE_MISMATCH,
                )
            commits[data["job"]] = data
        elif entry.event_type is EventType.CLUSTER_NODE_LOST:
            lost_in.setdefault(data["node"], data["epoch"])
    recorded_lost = {
        record["node"]: record["lost_in_epoch"]
        for record in manifest["nodes"]
        if record["lost_in_epoch"] is not None
    }
    if recorded_lost != lost_in:
        raise _invalid(
            "the manifest's lost nodes are not those the coordinator's trace records",
            "manifest.nodes",
            ErrorCode.CLUSTER_MERGE_MISMATCH,
        )
    committed_in = {commit["epoch"] for commit in commits.values()}
    _check_agreements(manifest, placements, epochs, lost_in, committed_in)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    names = {index: node for node, index in indexes.items()}
    for index, trace in entries.items():
        for entry in trace:
            if entry.event_type is EventType.CLUSTER_JOB_DONE:
                done[(names[index], entry.metadata["job"])] = entry.metadata
    lost = {record["node"] for record in manifest["nodes"] if record["lost_in_epoch"] is not None}
    for job in directory_jobs:
        job_id = job["spec"]["id"]
        where = f"job {job_id}"
        commit = commits.get(job_id)
        node_record = done.get((job["node"], job_id))
        if commit is None or node_record is None:
            raise _invalid(
                "the job has no commit by the coordinator or no result in its node's trace", where
            )
        if job["node"] in lost:
            raise _invalid("the job's result comes from a lost node", where)
        facts = (job["node"], job["epoch"], job["status"], job["outputs"], job["head"])
        if (
            commit["node"],
            commit["epoch"],
            commit["status"],
            commit["outputs"],
            commit["head"],
        ) != facts:
            raise _invalid("the coordinator committed another result than the manifest's", where)
        if (
            job["node"],
            node_record["epoch"],
            node_record["status"],
            node_record["outputs"],
            node_record["head"],
        ) != facts:
            raise _invalid("the node recorded another result than the manifest's", where)
        if outputs_digest(list(node_record["lines"])) != job["outputs"]:
            raise _invalid("the job's lines do not match their digest", where)
        if job["head"]:
            if job["file"] != f"jobs/{job_id}.xdvt":
                raise _invalid(f"the job's trace file is jobs/{job_id}.xdvt", where)
            path = directory / job["file"]
            if not path.is_file():
                raise _invalid(f"{job['file']} is missing", where)
            report = verify_trace(path)
            if not report.ok or report.head_hash != job["head"]:
                raise _invalid(f"{job['file']} does not verify to the recorded head", where)
