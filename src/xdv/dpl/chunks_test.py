"""Loops that run in chunks count exactly as counting each iteration does.

The VM runs a loop without calls or nested loops in chunks (``_codegen.py``): the step counter
is settled once per chunk, and the iteration that overdraws the slice ends it where counting
each iteration would. The expected figures below were recorded from the code generator that
counted every iteration, before chunks existed: the steps taken, where the slices end (YIELD),
the effects and the failures (budget, integer bound, division by zero) must stay the same, with
small slices so that every chunk boundary is crossed many times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xdv.core import Kernel
from xdv.dpl import Program, compile_source
from xdv.trace import read_trace

CASES = [
    (
        "K main { mut let i = 0; mut let s = 0; while i < 100 { i = i + 1; if i == 37 { break; } "
        "if i % 5 == 0 { continue; } s = s + i; } emit s; emit i; }",
        7,
        None,
    ),
    (
        "K main { mut let s = 0; for i in 0..50 { if i % 7 == 3 { emit i; } s = s + i * i; } "
        "emit s; }",
        5,
        None,
    ),
    (
        "forge t { proc K::f(n: i64) -> i64 { mut let k = 0; while k * k <= n { "
        "if k * k == n { return k; } k = k + 1; } return 0 - k; } "
        "proc K::main() { mut let t = 0; for j in 0..30 { t = t + f(j); } emit t; } }",
        3,
        None,
    ),
    ("K main { mut let s = 0; for i in 0..100000 { s = s + i; } emit s; }", 1024, 500),
    (
        "K main { mut let s = 2; mut let i = 0; while i < 20 { s = s * s; i = i + 1; } emit s; }",
        4,
        None,
    ),
    (
        "K main { mut let a = 0 - 17; mut let b = 5; mut let q = 0; for i in 0..12 { "
        "q = q + a / b + a % b + 7 % (b - 6) + (0 - 7) / 2; a = a + 3; } emit q; "
        "emit 7 / (b - 5); }",
        2,
        None,
    ),
]
# (steps used, EFFECT/YIELD/FAULT entries by initial, effect values, exit codes) per case.
EXPECTED = [
    (148, "YYYYYYYYYYYYYYYYYYEE", ["526", "37"], [None]),
    (100, "YEYYEYYYEYYEYYEYYYEYYEYE", ["3", "10", "17", "24", "31", "38", "45", "40425"], [None]),
    (340, "YYYYYYYYYYYYE", ["-89"], [None]),
    (2050, "F", [], ["DPL_RUNTIME"]),
    (12, "YYF", [], ["DPL_LIMIT_EXCEEDED"]),
    (60, "YYYYYYYYYYYYEF", ["-38"], ["DPL_RUNTIME"]),
]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_chunked_loops_count_as_each_iteration_did(index: int, tmp_path: Path) -> None:
    source, slice_steps, steps_max = CASES[index]
    program = Program(compile_source(source), slice_steps=slice_steps, steps_max=steps_max)
    kernel = Kernel(0, trace=tmp_path / "t.xdvt")
    kernel.spawn(program.anchor)
    result = kernel.run()
    entries = read_trace(tmp_path / "t.xdvt").entries
    marks = "".join(
        e.event_name[0] for e in entries if e.event_name in ("EFFECT", "YIELD", "FAULT")
    )
    effects = [e.metadata["v"]["value"] for e in entries if e.event_name == "EFFECT"]
    codes = [status.code for status in result.exits.values()]
    assert (program.steps_used, marks, effects, codes) == EXPECTED[index]


def test_a_chunked_loop_is_what_the_generator_wrote() -> None:
    source = Program(compile_source(CASES[0][0])).source
    assert "for _t" in source and "_n -= " in source  # the loop above runs in chunks


def test_a_compared_product_is_checked_when_the_comparison_fails() -> None:
    # d = 2^2048, so d * d has 4097 bits: `d * d <= n` must fail as the product would.
    source = (
        "K main { mut let d = 2; for i in 0..11 { d = d * d; } let n = 5; mut let k = 0; "
        "while d * d <= n { k = k + 1; } emit k; }"
    )
    program = Program(compile_source(source))
    assert ">= _B and _imul(" in program.source  # the comparison checks only when it fails
    kernel = Kernel(0)
    kernel.spawn(program.anchor)
    (status,) = kernel.run().exits.values()
    assert status.code == "DPL_LIMIT_EXCEEDED"
    assert "a product of 4097 bits" in status.message
