"""The IBM Quantum and Amazon Braket adapters, run for real on this machine: qiskit-ibm-runtime's
SamplerV2 on a fake backend (the device snapshot's noise, simulated locally) and the Braket SDK's
LocalSimulator. Both are plug-ins of the ``xdv.q_providers`` group; here they are named in
``$XDV_HOME/providers.toml``, as an operator would configure them."""

from __future__ import annotations

from pathlib import Path

import pytest
from qiskit import QuantumCircuit

from xdv.domains import PLUGIN_GROUPS, load_plugin
from xdv.domains.q import QProvider
from xdv.domains.q.testing import assert_provider_consistent
from xdv.errors import ErrorCode, XdvError
from xdv.qiskit import run_circuit
from xdv.runtime import replay
from xdv.security.testing import assert_provider_consistent as assert_provider_model_consistent

CONFIG = """
[q.ibm]
factory = "xdv.qiskit:ibm_provider"
backend = "fake_manila"

[q.braket]
factory = "xdv.qiskit:braket_provider"
device = "local"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "providers.toml").write_text(CONFIG)
    monkeypatch.setenv("XDV_HOME", str(folder))
    return folder


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def test_ibm_runtime_sampler_on_a_fake_backend_through_the_kernel(
    home: Path, tmp_path: Path
) -> None:
    pytest.importorskip("qiskit_ibm_runtime")
    provider = load_plugin(PLUGIN_GROUPS["q"], "ibm", interface=QProvider)
    assert provider.declaration()["backend"] == "fake_manila"
    # The provider model (a noisy device cannot pass the Q helper's noiseless Bell check).
    assert_provider_model_consistent(provider)
    trace = tmp_path / "ibm.xdvt"
    result = run_circuit(
        bell(), shots=300, seed=4, provider="ibm", calibration="fake_manila", trace=trace
    )
    counts = result.counts
    assert sum(counts.values()) == 300 and result.contract["provider"] == "ibm"
    assert counts.get("00", 0) + counts.get("11", 0) > 240  # a Bell pair, with device noise
    assert counts.get("01", 0) + counts.get("10", 0) > 0  # ... and the noise is there
    assert replay(trace).ok  # a seeded simulator: re-execution gives the same trace


def test_braket_local_simulator_through_the_kernel(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("braket.devices")
    provider = load_plugin(PLUGIN_GROUPS["q"], "braket", interface=QProvider)
    assert_provider_consistent(provider)
    circuit = QuantumCircuit(3, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.x(2)
    circuit.measure(2, 0)
    circuit.measure(1, 1)
    trace = tmp_path / "braket.xdvt"
    first = run_circuit(circuit, shots=400, seed=6, provider="braket", trace=trace)
    assert set(first.counts) == {"01", "11"} and sum(first.counts.values()) == 400
    assert 120 < first.counts["11"] < 280
    assert run_circuit(circuit, shots=400, seed=6, provider="braket").counts == first.counts
    assert replay(trace).ok


def test_braket_refuses_what_it_cannot_read_back(home: Path) -> None:
    pytest.importorskip("braket.devices")
    circuit = QuantumCircuit(1, 2)
    circuit.measure(0, 0)
    circuit.x(0)
    circuit.measure(0, 1)
    with pytest.raises(XdvError) as caught:
        run_circuit(circuit, shots=10, provider="braket")
    assert caught.value.code is ErrorCode.CIRCUIT_INVALID
