"""Orchestration benchmark: traced kernel events per second against a bare heapq loop and SimPy.

The workload is the same in all three engines: ``processes`` processes, each doing ``rounds``
iterations of "wait one time unit". In XDV that is ``yield Sleep(1)`` (one traced SLEEP entry
per iteration plus a DISPATCH entry at every context switch); in SimPy ``yield env.timeout(1)``
(untraced); in the bare loop a heap of (time, pid, seq) and ``generator.send`` (untraced).

It prints, from one run on one machine:

* events per second of each engine (XDV counts every trace entry it wrote), and XDV's rate as
  a fraction of SimPy's (target: at least 0.5);
* XDV workload iterations per second, for a like-for-like reading against SimPy's events;
* bytes per trace entry (target: at most 150);
* replay (re-execute) speed against capture speed (target: replay no slower).

Usage: ``python benchmarks/orchestration.py [--processes N] [--rounds N] [--repeat N]``
"""

from __future__ import annotations

import argparse
import gc
import heapq
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from xdv.core import Kernel
from xdv.runtime import replay
from xdv.syscalls import Sleep
from xdv.trace import TraceWriter

WORKLOAD_SOURCE = """
from xdv.syscalls import Sleep


def sleeper(rounds):
    for _ in range(rounds):
        yield Sleep(1)


def main(kernel):
    for _ in range({processes}):
        kernel.spawn(sleeper, {rounds})
"""


def interleaved(
    repeat: int, engines: dict[str, Callable[[], tuple[int, float]]]
) -> dict[str, tuple[int, float]]:
    """Run every engine once per round, ``repeat`` rounds; return (count, median seconds) each.

    Rounds interleave the engines so that a slow spell of the machine hits all of them, and the
    garbage collector is paused while timing, for every engine alike (as ``timeit`` does).
    """
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in engines}
    for _ in range(repeat):
        for name, function in engines.items():
            gc.collect()
            gc.disable()
            try:
                runs[name].append(function())
            finally:
                gc.enable()
    return {
        name: (results[0][0], statistics.median(seconds for _, seconds in results))
        for name, results in runs.items()
    }


def xdv_sleeper(rounds: int) -> Generator[Any, Any, None]:
    for _ in range(rounds):
        yield Sleep(1)


def run_xdv(processes: int, rounds: int, path: Path | None) -> tuple[int, float, int]:
    writer = TraceWriter(path, fsync="batch" if path else "never")
    kernel = Kernel(0, trace=writer)
    for _ in range(processes):
        kernel.spawn(xdv_sleeper, rounds)
    start = time.perf_counter()
    result = kernel.run()
    seconds = time.perf_counter() - start
    return result.events, seconds, writer.bytes_written


def run_simpy(processes: int, rounds: int) -> tuple[int, float]:
    import simpy

    environment = simpy.Environment()
    count = [0]

    def sleeper() -> Generator[Any, Any, None]:
        for _ in range(rounds):
            yield environment.timeout(1)
            count[0] += 1

    for _ in range(processes):
        environment.process(sleeper())
    start = time.perf_counter()
    environment.run()
    return count[0], time.perf_counter() - start


def run_heapq(processes: int, rounds: int) -> tuple[int, float]:
    def sleeper() -> Generator[int, None, None]:
        for _ in range(rounds):
            yield 1

    heap: list[tuple[int, int, int, Generator[int, None, None]]] = []
    sequence = 0
    for pid in range(processes):
        heap.append((0, pid, sequence, sleeper()))
        sequence += 1
    heapq.heapify(heap)
    count = 0
    start = time.perf_counter()
    while heap:
        now, pid, _, generator = heapq.heappop(heap)
        try:
            delay = next(generator)
        except StopIteration:
            continue
        count += 1
        sequence += 1
        heapq.heappush(heap, (now + delay, pid, sequence, generator))
    return count, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args(argv)
    processes, rounds, repeat = arguments.processes, arguments.rounds, arguments.repeat
    print(f"workload: {processes} processes x {rounds} sleeps; median of {repeat} runs")
    print(f"python {sys.version.split()[0]}")

    xdv_bytes = run_xdv(processes, rounds, None)[2]
    with tempfile.TemporaryDirectory() as folder:
        trace_path = Path(folder) / "bench.xdvt"
        measured = interleaved(
            repeat,
            {
                "heapq": lambda: run_heapq(processes, rounds),
                "simpy": lambda: run_simpy(processes, rounds),
                "xdv": lambda: run_xdv(processes, rounds, None)[:2],
                "xdv-file": lambda: run_xdv(processes, rounds, trace_path)[:2],
            },
        )
        heap_events, heap_seconds = measured["heapq"]
        simpy_events, simpy_seconds = measured["simpy"]
        xdv_events, xdv_seconds = measured["xdv"]
        file_events, file_seconds = measured["xdv-file"]
        workload = Path(folder) / "bench_workload.py"
        workload.write_text(WORKLOAD_SOURCE.format(processes=processes, rounds=rounds))
        from xdv.runtime import run_workload

        capture_times, replay_times = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            captured = run_workload(str(workload), trace=trace_path)
            capture_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = replay(trace_path)
            replay_times.append(time.perf_counter() - start)
            if not report.ok:
                print("replay diverged!", report.divergence)
                return 1
        capture_seconds = statistics.median(capture_times)
        replay_seconds = statistics.median(replay_times)

    iterations = processes * rounds
    simpy_rate = simpy_events / simpy_seconds
    xdv_rate = xdv_events / xdv_seconds
    rows = [
        ("bare heapq loop (untraced)", heap_events, heap_seconds),
        ("SimPy 4 (untraced)", simpy_events, simpy_seconds),
        ("XDV kernel, trace in memory", xdv_events, xdv_seconds),
        ("XDV kernel, trace file, batch fsync", file_events, file_seconds),
    ]
    print(f"{'engine':40} {'events':>10} {'seconds':>9} {'events/s':>12}")
    for name, events, seconds in rows:
        print(f"{name:40} {events:>10} {seconds:>9.3f} {events / seconds:>12,.0f}")
    print(f"XDV traced events/s as a fraction of SimPy's: {xdv_rate / simpy_rate:.2f} (target 0.5)")
    print(
        f"XDV workload iterations/s: {iterations / xdv_seconds:,.0f} "
        f"(SimPy {simpy_rate:,.0f}; {xdv_events / iterations:.2f} entries per iteration)"
    )
    print(f"bytes per trace entry: {xdv_bytes / xdv_events:.1f} (target <= 150)")
    print(
        f"capture (run_workload, file trace): {capture_seconds:.3f} s; "
        f"replay (re-execute, compare): {replay_seconds:.3f} s; "
        f"replay/capture = {replay_seconds / capture_seconds:.2f} (target <= 1.0); "
        f"{captured.events / replay_seconds:,.0f} entries/s replayed"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
