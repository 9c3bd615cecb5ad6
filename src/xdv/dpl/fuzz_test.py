"""A unit-level fuzz test of the DPL toolchain: programs generated from tokens and programs
mutated from the project's examples and the DPL test corpus (deleted, duplicated, repeated and
spliced spans, inserted tokens, huge numbers, stray characters).

The oracle: analysing, compiling and running never raise anything but a typed error (every
problem in the source is a diagnostic, every failure of a run an ``XdvError`` the kernel
records), the diagnostics stay within their caps, and each case finishes within a time bound.
Seeded by Hypothesis (``derandomize``), so a failure reproduces; the default run takes a few
seconds, ``--long`` runs many more cases.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.core import Kernel
from xdv.dpl import Program, analyze, dir_document, disassemble, parse_dir
from xdv.dpl._lexer import _OPERATORS, KEYWORDS  # the tokens, as the lexer knows them
from xdv.errors import XdvError
from xdv.inputs import limit

LONG = os.environ.get("XDV_LONG") == "1"
ROOT = Path(__file__).resolve().parents[3]
CORPUS = [
    path.read_text("utf-8")
    for path in sorted([*ROOT.glob("examples/*.ds"), *ROOT.glob("tests/dpl/**/*.ds")])
]
# Processor seconds one case may take (analysis, compilation and a run of at most STEPS steps;
# processor time, not wall time, so that a shared machine does not make a case look hung).
CASE_SECONDS = 10.0
STEPS = 20_000

TOKENS = [
    *sorted(KEYWORDS),
    *[
        "main",
        "f",
        "g",
        "x",
        "y",
        "r",
        "w",
        "n",
    ],
    *[
        "q::alloc",
        "q::h",
        "q::cx",
        "q::rx",
        "phi::int",
        "phi::bool",
        "Q::coin",
        "Φ::solve",
        "K::main",
    ],
    *_OPERATORS,
    "0",
    "1",
    "7",
    "3.5",
    "9" * 2000,
    "9" * 400 + ".0",
    '"text"',
    '"{x}"',
    '"{"',
    '"unterminated',
    "/* comment */",
    "/*",
    "// line",
    "@",
    "é",
    "\t",
    "\n",
    "i64[4]",
    "K[Int]",
    "Int",
    "String",
    "Qubits",
    "Witness",
    "Pair { a: 1, b: 2 }",
]

FUZZ = settings(
    max_examples=5000 if LONG else 120,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    deadline=None,
)


def check_case(text: str) -> None:
    """The oracle for one source text."""
    start = time.process_time()
    compiled = analyze(text, "fuzz.ds")
    assert len(compiled.diagnostics) <= limit("dpl_diagnostics_max") + 1
    program = compiled.program
    if program is not None:
        assert parse_dir(dir_document(program)) == program
        disassemble(program)
        main = program.process("K::main")
        if main is not None and not main.params:
            try:
                runnable = Program(program, steps_max=STEPS)
            except XdvError:
                runnable = None
            if runnable is not None:
                kernel = Kernel(0, emit=lambda pid, value: None)
                kernel.spawn(runnable.anchor)
                result = kernel.run()
                # A failure of the run is a typed error the kernel records; anything else is
                # kept aside as the anchor's own exception.
                assert not result.exceptions, result.exceptions
    assert time.process_time() - start < CASE_SECONDS, "case took too long"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            text = draw(st.sampled_from(CORPUS))
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 80)))
        piece = text[start:end]
        action = draw(
            st.sampled_from(["delete", "duplicate", "repeat", "insert", "splice", "character"])
        )
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "duplicate":
            text = text[:end] + piece + text[end:]
        elif action == "repeat":
            text = text[:end] + piece * draw(st.integers(2, 300)) + text[end:]
        elif action == "insert":
            token = draw(st.sampled_from(TOKENS))
            text = text[:start] + " " + token + " " + text[start:]
        elif action == "splice":
            other = draw(st.sampled_from(CORPUS))
            at = draw(st.integers(0, len(other)))
            text = text[:start] + other[at : at + 200] + text[end:]
        else:
            char = draw(st.characters(codec="utf-8"))
            text = text[:start] + char + text[start + 1 :]
    return text


@FUZZ
@given(mutated())
def test_mutated_corpus_programs_only_ever_give_typed_errors(text: str) -> None:
    check_case(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=120).map(" ".join))
def test_token_soup_only_ever_gives_typed_errors(text: str) -> None:
    check_case(text)


@settings(FUZZ, max_examples=2000 if LONG else 25)
@given(
    st.sampled_from(TOKENS),
    st.integers(100, 20_000 if LONG else 4000),
    st.sampled_from(["", "K main { ", "K main { emit ", "forge a { "]),
)
def test_pathological_repetition_is_bounded(token: str, count: int, prefix: str) -> None:
    check_case(prefix + (token + " ") * count)


def test_the_corpus_itself_passes_the_oracle() -> None:
    assert len(CORPUS) >= 20
    for text in CORPUS:
        check_case(text)
