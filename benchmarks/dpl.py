"""DPL toolchain benchmarks: front-end speed and K-regime execution against CPython.

Front-end: lines per second through lexer, parser, checker and DIR on a large generated program.
Execution: the same loop and recursion workloads written in DPL (run by the VM on the kernel)
and in Python (run by CPython), in the same process; the figure that matters is the ratio of
DPL's speed to CPython's (target: at least 0.5, checked on the median).

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
    """Seconds of one call, after a collection (so no earlier garbage is collected inside)."""
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def time_dpl(source: str) -> tuple[float, float]:
    """(one-off seconds, run seconds) of one DPL run: the one-off part takes the source to a
    spawned process (compile to DIR, load the DIR into the VM, build the kernel, spawn); the run
    is the kernel running the program."""
    start = time.perf_counter()
    kernel = Kernel(0, emit=lambda pid, value: None)
    kernel.spawn(Program(compile_source(source)).anchor)
    prepared = time.perf_counter() - start
    return prepared, timed(kernel.run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--rounds", type=int, help="rounds (default 9, 5 with --quick)")
    options = parser.parse_args()
    rounds = options.rounds or (5 if options.quick else 9)
    # 1400 processes: about 490 KB of source, within dpl_source_bytes_max (512 KiB).
    processes = 300 if options.quick else 1400
    loop_limit = 200_000 if options.quick else 1_000_000
    fib_n = 22 if options.quick else 30

    text = generated_program(processes)
    lines = text.count("\n")
    gc.collect()
    start = time.perf_counter()
    compiled = analyze(text)  # the first pass of the process: a one-off cost, reported apart
    first = time.perf_counter() - start
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
    ):
        prepared, dpl_seconds, python_seconds = [], [], []
        for _ in range(rounds):  # interleaved: each round runs both sides, back to back
            one_off, run = time_dpl(source)
            prepared.append(one_off)
            dpl_seconds.append(run)
            python_seconds.append(timed(python))
        # Equal work, so the ratio of speeds is the inverse ratio of times, round by round.
        ratios = [p / d for p, d in zip(python_seconds, dpl_seconds, strict=True)]
        verdict = "ok" if median(ratios) >= 0.5 else "below"
        print(
            f"{name}: DPL {spread(dpl_seconds)} s, CPython {spread(python_seconds)} s; "
            f"DPL speed = {spread(ratios, 2)} x CPython (target >= 0.50 on the median: "
            f"{verdict}); one-off source to process {spread(prepared, 1, 1e3)} ms"
        )


if __name__ == "__main__":
    main()
