"""The node's job queue and its bounded pool of runners.

Queued jobs are ordered across tenants by the core's weighted fair-share policy
(:class:`xdv.core.FairSharePolicy`, the kernel's own scheduling policy object): each tenant is a
VHM with the weight it was created with, a job gets its key when it is queued, and a runner
takes the job with the smallest key; after a run the tenant is charged the steps it used, so a
tenant of weight 2 gets twice the service of a tenant of weight 1 when both have work queued.

Jobs that need a scarce device wait in a lane of their own: Q jobs (``qasm``) for the node's Q
device and Φ jobs (``bqm``, ``gset``) for its Φ device, each lane holding at most one running
job (inside the run, the kernel's admission queue grants the job's reservation). K work (DPL
programs, Python workloads) may use every runner.

Each runner is a process (:mod:`xdv.service._runner`) served by one thread of the server; the
thread takes a job, marks it running (committed), sends it, waits for the report and records
it. Cancelling a running job sends the runner SIGINT: the run ends cleanly as interrupted and
the job is recorded as cancelled. A runner that dies (killed, out of memory) fails its job with
SERVICE_RUNNER_FAILED and is replaced.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from xdv.core import FairSharePolicy
from xdv.errors import ErrorCode
from xdv.service._store import NodeStore
from xdv.trace import Domain

__all__ = ["LANES", "RunnerPool", "lane_of"]

LANES = {"k": None, "q": 1, "phi": 1}
"""Lanes and how many jobs of each may run at once (None: as many as there are runners)."""


def lane_of(kind: str) -> str:
    """The lane a job of ``kind`` queues in."""
    if kind == "qasm":
        return "q"
    if kind in ("bqm", "gset"):
        return "phi"
    return "k"


@dataclass(slots=True)
class _Queued:
    """A queued job as the fair-share policy sees it (a process-like record: ``pid`` is the
    job's submission number, ``vhm`` its tenant, ``ready_at`` the queue's logical time)."""

    pid: int
    vhm: int
    ready_at: int
    job_id: str
    kind: str


@dataclass
class _Runner:
    index: int
    process: subprocess.Popen[str] | None = None
    replies: IO[str] | None = None
    job: str | None = None
    cancelled: bool = False
    started: int = 0
    thread: threading.Thread | None = field(default=None, repr=False)


class RunnerPool:
    """The queue and the runners (see the module docstring)."""

    def __init__(
        self,
        store: NodeStore,
        home: Path,
        runners: int,
        *,
        on_finish: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self._home = home
        self._condition = threading.Condition()
        self._policy = FairSharePolicy()
        self._weights: dict[int, int] = {}
        self._policy.attach(lambda vhm: self._weights.get(vhm, 1))
        self._lanes: dict[str, list[tuple[tuple[Any, ...], str]]] = {lane: [] for lane in LANES}
        self._queued: dict[str, _Queued] = {}
        self._running: dict[str, int] = dict.fromkeys(LANES, 0)
        self._clock = 0
        self._stopping = False
        self._on_finish = on_finish
        self.runners = [_Runner(index) for index in range(runners)]
        self.restarts = 0

    # ------------------------------------------------------------ the queue

    def enqueue(self, job: dict[str, Any], tenant_weight: int) -> None:
        """Queue an acknowledged job (committed as ``queued``)."""
        with self._condition:
            self._clock += 1
            self._weights[job["tenant"]] = tenant_weight
            item = _Queued(job["seq"], job["tenant"], self._clock, job["id"], job["kind"])
            key = self._policy.key(cast(Any, item), self._clock)
            self._queued[job["id"]] = item
            heapq.heappush(self._lanes[lane_of(job["kind"])], (key, job["id"]))
            self._condition.notify()

    def depth(self) -> int:
        with self._condition:
            return len(self._queued)

    def running(self) -> int:
        with self._condition:
            return sum(self._running.values())

    def _take(self) -> _Queued | None:
        """The next job by fair-share key among lanes with room (None when stopping)."""
        with self._condition:
            while True:
                if self._stopping:
                    return None
                best: tuple[tuple[Any, ...], str, str] | None = None
                for lane, heap in self._lanes.items():
                    while heap and heap[0][1] not in self._queued:
                        heapq.heappop(heap)  # cancelled while queued
                    capacity = LANES[lane]
                    if not heap or (capacity is not None and self._running[lane] >= capacity):
                        continue
                    if best is None or heap[0][0] < best[0]:
                        best = (heap[0][0], heap[0][1], lane)
                if best is not None:
                    heapq.heappop(self._lanes[best[2]])
                    item = self._queued.pop(best[1])
                    self._policy.dispatched(cast(Any, item))
                    self._running[best[2]] += 1
                    return item
                self._condition.wait()

    def _done(self, item: _Queued, steps: int) -> None:
        with self._condition:
            self._running[lane_of(item.kind)] -= 1
            self._policy.charge(item.vhm, Domain.K, float(steps))
            self._condition.notify_all()

    def withdraw(self, job_id: str) -> bool:
        """Take a queued job out of the queue (it was cancelled); False if not queued here."""
        with self._condition:
            return self._queued.pop(job_id, None) is not None

    def cancel_running(self, job_id: str) -> bool:
        """Interrupt the run of ``job_id`` if a runner is making it (SIGINT)."""
        for runner in self.runners:
            if runner.job == job_id and runner.process is not None:
                runner.cancelled = True
                with contextlib.suppress(ProcessLookupError):
                    runner.process.send_signal(signal.SIGINT)
                return True
        return False

    # ------------------------------------------------------------ the runners

    def start(self) -> None:
        for runner in self.runners:
            runner.thread = threading.Thread(
                target=self._serve, args=(runner,), name=f"xdv-runner-{runner.index}", daemon=True
            )
            runner.thread.start()

    def stop(self) -> None:
        """Stop taking jobs and end the runners (a job they were running stays ``running`` in
        the database and is made again at the next start)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for runner in self.runners:
            if runner.process is not None and runner.process.poll() is None:
                runner.process.kill()

    def _spawn(self, runner: _Runner) -> None:
        read_fd, write_fd = os.pipe()
        environment = {**os.environ, "XDV_HOME": str(self._home)}
        runner.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                # A SIGINT (a cancel) is remembered from the first instruction, before the
                # runner's imports: a cancel sent while it starts is neither its death nor lost.
                "import signal; pending = []; "
                "signal.signal(signal.SIGINT, lambda number, frame: pending.append(number)); "
                "from xdv.service._runner import main; main(pending=pending)",
                "--reply-fd",
                str(write_fd),
                "--parent",
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,),
            text=True,
            env=environment,
            cwd=str(self._home),
        )
        os.close(write_fd)
        runner.replies = os.fdopen(read_fd, "r", encoding="utf-8")
        runner.started += 1

    def _serve(self, runner: _Runner) -> None:
        self._spawn(runner)  # warm before the first job: its start-up is not the job's
        while True:
            item = self._take()
            if item is None:
                return
            steps = 0
            try:
                report = self._run_one(runner, item)
                if report is not None:
                    steps = int((report.get("result") or {}).get("steps") or 0)
            finally:
                self._done(item, steps)

    def _run_one(self, runner: _Runner, item: _Queued) -> dict[str, Any] | None:
        if not self._store.start_job(item.job_id):
            return None  # cancelled between the queue and here
        job = self._store.job(item.job_id)
        tenant = None if job is None else self._store.tenant_by_id(job["tenant"])
        if job is None or tenant is None:
            return None
        document = {
            "kind": job["kind"],
            "source": job["source"],
            "params": job["params"],
            "seed": job["seed"],
            "tenant_name": tenant["name"],
            "weight": tenant["weight"],
            "quotas": tenant["quotas"],
            "home": str(self._home),
            "trace": str(self._home / "traces" / job["id"] / "trace.xdvt"),
        }
        if runner.process is None or runner.process.poll() is not None:
            if runner.process is not None:
                self.restarts += 1
            self._spawn(runner)
        assert runner.process is not None and runner.process.stdin is not None
        assert runner.replies is not None
        runner.job = job["id"]
        runner.cancelled = job["cancel_requested"]
        begun = time.monotonic()
        try:
            runner.process.stdin.write(json.dumps(document) + "\n")
            runner.process.stdin.flush()
            line = runner.replies.readline()
        except (BrokenPipeError, OSError):
            line = ""
        finally:
            runner.job = None
        if self._stopping:
            return None  # the server is going down: the job is made again at the next start
        if not line:  # the runner died
            runner.process.kill()
            runner.process.wait()
            runner.process = None
            report: dict[str, Any] = {
                "state": "cancelled" if runner.cancelled else "failed",
                "exit_code": 137,
                "outputs": [],
                "error": {
                    "code": ErrorCode.SERVICE_RUNNER_FAILED.name,
                    "message": "the runner making this job's run ended before it reported",
                },
            }
        else:
            report = json.loads(line)
            if runner.cancelled and report["state"] == "interrupted":
                report["state"] = "cancelled"
        report["wall_seconds"] = time.monotonic() - begun
        self._store.finish_job(job["id"], report["state"], report)
        if self._on_finish is not None:
            self._on_finish(job["id"], report["state"], report)
        return report
