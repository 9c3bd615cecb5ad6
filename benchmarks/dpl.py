"""DPL toolchain benchmarks: front-end speed and K-regime execution against CPython.

Front-end: lines per second through lexer, parser, checker and DIR on a large generated program.
Execution: the same loop and recursion workloads written in DPL (run by the VM on the kernel)
and in Python (run by CPython), in the same process; the figure that matters is the ratio of
DPL's speed to CPython's (target: at least 0.5).

Run: ``python benchmarks/dpl.py`` (``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable

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


def best_of(rounds: int, function: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def time_dpl(rounds: int, source: str) -> float:
    """Best time of the kernel running the program (compilation to DIR and to Python and the
    kernel's construction are outside the timed region)."""
    document = compile_source(source)
    times = []
    for _ in range(rounds):
        kernel = Kernel(0, emit=lambda pid, value: None)
        kernel.spawn(Program(document).anchor)
        gc.collect()
        start = time.perf_counter()
        kernel.run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    options = parser.parse_args()
    rounds = 5 if options.quick else 9
    # 1400 processes: about 490 KB of source, within dpl_source_bytes_max (512 KiB).
    processes = 300 if options.quick else 1400
    loop_limit = 200_000 if options.quick else 1_000_000
    fib_n = 22 if options.quick else 30

    text = generated_program(processes)
    lines = text.count("\n")
    seconds = best_of(rounds, lambda: analyze(text))
    compiled = analyze(text)
    assert compiled.dir is not None, [d.message for d in compiled.diagnostics[:3]]
    print(
        f"front-end: {lines} lines in {seconds:.3f} s = {lines / seconds:,.0f} lines/s "
        "(lex, parse, check, DIR)"
    )

    print(f"python {sys.version.split()[0]}")
    for name, source, python in (
        ("loops", LOOP_DPL.replace("LIMIT", str(loop_limit)), lambda: loop_python(loop_limit)),
        ("recursion", RECURSION_DPL.replace("LIMIT", str(fib_n)), lambda: fib_python(fib_n)),
    ):
        dpl_seconds = time_dpl(rounds, source)
        python_seconds = best_of(rounds, python)
        ratio = python_seconds / dpl_seconds
        print(
            f"{name}: DPL {dpl_seconds:.3f} s, CPython {python_seconds:.3f} s, "
            f"DPL speed = {ratio:.2f} x CPython (target >= 0.50)"
        )


if __name__ == "__main__":
    main()
