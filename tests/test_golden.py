"""Golden files pin the trace format: a format change must be deliberate.

Regenerate with ``XDV_REGENERATE_GOLDEN=1 pytest tests/test_golden.py`` and bump the format
version if the change is not backward compatible.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import ROOT
from xdv.runtime import replay, run_workload
from xdv.trace import read_trace

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("XDV_REGENERATE_GOLDEN") == "1"


def produce(target: str = "tests.workloads.mixed:main") -> bytes:
    # A module target keeps the recorded workload name independent of the checkout location.
    result = run_workload(target, seed=20261126)
    assert result.trace_bytes is not None
    return result.trace_bytes


def render(data: bytes) -> bytes:
    """A readable twin of a trace, so that a reviewer sees what changed."""
    return (
        "\n".join(
            json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False)
            for entry in read_trace(data).entries
        )
        + "\n"
    ).encode()


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
    check("mixed.jsonl", render(data))


@pytest.mark.spec("XDV-071-10")
def test_context_switch_entries_match_the_golden_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # DISPATCH before a slice's first entry, or the slice's first SLEEP alone (§7.3).
    monkeypatch.chdir(ROOT)
    data = produce("tests.workloads.switches:main")
    check("switches.xdvt", data)
    check("switches.jsonl", render(data))
    events = [(entry.event_name, entry.process) for entry in read_trace(data).entries]
    assert ("DISPATCH", 3) in events and ("DISPATCH", 2) in events
    # The sleeper's four sleeping slices are their SLEEP entries; only its last slice (it
    # returns) has a DISPATCH.
    assert events.count(("SLEEP", 1)) == 4 and events.count(("DISPATCH", 1)) == 1


def test_golden_trace_still_reads_and_verifies() -> None:
    trace = read_trace(GOLDEN / "mixed.xdvt")
    assert trace.complete and trace.seed == 20261126


@pytest.mark.parametrize("mode", ["reexecute", "inject"])
def test_the_context_switch_golden_trace_replays_in_both_modes(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    report = replay(GOLDEN / "switches.xdvt", mode)
    assert report.ok, report.divergence
    assert report.entries == len(read_trace(GOLDEN / "switches.xdvt").entries)
