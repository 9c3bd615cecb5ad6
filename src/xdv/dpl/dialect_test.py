"""The public dialect and the conformance items of the toolchain, at the unit level: bounds of
the new literals and operators, return inference over long call chains, K -> K binds in DIR,
and diagnostics of a source tree mapped back to their files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.dpl import (
    DplRuntimeFailure,
    TreeSource,
    analyze,
    analyze_tree,
    compile_dir,
    render,
)
from xdv.dpl._values import INT_BITS_MAX, concrete_binary, shift_left, shift_right


def codes(text: str) -> list[str]:
    return [d.code for d in analyze(text).diagnostics if d.severity == "error"]


def test_radix_literals_are_bounded_like_decimal_ones() -> None:
    assert codes("K main { emit 0x" + "F" * (INT_BITS_MAX // 4) + "; }") == []
    assert codes("K main { emit 0x1" + "0" * (INT_BITS_MAX // 4) + "; }") == ["P004"]
    assert codes("K main { emit 0b" + "1" * (INT_BITS_MAX + 1) + "; }") == ["P004"]


@settings(max_examples=25, deadline=None)
@given(st.integers(-(1 << 70), 1 << 70), st.integers(0, 80))
def test_shifts_match_exact_integer_arithmetic(value: int, count: int) -> None:
    assert shift_left(value, count) == value * (1 << count)
    assert shift_right(value, count) == value // (1 << count)
    assert concrete_binary("^", value, count) == value ^ count


def test_shift_bounds_are_runtime_failures() -> None:
    with pytest.raises(DplRuntimeFailure, match="negative"):
        shift_left(1, -1)
    with pytest.raises(DplRuntimeFailure, match="negative"):
        shift_right(1, -1)
    with pytest.raises(DplRuntimeFailure, match="dpl_int_bits_max"):
        shift_left(3, INT_BITS_MAX)
    assert shift_right(-1, 10**9) == -1 and shift_left(0, 10**9) == 0


def test_return_inference_survives_long_call_chains() -> None:
    count = 600
    chain = "\n".join(f"proc K::p{i}(x: i64) {{ return p{i + 1}(x) + 1; }}" for i in range(count))
    last = f"proc K::p{count}(x: i64) {{ return x; }}"
    text = f'forge f {{ {chain} {last} K main {{ emit "{{p0(1)}}"; }} }}'
    compiled = analyze(text)
    assert compiled.ok, [d.message for d in compiled.diagnostics[:3]]
    assert compiled.program is not None
    returns = {p.name: p.returns for p in compiled.program.processes}
    assert returns["K::p0"] == "Int" and returns[f"K::p{count}"] == "Int"


def test_a_bound_k_call_is_a_cross_call_in_dir() -> None:
    program = compile_dir(
        """
        forge f {
            proc K::g() -> i64 { return 1; }
            proc K::a() -> i64 { return g(); }
            proc K::b() -> i64 { return g(); }
            bind K::a -> K::g contract { latency_us <= 3; }
        }
        """
    )
    bodies = {p.name: p.body for p in program.processes}
    assert bodies["K::a"][0].value.tag == "xcall"  # type: ignore[attr-defined]
    assert bodies["K::b"][0].value.tag == "call"  # type: ignore[attr-defined]


def test_tree_diagnostics_render_in_their_file() -> None:
    files = [("a.ds", "forge A { K main { emit B::K::f(); } }"), ("b/b.ds", "forge B {\n  x\n}")]
    compiled = analyze_tree(files, "tree")
    assert isinstance(compiled.source, TreeSource)
    [diagnostic] = [d for d in compiled.diagnostics if d.severity == "error"]
    shown = render(diagnostic, compiled.source)
    assert "--> b/b.ds:2:3" in shown and "2 |   x" in shown
    record = diagnostic.to_json(compiled.source)
    assert (record["file"], record["line"], record["column"]) == ("b/b.ds", 2, 3)
