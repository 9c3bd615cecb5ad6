"""Regression tests for the DPL toolchain's bounds: each class of failure found by fuzzing
(RecursionError, CPython's parser limits, ValueError on numbers, hangs, unbounded values and
diagnostics, unbounded reading) with a minimal input, and a property test over generated deep
programs: every one is either refused with a P004 diagnostic naming a limit, or compiles to K
code that CPython accepts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.core import ExitStatus, Kernel
from xdv.dpl import (
    DirFormatError,
    DplStaticError,
    Program,
    Span,
    analyze,
    canonical_bytes,
    compile_dir,
    dir_document,
    disassemble,
    lower_phi,
    parse_dir,
    read_dir_document,
    read_text,
    render,
)
from xdv.dpl import _ast as ast
from xdv.dpl import _checker as checker
from xdv.dpl import _parser as parser
from xdv.dpl import _vm as vm
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import limit

LONG = os.environ.get("XDV_LONG") == "1"
EXPRESSION_MAX = limit("dpl_expression_depth_max")
BLOCK_MAX = limit("dpl_block_depth_max")
LOOP_MAX = limit("dpl_loop_depth_max")


def refused(text: str, limit_name: str) -> None:
    """``text`` is rejected with a P004 diagnostic naming ``limit_name``, quickly, and
    ``compile_dir`` raises DPL_LIMIT_EXCEEDED."""
    start = time.process_time()
    compiled = analyze(text)
    assert time.process_time() - start < 5
    assert not compiled.ok
    found = [d for d in compiled.diagnostics if d.code == "P004"]
    assert found, [(d.code, d.message) for d in compiled.diagnostics[:5]]
    assert limit_name in found[0].message
    assert found[0].span.start < len(text)
    with pytest.raises(DplStaticError) as error:
        compile_dir(text)
    assert error.value.code is ErrorCode.DPL_LIMIT_EXCEEDED


def run(text: str, **options: Any) -> tuple[Program, list[Any], ExitStatus | None]:
    """Run a program on a kernel; return the program, its emitted values and how it failed
    (None when it succeeded)."""
    program = Program(compile_dir(text), **options)
    emitted: list[Any] = []
    kernel = Kernel(0, emit=lambda pid, value: emitted.append(value))
    kernel.spawn(program.anchor)
    result = kernel.run()
    assert not result.exceptions, result.exceptions  # never an exception other than XdvError
    (status,) = result.exits.values()
    return program, emitted, None if status.ok else status


def limit_failure(status: ExitStatus | None, limit_name: str) -> bool:
    return (
        status is not None
        and status.code == "DPL_LIMIT_EXCEEDED"
        and limit_name in (status.message or "")
    )


def main(body: str) -> str:
    return "K main { " + body + " }"


# ---------------------------------------------------------------------- nesting (RecursionError)


@pytest.mark.parametrize(
    ("text", "limit_name"),
    [
        (main("emit " + " + ".join(["1"] * 5000) + ";"), "dpl_expression_depth_max"),
        (main("emit " + "(" * 5000 + "1" + ")" * 5000 + ";"), "dpl_expression_depth_max"),
        (main("emit " + "-" * 5000 + "1;"), "dpl_expression_depth_max"),
        (main("emit " + "f(" * 3000 + "1" + ")" * 3000 + ";"), "dpl_expression_depth_max"),
        (main("emit " + "[" * 3000 + "1" + "]" * 3000 + ";"), "dpl_expression_depth_max"),
        (main("let x = 1; emit x" + "[0]" * 3000 + ";"), "dpl_expression_depth_max"),
        (
            main("mut let x = 1; " + "if x == 0 { x = 1; } else " * 3000 + "{ x = 2; }"),
            "dpl_block_depth_max",
        ),
        (main("if true { " * 3000 + "}" * 3000), "dpl_block_depth_max"),
        (main("while false { " * 40 + "}" * 40), "dpl_loop_depth_max"),
        ("K f(x: i64" + "[1]" * 3000 + ") {} " + main(""), "dpl_type_depth_max"),
        ("K f(x: " + "K[" * 3000 + "Int" + "]" * 3000 + ") {} " + main(""), "dpl_type_depth_max"),
        (
            main("") + " bind K::main -> K::main contract { shots == " + "[" * 3000 + "; }",
            "dpl_type_depth_max",
        ),
        ("forge a {\n" * 3000, "dpl_block_depth_max"),
    ],
    ids=[
        "chain",
        "parentheses",
        "unary",
        "calls",
        "arrays",
        "indexing",
        "else-if",
        "blocks",
        "loops",
        "array-type",
        "regime-type",
        "constant-list",
        "forges",
    ],
)
def test_deep_input_is_a_limit_diagnostic_not_a_recursion_error(text: str, limit_name: str) -> None:
    refused(text, limit_name)


def test_an_expression_at_the_depth_limit_compiles_and_runs_one_deeper_is_refused() -> None:
    # A chain of n operators is n + 1 levels deep (n operator nodes over a literal).
    deepest = main("emit " + " + ".join(["1"] * EXPRESSION_MAX) + ";")
    _, emitted, failure = run(deepest)
    assert failure is None
    assert emitted[-1]["value"] == str(EXPRESSION_MAX)
    refused(
        main("emit " + " + ".join(["1"] * (EXPRESSION_MAX + 1)) + ";"), "dpl_expression_depth_max"
    )


def test_blocks_and_loops_at_their_limits_compile_and_run() -> None:
    loops = "mut let n = 0; " + "for i in 0..1 { " * LOOP_MAX + "n = n + 1;" + "}" * LOOP_MAX
    _, emitted, failure = run(main(loops + " emit n;"))
    assert failure is None and emitted[-1]["value"] == "1"
    blocks = "mut let n = 0; " + "if true { " * (BLOCK_MAX - 1) + "n = 7;" + "}" * (BLOCK_MAX - 1)
    _, emitted, failure = run(main(blocks + " emit n;"))
    assert failure is None and emitted[-1]["value"] == "7"


def test_a_source_beyond_the_size_bound_is_refused_before_lexing() -> None:
    text = main("emit [" + "1, " * (limit("dpl_source_bytes_max") // 3) + "1];")
    start = time.process_time()
    refused(text, "dpl_source_bytes_max")
    assert time.process_time() - start < 5


def test_too_many_statements_stop_the_parser_with_one_diagnostic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parser, "_STATEMENTS_MAX", 100)  # the real bound is 100,000
    refused(main("emit 1;" * 101), "dpl_statements_max")
    assert analyze(main("emit 1;" * 100)).ok


# ---------------------------------------------------------------------- numbers (ValueError)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (main("emit " + "9" * 5000 + ";"), "P004"),
        (main("emit -" + "9" * 1300 + ";"), "P004"),
        (main("emit " + "9" * 400 + ".0;"), "L006"),
        ("K f(x: i64[" + "9" * 5000 + "]) {} " + main(""), "P004"),
        ("K main() uses steps(max = " + "9" * 5000 + ") {}", "P004"),
        ("K main() uses steps(max = " + "9" * 400 + ".5) {}", "L006"),
    ],
    ids=["int", "negative-int", "float", "array-size", "resource-int", "resource-float"],
)
def test_huge_number_literals_are_diagnostics(text: str, code: str) -> None:
    compiled = analyze(text)
    assert not compiled.ok
    assert code in [d.code for d in compiled.diagnostics]


def test_a_rotation_angle_beyond_a_float_is_a_type_error() -> None:
    text = (
        "proc Q::c() -> Bits uses qubits(n = 1) linear { let r = q::alloc(1); "
        f"let r = q::rx(r, 0, {'9' * 400}); observe r; }}"
    )
    compiled = analyze(text)
    assert "T201" in [d.code for d in compiled.diagnostics]


def test_a_q_process_allocating_beyond_the_qubit_bound_is_refused() -> None:
    text = (
        "proc Q::c() -> Bits { let r = q::alloc(1000000000); observe r; } "
        "bind K::main -> Q::c contract { } " + main("let b = Q::c();")
    )
    compiled = analyze(text)
    assert any(d.code == "P004" and "dpl_qubits_max" in d.message for d in compiled.diagnostics)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 10**5000, "\ud800", {1, 2}],
    ids=["nan", "inf", "huge-int", "surrogate", "set"],
)
def test_canonical_bytes_refuses_values_without_a_canonical_form(value: Any) -> None:
    with pytest.raises(XdvError) as error:
        canonical_bytes({"v": value})
    assert error.value.code is ErrorCode.DPL_DIR_INVALID


def test_parse_dir_refuses_deep_documents_and_huge_numbers_without_recursion() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(DirFormatError, match="nested deeper"):
        parse_dir({"format": "xdv-dir", "version": 1, "shapes": deep})
    for version in (10**5000, 2**70):
        with pytest.raises(DirFormatError, match="version"):
            parse_dir(
                {
                    "format": "xdv-dir",
                    "version": version,
                    "shapes": [],
                    "processes": [],
                    "binds": [],
                    "sha256": "",
                }
            )
    document = dir_document(compile_dir(main("emit 1;")))
    document["processes"][0]["slots"] = 10**5000
    with pytest.raises(DirFormatError, match="slots"):
        parse_dir(document)


# ---------------------------------------------------------------------- diagnostics


def test_a_line_of_garbage_gives_a_few_diagnostics_and_a_note() -> None:
    text = "@" * 100_000
    start = time.process_time()
    compiled = analyze(text)
    assert time.process_time() - start < 5
    codes = [d.code for d in compiled.diagnostics]
    assert codes[-1] == "P005"
    assert len(codes) <= limit("dpl_line_diagnostics_max") + 1
    assert str(100_000 - limit("dpl_line_diagnostics_max")) in compiled.diagnostics[-1].message
    shown = "\n".join(render(d, compiled.source) for d in compiled.diagnostics)
    assert len(shown) < 5000  # a long line is shown as a window
    with pytest.raises(DplStaticError) as error:
        compile_dir(text)
    assert error.value.code is ErrorCode.DPL_SYNTAX


def test_diagnostics_per_file_are_capped() -> None:
    text = "\n".join("@" for _ in range(10_000))
    compiled = analyze(text)
    assert len(compiled.diagnostics) == limit("dpl_diagnostics_max") + 1
    assert compiled.diagnostics[-1].code == "P005"
    assert compiled.diagnostics[-1].severity == "note"


# ---------------------------------------------------------------------- hangs


def test_shapes_sharing_field_types_are_checked_in_linear_time() -> None:
    # Each shape holds the next one twice: a search along every path visits 2**n shapes.
    shapes = " ".join(f"shape S{i} {{ a: S{i + 1}; b: S{i + 1}; }}" for i in range(60))
    text = shapes + " shape S60 { q: Qubits; } " + main("emit 1;")
    start = time.process_time()
    assert analyze(text).ok
    assert time.process_time() - start < 5


def test_long_call_chains_are_closed_in_linear_time() -> None:
    count = 500
    processes = " ".join(f"K f{i}() {{ f{i + 1}(); }}" for i in range(count))
    text = processes + f" K f{count}() {{ emit 1; }} " + main("f0();")
    compiled = analyze(text, profile="kernel")
    assert compiled.ok, [d.message for d in compiled.diagnostics[:3]]
    program = compiled.program
    assert program is not None
    assert all(p.effects == ("emit",) for p in program.processes)  # propagated to every caller
    Program(program)  # and every caller of an effectful process is a generator
    recursive = analyze(processes + f" K f{count}() {{ f0(); }} " + main("f0();"), "x", "kernel")
    assert sum(d.code == "K802" for d in recursive.diagnostics) >= 1
    # The graph passes themselves, on a chain far longer than a source could hold: a pass
    # per step of the chain (quadratic) would not finish.
    size = 20_000
    graph = {f"p{i}": {f"p{i + 1}"} for i in range(size)}
    graph[f"p{size}"] = {"p0"}
    start = time.process_time()
    assert len(checker._on_cycles(graph)) == size + 1
    graph[f"p{size}"] = set()
    assert checker._on_cycles(graph) == set()
    facts = checker._Checker(ast.Program(), None)
    for i in range(size):
        info = checker.ProcInfo(cast(Any, None), f"p{i}", "Unit")
        info.calls.append((f"p{i + 1}", Span(0, 0), False))
        facts.procs[info.key] = info
    last = checker.ProcInfo(cast(Any, None), f"p{size}", "Unit", effects={"seal"})
    facts.procs[last.key] = last
    facts.close_effects()
    assert facts.procs["p0"].all_effects == {"seal"}
    assert time.process_time() - start < 10


def test_a_loop_with_a_large_body_pays_steps_by_its_size() -> None:
    body = "x = 1; " * 400
    program, _, failure = run(main(f"mut let x = 0; for i in 0..10 {{ {body} }}"))
    assert failure is None
    assert program.steps_used >= 10 * 190  # about one step per four nodes of the body
    small, _, _ = run(main("mut let x = 0; for i in 0..10 { x = x + i; }"))
    assert small.steps_used == 10


def test_effects_per_run_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm, "EFFECTS_MAX", 50)
    _, emitted, failure = run(main("while true { emit 1; }"))
    assert limit_failure(failure, "dpl_effects_max")
    assert len(emitted) == 50


# ---------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("body", "limit_name"),
    [
        ("mut let x = 3; " + "x = x * x; " * 40 + "emit x;", "dpl_int_bits_max"),
        (
            "let x = 3; "
            + "".join(
                f"let x{i} = x{i - 1 if i else ''} * x{i - 1 if i else ''}; " for i in range(40)
            ),
            "dpl_int_bits_max",
        ),
        ("mut let x = 1; while true { x = x + x; }", "dpl_int_bits_max"),
        ("mut let x = 1; while true { x = x * 255; }", "dpl_int_bits_max"),
        ('mut let s = "ab"; while true { s = s + s; }', "dpl_string_chars_max"),
        ('mut let s = "ab"; while true { s = "{s}{s}"; }', "dpl_string_chars_max"),
    ],
    ids=["square", "square-lets", "double", "small-factor", "concat", "interpolation"],
)
def test_values_beyond_their_bounds_are_runtime_failures_naming_the_limit(
    body: str, limit_name: str
) -> None:
    start = time.process_time()
    _, _, failure = run(main(body))
    assert time.process_time() - start < 10
    assert limit_failure(failure, limit_name), failure


def test_a_shape_kept_in_a_mutable_binding_is_checked() -> None:
    text = "shape P { a: Int; } " + main(
        "mut let p = P { a: 1 }; while true { p = P { a: p.a + p.a }; }"
    )
    _, _, failure = run(text)
    assert limit_failure(failure, "dpl_int_bits_max"), failure


def test_showing_a_shared_array_is_bounded_without_building_its_text() -> None:
    lets = 'let s0 = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; ' + "".join(
        f"let s{i + 1} = [s{i}, s{i}, s{i}, s{i}]; " for i in range(9)
    )
    # 4**9 cells (within dpl_value_cells_max) of 32 characters: 8 MiB of text, never built.
    _, _, failure = run("K main { " + lets + "emit s9; }")
    assert limit_failure(failure, "dpl_string_chars_max"), failure


def test_phi_constraints_built_by_let_chains_are_bounded() -> None:
    lets = "".join(f"let y{i + 1} = y{i} + y{i}; " for i in range(40))
    text = (
        "proc Φ::p() -> Int { let y0 = phi::int(0, 3); "
        + lets
        + "constrain y40 > 1; prove w from y0; return 1; } "
        "bind K::main -> Φ::p contract { } " + main("let v = Φ::p(); emit v;")
    )
    program = compile_dir(text)
    process = program.process("Φ::p")
    assert process is not None
    with pytest.raises(XdvError) as error:
        lower_phi(process, ())
    assert error.value.code is ErrorCode.DPL_LIMIT_EXCEEDED


# ---------------------------------------------------------------------- reading


def test_source_files_are_read_bounded_and_strictly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ds"
    bad.write_bytes(b"K main { emit 1; }\n\xff\xfe")
    with pytest.raises(XdvError) as error:
        read_text(bad)
    assert error.value.code is ErrorCode.INPUT_DECODE_FAILED
    assert "offset 19" in str(error.value)
    pipe = tmp_path / "pipe.ds"
    os.mkfifo(pipe)
    with pytest.raises(XdvError) as error:
        read_text(pipe)
    assert error.value.code is ErrorCode.INPUT_NOT_REGULAR
    big = tmp_path / "big.ds"
    big.write_bytes(b" " * (limit("dpl_source_bytes_max") + 1))
    with pytest.raises(XdvError) as error:
        read_text(big)
    assert error.value.code is ErrorCode.INPUT_LIMIT_EXCEEDED
    missing = tmp_path / "missing.ds"
    with pytest.raises(XdvError, match="not found") as error:
        read_text(missing)
    assert error.value.code is ErrorCode.WORKLOAD_INVALID


def test_dir_documents_are_read_through_load_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    document = dir_document(compile_dir(main("emit 1;")))
    path.write_bytes(canonical_bytes(document))
    assert parse_dir(read_dir_document(path)) == compile_dir(main("emit 1;"))
    path.write_text("[" * 100 + "]" * 100)
    with pytest.raises(XdvError) as error:
        read_dir_document(path)
    assert error.value.code is ErrorCode.INPUT_LIMIT_EXCEEDED


# ---------------------------------------------------------------------- generated deep programs

HEADER = (
    "shape P { a: Int; } K f(x: Int) -> Int { return x; } K g(x: Int) -> Int { emit x; return x; } "
)
# Each wrapper puts an Int expression `e` one (or a few) levels deeper, in the forms whose
# generated Python nests the most: calls to plain and to generator processes, literal and
# variable divisors, products, arrays, shapes, interpolation, unary minus, parentheses.
WRAPPERS = [
    "({})",
    "-{}",
    "{} + 1",
    "1 - {}",
    "{} * x",
    "{} * 3",
    "{} / 3",
    "{} % x",
    "f({})",
    "g({})",
    "[{}, 1][0]",
    "P {{ a: {} }}.a",
    "x + [1, {}][1]",
]
BLOCKS = [
    ("if x > 0 {{ {} }}", 0),
    ("if x < 0 {{ }} else {{ {} }}", 0),
    ("if x < 0 {{ }} else if x > 0 {{ {} }}", 0),
    ("for i in 0..1 {{ {} }}", 1),
    ("while x > 0 {{ {} x = 0; }}", 1),
]


@st.composite
def deep_programs(draw: st.DrawFn) -> str:
    wrappers = draw(st.lists(st.sampled_from(WRAPPERS), max_size=EXPRESSION_MAX + 8))
    expression = draw(st.sampled_from(["x", "1", "7"]))
    for wrapper in wrappers:
        expression = wrapper.format(expression)
    if "{" not in expression and draw(st.booleans()):
        expression = '"{' + expression.replace('"', "") + '}"'
        statement = f"emit {expression};"
    else:
        statement = f"x = {expression}; emit x;"
    blocks = draw(st.lists(st.sampled_from(BLOCKS), max_size=BLOCK_MAX + 4))
    for block, _ in blocks:
        statement = block.format(statement)
    return HEADER + "K main { mut let x = 2; " + statement + " }"


@settings(max_examples=2000 if LONG else 60)
@given(deep_programs())
def test_generated_deep_programs_are_refused_or_compile_to_code_cpython_accepts(
    text: str,
) -> None:
    compiled = analyze(text)
    if compiled.program is None:
        codes = {d.code for d in compiled.diagnostics if d.severity == "error"}
        assert "P004" in codes, [(d.code, d.message) for d in compiled.diagnostics[:3]]
        return
    program = compiled.program
    Program(program)  # compiles the K code: never SyntaxError, IndentationError, RecursionError
    assert parse_dir(dir_document(program)) == program
    assert disassemble(program)


def test_arrays_built_by_let_chains_are_bounded_statically() -> None:
    nested = "let a0 = 1; " + "".join(f"let a{i + 1} = [a{i}]; " for i in range(3000))
    start = time.process_time()
    refused(main(nested), "dpl_type_depth_max")
    assert time.process_time() - start < 5
    doubled = "let a0 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]; " + "".join(
        f"let a{i + 1} = [a{i}, a{i}, a{i}, a{i}, a{i}, a{i}, a{i}, a{i}, a{i}, a{i}]; "
        for i in range(6)
    )
    refused(main(doubled), "dpl_value_cells_max")
    shapes = "shape P { a: Int[1000]; b: Int; } shape R { p: P; q: P; } "
    items = ", ".join(["r"] * 600)
    refused(shapes + "K f(r: R) { let big = [" + items + "]; } " + main(""), "dpl_value_cells_max")
    assert analyze(main("let a = [[1, 2], [3, 4]]; emit a;")).ok
