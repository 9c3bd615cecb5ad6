"""Cluster benchmarks: throughput of independent Q jobs on 1 and 2 Ray node actors, the
per-job cost of remote placement against running the same jobs in this process, Ray's own
round trip, and the cluster's start-up.

The work: ``--jobs`` (default 200) independent OpenQASM 2 jobs on ``--qubits`` (default 20)
qubits, each a layer of H, one of RZ (angles differ per job) and one of CX, measured with
``--shots`` shots, run through the Q domain's real job path (:func:`xdv.runtime.q_job` inside
:func:`xdv.cluster.run_job`: parse, checks, admission, Aer statevector, a trace per job). Every
process simulates with one thread (``OMP_NUM_THREADS=1``): one node is one core.

Per repeat, in this order: the local run (every job in this process, one after the other, the
same ``run_job`` call the nodes make), then a cluster run on 1 node and one on 2 nodes (the
coordinator places all jobs, each node gets its whole batch in one message, answers are taken
in node order). Figures: the median and [min, max] over the repeats of the wall time of each,
throughput scaling (1-node time over 2-node time, per repeat), and the per-job overhead of
remote placement ((1-node time - local time) / jobs, per repeat). Because wall time on a shared
machine mostly measures the other work on it, the overhead is also given in processor time,
which waits do not count: (coordinator's and node's processor time for the 1-node run - this
process's processor time for the local run) / jobs. One-off costs are timed once:
starting Ray, starting the node actors, each node's first job (it imports Qiskit and Aer).
Ray's round trip: ``--pings`` no-op actor calls one at a time, and the same number submitted
together and then collected (batched).

Run: ``python benchmarks/cluster.py [--quick] [--jobs N] [--repeats R]``; ``--quick``: 24 jobs
on 12 qubits, one repeat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from statistics import median

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

from xdv.cluster import (
    Coordinator,
    FirstNodes,
    JobSpec,
    RayBackend,
    run_job,
    start_ray,
)
from xdv.security import HybridKeyPair

SCALING_MIN = 1.7
OVERHEAD_MAX_MS = 2.0


def circuit(number: int, qubits: int) -> str:
    """A 20-qubit (by default) circuit of modest depth; its angles depend on ``number``."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];"]
    lines += [f"h q[{i}];" for i in range(qubits)]
    lines += [f"rz({0.1 * (number % 17 + 1) + 0.01 * i:.4f}) q[{i}];" for i in range(qubits)]
    lines += [f"cx q[{i}],q[{i + 1}];" for i in range(0, qubits - 1, 2)]
    lines.append("measure q -> c;")
    return "\n".join(lines)


def make_jobs(count: int, qubits: int, shots: int) -> list[JobSpec]:
    return [
        JobSpec(f"q{number:04d}", "q", circuit(number, qubits), seed=number, shots=shots)
        for number in range(count)
    ]


CPU: list[float] = []


def local(jobs: list[JobSpec]) -> tuple[float, list[str]]:
    """Every job in this process; the wall time and the output digests."""
    directory = Path(tempfile.mkdtemp(prefix="xdv-bench-"))
    try:
        start = time.perf_counter()
        cpu = time.process_time()
        results = [
            run_job(job, directory / f"{job.id}.xdvt", directory / "keys", directory / "w")
            for job in jobs
        ]
        elapsed = time.perf_counter() - start
        CPU.append(time.process_time() - cpu)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert all(result.status == "ok" for result in results), results[0]
    return elapsed, [result.outputs for result in results]


def clustered(
    backend: RayBackend, nodes: int, jobs: list[JobSpec], key: HybridKeyPair
) -> tuple[float, list[str]]:
    import ray

    actors = [backend.actor(node) for node in backend.nodes[:nodes]]
    before = sum(ray.get([actor.cpu_seconds.remote() for actor in actors]))
    start = time.perf_counter()
    cpu = time.process_time()
    run = Coordinator(FirstNodes(backend, nodes), key).run(jobs)
    elapsed = time.perf_counter() - start
    used = time.process_time() - cpu
    CPU.append(used + sum(ray.get([actor.cpu_seconds.remote() for actor in actors])) - before)
    assert run.ok
    return elapsed, [run.results[job.id][0].outputs for job in jobs]


