"""Telemetry costs: deriving a snapshot from a trace, and exporting it, for traces of 1k, 10k
and 100k entries.

Prints, as median [min, max] over ``--repeat`` rounds, in milliseconds:
- ``read``: the trace reader alone (``scan_trace``: check, decode and chain every entry), the
  peer, on the same file;
- ``snapshot``: ``metrics_from_trace`` (the same checks, streamed, plus every metric, span and
  alert);
- ``prometheus``, ``otlp-json``: formatting the snapshot;
- and the snapshot's rate in entries per second.
One-off cost: the first snapshot in a fresh process (imports of OpenTelemetry and
prometheus_client included) is timed separately.

The traces come from a K workload of processes that emit, yield and call a K lane (so that
they have invocations, spans and context switches), written with fsync off.

Run: python benchmarks/telemetry.py [--sizes 1000,10000,100000 --repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

from xdv.core import Kernel
from xdv.syscalls import Emit, Invoke, Release, Reserve, Yield
from xdv.trace import scan_trace

PROCESSES = 8


def square(value: int) -> int:
    return value * value


def worker(rounds: int) -> Generator[Any, Any, None]:
    for index in range(rounds):
        yield Emit(index)
        yield Yield()
        if index % 10 == 0:
            lane = yield Reserve("K", "lane", 1)
            yield Invoke(lane, "call", (square, index))
            yield Release(lane)


def make_trace(path: Path, entries: int) -> int:
    """Write a trace of about ``entries`` entries; return its exact count."""
    # About 1.75 entries per round per process: EFFECT and YIELD, a DISPATCH when the quantum
    # ends, and every tenth round a reservation, an invocation, its result and a release.
    rounds = max(1, round(entries / (1.75 * PROCESSES)))
    kernel = Kernel(1, trace=path, fsync="never")
    for _ in range(PROCESSES):
        kernel.spawn(worker, rounds)
    kernel.run()
    return len(scan_trace(path).entries)


def timed(function: Callable[[], Any], repeat: int) -> list[float]:
    figures = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        figures.append((time.perf_counter() - start) * 1000)
    return figures


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):10.1f} [{min(values):.1f}, {max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    first = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time, sys; start = time.perf_counter(); "
            "from xdv.telemetry import metrics_from_trace, to_prometheus; "
            "to_prometheus(metrics_from_trace(sys.argv[1])); "
            "print((time.perf_counter() - start) * 1000)",
            str(Path(__file__).resolve().parent.parent / "tests" / "golden" / "mixed.xdvt"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"one-off: import + first snapshot of a 128-entry trace: {float(first.stdout):.0f} ms")
    from xdv.telemetry import metrics_from_trace, to_otlp_json, to_prometheus

    print(f"median [min, max] over {options.repeat} rounds, milliseconds")
    header = f"{'entries':>8} {'read (peer)':>26} {'snapshot':>26} {'prometheus':>26} "
    print(header + f"{'otlp-json':>26} {'entries/s':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(item) for item in options.sizes.split(",")):
            path = Path(folder) / f"t{size}.xdvt"
            count = make_trace(path, size)
            read = timed(partial(scan_trace, path), options.repeat)
            snap = timed(partial(metrics_from_trace, path), options.repeat)
            snapshot = metrics_from_trace(path)
            prometheus = timed(partial(to_prometheus, snapshot), options.repeat)
            otlp = timed(partial(to_otlp_json, snapshot), options.repeat)
            rate = count / (statistics.median(snap) / 1000)
            print(
                f"{count:>8} {spread(read):>26} {spread(snap):>26} {spread(prometheus):>26} "
                f"{spread(otlp):>26} {rate:>10,.0f}"
            )


if __name__ == "__main__":
    main()
