"""``xdv cluster run``: jobs on a cluster of XDV nodes (Ray actors, or nodes in this process).

The cluster package (and Ray) is imported inside the command, never when ``xdv`` starts.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import (
    EXIT_ADMISSIBILITY,
    EXIT_CONTRACT,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STATIC,
    EXIT_USAGE,
    echo_output,
    err_console,
    fail,
)
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import decode_text, load_json, read_bounded
from xdv.runtime import NodeKey
from xdv.security import HybridKeyPair

__all__ = ["register"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXIT_BY_CODE = {
    ErrorCode.DPL_ADMISSIBILITY.name: EXIT_ADMISSIBILITY,
    ErrorCode.DPL_CONTRACT_VIOLATION.name: EXIT_CONTRACT,
}


@click.group()
def cluster() -> None:
    """Run jobs on a cluster of XDV nodes (docs/cluster.md)."""


def _job_id(index: int, target: str) -> str:
    stem = Path(target.split(":", 1)[0]).stem or "job"
    return f"{index:04d}-{_UNSAFE.sub('_', stem)}"[:64]


def _jobs(targets: tuple[str, ...], seed: int, entry: str | None, shots: int) -> list[Any]:
    from xdv.cluster import JobSpec

    jobs = []
    for index, target in enumerate(targets):
        job_id = _job_id(index, target)
        if target.endswith((".qasm", ".qasm3")):
            path = Path(target)
            text = decode_text(read_bounded(path, "source_bytes_max", what="circuit"), target)
            jobs.append(JobSpec(job_id, "q", text, seed=seed, shots=shots))
        else:
            jobs.append(JobSpec(job_id, "run", target, seed=seed, entry=entry))
    return jobs


def _exit_code(run: Any) -> int:
    for result, _, _ in run.results.values():
        if result.status == "refused":
            return EXIT_STATIC
    for result, _, _ in run.results.values():
        if result.status != "ok":
            return _EXIT_BY_CODE.get(result.code or "", EXIT_RUNTIME)
    return EXIT_OK


@cluster.command("run")
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--nodes",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="Number of XDV nodes (Ray actors).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**64 - 1),
    default=0,
    show_default=True,
    help="Every job's run seed (a job's randomness derives from it alone).",
)
@click.option(
    "--trace",
    "trace_dir",
    type=click.Path(path_type=Path),
    help="Write the cluster trace (a directory: manifest, node traces, job traces) here.",
)
@click.option(
    "--address",
    help="Ray cluster to join (HOST:PORT of `ray start --head`, or auto); default: start a "
    "local Ray instance.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Run the nodes in this process instead of as Ray actors (no Ray needed).",
)
@click.option("--entry", help="DPL programs (.ds): the K process to run (default main).")
@click.option(
    "--shots",
    type=click.IntRange(1, 1 << 20),
    default=1024,
    show_default=True,
    help="Shots of each OpenQASM (.qasm) job.",
)
@click.option(
    "--placement",
    "placement_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Placement policy (JSON: algorithm, salt, weights, domains; docs/cluster.md).",
)
@click.option(
    "--key-store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Key store whose key signs the cluster trace (default $XDV_HOME/keys).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def cluster_run(
    targets: tuple[str, ...],
    nodes: int,
    seed: int,
    trace_dir: Path | None,
    address: str | None,
    local: bool,
    entry: str | None,
    shots: int,
    placement_path: Path | None,
    key_store: Path | None,
    as_json: bool,
) -> None:
    """Run TARGETS (Python workloads, DPL programs, OpenQASM circuits), each a whole job, on a
    cluster of NODES XDV nodes.

    Each job is placed on a node by rendezvous hashing over the nodes (deterministic: the job
    id, the members and the policy decide, never timing); nodes keep their own traces. Emitted
    lines are printed job by job in the order given: for one target exactly what `xdv run
    TARGET --seed S` prints. A node that dies moves its jobs, at the next epoch, to the others.
    With --trace the coordinator writes a signed cluster trace that `xdv verify DIR` checks."""
    from xdv.cluster import (
        ClusterNode,
        Coordinator,
        LocalBackend,
        PlacementPolicy,
        run_on_ray,
        write_cluster_trace,
    )

    if local and address:
        raise click.UsageError("--local runs the nodes in this process; it takes no --address")
    try:
        jobs = _jobs(targets, seed, entry, shots)
        policy = (
            PlacementPolicy.from_record(
                load_json(
                    read_bounded(placement_path, "document_bytes_max", what="policy"),
                    str(placement_path),
                )
            )
            if placement_path is not None
            else PlacementPolicy()
        )
        keys = NodeKey(key_store).keys() if trace_dir is not None else HybridKeyPair.generate()
    except XdvError as error:
        fail(error, EXIT_USAGE, as_json)
    try:
        if local:
            members = [ClusterNode(f"node-{n:0{len(str(nodes))}d}") for n in range(1, nodes + 1)]
            try:
                run = Coordinator(LocalBackend(members), keys, policy=policy).run(jobs)
            finally:
                for member in members:
                    member.shutdown()
        else:
            run = run_on_ray(jobs, nodes=nodes, keys=keys, policy=policy, address=address)
        if trace_dir is not None:
            write_cluster_trace(run, trace_dir, keys)
    except XdvError as error:
        fail(error, EXIT_RUNTIME, as_json)
    exit_code = _exit_code(run)
    if as_json:
        document = {
            "ok": run.ok,
            "cluster": run.cluster,
            "nodes": sorted(run.hellos),
            "epochs": run.epochs,
            "lost": run.lost,
            "trace": None if trace_dir is None else str(trace_dir),
            "signer": keys.public.fingerprint,
            "jobs": [
                {
                    "id": job.id,
                    "node": node,
                    "epoch": epoch,
                    **{k: v for k, v in result.to_record().items() if k != "job"},
                    "outputs": result.outputs,
                }
                for job in run.jobs
                for result, node, epoch in [run.results[job.id]]
            ],
            "exit_code": exit_code,
        }
        click.echo(json.dumps(document, sort_keys=True))
    else:
        for line in run.lines():
            echo_output(line)
        for job in run.jobs:
            result, node, _ = run.results[job.id]
            if result.status != "ok":
                err_console.print(
                    f"[bold red]job {job.id}[/] on {node}: {result.status}"
                    + (f" ({result.code}: {result.message})" if result.code else "")
                )
        lost = f", lost {', '.join(sorted(run.lost))}" if run.lost else ""
        where = (
            f"trace {trace_dir}, signed by {keys.public.fingerprint[:16]}…"
            if trace_dir
            else "trace not saved (use --trace DIR)"
        )
        err_console.print(
            f"[dim]{'ok' if run.ok else 'failed'}: {len(run.jobs)} jobs on {len(run.hellos)} "
            f"nodes, {len(run.epochs)} epochs{lost}, cluster {run.cluster}, {where}[/]"
        )
    sys.exit(exit_code)


def register(group: click.Group) -> None:
    """Add ``xdv cluster`` to the ``xdv`` command group."""
    group.add_command(cluster)
