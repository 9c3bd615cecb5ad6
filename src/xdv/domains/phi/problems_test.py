"""Φ problem inputs (G-set files, bqm-json documents, dictionary problems): every malformed or
oversized input is a typed error naming the file and the field or line, never an OverflowError,
RecursionError, TypeError or KeyError."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from xdv.domains.phi import IsingProblem, PhiProblemError, parse_gset
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import limit
from xdv.runtime import phi_job


def gset_error(tmp_path: Path, content: bytes) -> XdvError:
    path = tmp_path / "g.txt"
    path.write_bytes(content)
    with pytest.raises(XdvError) as raised:
        parse_gset(path)
    return raised.value


def bqm_error(tmp_path: Path, content: str | bytes) -> XdvError:
    path = tmp_path / "p.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(XdvError) as raised:
        phi_job(path, problem_format="bqm-json", provider="exact")
    return raised.value


def test_a_valid_gset_file_still_parses(tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_text("3 3\n1 2 1\n2 3 -1\n\n1 3 2\n", encoding="ascii")
    problem, total = parse_gset(path)
    assert (problem.n, len(problem.weights), total) == (3, 3, 2.0)


@pytest.mark.parametrize(
    ("content", "name", "where"),
    [
        (b"3 1\n1 2 99999999999999999999999\n", "problem_number_max", "g.txt:2"),
        (b"3 1\n1 2 9007199254740993\n", "problem_number_max", "g.txt:2"),
        (b"99999999999999 1\n1 2 1\n", "problem_spins_max", "g.txt:1"),
        (b"3 99999999999999\n1 2 1\n", "problem_couplings_max", "g.txt:1"),
        (b"3 1\n1 2 " + b"9" * 5000 + b"\n", "problem_number_max", "g.txt:2"),
    ],
)
def test_huge_gset_numbers_are_limits_not_overflow_errors(
    tmp_path: Path, content: bytes, name: str, where: str
) -> None:
    error = gset_error(tmp_path, content)
    assert error.code is ErrorCode.INPUT_LIMIT_EXCEEDED, error
    assert f"limit {name} =" in error.message and error.where == where


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        (b"", "g.txt:1", "nodes edges"),
        (b"3\n", "g.txt:1", "nodes edges"),
        (b"3 x\n", "g.txt:1", "integers"),
        (b"3 2\n1 2 1\n", "g.txt", "expected 2 edges"),
        (b"3 1\n1 2 1\n2 3 1\n", "g.txt:3", "more than the 1 edges"),
        (b"3 1\n1 4 1\n", "g.txt:2", "outside [1, 3]"),
        (b"3 1\n1 2\n", "g.txt:2", "'u v w'"),
        (b"3 1\n1 1 1\n", "problem.J", "itself"),
        (b"0 0\n", "g.txt:1", "at least one node"),
    ],
)
def test_malformed_gset_files_name_the_line(
    tmp_path: Path, content: bytes, where: str, words: str
) -> None:
    error = gset_error(tmp_path, content)
    assert error.code is ErrorCode.PHI_ERR_PROBLEM_INVALID, error
    assert error.where == where and words in error.message, error


def test_gset_bytes_must_be_ascii_and_the_file_regular(tmp_path: Path) -> None:
    error = gset_error(tmp_path, b"3 1\n1 2 \xff\n")
    assert error.code is ErrorCode.INPUT_DECODE_FAILED and "offset 8" in error.message
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(XdvError) as raised:
        parse_gset(fifo)  # refused at once, never blocks on the pipe
    assert raised.value.code is ErrorCode.INPUT_NOT_REGULAR


def test_deeply_nested_bqm_json_is_a_limit_not_a_recursion_error(tmp_path: Path) -> None:
    error = bqm_error(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert error.code is ErrorCode.INPUT_LIMIT_EXCEEDED and "json_depth_max" in error.message


def test_bqm_json_must_be_utf8_json(tmp_path: Path) -> None:
    assert bqm_error(tmp_path, b'{"n": \xff}').code is ErrorCode.INPUT_DECODE_FAILED
    assert bqm_error(tmp_path, '{"n": NaN}').code is ErrorCode.INPUT_DECODE_FAILED


PROBLEM: dict[str, Any] = {"kind": "ising", "n": 3, "J": [[0, 1, 1.0], [1, 2, -1.0]]}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        # JSON's 1e400 decodes as an infinite float (written here as a string, unquoted below).
        ({"J": [[0, 1, "1e400"]]}, "problem.J[0][2]", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"J": [[0, 1, 10**400]]}, "problem.J[0][2]", ErrorCode.INPUT_LIMIT_EXCEEDED),
        ({"J": [[0, 10**30, 1]]}, "problem.J[0][1]", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"J": [[0, 1, 1], 5]}, "problem.J[1]", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"J": [[0, 1, "1"]]}, "problem.J[0][2]", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"J": [[0.5, 1, 1]]}, "problem.J[0][0]", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"J": {"0": 1}}, "problem.J", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"J": 7}, "problem.J", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"h": [[0, 1], 5]}, "problem.h[1]", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"h": 5}, "problem.h", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"h": [1, 2, 1e300]}, "problem.h[2]", ErrorCode.INPUT_LIMIT_EXCEEDED),
        ({"offset": 1e308}, "problem.offset", ErrorCode.INPUT_LIMIT_EXCEEDED),
        ({"n": 10**30}, "problem.n", ErrorCode.INPUT_LIMIT_EXCEEDED),
        ({"n": "3"}, "problem.n", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        (
            {"kind": "qubo", "Q": [[0, 1, 1], [0]]},
            "problem.Q[1]",
            ErrorCode.PHI_ERR_PROBLEM_INVALID,
        ),
        ({"kind": "qubo", "Q": "abc"}, "problem.Q", ErrorCode.PHI_ERR_PROBLEM_INVALID),
        ({"kind": "qubo", "n": 10**9, "Q": []}, "problem.n", ErrorCode.INPUT_LIMIT_EXCEEDED),
    ],
)
def test_bad_bqm_json_fields_are_named(
    tmp_path: Path, change: dict[str, Any], field: str, code: ErrorCode
) -> None:
    document = {**PROBLEM, **change}
    if document["kind"] == "qubo":
        document.pop("J", None)
    error = bqm_error(tmp_path, json.dumps(document).replace('"1e400"', "1e400"))
    assert error.code is code, error
    assert error.where == f"{tmp_path / 'p.json'}: {field}", error


def test_dictionary_problems_refuse_huge_numbers_without_overflow() -> None:
    with pytest.raises(XdvError) as raised:
        IsingProblem.build(2, [10**400, 0], [(0, 1, 1.0)])
    assert raised.value.code is ErrorCode.INPUT_LIMIT_EXCEEDED
    with pytest.raises(PhiProblemError, match="finite"):
        IsingProblem.build(2, None, [(0, 1, float("nan"))])
    assert limit("problem_number_max") == 2**53
