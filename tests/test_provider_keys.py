"""Provider identity keys are secret and machine-specific; traces are neither.

Two nodes with different key stores (two ``XDV_HOME`` directories: different node keys,
different provider keys) write byte-identical traces for the same run, and each replays the
other's trace. Nothing in a trace names a key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import WORKLOADS, xdv
from xdv import KDomainManager, replay, run_workload
from xdv.domains.phi import PhiDomainManager
from xdv.domains.q.testing import BELL
from xdv.security import KeyStore

TRIANGLES = "6 7\n1 2 1\n2 3 1\n3 1 1\n4 5 1\n5 6 1\n6 4 1\n1 4 1\n"


def key_material(home: Path) -> list[str]:
    """Every public key fingerprint and public key (hex) the key store under ``home`` holds."""
    store = KeyStore(home / "keys")
    found = [store.public_key().fingerprint]
    registry = json.loads((store.path / "providers.json").read_text())["providers"]
    for entry in registry.values():
        found += [entry["fingerprint"], entry["ed25519"]]
    return found


def assert_names_no_key(trace: bytes, homes: list[Path]) -> None:
    for home in homes:
        for value in key_material(home):
            assert value.encode() not in trace and bytes.fromhex(value) not in trace


@pytest.mark.spec("XDV-060-4.2")
def test_qrun_traces_are_identical_under_two_key_stores_and_replay_across(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    circuit = tmp_path / "bell.qasm"
    circuit.write_text(BELL)
    homes = [tmp_path / "node-a", tmp_path / "node-b"]
    traces = []
    for home in homes:
        trace = home / "bell.xdvt"
        done = xdv(
            "qrun", str(circuit), "--shots", "200", "--seed", "5", "--trace", str(trace),
            env={"XDV_HOME": str(home)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        traces.append(trace)
    # The nodes really hold different keys...
    assert key_material(homes[0])[0] != key_material(homes[1])[0]
    assert (homes[0] / "keys" / "provider-aer.key").read_bytes() != (
        homes[1] / "keys" / "provider-aer.key"
    ).read_bytes()
    # ...and write the same trace, which names none of them.
    assert traces[0].read_bytes() == traces[1].read_bytes()
    assert_names_no_key(traces[0].read_bytes(), homes)
    # Node B replays node A's trace with its own keys, in both modes.
    monkeypatch.setenv("XDV_HOME", str(homes[1]))
    for mode in ("reexecute", "inject"):
        report = replay(traces[0], mode)
        assert report.ok, report.divergence


@pytest.mark.spec("XDV-061-3.2")
def test_phirun_traces_are_identical_under_two_key_stores(tmp_path: Path) -> None:
    graph = tmp_path / "triangles.txt"
    graph.write_text(TRIANGLES)
    homes = [tmp_path / "node-a", tmp_path / "node-b"]
    traces = []
    for home in homes:
        trace = home / "run.xdvt"
        done = xdv(
            "phirun", str(graph), "--seed", "3", "--budget-ms", "0.3", "--trace", str(trace),
            env={"XDV_HOME": str(home)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        traces.append(trace.read_bytes())
    assert key_material(homes[0])[0] != key_material(homes[1])[0]
    assert traces[0] == traces[1]
    assert_names_no_key(traces[0], homes)


@pytest.mark.spec("XDV-033-9")
def test_a_phi_run_replays_on_a_node_with_other_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = []
    for name in ("node-a", "node-b"):
        monkeypatch.setenv("XDV_HOME", str(tmp_path / name))
        result = run_workload(
            str(WORKLOADS / "phi_job.py"),
            seed=4,
            trace=tmp_path / f"{name}.xdvt",
            domains=[KDomainManager(), PhiDomainManager()],
        )
        assert result.ok
        traces.append(tmp_path / f"{name}.xdvt")
    assert traces[0].read_bytes() == traces[1].read_bytes()
    # Node B replays node A's trace with its own keys.
    for mode in ("reexecute", "inject"):
        report = replay(traces[0], mode)
        assert report.ok, report.divergence
    assert_names_no_key(traces[0].read_bytes(), [tmp_path / "node-a", tmp_path / "node-b"])
