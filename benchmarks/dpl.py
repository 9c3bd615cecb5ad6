"""DPL toolchain benchmarks: front-end speed and K-regime execution against CPython.

Front-end: lines per second through lexer, parser, checker and DIR on a large generated program.
Execution: the same loop, recursion and trial-division sieve workloads written in DPL (run by
the VM on the kernel) and in Python (run by CPython), in the same process; the figure that
matters is DPL's time over CPython's on equal work (target: at most 1.25, checked on the
median). Times are processor time (``time.process_time``), so that a loaded machine's waits do
not count; the two sides alternate round by round.

Every figure is the median and the range (min–max) over the rounds. The two sides of a
comparison run back to back in each round, so a slow spell of the machine hits both, and the
ratio is taken round by round. The one-off cost of getting a DPL program to a runnable process
(compiling the source to DIR, loading the DIR into the VM, building the kernel and spawning) is
timed on its own, each round, beside the run it precedes.

Run: ``python benchmarks/dpl.py [--quick] [--rounds N]`` (``--quick``: smaller sizes, fewer rounds).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from statistics import median

from xdv.core import Kernel
from xdv.dpl import Program, analyze, compile_source

# DPL's K-regime time over CPython's on the same workload that counts as close enough.
RATIO_MAX = 1.25

LOOP_DPL = """
K main {
    mut let total = 0;
    mut let i = 0;
    while i < LIMIT {
        total = total + i * 3 % 7;
        i = i + 1;
    }
    for j in 0..LIMIT {
        if j % 2 == 0 { total = total - 1; } else { total = total + 2; }
    }
    emit total;
}
"""


def loop_python(limit: int) -> int:
    total = 0
    i = 0
    while i < limit:
        total = total + i * 3 % 7
        i = i + 1
    for j in range(0, limit):  # the same statement shape as the DPL loop
        if j % 2 == 0:  # noqa: SIM108
            total = total - 1
        else:
            total = total + 2
    return total


RECURSION_DPL = """
K fib(K[Int] n) -> K[Int] {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}
K main { emit fib(LIMIT); }
"""


def fib_python(n: int) -> int:
    if n < 2:
        return n
    return fib_python(n - 1) + fib_python(n - 2)


SIEVE_DPL = """
K main {
    mut let count = 0;
    for n in 2..LIMIT {
        mut let prime = true;
        mut let d = 2;
        while d * d <= n {
            if n % d == 0 { prime = false; break; }
            d = d + 1;
        }
        if prime { count = count + 1; }
    }
    emit count;
}
"""


def sieve_python(limit: int) -> int:
    count = 0
    for n in range(2, limit):
        prime = True
        d = 2
        while d * d <= n:
            if n % d == 0:
                prime = False
                break
            d = d + 1
        if prime:
            count = count + 1
    return count


def generated_program(processes: int) -> str:
    parts = ["forge generated {", "    shape Pair { a: i64; b: i64; }"]
    for index in range(processes):
        parts.append(
            f"""    proc K::work{index}(n: i64, p: Pair) -> i64 {{
        mut let total: K[Int] = 0;
        for i in 0..n {{
            if i % 3 == 0 {{ total = total + p.a * i; }} else {{ total = total - p.b; }}
        }}
        let label = "work {index}: {{total}}";
        emit label;
        return total + {index};
    }}"""
        )
    parts.append("    proc K::main() {")
    for index in range(processes):
        parts.append(f"        let r{index} = work{index}({index % 7}, Pair {{ a: 1, b: 2 }});")
    parts.append("    }")
    parts.append("}")
    return "\n".join(parts) + "\n"


def spread(values: list[float], digits: int = 3, scale: float = 1.0) -> str:
    """``median (min–max)`` of ``values``, each multiplied by ``scale``."""
    low, middle, high = (scale * value for value in (min(values), median(values), max(values)))
    if digits == 0:
        return f"{middle:,.0f} ({low:,.0f}–{high:,.0f})"
    return f"{middle:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def timed(function: Callable[[], object]) -> float:
    """Processor seconds of one call, after a collection (so no earlier garbage is collected
    inside)."""
    gc.collect()
    start = time.process_time()
    function()
    return time.process_time() - start


def time_dpl(source: str) -> tuple[float, float]:
    """(one-off seconds, run seconds) of one DPL run: the one-off part takes the source to a
    spawned process (compile to DIR, load the DIR into the VM, build the kernel, spawn); the run
    is the kernel running the program."""
    start = time.process_time()
    kernel = Kernel(0, emit=lambda pid, value: None)
    kernel.spawn(Program(compile_source(source)).anchor)
    prepared = time.process_time() - start
    return prepared, timed(kernel.run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--rounds", type=int, help="rounds (default 11, 5 with --quick)")
    options = parser.parse_args()
    rounds = options.rounds or (5 if options.quick else 11)
    # 1400 processes: about 490 KB of source, within dpl_source_bytes_max (512 KiB).
    processes = 300 if options.quick else 1400
    loop_limit = 200_000 if options.quick else 1_000_000
    fib_n = 22 if options.quick else 27
    sieve_limit = 20_000 if options.quick else 100_000

    text = generated_program(processes)
    lines = text.count("\n")
    gc.collect()
    start = time.process_time()
    compiled = analyze(text)  # the first pass of the process: a one-off cost, reported apart
    first = time.process_time() - start
    assert compiled.dir is not None, [d.message for d in compiled.diagnostics[:3]]
    front_end = [timed(lambda: analyze(text)) for _ in range(rounds)]
    print(f"python {sys.version.split()[0]}; medians (ranges) over {rounds} rounds")
    print(
        f"front-end (lex, parse, check, DIR): {lines} lines in {spread(front_end)} s = "
        f"{spread([lines / seconds for seconds in front_end], 0)} lines/s; "
        f"first pass in this process {first:.3f} s"
    )

    for name, source, python in (
        ("loops", LOOP_DPL.replace("LIMIT", str(loop_limit)), lambda: loop_python(loop_limit)),
        ("recursion", RECURSION_DPL.replace("LIMIT", str(fib_n)), lambda: fib_python(fib_n)),
        ("sieve", SIEVE_DPL.replace("LIMIT", str(sieve_limit)), lambda: sieve_python(sieve_limit)),
    ):
        prepared, dpl_seconds, python_seconds = [], [], []
        for round_index in range(rounds):  # alternating: each round runs both sides
            if round_index % 2:
                python_seconds.append(timed(python))
            one_off, run = time_dpl(source)
            prepared.append(one_off)
            dpl_seconds.append(run)
            if not round_index % 2:
                python_seconds.append(timed(python))
        # Equal work: the ratio of times, round by round (DPL's time over CPython's).
        ratios = [d / p for p, d in zip(python_seconds, dpl_seconds, strict=True)]
        verdict = "ok" if median(ratios) <= RATIO_MAX else "over"
        print(
            f"{name}: DPL {spread(dpl_seconds)} s, CPython {spread(python_seconds)} s; "
            f"DPL time = {spread(ratios, 2)} x CPython's (target <= {RATIO_MAX:.2f} on the "
            f"median: {verdict}); one-off source to process {spread(prepared, 1, 1e3)} ms"
        )


if __name__ == "__main__":
    main()
