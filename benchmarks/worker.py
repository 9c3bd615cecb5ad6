"""Isolated workloads benchmark: what running a workload's code in a worker process costs.

Three measurements, each printed as the median and range (min–max) over ``--repeat`` rounds:

* ``start``: one worker started and stopped (a fresh interpreter importing XDV, the workload
  sent and compiled there, the stop message), wall time and the worker's CPU time. This is the
  one-off cost of every isolated run.
* ``round trip``: the same workload (one process making ``--calls`` ``Now`` system calls) run
  by the kernel in process and isolated, the worker already started; microseconds per system
  call of ``kernel.run`` alone: wall, the kernel process's CPU and the worker's CPU. The two
  modes alternate round by round, so a slow spell of a shared machine hits both.
* ``small run``: the whole ``run_workload`` of ``examples/ping_pong.py`` (load, worker start,
  setup, run, stop) in process and isolated, alternating, wall milliseconds.

Usage: ``python benchmarks/worker.py [--repeat N] [--calls N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xdv.runtime import load_workload, make_kernel, run_workload
from xdv.runtime._isolation import WorkerSession, worker_session

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """
from xdv.syscalls import Now

def caller(calls):
    for _ in range(calls):
        yield Now()

def main(kernel, calls):
    kernel.spawn(caller, calls)
"""


def _child_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(values: list[float], unit: str) -> str:
    return (
        f"median {statistics.median(values):9.1f} {unit}  "
        f"range {min(values):9.1f}–{max(values):9.1f} {unit}"
    )


def start_cost(target: str, repeat: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    workload = load_workload(target, params={"calls": 1}, isolation="process")
    for _ in range(repeat):
        began = time.perf_counter()
        session = WorkerSession(workload)
        pid = session.process.pid if session.process else 0
        cpu = _child_cpu(pid)
        session.close()
        walls.append((time.perf_counter() - began) * 1e3)
        cpus.append(cpu * 1e3)
    return walls, cpus


def round_trip(target: str, isolation: str, calls: int) -> tuple[float, float, float]:
    """Microseconds per system call of kernel.run: wall, the kernel's CPU, the worker's CPU."""
    workload = load_workload(target, params={"calls": calls}, isolation=isolation)
    with worker_session(workload, isolation, None) as (loaded, setup):
        kernel = make_kernel(0, workload=loaded.to_record())
        setup(kernel)
        session_pid = None
        function = setup
        owner = getattr(function, "__self__", None)
        if isinstance(owner, WorkerSession) and owner.process is not None:
            session_pid = owner.process.pid
        worker_before = _child_cpu(session_pid) if session_pid else 0.0
        cpu_before = time.process_time()
        began = time.perf_counter()
        result = kernel.run()
        wall = time.perf_counter() - began
        cpu = time.process_time() - cpu_before
        worker = _child_cpu(session_pid) - worker_before if session_pid else 0.0
    assert result.ok, result.status
    return wall / calls * 1e6, cpu / calls * 1e6, worker / calls * 1e6


def alternate(repeat: int, runs: dict[str, Callable[[], Any]]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, function in runs.items():
            found[name].append(function())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        target = str(Path(folder) / "caller.py")
        Path(target).write_text(WORKLOAD)

        walls, cpus = start_cost(target, options.repeat)
        print(f"worker start ({options.repeat} rounds)")
        print(f"  wall                 {_summary(walls, 'ms')}")
        print(f"  worker CPU           {_summary(cpus, 'ms')}")

        found = alternate(
            options.repeat,
            {
                mode: (lambda mode=mode: round_trip(target, mode, options.calls))
                for mode in ("inprocess", "process")
            },
        )
        print(f"system call round trip ({options.calls} Now calls, {options.repeat} rounds)")
        for mode, values in found.items():
            print(f"  {mode:9} wall        {_summary([item[0] for item in values], 'µs')}")
            print(f"  {mode:9} kernel CPU  {_summary([item[1] for item in values], 'µs')}")
            if mode == "process":
                print(f"  {mode:9} worker CPU  {_summary([item[2] for item in values], 'µs')}")
        ratio = [
            isolated[0] / inprocess[0]
            for inprocess, isolated in zip(found["inprocess"], found["process"], strict=True)
        ]
        print(f"  isolated / in process (wall, per round): {_summary(ratio, 'x')}")

    def small(mode: str) -> float:
        began = time.perf_counter()
        result = run_workload(str(ROOT / "examples" / "ping_pong.py"), seed=7, isolation=mode)
        assert result.ok
        return (time.perf_counter() - began) * 1e3

    runs = alternate(
        options.repeat, {mode: (lambda mode=mode: small(mode)) for mode in ("inprocess", "process")}
    )
    print(f"small run: examples/ping_pong.py, whole run_workload ({options.repeat} rounds)")
    for mode, values in runs.items():
        print(f"  {mode:9} wall        {_summary(values, 'ms')}")


if __name__ == "__main__":
    main()
