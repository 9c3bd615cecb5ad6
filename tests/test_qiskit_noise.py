"""Noisy XDV runs agree with Qiskit's own simulation of the same fake backend.

``AerSimulator.from_backend(fake)`` is what a Qiskit user runs to simulate a device snapshot;
XDV's calibration profiles are the same snapshots. A circuit run by XDV under the profile's
noise, and by Aer's fake-backend simulator compiled the same way (the same physical qubits,
optimization level 1 and transpiler seed), must give the same distribution of outcomes
within statistical tolerance: a chi-squared test of homogeneity over the outcomes (rare ones
pooled) must not reject at the 0.1% level. Before the fix (docs/q-domain.md, "Noise and the
device") XDV ran unrouted circuits, counted relaxation twice and placed noisy jobs on the
lowest-numbered qubits, and this test rejected with p < 1e-8.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile

from xdv.core import ResourceRequest
from xdv.domains.q import QDomainManager, load_profile
from xdv.qiskit import run_circuit
from xdv.trace import Domain

scipy_stats = pytest.importorskip("scipy.stats")

SHOTS = 1500


def star(n: int) -> QuantumCircuit:
    """Bernstein–Vazirani with the all-ones string: every qubit couples to the last, so on a
    line of qubits the circuit must be routed (SWAPs), as QASMBench's bv_n14 must."""
    circuit = QuantumCircuit(n, n - 1)
    circuit.x(n - 1)
    circuit.h(range(n))
    for qubit in range(n - 1):
        circuit.cx(qubit, n - 1)
    circuit.h(range(n - 1))
    circuit.measure(range(n - 1), range(n - 1))
    return circuit


def ghz(n: int) -> QuantumCircuit:
    circuit = QuantumCircuit(n, n)
    circuit.h(0)
    for qubit in range(n - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure(range(n), range(n))
    return circuit


def homogeneity(first: dict[str, int], second: dict[str, int]) -> float:
    """p-value of the chi-squared test that two samples come from one distribution."""
    keys = sorted(set(first) | set(second))
    table = np.array([[first.get(key, 0) for key in keys], [second.get(key, 0) for key in keys]])
    rare = table.sum(axis=0) < 10
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    return float(scipy_stats.chi2_contingency(table)[1])


@pytest.mark.parametrize(("circuit", "seed"), [(star(5), 11), (ghz(5), 12)])
def test_noisy_xdv_agrees_with_aer_from_backend(circuit: QuantumCircuit, seed: int) -> None:
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    ours = run_circuit(circuit, shots=SHOTS, seed=seed, calibration="fake_manila", noise=True)
    mapping = ours.contract["mapping"][: circuit.num_qubits]
    simulator = AerSimulator.from_backend(FakeManilaV2())
    compiled = transpile(
        circuit, simulator, initial_layout=mapping, optimization_level=1, seed_transpiler=0
    )
    theirs = simulator.run(compiled, shots=SHOTS, seed_simulator=seed).result().get_counts()
    p_value = homogeneity(dict(ours.counts), dict(theirs))
    assert p_value > 1e-3, (p_value, dict(ours.counts), theirs)
    # And the noise is there: the ideal outcome does not take every shot.
    top = max(ours.counts, key=ours.counts.get)
    assert ours.counts[top] < SHOTS


def test_noisy_containers_land_on_the_best_calibrated_chain() -> None:
    """The lowest-numbered 14 qubits of fake_sherbrooke include readout errors of 26% and 16%
    (qubits 6 and 9): XDV's 1,305/4,000 on bv_n14 came mostly from there. A noisy container
    now takes the best chain of coupled qubits, as a device's own transpiler would."""
    profile = load_profile("fake_sherbrooke")
    manager = QDomainManager()

    def mapping(noise: bool) -> list[int]:
        request = ResourceRequest(
            1, Domain.Q, "qubits", 14, None, 0, {"noise": noise, "calibration": profile.name}
        )
        return list(manager.request_resources(request).detail["mapping"])

    plain, noisy = mapping(False), mapping(True)
    assert plain == list(range(14))
    readout = [profile.qubits[q].readout_error for q in noisy]
    lowest = [profile.qubits[q].readout_error for q in plain]
    assert max(readout) < 0.06 < max(lowest) and sum(readout) < sum(lowest) / 2
    assert 6 not in noisy and 9 not in noisy
    for a, b in itertools.pairwise(noisy):  # a chain of coupled qubits
        assert (a, b) in profile.pairs or (b, a) in profile.pairs
