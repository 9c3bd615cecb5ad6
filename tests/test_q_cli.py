"""The Q commands: xdv qrun and xdv calibrations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_testdata

from helpers import xdv

GHZ = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
"""


@pytest.mark.spec("XDV-072-8")
def test_qrun_prints_counts_and_writes_a_verifiable_trace(tmp_path: Path) -> None:
    circuit = tmp_path / "ghz.qasm"
    circuit.write_text(GHZ, encoding="utf-8")
    trace = tmp_path / "ghz.xdvt"
    done = xdv(
        "qrun", str(circuit), "--shots", "300", "--seed", "4", "--json", "--trace", str(trace)
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document["counts"]) == {"000", "111"} and document["shots"] == 300
    again = xdv("qrun", str(circuit), "--shots", "300", "--seed", "4", "--json")
    assert json.loads(again.stdout)["counts"] == document["counts"]
    assert xdv("verify", str(trace)).returncode == 0
    shown = xdv("trace", "show", str(trace), "--event", "DOMAIN_RESULT", "--json")
    (entry,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert "diagnostics" in json.dumps(entry) and "fidelity" in json.dumps(entry)


def test_qrun_refuses_bad_circuits_and_runs_stim(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qasm"
    bad.write_text("OPENQASM 3.0;\nqubit[2] q;\nfrobnicate q;\n", encoding="utf-8")
    done = xdv("qrun", str(bad), "--json")
    assert done.returncode == 65
    assert json.loads(done.stdout)["error"]["code"] == "CIRCUIT_INVALID"
    pytest.importorskip("stim")
    circuit = tmp_path / "ghz.qasm"
    circuit.write_text(GHZ, encoding="utf-8")
    done = xdv("qrun", str(circuit), "--provider", "stim", "--shots", "100", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(json.loads(done.stdout)["counts"]) == {"000", "111"}


def test_qrun_reports_a_refused_reservation() -> None:
    done = xdv(
        "qrun",
        str(shared_testdata("qasm", "qasmbench", "qpe_n9.qasm")),
        "--calibration",
        "fake_manila",
        "--json",
    )
    assert done.returncode == 70
    assert json.loads(done.stdout)["error"]["code"] == "RESOURCE_EXHAUSTED"  # 9 > 5 qubits


def test_calibrations_lists_the_device_snapshots() -> None:
    done = xdv("calibrations")
    assert done.returncode == 0
    assert "fake_sherbrooke (default)" in done.stdout.splitlines()
    assert "fake_manila" in done.stdout.splitlines()
    # A snapshot without the native gates profiles describe is listed, marked, with the reason.
    (almaden,) = [line for line in done.stdout.splitlines() if line.startswith("fake_almaden")]
    assert almaden.startswith("fake_almaden: unusable: ") and "native gates" in almaden


def test_calibrations_details_and_json_list_every_profile() -> None:
    from xdv.domains.q import profile_names

    names = set(profile_names())
    done = xdv("calibrations", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["default"] == "fake_sherbrooke"
    rows = {row["name"]: row for row in document["profiles"]}
    assert set(rows) == names
    unusable = {name for name, row in rows.items() if not row["usable"]}
    assert "fake_almaden" in unusable and "fake_sherbrooke" not in unusable
    for name, row in rows.items():
        if name in unusable:
            assert name in row["reason"] and "native gates" in row["reason"]
            assert "qubits" not in row
        else:
            assert row["reason"] is None and row["qubits"] > 0 and len(row["digest"]) == 64
    done = xdv("calibrations", "--details")
    assert done.returncode == 0, done.stderr
    lines = {
        line.split(":")[0].removesuffix(" (default)"): line for line in done.stdout.splitlines()
    }
    assert set(lines) == names
    for name in names:
        if name in unusable:
            assert lines[name] == f"{name}: unusable: {rows[name]['reason']}"
        else:
            assert (
                f": {rows[name]['qubits']} qubits, {rows[name]['two_qubit_gate']}, " in lines[name]
            )


def test_qrun_bad_input_files_get_typed_errors_and_exit_65(tmp_path: Path) -> None:
    """Non-UTF-8 text, a literal Qiskit's parser panics on, a huge register, a FIFO: each is a
    typed input error with exit 65, never a traceback or exit 1 (the mismatch code)."""
    import os

    cases = {
        "latin1.qasm": (b"OPENQASM 2.0;\nqreg q[1];\n// \xe9\n", "INPUT_DECODE_FAILED"),
        "panic.qasm": (b"OPENQASM 2.0;\nqreg q[1000000000000000000000000000000];\n", None),
        "huge.qasm": (b"OPENQASM 3.0;\nqubit[2000000000] q;\n", "INPUT_LIMIT_EXCEEDED"),
    }
    messages = {}
    for name, (content, code) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        done = xdv("qrun", str(path), "--json", timeout=60)
        assert done.returncode == 65, (name, done.stdout, done.stderr)
        error = json.loads(done.stdout)["error"]
        assert error["code"] == (code or "INPUT_LIMIT_EXCEEDED"), error
        assert "Traceback" not in done.stderr and "panicked" not in done.stderr
        messages[name] = error["message"]
    assert "byte 0xe9 at offset 28" in messages["latin1.qasm"]
    assert "qasm_literal_bits_max" in messages["panic.qasm"]
    assert "qasm_qubits_max" in messages["huge.qasm"]
    fifo = tmp_path / "fifo.qasm"
    os.mkfifo(fifo)
    done = xdv("qrun", str(fifo), "--json", timeout=60)
    assert done.returncode == 65
    assert json.loads(done.stdout)["error"]["code"] == "INPUT_NOT_REGULAR"
