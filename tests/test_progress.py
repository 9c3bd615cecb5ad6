"""Progress displays of long commands appear only on a terminal and never with --json."""

from __future__ import annotations

from xdv.cli._progress import shown, spinner, steps_bar
from xdv.cli._q import _long


def test_wide_circuits_count_as_long_jobs() -> None:
    assert _long("OPENQASM 2.0;\nqreg q[12];\nqreg r[8];\n")
    assert _long("OPENQASM 3.0;\nqubit[21] q;\n")
    assert not _long("OPENQASM 3.0;\nqubit[19] q;\nbit[40] c;\n")


def test_nothing_is_shown_without_a_terminal_or_with_json() -> None:
    assert not shown(True)
    assert not shown(False)  # pytest's standard error is not a terminal
    with steps_bar("anneal", False) as advance:
        assert advance is None
    with spinner("exact provider", True):
        pass
