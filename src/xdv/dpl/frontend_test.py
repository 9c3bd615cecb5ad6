"""Lexer, parser, checker and DIR: unit tests, and a fuzz test over mutated corpus programs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.dpl import (
    CODES,
    DplStaticError,
    analyze,
    canonical_bytes,
    compile_k,
    compile_source,
    disassemble,
    parse,
    parse_dir,
    render,
)
from xdv.dpl._lexer import tokenize
from xdv.errors import ErrorCode

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "dpl"
PROGRAMS = sorted(CORPUS.rglob("*.ds"))
TEXTS = [path.read_text("utf-8") for path in PROGRAMS]


def codes(source: str, profile: str | None = None) -> list[str]:
    return [d.code for d in analyze(source, profile=profile).diagnostics]


def test_tokens_take_the_longest_match_and_carry_spans() -> None:
    tokens, problems = tokenize("a->b==c..d Φ::x 1.5 2")
    assert not problems
    assert [t.text for t in tokens] == [
        "a",
        "->",
        "b",
        "==",
        "c",
        "..",
        "d",
        "Φ",
        "::",
        "x",
        "1.5",
        "2",
        "",
    ]
    assert tokens[1].span.start == 1 and tokens[1].span.end == 3
    assert [t.kind for t in tokens[-3:]] == ["float", "int", "eof"]


def test_diagnostic_rendering_shows_code_location_line_and_caret() -> None:
    compiled = analyze("K main {\n    emit nope;\n}\n", name="x.ds")
    (diagnostic,) = compiled.diagnostics
    text = render(diagnostic, compiled.source)
    assert text.splitlines() == [
        "error[T202]: undefined name 'nope'",
        " --> x.ds:2:10",
        "  |",
        "2 |     emit nope;",
        "  |          ^^^^",
    ]
    record = diagnostic.to_json(compiled.source)
    assert record["line"] == 2 and record["column"] == 10 and record["code"] == "T202"


def test_parser_recovers_and_reports_every_error() -> None:
    found = codes("K main {\n let = 1;\n emit ;\n let ok = 2;\n emit ok +;\n}\n")
    assert found == ["P001", "P001", "P001"]


def test_every_code_used_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "dpl.md").read_text("utf-8")
    for code in CODES:
        assert f"`{code}`" in docs, f"{code} is not documented in docs/dpl.md"


@pytest.mark.spec("XDV-051-3.3")
def test_cross_regime_calls_need_a_bind_in_the_calling_direction() -> None:
    base = """
    proc Q::b() -> Bits uses qubits(n = 1) linear { let r = q::alloc(1); observe r; }
    proc K::main() { let m = Q::b(); emit m; }
    """
    assert codes(base) == ["R101"]
    assert codes(base + "bind Q::b -> K::main contract { shots == 1; }") == ["R102"]
    assert codes(base + "bind K::main -> Q::b contract { shots == 1; }") == []
    # By plain name (§3.19): resolved through the bind, and R101 without one.
    plain = base.replace("Q::b();", "b();")
    assert codes(plain) == ["R101"]
    assert codes(plain + "bind K::main -> Q::b contract { shots == 1; }") == []


@pytest.mark.spec("XDV-051-4.3")
def test_q_values_are_linear() -> None:
    template = "proc Q::p() -> Bits uses qubits(n = 2) linear {{ {} }}"
    assert codes(template.format("let r = q::alloc(2); observe r;")) == []
    assert codes(template.format("let r = q::alloc(2); observe r; observe r;")) == ["N301"]
    assert codes(template.format("let r = q::alloc(2);")) == ["N302", "R104"]
    assert codes(template.format("let r = q::alloc(2); let s = q::cx(r, 0, 0); observe s;")) == [
        "N301"
    ]
    shape = "shape H { reg: Qubits; } " + template.format(
        "let h = H { reg: q::alloc(1) }; let g = h; observe h.reg; observe g.reg;"
    )
    assert "N301" in codes(shape)


@pytest.mark.spec("XDV-051-3.2")
def test_regimes_keep_their_own_values() -> None:
    assert codes(
        'proc Q::p() -> Bits uses qubits(n=1) linear { let n = "a"; let r = q::alloc(1); '
        "observe r; }"
    ) == ["N304"]
    assert codes(
        "proc Q::p(n: String) -> Bits uses qubits(n=1) linear { let r = q::alloc(1); observe r; }"
    ) == ["N304"]
    # Classical numbers (parameters, and values bound from them) are a Q process's own.
    assert (
        codes(
            "proc Q::p(n: f64, a: f64[2]) -> Bits uses qubits(n=1) linear { let t = n * 2.0; "
            "let r = q::alloc(1); let r = q::rx(r, 0, t + a[1]); observe r; }"
        )
        == []
    )
    assert codes("K main { let r = q::alloc(1); }") == ["R104", "N302"]
    assert codes("K main { let x = phi::int(0, 1); }") == ["R104", "W504"]


@pytest.mark.spec("XDV-051-4.4")
def test_phi_values_need_a_witness_and_cannot_be_mutated() -> None:
    body = "let x = phi::int(0, 3); constrain x > 1; {} prove w from x; return w;"
    template = "proc Φ::p() -> Witness {{ " + body + " }}"
    assert codes(template.format("")) == []
    assert codes(template.format('emit "early";')) == ["F401"]
    assert codes("proc Φ::p() -> i64 { let x = phi::int(0, 3); return x; }") == ["W501", "W502"]
    assert "R104" in codes(template.format("mut let y = 1;"))
    assert codes(
        "proc Φ::p() -> Witness { let x = phi::int(0, 3); constrain x; prove w from x; return w; }"
    ) == ["W503"]


@pytest.mark.spec("XDV-051-5.1")
def test_contract_clauses_are_checked_statically() -> None:
    base = """
    proc Φ::p() -> Witness { let x = phi::int(0, 3); constrain x == 1; prove w from x;
                             return w; }
    proc K::main() { let w = Φ::p(); emit w.x; }
    bind K::main -> Φ::p contract { witness_transfer == true; CLAUSE }
    """
    assert codes(base.replace("CLAUSE", "")) == []
    assert codes(base.replace("CLAUSE", "latency_us <= 10;")) == []
    assert codes(base.replace("CLAUSE", "latency_us >= 10;")) == ["C603"]
    assert codes(base.replace("CLAUSE", "latency_us <= -1;")) == ["C602"]
    assert codes(base.replace("CLAUSE", "colour == red;")) == ["C601"]
    assert codes(base.replace("witness_transfer == true; CLAUSE", "")) == ["C605"]


@pytest.mark.spec("XDV-051-6")
def test_type_checking_is_deterministic() -> None:
    for text in TEXTS:
        first = [(d.code, d.span, d.message) for d in analyze(text).diagnostics]
        second = [(d.code, d.span, d.message) for d in analyze(text).diagnostics]
        assert first == second


@pytest.mark.spec("XDV-050-3.2")
def test_kernel_profile_rejects_unbounded_loops_recursion_and_hidden_effects() -> None:
    assert codes("K main { mut let i = 0; while i < 2 { i = i + 1; } }", "kernel") == ["K801"]
    mutual = "K a(K[Int] n) -> K[Int] { b(n) } K b(K[Int] n) -> K[Int] { a(n) } K main { }"
    assert codes(mutual, "kernel") == ["K802", "K802"]
    hidden = "K f() -> K[Int] { emit 1; return 1; } K main { let x = f(); emit x; }"
    assert codes(hidden, "kernel") == ["K803"]
    assert codes(hidden) == []


@pytest.mark.spec("XDV-050-3.1")
def test_kernel_profile_accepts_bounded_typed_code() -> None:
    source = """
    K clamp(K[Int] v, K[Int] hi) -> K[Int] { if v > hi { hi } else { v } }
    K main {
        mut let total: K[Int] = 0;
        for i in 0..10 { total = total + clamp(i, 5); }
        emit total;
    }
    """
    assert codes(source, "kernel") == []


@pytest.mark.spec("XDV-050-5")
def test_static_errors_are_typed_and_stop_compilation() -> None:
    with pytest.raises(DplStaticError) as syntax:
        compile_source("K main { emit ; }")
    assert syntax.value.code is ErrorCode.DPL_SYNTAX
    with pytest.raises(DplStaticError) as semantic:
        compile_source("K main { emit x; }")
    assert semantic.value.code is ErrorCode.DPL_CHECK
    assert semantic.value.diagnostics[0].code == "T202"


@pytest.mark.spec("XDV-080-12")
@pytest.mark.spec("XDV-050-4.1")
@pytest.mark.spec("XDV-050-4.2")
def test_dir_is_canonical_and_identical_for_identical_source() -> None:
    for path, text in zip(PROGRAMS, TEXTS, strict=True):
        compiled = analyze(text)
        if compiled.dir is None:
            continue
        again = analyze(text).dir
        assert again is not None
        assert canonical_bytes(compiled.dir) == canonical_bytes(again), path.name
        body = dict(compiled.dir)
        digest = body.pop("sha256")
        import hashlib

        assert hashlib.sha256(canonical_bytes(body)).hexdigest() == digest
        assert json.loads(canonical_bytes(compiled.dir)) == compiled.dir
        assert disassemble(compiled.dir).startswith("; xdv-dir v1")


def test_whitespace_and_comments_do_not_change_the_dir() -> None:
    a = compile_source("K main { emit 1 + 2; }")
    b = compile_source("// note\nK  main\n{\n  emit 1+2 ; /* x */\n}\n")
    assert canonical_bytes(a) == canonical_bytes(b)


def _mutations() -> st.SearchStrategy[str]:
    pieces = [
        "{",
        "}",
        "(",
        ")",
        ";",
        "emit",
        "let",
        "Φ::",
        "Q::",
        "q::h(",
        "->",
        '"',
        "/*",
        "..",
        "K",
        "proc",
        "bind",
        "contract",
        "x",
        "0",
        "1.5",
        "Φ",
        "é",
        "\n",
        "mut",
    ]

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(TEXTS))
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(text)))
            action = draw(st.sampled_from(["insert", "delete", "replace"]))
            piece = draw(st.sampled_from(pieces) | st.text(max_size=3))
            if action == "insert":
                text = text[:position] + piece + text[position:]
            elif action == "delete":
                text = text[:position] + text[position + draw(st.integers(1, 8)) :]
            else:
                text = text[:position] + piece + text[position + len(piece) :]
        return text

    return mutate()


@settings(max_examples=300)
@given(_mutations())
def test_fuzz_mutated_programs_give_diagnostics_never_exceptions(text: str) -> None:
    for profile in (None, "kernel"):
        compiled = analyze(text, profile=profile)
        for diagnostic in compiled.diagnostics:
            render(diagnostic, compiled.source)
            assert diagnostic.code in CODES
        program = compiled.program
        if program is not None:
            assert parse_dir(json.loads(canonical_bytes(program))) == program
            disassemble(program)
            if program.process("K::main") is not None:
                compile(compile_k(program, "K::main"), "<fuzz>", "exec")


@settings(max_examples=100)
@given(_mutations())
def test_fuzz_programs_that_compile_run_to_a_classified_outcome(text: str) -> None:
    from xdv.core import Kernel
    from xdv.dpl import Program

    program = analyze(text).program
    entry = None if program is None else program.process("K::main")
    if program is None or entry is None or entry.params:
        return
    kernel = Kernel(0, emit=lambda pid, value: None)
    kernel.spawn(Program(program, steps_max=20_000).anchor)
    result = kernel.run()
    for status in result.exits.values():
        # A typed outcome (success, a DPL failure, a kernel refusal), never a Python crash.
        assert status.ok or status.code != "PROCESS_FAULT", status.message


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    program, _diagnostics = parse(text)
    assert program is not None
    analyze(text)


def test_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    found = codes("K main { emit " + "(" * 5000 + "1" + ")" * 5000 + "; }")
    # The limit is reported once; the closing parentheses it leaves are not follow-on errors.
    assert found == ["P004"]
    found = codes("K main { " + "if true { " * 400 + "}" * 400 + " }")
    assert "P001" in found
