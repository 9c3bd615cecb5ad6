"""XDV on more than one machine: XDV nodes as Ray actors, deterministic placement, sealed
node-to-node transport, agreement on the cluster's decisions, and a merged, verifiable cluster
trace.

The unit of distribution is a job (:class:`JobSpec`: a whole run of a workload, a DPL program
or a Q circuit). The coordinator places each job on a node by rendezvous hashing over the
epoch's members (:func:`place`), nodes run their batches and keep their own traces, and the
coordinator writes a cluster trace (:func:`write_cluster_trace`) that
:func:`verify_cluster_trace` checks. Ray is only loaded by :mod:`xdv.cluster._ray`
(:func:`run_on_ray`, :class:`RayBackend`). Node identities and memberships
(:class:`Membership`), sealed links (:class:`Link`) and the agreement replicas
(:class:`Replica`) are the cluster's transport and consensus layers."""

from typing import TYPE_CHECKING, Any

from xdv.cluster._consensus import (
    ConsensusError,
    Decision,
    Message,
    Replica,
    verify_certificate,
    verify_decision,
    verify_decisions,
)
from xdv.cluster._consensus_sim import SimResult, simulate
from xdv.cluster._coordinator import (
    COORDINATOR,
    Backend,
    ClusterRun,
    Coordinator,
    FirstNodes,
    LocalBackend,
    NodeLost,
    cluster_id,
    coordinator_identity,
    jobs_digest,
    membership_of,
    placement_value,
)
from xdv.cluster._jobs import JOB_KINDS, JobResult, JobSpec, outputs_digest, run_job
from xdv.cluster._membership import Membership, NodeEntry, NodeIdentity
from xdv.cluster._node import HEAD_CONTEXT, ClusterNode, head_message
from xdv.cluster._placement import ALGORITHM, PlacementPolicy, assignment, place
from xdv.cluster._trace import (
    MANIFEST,
    MANIFEST_CONTEXT,
    ClusterVerifyReport,
    heads_root,
    is_cluster_trace,
    manifest_body,
    merge_order,
    verify_cluster_trace,
    write_cluster_trace,
)
from xdv.cluster._transport import Link

__all__ = [
    "ALGORITHM",
    "COORDINATOR",
    "HEAD_CONTEXT",
    "JOB_KINDS",
    "MANIFEST",
    "MANIFEST_CONTEXT",
    "Backend",
    "ClusterNode",
    "ClusterRun",
    "ClusterVerifyReport",
    "ConsensusError",
    "Coordinator",
    "Decision",
    "FirstNodes",
    "JobResult",
    "JobSpec",
    "Link",
    "LocalBackend",
    "Membership",
    "Message",
    "NodeEntry",
    "NodeIdentity",
    "NodeLost",
    "PlacementPolicy",
    "RayBackend",
    "Replica",
    "SimResult",
    "assignment",
    "cluster_id",
    "coordinator_identity",
    "head_message",
    "heads_root",
    "is_cluster_trace",
    "jobs_digest",
    "manifest_body",
    "membership_of",
    "merge_order",
    "outputs_digest",
    "place",
    "placement_value",
    "run_job",
    "run_on_ray",
    "simulate",
    "start_ray",
    "verify_certificate",
    "verify_cluster_trace",
    "verify_decision",
    "verify_decisions",
    "write_cluster_trace",
]

_RAY = ("RayBackend", "run_on_ray", "start_ray")

if TYPE_CHECKING:
    from xdv.cluster._ray import RayBackend, run_on_ray, start_ray


def __getattr__(name: str) -> Any:
    """Load the Ray backend on first use: importing xdv.cluster never imports Ray."""
    if name not in _RAY:
        raise AttributeError(f"module 'xdv.cluster' has no attribute {name!r}")
    from xdv.cluster import _ray

    value = getattr(_ray, name)
    globals()[name] = value
    return value
