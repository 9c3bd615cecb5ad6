"""The node service on loopback: acknowledged submissions per second and their latency with 32
concurrent clients, end-to-end completed K-only DPL jobs per second, and one-off costs.

    python benchmarks/service.py [--repeats 3] [--requests 2000] [--jobs 200] [--clients 32]

A real ``xdv serve`` (2 runners) is started for each repeat on a fresh home. Acknowledgements:
``--clients`` asyncio clients (one process, keep-alive connections) each submit tiny DPL jobs
as fast as the node answers; an answer is a 202 sent after the job row is committed (SQLite WAL,
synchronous=NORMAL). The runners make the jobs' runs meanwhile, on the same two cores, as they
would in use. End to end: ``--jobs`` K-only DPL jobs submitted at once, timed from the first
submission until the last has ended; the peer is the same runs made one after the other in one
process through ``xdv.runtime.run`` (same work, same trace and signed audit per run). One-off
costs: the server's start until its first answer, and the first job's turnaround. Medians and
[min, max] over the repeats; the machine is shared, so compare figures of the same run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TINY = 'K main { emit "ok"; }'
FINISHED = {"succeeded", "failed", "cancelled", "interrupted"}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_node(home: Path) -> tuple[subprocess.Popen[str], str, float]:
    begun = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "xdv", "serve", "--port", "0", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "XDV_HOME": str(home)},
    )
    assert process.stdout is not None
    url = process.stdout.readline().split()[4]
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.02)
    return process, url, time.perf_counter() - begun


async def acknowledgements(url: str, token: str, requests: int, clients: int) -> dict[str, float]:
    latencies: list[float] = []
    remaining = [requests]
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            begun = time.perf_counter()
            answer = await http.post("/v1/jobs", json={"kind": "dpl", "source": TINY})
            latencies.append(time.perf_counter() - begun)
            assert answer.status_code == 202, answer.text

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        await http.get("/v1/jobs")  # one warm request (token verified once, then cached)
        begun = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - begun
    latencies.sort()
    return {
        "acks_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def end_to_end(url: str, token: str, jobs: int) -> float:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        begun = time.perf_counter()
        ids = [
            http.post("/v1/jobs", json={"kind": "dpl", "source": TINY, "seed": n}).json()["id"]
            for n in range(jobs)
        ]
        for job_id in ids:
            while http.get(f"/v1/jobs/{job_id}").json()["state"] not in FINISHED:
                time.sleep(0.01)
        return jobs / (time.perf_counter() - begun)


def first_job(url: str, token: str) -> float:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        begun = time.perf_counter()
        job_id = http.post("/v1/jobs", json={"kind": "dpl", "source": TINY}).json()["id"]
        while http.get(f"/v1/jobs/{job_id}").json()["state"] not in FINISHED:
            time.sleep(0.005)
        return time.perf_counter() - begun


def in_process_peer(home: Path, jobs: int) -> float:
    """The same runs through xdv.runtime.run in one process, one after the other."""
    from xdv.runtime import RunRequest, run
    from xdv.service import job_workload

    document = {"kind": "dpl", "source": TINY, "params": {}, "tenant_name": "bench"}
    document.update({"weight": 1, "quotas": {}})
    begun = time.perf_counter()
    for n in range(jobs):
        folder = home / "peer" / str(n)
        folder.mkdir(parents=True)
        workload = job_workload(document, folder)
        outcome = run(
            RunRequest(
                workload,
                seed=n,
                trace=folder / "trace.xdvt",
                key_store=home / "keys",
                handle_signals=False,
                policy="fair-share",
            )
        )
        assert outcome.ok
    return jobs / (time.perf_counter() - begun)


def worker_start_cost(home: Path, repeats: int) -> list[float] | None:
    """Seconds to run a trivial Python workload isolated in a worker process minus in process,
    if the runtime offers isolation."""
    import xdv.runtime as runtime

    if not hasattr(runtime, "WorkerLimits"):
        return None
    source = home / "trivial.py"
    source.write_text("def main(kernel):\n    pass\n", encoding="utf-8")
    costs = []
    for _ in range(repeats):
        timings = {}
        for mode in ("inprocess", "process"):
            workload = runtime.load_workload(str(source))
            begun = time.perf_counter()
            try:
                runtime.run(runtime.RunRequest(workload, handle_signals=False, isolation=mode))
            except Exception:  # the interface without its implementation
                return None
            timings[mode] = time.perf_counter() - begun
        costs.append(timings["process"] - timings["inprocess"])
    return costs


def summary(values: list[float], unit: str, digits: int = 1) -> str:
    return (
        f"median {statistics.median(values):.{digits}f} {unit} "
        f"[{min(values):.{digits}f}, {max(values):.{digits}f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    arguments = parser.parse_args()
    from xdv.service import create_tenant

    figures: dict[str, list[float]] = {}
    for repeat in range(arguments.repeats):
        with tempfile.TemporaryDirectory() as folder:
            home = Path(folder)
            token = create_tenant(home, "bench")["token"]
            process, url, started = start_node(home)
            try:
                time.sleep(2.0)  # the runners finish starting before anything is timed
                figures.setdefault("first_job_s", []).append(first_job(url, token))
                cpu_before = cpu_seconds(process.pid)
                acks = asyncio.run(
                    acknowledgements(url, token, arguments.requests, arguments.clients)
                )
                acks["server_cpu_ms_per_ack"] = (
                    1000 * (cpu_seconds(process.pid) - cpu_before) / arguments.requests
                )
                for name, value in acks.items():
                    figures.setdefault(name, []).append(value)
                # Let the acknowledged jobs drain before the end-to-end figure.
                with httpx.Client(base_url=url) as http:
                    while http.get("/v1/health").json()["queued"] > 0:
                        time.sleep(0.1)
                figures.setdefault("node_jobs_per_s", []).append(
                    end_to_end(url, token, arguments.jobs)
                )
            finally:
                process.terminate()
                process.wait()
            figures.setdefault("start_s", []).append(started)
            figures.setdefault("peer_jobs_per_s", []).append(in_process_peer(home, arguments.jobs))
            print(
                f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.3g}" for k, v in figures.items())
            )
    print(
        f"\n{arguments.clients} clients, {arguments.requests} submissions per repeat, "
        f"{arguments.repeats} repeats (median [min, max]):"
    )
    print(f"  acknowledged submissions/s  {summary(figures['acks_per_s'], '/s')}  (target >= 500)")
    print(f"  latency p50                 {summary(figures['p50_ms'], 'ms')}")
    print(f"  latency p99                 {summary(figures['p99_ms'], 'ms')}  (target <= 50)")
    print(
        f"  server CPU per ack          {summary(figures['server_cpu_ms_per_ack'], 'ms', 2)}"
        "  (its capacity on one free core: 1000 / this acks/s)"
    )
    print(
        f"  completed K-only DPL jobs/s {summary(figures['node_jobs_per_s'], '/s')}  "
        f"(node, 2 runners, {arguments.jobs} jobs)"
    )
    print(
        f"  peer: same runs in process  {summary(figures['peer_jobs_per_s'], '/s')}  "
        "(xdv.runtime.run, one after the other)"
    )
    print(f"  server start to first answer {summary(figures['start_s'], 's', 2)}")
    print(f"  first job turnaround        {summary(figures['first_job_s'], 's', 3)}")
    with tempfile.TemporaryDirectory() as folder:
        costs = worker_start_cost(Path(folder), arguments.repeats)
    if costs is None:
        print("  worker process start cost   not measured: the runtime has no process isolation")
    else:
        print(f"  worker process start cost   {summary([c * 1000 for c in costs], 'ms')}")


if __name__ == "__main__":
    main()
