"""A cluster of several Ray nodes on this machine (ray.cluster_utils.Cluster): each XDV node
actor pinned to its own Ray node by a custom resource; one Ray node's processes are killed
while its batch is in flight, and its jobs move to the other node at the next epoch with the
results of the fault-free run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT
from xdv.cluster import (
    ClusterNode,
    ClusterRun,
    Coordinator,
    JobSpec,
    LocalBackend,
    RayBackend,
    place,
    start_ray,
    verify_cluster_trace,
    write_cluster_trace,
)
from xdv.security import HybridKeyPair

pytestmark = pytest.mark.system

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

KEY = HybridKeyPair.from_seed(bytes(32))
JOBS = [
    JobSpec(f"offload-{seed}", "run", "examples/hybrid_offload.py", seed=seed) for seed in range(6)
] + [JobSpec("primes", "run", "examples/primes.ds", seed=1)]


@pytest.fixture(scope="module")
def machines() -> Iterator[tuple[Any, list[Any]]]:
    os.chdir(ROOT)
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 80 * 1024 * 1024},
    )
    workers = [
        cluster.add_node(
            num_cpus=1,
            resources={f"xdv-slot-{n}": 1},
            object_store_memory=80 * 1024 * 1024,
        )
        for n in (1, 2)
    ]
    cluster.wait_for_nodes()
    start_ray(cluster.address)
    try:
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def backend() -> RayBackend:
    nodes = RayBackend(
        2,
        key_seeds=[bytes([n]) * 32 for n in (1, 2)],
        actor_options=[{"resources": {f"xdv-slot-{n}": 1}} for n in (1, 2)],
    )
    nodes.ready()
    return nodes


@pytest.mark.spec("XDV-041-6.3")
def test_a_killed_ray_node_s_jobs_move_to_the_other(
    machines: tuple[Any, list[Any]], tmp_path: Path
) -> None:
    cluster, workers = machines
    # The fault-free run, with the same node keys, in this process.
    local = [ClusterNode(f"node-{n}", key_seed=bytes([n]) * 32) for n in (1, 2)]
    fault_free: ClusterRun = Coordinator(LocalBackend(local), KEY).run(JOBS)
    for member in local:
        member.shutdown()
    assert fault_free.ok
    nodes = backend()
    victim = fault_free.results[JOBS[0].id][1]  # a node that holds a job
    index = nodes.nodes.index(victim)

    def on_dispatch(epoch: int, batches: dict[str, list[str]]) -> None:
        if epoch == 0:
            cluster.remove_node(workers[index])  # the Ray node's processes die

    run = Coordinator(nodes, KEY).run(JOBS, on_dispatch=on_dispatch)
    nodes.shutdown()
    survivor = next(node for node in nodes.nodes if node != victim)
    assert run.lost == {victim: 0} and run.epochs == [nodes.nodes, [survivor]]
    for job in JOBS:
        result, node, _ = run.results[job.id]
        assert result == fault_free.results[job.id][0]
        assert node == survivor == place(job.id, [survivor])
    write_cluster_trace(run, tmp_path / "trace", KEY)
    assert verify_cluster_trace(tmp_path / "trace").lost == [victim]
