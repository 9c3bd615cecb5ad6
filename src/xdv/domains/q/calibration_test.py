"""Calibration profiles read straight from the device-snapshot files.

The reader is checked against the runtime client's own conversion (its fake backends' transpiler
targets) number for number, on real snapshots and on a snapshot with faulty qubits and gates.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xdv.domains.q import list_profiles, load_profile, profile_names
from xdv.domains.q._calibration import (
    _from_snapshot,
    _read_json,
    _read_snapshot,
    _Snapshot,
    _snapshot_folders,
)
from xdv.errors import ErrorCode, XdvError


def _client_tables(backend: Any, snapshot: _Snapshot) -> dict[str, Any]:
    """What the runtime client's target holds for the instructions a profile reads."""
    target = backend.target
    tables: dict[str, Any] = {}
    for gate in snapshot.tables:
        tables[gate] = {
            qargs: None if found is None else (found.error, found.duration)
            for qargs, found in target[gate].items()
        }
    return tables


def _assert_same_as_client(backend: Any, snapshot: _Snapshot) -> None:
    assert snapshot.size == backend.num_qubits
    assert snapshot.operation_names & {"sx", "x", "ecr", "cx", "cz", "rz", "id", "measure"} == (
        set(backend.target.operation_names) & {"sx", "x", "ecr", "cx", "cz", "rz", "id", "measure"}
    )
    for qubit in range(snapshot.size):
        properties = backend.qubit_properties(qubit)
        assert (snapshot.t1[qubit], snapshot.t2[qubit]) == (properties.t1, properties.t2)
    assert snapshot.tables == _client_tables(backend, snapshot)


def _snapshot_of(name: str) -> _Snapshot:
    folder = _snapshot_folders()[name]
    stem = folder.name
    return _read_snapshot(
        name,
        _read_json(folder / f"conf_{stem}.json"),
        _read_json(folder / f"props_{stem}.json"),
    )


@pytest.mark.spec("XDV-060-4.2")
@pytest.mark.parametrize(
    ("name", "client_class"),
    [
        ("fake_manila", "FakeManilaV2"),
        ("fake_sherbrooke", "FakeSherbrooke"),
        ("fake_kingston", "FakeKingston"),  # one qubit without T1 and T2
    ],
)
def test_snapshot_numbers_are_those_the_runtime_client_reads(name: str, client_class: str) -> None:
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    _assert_same_as_client(getattr(fake_provider, client_class)(), _snapshot_of(name))


def test_faulty_qubits_and_gates_are_left_out_as_the_client_does(tmp_path: Path) -> None:
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    folder = _snapshot_folders()["fake_manila"]
    configuration = _read_json(folder / "conf_manila.json")
    properties = _read_json(folder / "props_manila.json")
    date = properties["qubits"][0][0]["date"]

    def operational(value: int) -> dict[str, Any]:
        return {"date": date, "name": "operational", "unit": "", "value": value}

    properties["qubits"][2].append(operational(0))  # qubit 2 is down
    properties["qubits"][4] = [
        entry for entry in properties["qubits"][4] if entry["name"] != "readout_length"
    ]
    faulty_gate = next(gate for gate in properties["gates"] if gate["qubits"] == [0, 1])
    faulty_gate["parameters"].append(operational(0))  # cx 0-1 is down
    for gate in properties["gates"]:  # sx on qubit 3 measured in microseconds
        if gate["gate"] == "sx" and gate["qubits"] == [3]:
            for parameter in gate["parameters"]:
                if parameter["name"] == "gate_length":
                    parameter["unit"], parameter["value"] = "us", parameter["value"] / 1000
    (tmp_path / "conf_edited.json").write_text(json.dumps(configuration), encoding="utf-8")
    (tmp_path / "props_edited.json").write_text(json.dumps(properties), encoding="utf-8")

    class FakeEdited(fake_provider.FakeManilaV2):  # type: ignore[misc, name-defined]
        dirname = str(tmp_path)
        conf_filename = "conf_edited.json"
        props_filename = "props_edited.json"
        backend_name = "fake_edited"

    snapshot = _read_snapshot("fake_edited", configuration, properties)
    _assert_same_as_client(FakeEdited(), snapshot)
    assert (2,) not in snapshot.tables["measure"] and (0, 1) not in snapshot.tables["cx"]
    assert (1, 2) not in snapshot.tables["cx"] and (1, 0) in snapshot.tables["cx"]
    profile = _from_snapshot(snapshot)
    manila = load_profile("fake_manila")
    assert (0, 1) not in profile.pairs and (0, 1) in manila.pairs
    # Unknown values are the median of the known ones.
    known = sorted(manila.qubits[q].readout_ns for q in (0, 1, 3))
    assert profile.qubits[2].readout_ns == profile.qubits[4].readout_ns == known[1]
    assert profile.qubits[3].gate_ns == pytest.approx(manila.qubits[3].gate_ns)


def test_every_profile_is_listed_and_an_unusable_one_says_why() -> None:
    listings = list_profiles()
    assert [listing.name for listing in listings] == list(profile_names())
    assert len(listings) > 50  # qiskit-ibm-runtime ships dozens of device snapshots
    unusable = [listing for listing in listings if not listing.usable]
    assert unusable and len(unusable) < len(listings)
    for listing in listings:
        record = listing.to_record()
        assert record["name"] == listing.name and record["usable"] is listing.usable
        if listing.usable:
            assert listing.reason is None and record["digest"] == load_profile(listing.name).digest
        else:
            assert listing.reason and listing.name in listing.reason
            assert "digest" not in record
            with pytest.raises(XdvError) as raised:
                load_profile(listing.name)
            assert raised.value.code is ErrorCode.CALIBRATION_INVALID
            assert raised.value.message == listing.reason
    almaden = next(listing for listing in listings if listing.name == "fake_almaden")
    assert "u1" in (almaden.reason or "") and "sx or x" in (almaden.reason or "")


def test_reading_profiles_does_not_import_the_runtime_client() -> None:
    probe = (
        "import sys\n"
        "from xdv.domains.q import load_profile\n"
        "load_profile('fake_manila')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qiskit_ibm_runtime', 'qiskit')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
