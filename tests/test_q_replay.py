"""Replaying ``xdv qrun`` traces: the run is a parameterized workload recorded in RUN_START."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from tests.workloads.q_teleport import TELEPORT

from helpers import rechained, xdv
from xdv import replay
from xdv.domains.q._aer import AerProvider
from xdv.domains.q.testing import BELL
from xdv.domains.q.workloads import QRUN_TARGET
from xdv.errors import ErrorCode, WorkloadError, XdvError
from xdv.runtime import load_workload, params_digest
from xdv.trace import read_trace

# Teleportation: two mid-circuit measurements, feed-forward on their results, a final one.
MID_CIRCUIT = TELEPORT


def qrun(tmp_path: Path, text: str, *options: str) -> tuple[Path, dict[str, Any]]:
    circuit = tmp_path / "job.qasm"
    circuit.write_text(text, encoding="utf-8")
    trace = tmp_path / "job.xdvt"
    done = xdv("qrun", str(circuit), "--trace", str(trace), "--json", *options)
    assert done.returncode == 0, done.stdout + done.stderr
    return trace, json.loads(done.stdout)


def refuse_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("inject mode must not call the provider")

    monkeypatch.setattr(AerProvider, "run", refuse)


@pytest.mark.parametrize(
    ("text", "options"),
    [
        (BELL, ("--shots", "500", "--seed", "11")),
        # The slower cases run in CI's system step.
        pytest.param(MID_CIRCUIT, ("--shots", "400", "--seed", "3"), marks=pytest.mark.system),
        pytest.param(
            BELL,
            ("--shots", "300", "--calibration", "fake_manila", "--noise"),
            marks=pytest.mark.system,
        ),
    ],
    ids=["bell", "mid-circuit", "bell-noisy"],
)
def test_a_qrun_trace_replays_in_both_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, options: tuple[str, ...]
) -> None:
    trace, document = qrun(tmp_path, text, *options)
    start = read_trace(trace).entries[0].metadata
    record = start["workload"]
    assert record["target"] == QRUN_TARGET and record["entry"] == "qrun"
    assert record["params"]["circuit"] == text
    assert record["params"]["shots"] == int(options[1])
    assert document["audit"] == f"{trace}.audit" and document["signer"]
    signed = xdv("verify", str(trace), "--require-signature", "--trusted-key", document["signer"])
    assert signed.returncode == 0, signed.stdout + signed.stderr
    for mode in ("reexecute", "inject"):
        done = xdv("replay", str(trace), "--mode", mode, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["ok"] is True
    # In process: re-execute calls Aer again and reproduces the recorded counts; inject does not
    # call it at all.
    assert replay(trace, "reexecute").ok
    refuse_provider(monkeypatch)
    assert replay(trace, "inject").ok
    emitted = [e for e in read_trace(trace).entries if e.event_type.name == "EFFECT"]
    assert [e.metadata["v"]["counts"] for e in emitted] == [document["counts"]]


def test_a_qrun_trace_is_location_independent(tmp_path: Path) -> None:
    first, _ = qrun(tmp_path, BELL, "--shots", "64")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    second, _ = qrun(elsewhere, BELL, "--shots", "64")
    assert first.read_bytes() == second.read_bytes()


def _tamper_shots(start: dict[str, Any]) -> dict[str, Any]:
    record = dict(start["workload"])
    record["params"] = {**record["params"], "shots": record["params"]["shots"] + 1}
    return {**start, "workload": record}


def _tamper_circuit(start: dict[str, Any]) -> dict[str, Any]:
    record = dict(start["workload"])
    circuit = record["params"]["circuit"].replace("h q[0];", "x q[0];")
    record["params"] = {**record["params"], "circuit": circuit}
    return {**start, "workload": record}


def _tamper_digest(start: dict[str, Any]) -> dict[str, Any]:
    record = dict(start["workload"])
    record["digest"] = hashlib.sha256(b"another run").hexdigest()
    return {**start, "workload": record}


def _drop_params(start: dict[str, Any]) -> dict[str, Any]:
    # A forger who removes the parameters and records the bare source digest: the workload
    # then cannot be called, which is refused before anything runs.
    record = dict(start["workload"])
    del record["params"]
    record["digest"] = load_workload("xdv.domains.q.workloads:spawn_qrun").digest
    return {**start, "workload": record}


def _params_not_a_map(start: dict[str, Any]) -> dict[str, Any]:
    return {**start, "workload": {**start["workload"], "params": ["shots", 1]}}


@pytest.fixture(scope="module")
def bell_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One audited qrun trace (with its audit file) that each edit starts from."""
    trace, _ = qrun(tmp_path_factory.mktemp("bell"), BELL, "--shots", "100")
    return trace


