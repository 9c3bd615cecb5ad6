"""Same workload, same seed, separate processes: byte-identical traces."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import WORKLOADS, xdv
from xdv.trace import diff_traces, read_trace


@pytest.mark.spec("XDV-001-3.1")
@pytest.mark.spec("XDV-071-4.1")
@pytest.mark.spec("XDV-005-6.1")
def test_ten_runs_in_separate_processes_are_byte_identical(tmp_path: Path) -> None:
    paths = [tmp_path / f"run{index}.xdvt" for index in range(10)]

    def one(path: Path) -> int:
        return xdv(
            "run", str(WORKLOADS / "mixed.py"), "--seed", "11", "--trace", str(path), separate=True
        ).returncode

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(one, paths))
    assert codes == [70] * 10  # the workload has a deliberately faulty process
    blobs = {path.read_bytes() for path in paths}
    assert len(blobs) == 1
    assert read_trace(paths[0]).complete


@pytest.mark.spec("XDV-001-3.3")
def test_a_seed_that_changes_no_decision_changes_only_the_recorded_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    assert (
        xdv("run", str(WORKLOADS / "no_random.py"), "--seed", "1", "--trace", str(first)).returncode
        == 0
    )
    assert (
        xdv(
            "run", str(WORKLOADS / "no_random.py"), "--seed", "999", "--trace", str(second)
        ).returncode
        == 0
    )
    left, right = read_trace(first), read_trace(second)
    assert left.seed == 1 and right.seed == 999
    # Entry by entry, ignoring the chain links that the differing seed necessarily moves.
    divergences = diff_traces(left.entries, right.entries, ignore=("prev_hash",))
    assert [d.index for d in divergences] == [0]
    assert [name for name, _, _ in divergences[0].differences] == ["metadata.seed"]


def test_a_seed_that_feeds_decisions_changes_them(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    xdv("run", str(WORKLOADS / "mixed.py"), "--seed", "1", "--trace", str(first))
    xdv("run", str(WORKLOADS / "mixed.py"), "--seed", "2", "--trace", str(second))
    divergences = diff_traces(
        read_trace(first).entries, read_trace(second).entries, ignore=("prev_hash",)
    )
    assert len(divergences) > 1
