"""Orchestration benchmark: the XDV kernel on equal work against SimPy and a bare heapq loop.

The workload is the same in all three engines: ``processes`` processes, each doing ``rounds``
iterations of "wait one time unit". In XDV that is ``yield Sleep(1)``, traced (a SLEEP entry
per iteration, plus a DISPATCH entry on a context switch whose first step is not the sleep); in
SimPy ``yield env.timeout(1)`` (untraced); in the bare loop a heap of (time, pid, seq) and
``generator.send`` (untraced).

The headline is the **equal-work ratio**: workload iterations per second of the XDV kernel
(tracing, hashing and chaining every entry, in memory or to a file with batched fsync) divided
by SimPy's iterations per second on the same workload (target: at least 0.4). Each round runs
every engine once, interleaved, so a slow spell of the machine hits all of them; the ratio is
taken per round, and the median and range (min–max) over the rounds are printed. Also printed:

* iterations per second of each engine, and trace entries per second and per iteration of XDV;
* bytes per trace entry (target: at most 150);
* replay (re-execute, comparing every entry) against capture speed, both through the runtime
  layer with a file trace (target: replay no slower);
* the cost of virtual hybrid machines: the same workload with its processes spread over
  ``--vhms`` VHMs, each bounding processes and steps (so every time slice is checked against
  and charged to a quota), against the run without VHMs, round by round (target: at least 0.9);
* one-off costs: each engine's set-up (building it and creating the processes, outside the
  timed run above), and the first XDV run of the process (a warm-up, before the rounds).

Targets apply to the median.

With ``--cpu-time`` every engine is timed by this process's CPU time instead of wall time: on a
machine other work keeps busy, wall-time rates swing with the load while CPU time stays close
to the work done (the ratios are what to compare).

Usage: ``python benchmarks/orchestration.py [--processes N] [--rounds N] [--repeat N] [--vhms N]
[--cpu-time]``
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
from xdv.runtime import replay, run_workload
from xdv.syscalls import Sleep
from xdv.trace import TraceWriter

clock: Callable[[], float] = time.perf_counter  # time.process_time with --cpu-time

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
    repeat: int, engines: dict[str, Callable[[], tuple[int, float, float]]]
) -> dict[str, list[tuple[int, float, float]]]:
    """Run every engine once per round, ``repeat`` rounds; return each engine's (count,
    seconds, set-up seconds) per round.

    The garbage collector is paused while timing, for every engine alike (as ``timeit`` does).
    """
    runs: dict[str, list[tuple[int, float, float]]] = {name: [] for name in engines}
    for _ in range(repeat):
        for name, function in engines.items():
            gc.collect()
            gc.disable()
            try:
                runs[name].append(function())
            finally:
                gc.enable()
    return runs


def xdv_sleeper(rounds: int) -> Generator[Any, Any, None]:
    for _ in range(rounds):
        yield Sleep(1)


def run_xdv(
    processes: int, rounds: int, path: Path | None, vhms: int = 0
) -> tuple[int, float, float, int]:
    """(trace entries, seconds, set-up seconds, trace bytes) of one traced kernel run; with
    ``vhms``, the processes are spread round-robin over that many VHMs with process and step
    quotas. The set-up builds the trace writer and the kernel and spawns the processes."""
    setup = clock()
    writer = TraceWriter(path, fsync="batch" if path else "never")
    kernel = Kernel(0, trace=writer)
    quotas = {"processes": processes, "steps": 2 * processes * (rounds + 1)}
    tenants = [kernel.create_vhm(f"tenant-{index}", quotas=quotas) for index in range(vhms)]
    for number in range(processes):
        kernel.spawn(xdv_sleeper, rounds, vhm=tenants[number % vhms] if vhms else None)
    start = clock()
    result = kernel.run()
    seconds = clock() - start
    if not result.ok:
        raise SystemExit(f"the XDV run failed: {result.status}")
    return result.events, seconds, start - setup, writer.bytes_written


def run_simpy(processes: int, rounds: int) -> tuple[int, float, float]:
    """(iterations, seconds, set-up seconds) of SimPy on the same workload."""
    import simpy

    setup = clock()
    environment = simpy.Environment()
    count = [0]

    def sleeper() -> Generator[Any, Any, None]:
        for _ in range(rounds):
            yield environment.timeout(1)
            count[0] += 1

    for _ in range(processes):
        environment.process(sleeper())
    start = clock()
    environment.run()
    return count[0], clock() - start, start - setup


def run_heapq(processes: int, rounds: int) -> tuple[int, float, float]:
    """(iterations, seconds, set-up seconds) of a bare heap-and-generators loop."""
    setup = clock()

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
    start = clock()
    while heap:
        now, pid, _, generator = heapq.heappop(heap)
        try:
            delay = next(generator)
        except StopIteration:
            continue
        count += 1
        sequence += 1
        heapq.heappush(heap, (now + delay, pid, sequence, generator))
    return count, clock() - start, start - setup


def spread(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    """``median (min–max)`` of ``values``."""
    low, middle, high = min(values), statistics.median(values), max(values)
    if digits == 0:
        return f"{middle * scale:,.0f} ({low * scale:,.0f}–{high * scale:,.0f})"
    return f"{middle * scale:.{digits}f} ({low * scale:.{digits}f}–{high * scale:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vhms", type=int, default=4)
    parser.add_argument("--cpu-time", action="store_true", help="time by CPU time, not wall time")
    arguments = parser.parse_args(argv)
    global clock
    clock = time.process_time if arguments.cpu_time else time.perf_counter
    processes, rounds, repeat = arguments.processes, arguments.rounds, arguments.repeat
    vhms = max(1, arguments.vhms)
    iterations = processes * rounds
    print(f"workload: {processes} processes x {rounds} sleeps; {repeat} rounds, median (range)")
    timer = "CPU" if arguments.cpu_time else "wall"
    print(f"python {sys.version.split()[0]}; timed by {timer} time")

    entries, first_run, first_setup, trace_bytes = run_xdv(processes, rounds, None)  # warm-up
    with tempfile.TemporaryDirectory() as folder:
        trace_path = Path(folder) / "bench.xdvt"
        runs = interleaved(
            repeat,
            {
                "heapq": lambda: run_heapq(processes, rounds),
                "simpy": lambda: run_simpy(processes, rounds),
                "xdv": lambda: run_xdv(processes, rounds, None)[:3],
                "xdv-vhm": lambda: run_xdv(processes, rounds, None, vhms)[:3],
                "xdv-file": lambda: run_xdv(processes, rounds, trace_path)[:3],
            },
        )
        workload = Path(folder) / "bench_workload.py"
        workload.write_text(WORKLOAD_SOURCE.format(processes=processes, rounds=rounds))
        capture_times, replay_times = [], []
        for _ in range(repeat):
            start = clock()
            captured = run_workload(str(workload), trace=trace_path)
            capture_times.append(clock() - start)
            start = clock()
            report = replay(trace_path)
            replay_times.append(clock() - start)
            if not report.ok:
                print("replay diverged!", report.divergence)
                return 1

    if runs["simpy"][0][0] != iterations or runs["heapq"][0][0] != iterations:
        raise SystemExit("the engines did not do the same work")
    seconds = {name: [elapsed for _, elapsed, _ in results] for name, results in runs.items()}
    setups = {name: [setup for _, _, setup in results] for name, results in runs.items()}
    rates = {name: [iterations / elapsed for elapsed in values] for name, values in seconds.items()}
    print(f"{'engine':40} {'iterations/s, median (range)':>36} {'set-up ms (one-off)':>26}")
    for name, label in (
        ("heapq", "bare heapq loop (untraced)"),
        ("simpy", "SimPy 4 (untraced)"),
        ("xdv", "XDV kernel, trace in memory"),
        ("xdv-vhm", f"XDV kernel, in memory, {vhms} VHMs"),
        ("xdv-file", "XDV kernel, trace file, batch fsync"),
    ):
        print(f"{label:40} {spread(rates[name], 0):>36} {spread(setups[name], 1, 1e3):>26}")
    for name, label in (("xdv", "trace in memory"), ("xdv-file", "trace file")):
        # Equal work, so the ratio of rates is the inverse ratio of times, round by round.
        ratios = [
            simpy_seconds / xdv_seconds
            for simpy_seconds, xdv_seconds in zip(seconds["simpy"], seconds[name], strict=True)
        ]
        print(
            f"equal-work ratio, XDV ({label}) / SimPy: {spread(ratios)}   "
            "(workload iterations per second; target >= 0.4)"
        )
    vhm_ratios = [
        plain / with_vhms
        for plain, with_vhms in zip(seconds["xdv"], seconds["xdv-vhm"], strict=True)
    ]
    print(
        f"VHM cost: rate with {vhms} VHMs (process and step quotas) / rate without: "
        f"{spread(vhm_ratios)}   (equal work, trace in memory; target >= 0.9)"
    )
    entry_rates = [entries / elapsed for elapsed in seconds["xdv"]]
    print(
        f"XDV trace entries/s (in memory): {spread(entry_rates, 0)}; "
        f"{entries / iterations:.3f} entries per iteration"
    )
    print(f"bytes per trace entry: {trace_bytes / entries:.1f} (target <= 150)")
    print(
        f"first XDV run in this process (warm-up, trace in memory): set-up "
        f"{first_setup * 1e3:.1f} ms, run {first_run:.3f} s"
    )
    ratio = [played / took for played, took in zip(replay_times, capture_times, strict=True)]
    print(
        f"capture (run_workload, file trace): {spread(capture_times, 3)} s; "
        f"replay (re-execute, compare): {spread(replay_times, 3)} s; "
        f"replay/capture = {spread(ratio)} (target <= 1.0); "
        f"{captured.events / statistics.median(replay_times):,.0f} entries/s replayed"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
