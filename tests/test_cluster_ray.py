"""The cluster on Ray (one local Ray instance for the module): nodes as Ray actors, `xdv
cluster run` printing what `xdv run` prints for 1 to 4 nodes, a node actor killed mid-run
(ray.kill) whose jobs move at the next epoch, and the command line joining this Ray instance
through --address."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import ROOT, xdv
from xdv.cli._common import cli
from xdv.cluster import (
    Coordinator,
    FirstNodes,
    JobSpec,
    RayBackend,
    place,
    start_ray,
    verify_cluster_trace,
    write_cluster_trace,
)
from xdv.security import HybridKeyPair

pytestmark = pytest.mark.system

ray = pytest.importorskip("ray")

KEY = HybridKeyPair.from_seed(bytes(32))
# A hybrid example, a Q workload, a Q and Φ workload, a DPL program (Q, Φ, a witness).
TARGETS = [
    "examples/hybrid_offload.py",
    "examples/shared_qpu.py",
    "examples/multi_tenant.py",
    "examples/hybrid.ds",
]
SEED = 11


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    os.chdir(ROOT)
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    started = start_ray(num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        if started:
            ray.shutdown()


@pytest.fixture(scope="module")
def backend(address: str) -> Iterator[RayBackend]:
    nodes = RayBackend(4, key_seeds=[bytes([n]) * 32 for n in range(1, 5)])
    nodes.ready()
    yield nodes
    nodes.shutdown()


@pytest.fixture(scope="module")
def alone() -> list[str]:
    """What `xdv run TARGET --seed S` prints, target by target."""
    os.chdir(ROOT)
    runner = CliRunner()
    lines = []
    for target in TARGETS:
        result = runner.invoke(cli, ["run", target, "--seed", str(SEED)])
        assert result.exit_code == 0, result.output
        lines.extend(result.stdout.splitlines())
    return lines


def jobs() -> list[JobSpec]:
    return [JobSpec(f"job-{n}", "run", target, seed=SEED) for n, target in enumerate(TARGETS)]


@pytest.mark.spec("XDV-041-3.1")
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_ray_nodes_print_what_xdv_run_prints(
    backend: RayBackend, alone: list[str], count: int, tmp_path: Path
) -> None:
    run = Coordinator(FirstNodes(backend, count), KEY).run(jobs())
    assert run.ok
    assert run.lines() == alone
    write_cluster_trace(run, tmp_path / "trace", KEY)
    report = verify_cluster_trace(tmp_path / "trace")
    assert report.nodes == count and report.jobs == len(TARGETS)


@pytest.mark.spec("XDV-041-7")
def test_the_command_joins_a_ray_cluster_by_address(
    address: str, alone: list[str], tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    env = {"XDV_HOME": str(tmp_path / "home"), "RAY_DISABLE_IMPORT_WARNING": "1"}
    done = xdv(
        "cluster",
        "run",
        *TARGETS[:2],
        "--nodes",
        "2",
        "--seed",
        str(SEED),
        "--address",
        address,
        "--trace",
        str(trace),
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == alone[: len(done.stdout.splitlines())]
    checked = xdv("verify", str(trace), "--json", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["jobs"] == 2


@pytest.mark.spec("XDV-041-6.3")
def test_a_killed_node_actor_s_jobs_move_and_results_equal_the_fault_free_run(
    address: str, tmp_path: Path
) -> None:
    # Nodes of its own: the killed actor is gone for good, and the module's shared nodes stay
    # whole whatever order the tests run in. The fault-free run on the same four nodes is made
    # here too (tests of this module may run in different workers).
    backend = RayBackend(4, key_seeds=[bytes([n]) * 32 for n in range(1, 5)])
    backend.ready()
    try:
        _killed_node_run(backend, tmp_path)
    finally:
        backend.shutdown()


def _killed_node_run(backend: RayBackend, tmp_path: Path) -> None:
    fault_free = Coordinator(FirstNodes(backend, 4), KEY).run(jobs())
    assert fault_free.ok
    victim = next(node for _, node, _ in fault_free.results.values())
    killed: list[str] = []

    def on_dispatch(epoch: int, batches: dict[str, list[str]]) -> None:
        if epoch == 0:
            backend.kill(victim)  # while its batch is in flight
            killed.append(victim)

    run = Coordinator(FirstNodes(backend, 4), KEY).run(jobs(), on_dispatch=on_dispatch)
    assert killed == [victim] and run.lost == {victim: 0}
    rest = [node for node in run.epochs[0] if node != victim]
    moved = 0
    for job in jobs():
        result, node, epoch = run.results[job.id]
        assert result == fault_free.results[job.id][0]
        assert node == place(job.id, rest)
        moved += epoch
    assert moved >= 1
    write_cluster_trace(run, tmp_path / "trace", KEY)
    report = verify_cluster_trace(tmp_path / "trace")
    assert report.lost == [victim] and report.epochs == 2