def summary(values: list[float], unit: str, scale: float = 1.0) -> str:
    scaled = [value * scale for value in values]
    return f"{median(scaled):.3f} [{min(scaled):.3f}, {max(scaled):.3f}] {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--shots", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.qubits, args.repeats = 24, 12, 1
    jobs = make_jobs(args.jobs, args.qubits, args.shots)
    key = HybridKeyPair.generate()
    print(
        f"cluster benchmark: {args.jobs} Q jobs of {args.qubits} qubits, {args.shots} shots, "
        f"{args.repeats} repeats, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    local(jobs[:1])  # this process's first job imports Qiskit and Aer: not counted

    start = time.perf_counter()
    start_ray(num_cpus=2)
    ray_start = time.perf_counter() - start
    start = time.perf_counter()
    backend = RayBackend(2, env_extra={"OMP_NUM_THREADS": "1"})
    backend.ready()
    actors_start = time.perf_counter() - start
    start = time.perf_counter()
    warm = Coordinator(backend, key).run(
        [
            JobSpec(f"warm-{n}", "q", circuit(n, args.qubits), seed=n, shots=args.shots)
            for n in range(8)
        ]
    )
    first_jobs = time.perf_counter() - start
    assert warm.ok
    print(
        f"start-up: Ray {ray_start:.2f} s, 2 node actors {actors_start:.2f} s, "
        f"first jobs on both nodes (imports) {first_jobs:.2f} s"
    )

    import ray

    actor = backend.actor(backend.nodes[0])
    ray.get(actor.ping.remote())
    single = []
    for _ in range(args.pings):
        start = time.perf_counter()
        ray.get(actor.ping.remote())
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    ray.get([actor.ping.remote() for _ in range(args.pings)])
    batched = (time.perf_counter() - start) / args.pings
    print(
        f"Ray round trip: one at a time {summary(single, 'ms', 1000)}; "
        f"batched {batched * 1000:.3f} ms per call"
    )

    times: dict[str, list[float]] = {"local": [], "1 node": [], "2 nodes": []}
    scaling, overhead, overhead_cpu = [], [], []
    for repeat in range(args.repeats):
        CPU.clear()
        local_time, expected = local(jobs)
        local_cpu_time = CPU[0]
        CPU.clear()
        one_time, one = clustered(backend, 1, jobs, key)
        overhead_cpu.append((CPU[0] - local_cpu_time) / args.jobs)
        two_time, two = clustered(backend, 2, jobs, key)
        assert one == expected and two == expected, "a node's results differ from the local run"
        times["local"].append(local_time)
        times["1 node"].append(one_time)
        times["2 nodes"].append(two_time)
        scaling.append(one_time / two_time)
        overhead.append((one_time - local_time) / args.jobs)
        print(
            f"repeat {repeat + 1}: local {local_time:.2f} s, 1 node {one_time:.2f} s, "
            f"2 nodes {two_time:.2f} s (load {os.getloadavg()[0]:.1f})"
        )
    for name, values in times.items():
        throughput = [args.jobs / value for value in values]
        print(f"{name:8}: {summary(values, 's')}; {summary(throughput, 'jobs/s')}")
    print(f"scaling 2 nodes / 1 node: {summary(scaling, 'x')} (target >= {SCALING_MIN})")
    print(
        f"remote placement overhead per job: {summary(overhead, 'ms', 1000)} "
        f"(target <= {OVERHEAD_MAX_MS} ms)"
    )
    print(
        f"remote placement overhead per job, processor time: "
        f"{summary(overhead_cpu, 'ms', 1000)} (target <= {OVERHEAD_MAX_MS} ms)"
    )
    print("results: every job's output digest equal on the local run, 1 node and 2 nodes")
    backend.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
