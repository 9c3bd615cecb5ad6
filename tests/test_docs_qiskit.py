"""docs/qiskit.md is a runnable walk-through: its Python blocks run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "qiskit.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_qiskit_walk_through_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("braket.devices")
    monkeypatch.setenv("XDV_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "walk_through"}
    for number, block in enumerate(blocks):
        exec(compile(block, f"{PAGE.name} block {number + 1}", "exec"), namespace)
