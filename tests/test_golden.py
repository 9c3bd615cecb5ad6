"""Golden files pin the trace format: a format change must be deliberate.

Regenerate with ``XDV_REGENERATE_GOLDEN=1 pytest tests/test_golden.py`` and bump the format
version if the change is not backward compatible.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import ROOT
from xdv.runtime import run_workload
from xdv.trace import read_trace

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("XDV_REGENERATE_GOLDEN") == "1"


def produce() -> bytes:
    # A module target keeps the recorded workload name independent of the checkout location.
    result = run_workload("tests.workloads.mixed:main", seed=20261126)
    assert result.trace_bytes is not None
    return result.trace_bytes


def check(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.write_bytes(actual)
    assert path.read_bytes() == actual, f"{name} differs from its golden file"


@pytest.mark.spec("XDV-071-10")
@pytest.mark.spec("XDV-071-3.1")
def test_trace_bytes_match_the_golden_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    data = produce()
    check("mixed.xdvt", data)
    # A readable twin, so that a reviewer sees what changed.
    rendered = (
        "\n".join(
            json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False)
            for entry in read_trace(data).entries
        )
        + "\n"
    )
    check("mixed.jsonl", rendered.encode())


def test_golden_trace_still_reads_and_verifies() -> None:
    trace = read_trace(GOLDEN / "mixed.xdvt")
    assert trace.complete and trace.seed == 20261126
