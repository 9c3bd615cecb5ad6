"""Re-execute and inject replay, divergence reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLES, WORKLOADS, xdv
from xdv.core import KDomainManager
from xdv.domains import _registry
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import ReplayMode, replay, run_workload


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    path = tmp_path / "offload.xdvt"
    result = run_workload(str(EXAMPLES / "hybrid_offload.py"), seed=4, trace=path)
    assert result.ok
    return path


@pytest.mark.spec("XDV-080-11")
@pytest.mark.spec("XDV-081-9.2")
@pytest.mark.spec("XDV-005-6.1")
def test_reexecute_reproduces_the_trace(recorded: Path) -> None:
    report = replay(recorded, ReplayMode.REEXECUTE)
    assert report.ok and report.divergence is None and report.entries > 50


@pytest.mark.spec("XDV-080-11")
@pytest.mark.spec("XDV-081-9.2")
@pytest.mark.spec("XDV-005-6.2")
def test_inject_feeds_recorded_outcomes_without_calling_the_manager(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[KDomainManager] = []

    def counting_factory(description: Any) -> KDomainManager:
        manager = KDomainManager(int(description["lanes"]), int(description["call_latency"]))
        built.append(manager)
        return manager

    monkeypatch.setitem(_registry._FACTORIES, "k", counting_factory)
    assert replay(recorded, ReplayMode.INJECT).ok
    assert built and built[-1].calls == 0
    assert replay(recorded, ReplayMode.REEXECUTE).ok
    assert built[-1].calls > 0


@pytest.mark.spec("XDV-071-8")
def test_divergence_reports_the_first_differing_entry(tmp_path: Path) -> None:
    path = tmp_path / "env.xdvt"
    workload = str(WORKLOADS / "env_sensitive.py")
    completed = xdv("run", workload, "--trace", str(path), env={"XDV_TEST_COUNT": "3"})
    assert completed.returncode == 0
    same = xdv("replay", str(path), env={"XDV_TEST_COUNT": "3"})
    assert same.returncode == 0 and "identical" in same.stdout
    different = xdv("replay", str(path), env={"XDV_TEST_COUNT": "2"})
    assert different.returncode == 1
    assert "first divergence at entry" in different.stdout
    assert "EFFECT" in different.stdout or "PROCESS_EXIT" in different.stdout


def test_replay_refuses_a_changed_workload(tmp_path: Path) -> None:
    source = tmp_path / "changing.py"
    source.write_text((WORKLOADS / "no_random.py").read_text())
    path = tmp_path / "t.xdvt"
    assert run_workload(str(source), trace=path).ok
    source.write_text(source.read_text() + "\n# edited\n")
    with pytest.raises(XdvError) as raised:
        replay(path)
    assert raised.value.code is ErrorCode.REPLAY_INPUT_CHANGED
    completed = xdv("replay", str(path))
    assert completed.returncode == 1 and "REPLAY_INPUT_CHANGED" in completed.stderr


def test_replay_can_load_a_moved_workload(tmp_path: Path) -> None:
    original = tmp_path / "first" / "moving.py"
    original.parent.mkdir()
    original.write_text((WORKLOADS / "no_random.py").read_text())
    path = tmp_path / "t.xdvt"
    assert run_workload(str(original), trace=path).ok
    moved = tmp_path / "second" / "moving.py"
    moved.parent.mkdir()
    original.rename(moved)
    with pytest.raises(XdvError) as raised:
        replay(path)
    assert raised.value.code is ErrorCode.WORKLOAD_INVALID
    assert replay(path, workload=str(moved)).ok
    completed = xdv("replay", str(path), "--workload", str(moved))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert xdv("replay", str(path)).returncode == 65


@pytest.mark.spec("XDV-071-8")
@pytest.mark.parametrize("which", [5, -1])
def test_replay_rejects_a_trace_whose_only_damage_is_a_check(recorded: Path, which: int) -> None:
    from xdv.errors import TraceError
    from xdv.trace._reader import split_frames

    frames = split_frames(recorded)
    index = which % len(frames)
    offset = 12 + sum(len(frame) + 4 for frame in frames[:index]) + len(frames[index])
    data = bytearray(recorded.read_bytes())
    data[offset] ^= 0x10  # the first byte of that entry's check
    damaged = recorded.with_name("damaged.xdvt")
    damaged.write_bytes(bytes(data))
    with pytest.raises(TraceError) as raised:
        replay(damaged)
    assert raised.value.entry_index == index
    assert xdv("verify", str(damaged)).returncode == 1
