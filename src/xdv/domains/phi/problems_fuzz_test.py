"""A seeded fuzz test of Φ problem files: mutations of real G-set graphs (from the shared test
data) and of bqm-json documents built from them go through the path ``xdv phirun`` takes
(:func:`xdv.runtime.phi_job`, which reads, decodes, parses and validates the file). The oracle:
a job or an ``XdvError`` (never another exception), within a time bound.

The default run is derandomized and small; ``--long`` runs thousands of cases with fresh
randomness.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from conftest import shared_testdata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.errors import XdvError
from xdv.runtime import phi_job

LONG = os.environ.get("XDV_LONG") == "1"
CASE_SECONDS = 10.0
EDGES = 60  # edges kept from each G-set graph: mutations, not file size, are the point

NUMBERS = [
    "0",
    "-1",
    "1",
    "2",
    "1.5",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "9007199254740993",
    "99999999999999999999999",
    "1" * 400,
    "-",
    "",
    "0x10",
    "1_000",
    "\u0661",
    "\xff",
]


def _graphs() -> list[list[list[str]]]:
    """The first :data:`EDGES` edges of each small G-set graph, as rows of tokens (header
    first, its edge count adjusted)."""
    graphs = []
    for name in ("G11.txt", "G14.txt", "G43.txt"):
        lines = shared_testdata("gset", name).read_text(encoding="ascii").split("\n")
        rows = [line.split() for line in lines if line.strip()]
        nodes = max(max(int(row[0]), int(row[1])) for row in rows[1 : EDGES + 1])
        graphs.append([[str(nodes), str(EDGES)], *rows[1 : EDGES + 1]])
    return graphs


GRAPHS: list[list[list[str]]] = []


def _corpus() -> list[list[list[str]]]:
    if not GRAPHS:
        GRAPHS.extend(_graphs())
    return GRAPHS


@st.composite
def gset_files(draw: st.DrawFn) -> bytes:
    """A G-set graph with a few line- and token-level mutations."""
    rows = [list(row) for row in draw(st.sampled_from(_corpus()))]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["number", "drop", "duplicate", "token", "header", "bytes"]))
        line = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if not rows:
            rows.append([])
        if kind == "number" and rows[line]:
            column = draw(st.integers(0, len(rows[line]) - 1))
            rows[line][column] = draw(st.sampled_from(NUMBERS) | st.text(max_size=6))
        elif kind == "drop":
            del rows[line]
        elif kind == "duplicate":
            rows[line:line] = [list(rows[line])] * draw(st.integers(1, 5))
        elif kind == "token":
            rows[line].insert(draw(st.integers(0, len(rows[line]))), draw(st.sampled_from(NUMBERS)))
        elif kind == "header" and rows:
            rows[0] = [draw(st.sampled_from(NUMBERS)) for _ in range(draw(st.integers(0, 3)))]
    text = "\n".join(" ".join(row) for row in rows) + "\n"
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0 and data:  # now and then, a byte that is not ASCII
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([draw(st.integers(0, 0xFF))]) + data[position + 1 :]
    return data


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([10**400, -(10**400), 2**53 + 1, 0, -1, 1, 3])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def _document(rows: list[list[str]], kind: str) -> dict[str, Any]:
    nodes = int(rows[0][0])
    entries = [[int(row[0]) - 1, int(row[1]) - 1, int(row[2])] for row in rows[1:]]
    if kind == "qubo":
        return {"kind": "qubo", "n": nodes, "Q": entries, "offset": 0.5}
    return {"kind": "ising", "n": nodes, "h": [0.0] * nodes, "J": entries, "offset": 0.0}


@st.composite
def bqm_files(draw: st.DrawFn) -> bytes:
    """A bqm-json document from a G-set graph, with values at random places replaced."""
    document: Any = _document(
        draw(st.sampled_from(_corpus())), draw(st.sampled_from(["ising", "qubo"]))
    )
    for _ in range(draw(st.integers(1, 3))):
        # Walk down to a random container and replace (or add) one of its values.
        node = document
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            if draw(st.integers(0, 9)) == 0 and isinstance(node, dict):
                key = draw(st.sampled_from(["n", "h", "J", "Q", "kind", "offset", "extra"]))
            if draw(st.integers(0, 2)):  # mostly a plausible number: reaches the deep checks
                node[key] = draw(st.integers(-3, 900) | st.floats(-10, 10))
            else:
                node[key] = draw(JSON_VALUES | st.sampled_from([[], {}, "qubo", "ising"]))
            break
    text = json.dumps(document)
    if draw(st.integers(0, 7)) == 0:
        depth = draw(st.integers(60, 5000))
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return text.encode("utf-8", "surrogatepass")


def _job_time(path: Path, problem_format: str) -> float:
    started = time.perf_counter()
    with contextlib.suppress(XdvError):
        phi_job(path, problem_format=problem_format, provider="exact")
    return time.perf_counter() - started


def check(data: bytes, problem_format: str) -> None:
    """The oracle: a job or an XdvError, within :data:`CASE_SECONDS` (a slow case is timed
    again: a spike of load on the machine passes the second time, a hang does not)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "problem"
        path.write_bytes(data)
        elapsed = _job_time(path, problem_format)
        if elapsed >= CASE_SECONDS:
            elapsed = min(elapsed, _job_time(path, problem_format))
    assert elapsed < CASE_SECONDS, f"{elapsed:.1f} s for {data[:200]!r}"


FUZZ = settings(
    max_examples=5000 if LONG else 60,
    derandomize=not LONG,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(data=gset_files())
def test_mutated_gset_files_give_a_job_or_a_typed_error(data: bytes) -> None:
    check(data, "gset")


@FUZZ
@given(data=bqm_files())
def test_mutated_bqm_json_gives_a_job_or_a_typed_error(data: bytes) -> None:
    check(data, "bqm-json")
