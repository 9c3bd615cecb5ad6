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
import json
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


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one HTTP/1.1 request on a kept-alive connection; return the answer's status."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def acknowledgements(
    url: str, token: str, requests: int, clients: int, rate: float | None = None
) -> dict[str, float]:
    """``clients`` connections, each sending submissions one after the other (a minimal
    HTTP/1.1 keep-alive client on asyncio streams, so that the load generator costs far less
    processor time than the server it measures). Without ``rate`` each client sends its next
    request when the last is answered (the most the node acknowledges); with ``rate`` the
    clients together send ``rate`` requests a second on a fixed schedule, and a latency is
    counted from the request's scheduled time (a late send counts against the node)."""
    latencies: list[float] = []
    remaining = [requests]
    address = httpx.URL(url)
    body = json.dumps({"kind": "dpl", "source": TINY}).encode()
    request = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: {address.host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    interval = None if rate is None else clients / rate
    start = time.perf_counter() + 0.05

    async def client(index: int) -> None:
        reader, writer = await asyncio.open_connection(address.host, address.port)
        sent = 0
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                if interval is None:
                    begun = time.perf_counter()
                else:
                    begun = start + interval * (sent + index / clients)
                    await asyncio.sleep(max(0.0, begun - time.perf_counter()))
                sent += 1
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - begun)
                assert status == 202, status
        finally:
            writer.close()

    begun = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(clients)))
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
        # Poll the node's counts (not each job) every 20 ms: the poller stays off the
        # runners' processor time.
        while True:
            health = http.get("/v1/health").json()
            if health["queued"] == 0 and health["running"] == 0:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - begun
        listed = http.get("/v1/jobs", params={"limit": jobs}).json()["jobs"]
        assert {job["id"] for job in listed} == set(ids)
        assert all(job["state"] == "succeeded" for job in listed)
        return jobs / elapsed


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
            workload = runtime.load_workload(str(source), isolation=mode)
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
                paced = asyncio.run(
                    acknowledgements(url, token, arguments.requests, arguments.clients, 500.0)
                )
                figures.setdefault("paced_p50_ms", []).append(paced["p50_ms"])
                figures.setdefault("paced_p99_ms", []).append(paced["p99_ms"])
                figures.setdefault("paced_acks_per_s", []).append(paced["acks_per_s"])
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
    print(
        f"  acknowledged submissions/s  {summary(figures['acks_per_s'], '/s')}  (target >= 500; "
        "each client sends when answered)"
    )
    print(f"  latency p50                 {summary(figures['p50_ms'], 'ms')}")
    print(f"  latency p99                 {summary(figures['p99_ms'], 'ms')}  (closed loop)")
    print(
        f"  at 500 submissions/s offered: {summary(figures['paced_acks_per_s'], '/s')} "
        f"acknowledged, p50 {summary(figures['paced_p50_ms'], 'ms')}, "
        f"p99 {summary(figures['paced_p99_ms'], 'ms')}  (target p99 <= 50)"
    )
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
