"""A seeded fuzz test of OpenQASM input: mutations of real circuits (QASMBench and the OpenQASM 3
examples in the shared test data) go through the path ``xdv qrun`` takes (strict decoding, then
``parse_circuit``). The oracle: the result is a parsed circuit or an ``XdvError`` (never another
exception, never a Rust panic), within a time bound.

The default run is derandomized and small (a few seconds); ``--long`` runs thousands of cases
with fresh randomness. Every failing case hypothesis finds is shrunk to a minimal text.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from conftest import shared_testdata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.domains.q import parse_circuit
from xdv.errors import XdvError
from xdv.inputs import decode_text

LONG = os.environ.get("XDV_LONG") == "1"
# Seconds one case may take, parse included (a hang is far beyond it); generous, the machine
# running the tests may be loaded.
CASE_SECONDS = 10.0

# Tokens that reach the corners: keywords, brackets, huge and odd numbers, comments, version
# lines, declarations of the kinds the limits bound.
TOKENS = [
    "OPENQASM 2.0;",
    "OPENQASM 3.0;",
    'include "qelib1.inc";',
    'include "stdgates.inc";',
    "qreg",
    "creg",
    "qubit",
    "bit",
    "gate",
    "opaque",
    "measure",
    "reset",
    "barrier",
    "if",
    "else",
    "for",
    "while",
    "in",
    "const",
    "int",
    "uint[64]",
    "ctrl @",
    "inv @",
    "pow(2) @",
    "->",
    "==",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    ":",
    "//",
    "/*",
    "*/",
    '"',
    "\n",
    " ",
    "0",
    "1",
    "-1",
    "1e400",
    "-1e400",
    "nan",
    "pi",
    "2000000000",
    "18446744073709551616",
    "1000000000000000000000000000000",
    "2 ** 100000",
    "1 << 4096",
    "[0:1000000000]",
    "q",
    "c",
    "q[0]",
    "h",
    "cx",
    "U",
    "\x00",
    "\u00e9",
]


NUMBERS = [
    "0",
    "-1",
    "65",
    "4097",
    "100001",
    "2000000000",
    "9223372036854775808",
    "1000000000000000000000000000000",
    "1e400",
    "1.5",
    "0.0",
]


def _seeds() -> list[str]:
    root = shared_testdata("qasm")
    files = sorted(root.glob("qasmbench/*.qasm")) + sorted(root.glob("openqasm3_examples/*.qasm"))
    texts = [path.read_text(encoding="utf-8") for path in files if path.stat().st_size < 4000]
    assert len(texts) >= 10, "the fuzz corpus is too small to mean something"
    return texts


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> bytes:
    """A seed circuit with a few mutations, as the bytes a file would hold."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(["insert", "delete", "duplicate", "replace", "splice", "number"])
        )
        at = draw(st.integers(0, len(text)))
        numbers = [match.span() for match in re.finditer(r"\d+", text)]
        if kind == "number" and numbers:
            # A size, index or angle becomes huge, zero, negative or odd.
            start, end = draw(st.sampled_from(numbers))
            value = draw(st.sampled_from(NUMBERS))
            text = text[:start] + value + text[end:]
        elif kind == "insert":
            token = draw(st.sampled_from(TOKENS) | st.text(max_size=8))
            text = text[:at] + token * draw(st.sampled_from([1, 1, 2, 70])) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "duplicate":
            piece = text[at : at + draw(st.integers(1, 80))]
            text = text[:at] + piece * draw(st.integers(2, 30)) + text[at:]
        elif kind == "replace":
            end = at + draw(st.integers(1, 6))
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[end:]
        else:
            other = draw(st.sampled_from(seeds))
            cut = draw(st.integers(0, len(other)))
            text = text[:at] + other[cut:]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0 and data:  # now and then, a byte that is not UTF-8
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + data[position + 1 :]
    return data


SEEDS: list[str] = []


def _corpus() -> list[str]:
    if not SEEDS:
        SEEDS.extend(_seeds())
    return SEEDS


def _parse_time(data: bytes) -> float:
    started = time.perf_counter()
    with contextlib.suppress(XdvError):
        parse_circuit(decode_text(data, "fuzz.qasm"), "fuzz.qasm")
    return time.perf_counter() - started


def check(data: bytes) -> None:
    """The oracle: a circuit or an XdvError, within :data:`CASE_SECONDS`. The parsers are
    imported before the first case is timed, and a slow case is timed again: a spike of load
    on the machine passes the second time, a hang does not."""
    if not WARM:
        WARM.extend(parse_circuit(text).sha256 for text in _corpus())
    elapsed = _parse_time(data)
    if elapsed >= CASE_SECONDS:
        elapsed = min(elapsed, _parse_time(data))
    assert elapsed < CASE_SECONDS, f"{elapsed:.1f} s for {data[:200]!r}"


WARM: list[str] = []


@settings(
    max_examples=3000 if LONG else 30,
    derandomize=not LONG,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_circuits_give_a_circuit_or_a_typed_error(data: st.DataObject) -> None:
    check(data.draw(mutated(_corpus())))


def test_the_seed_circuits_parse(tmp_path: Path) -> None:
    # The mutations start from circuits that parse: the corpus itself is no fuzz case.
    for text in _corpus():
        parse_circuit(text)
