"""Every example runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import EXAMPLES, xdv

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


def test_there_are_examples() -> None:
    assert len(EXAMPLE_FILES) >= 2


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_runs_and_replays(example: Path, tmp_path: Path) -> None:
    trace = tmp_path / "example.xdvt"
    completed = xdv("run", str(example), "--trace", str(trace))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip()
    assert xdv("verify", str(trace)).returncode == 0
    assert xdv("replay", str(trace)).returncode == 0