@pytest.mark.parametrize(
    "edit",
    [_tamper_shots, _tamper_circuit, _tamper_digest, _drop_params, _params_not_a_map],
    ids=["shots", "circuit", "digest", "params-dropped", "params-not-a-map"],
)
def test_an_edited_qrun_record_is_refused(
    tmp_path: Path, edit: Any, bell_trace: Path, request: pytest.FixtureRequest
) -> None:
    trace = bell_trace
    crafted = tmp_path / "crafted.xdvt"
    crafted.write_bytes(rechained(trace.read_bytes(), edit))
    assert read_trace(crafted).complete  # an intact chain around edited content...
    # ...that the signed audit exposes: without the audit file, or with the original's.
    assert xdv("verify", str(crafted)).returncode == 1
    audit = Path(f"{trace}.audit")
    Path(f"{crafted}.audit").write_bytes(audit.read_bytes())
    assert xdv("verify", str(crafted)).returncode == 1
    for mode in ("reexecute", "inject"):
        with pytest.raises(XdvError) as raised:
            replay(crafted, mode)
        assert raised.value.code is ErrorCode.REPLAY_INPUT_CHANGED
    if request.node.callspec.id == "shots":  # the command line says the same (once: slow)
        done = xdv("replay", str(crafted), "--json")
        assert done.returncode == 1
        assert json.loads(done.stdout)["error"]["code"] == "REPLAY_INPUT_CHANGED"


def test_parameterized_workloads_load_canonically() -> None:
    params = {"terms": {"provider": "aer"}, "shots": 5, "qubits": 2, "circuit": BELL}
    loaded = load_workload(QRUN_TARGET, params=params)
    plain = load_workload("xdv.domains.q.workloads:spawn_qrun")
    assert loaded.params == dict(sorted(params.items()))
    assert loaded.digest == params_digest(plain.digest, params) != plain.digest
    assert loaded.to_record() == {
        "target": QRUN_TARGET,
        "entry": "qrun",
        "digest": loaded.digest,
        "params": loaded.params,
    }
    assert "params" not in plain.to_record()
    with pytest.raises(WorkloadError) as raised:
        load_workload(QRUN_TARGET, params={"shots": 5})
    assert raised.value.code is ErrorCode.WORKLOAD_INVALID
    with pytest.raises(WorkloadError) as raised:
        load_workload(QRUN_TARGET, params={**params, "seed": float("nan")})
    assert raised.value.code is ErrorCode.WORKLOAD_INVALID
    with pytest.raises(WorkloadError) as raised:
        load_workload(QRUN_TARGET, params=params, expected_digest=plain.digest)
    assert raised.value.code is ErrorCode.REPLAY_INPUT_CHANGED
    # A replay refuses what a trace asks for and cannot be: parameters for a DPL program.
    with pytest.raises(WorkloadError) as raised:
        load_workload("examples/primes.ds", params={"n": 3})
    assert raised.value.code is ErrorCode.WORKLOAD_INVALID
    with pytest.raises(WorkloadError) as raised:
        load_workload("examples/primes.ds", params={"n": 3}, expected_digest=plain.digest)
    assert raised.value.code is ErrorCode.REPLAY_INPUT_CHANGED
