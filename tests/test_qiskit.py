"""XDV for Qiskit users: the Sampler and Estimator V2 primitives, run_circuit, and noisy runs
that agree with Qiskit's own simulation of the same fake backend.

The primitives are checked the way Qiskit checks its own (result containers, shapes of
parameter broadcasts, registers, shots, precision) and against Qiskit's reference primitives
(StatevectorSampler, StatevectorEstimator) within statistical tolerance.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives import (
    BitArray,
    PrimitiveResult,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.quantum_info import SparsePauliOp
from qiskit.result import Counts

import xdv
from xdv.errors import ErrorCode, XdvError
from xdv.qiskit import XdvEstimator, XdvSampler, pauli_groups, run_circuit
from xdv.runtime import replay


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def test_run_circuit_returns_qiskit_counts_and_a_trace_that_replays(tmp_path: Path) -> None:
    trace = tmp_path / "bell.xdvt"
    result = xdv.run_circuit(bell(), shots=400, seed=7, trace=trace)
    assert isinstance(result.counts, Counts)
    assert set(result.counts) == {"00", "11"} and sum(result.counts.values()) == 400
    assert 150 < result.counts["00"] < 250
    assert result.trace == trace and trace.is_file() and result.audit is not None
    assert result.contract["provider"] == "aer"
    assert replay(trace).ok
    again = run_circuit(bell(), shots=400, seed=7)
    assert again.counts == result.counts  # the seed fixes every draw


def test_counts_keep_qiskits_register_layout() -> None:
    first, second = QuantumRegister(2, "a"), ClassicalRegister(1, "low")
    high = ClassicalRegister(2, "high")
    circuit = QuantumCircuit(first, second, high)
    circuit.x(1)
    circuit.measure(0, second[0])
    circuit.measure(1, high[1])
    counts = run_circuit(circuit, shots=20).counts
    assert counts == {"10 0": 20}  # the last register leftmost, as Aer writes them


def test_an_unbound_circuit_is_refused_before_anything_runs() -> None:
    theta = Parameter("θ")
    circuit = QuantumCircuit(1, 1)
    circuit.rx(theta, 0)
    circuit.measure(0, 0)
    with pytest.raises(XdvError) as caught:
        run_circuit(circuit)
    assert caught.value.code is ErrorCode.Q_PUB_INVALID


def test_sampler_follows_the_v2_contract_and_matches_statevector_sampler() -> None:
    theta = Parameter("θ")
    circuit = QuantumCircuit(
        QuantumRegister(2), ClassicalRegister(1, "x"), ClassicalRegister(2, "y")
    )
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    circuit.measure([0, 1], [1, 2])
    values = np.array([[0.0], [math.pi / 2], [math.pi]]).reshape(3, 1)
    shots = 600
    job = XdvSampler(seed=4).run([(circuit, values), bell()], shots=shots)
    result = job.result()
    assert isinstance(result, PrimitiveResult) and len(result) == 2
    data = result[0].data
    assert isinstance(data.x, BitArray) and isinstance(data.y, BitArray)
    assert data.x.shape == (3,) and data.x.num_shots == shots and data.y.num_bits == 2
    assert result[0].metadata["shots"] == shots
    assert data.x.get_counts(0) == {"0": shots} and data.y.get_counts(2) == {"11": shots}
    reference = StatevectorSampler(seed=4).run([(circuit, values)], shots=shots).result()[0]
    for index in range(3):
        ours, theirs = data.y.get_counts(index), reference.data.y.get_counts(index)
        for key in set(ours) | set(theirs):
            p, q = ours.get(key, 0) / shots, theirs.get(key, 0) / shots
            assert abs(p - q) < 5 * math.sqrt(0.25 * 2 / shots) + 1e-9, (index, key)
    assert result[1].data.c.get_counts().keys() <= {"00", "11"}
    assert result.metadata["xdv"]["contract"]["provider"] == "aer"


def test_sampler_shots_are_per_pub_and_the_seed_fixes_the_bits() -> None:
    circuit = bell()
    first = XdvSampler(seed=9, default_shots=64).run([circuit, (circuit, None, 32)]).result()
    assert first[0].data.c.num_shots == 64 and first[1].data.c.num_shots == 32
    second = XdvSampler(seed=9, default_shots=64).run([circuit, (circuit, None, 32)]).result()
    assert np.array_equal(first[0].data.c.array, second[0].data.c.array)


def test_estimator_matches_statevector_estimator_within_its_precision() -> None:
    theta = Parameter("θ")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    observables = [[SparsePauliOp(["ZZ", "XX"], [1.0, 0.5])], [SparsePauliOp("IZ")], ["YY"]]
    values = [0.3, 1.2]  # broadcast: observables (3, 1) with parameters (2,) -> (3, 2)
    precision = 0.03
    result = (
        XdvEstimator(seed=5)
        .run([(circuit, observables, [[v] for v in values])], precision=precision)
        .result()
    )
    data = result[0].data
    assert data.evs.shape == (3, 2) and data.stds.shape == (3, 2)
    assert result[0].metadata["target_precision"] == precision
    reference = (
        StatevectorEstimator().run([(circuit, observables, [[v] for v in values])]).result()[0]
    )
    difference = np.abs(data.evs - reference.data.evs)
    # Each estimate's standard error is at most (sum of |coefficients|) x precision.
    assert np.all(difference < 5 * 1.5 * precision), difference
    assert np.all(data.stds <= 1.5 * precision + 1e-12)


def test_estimator_refuses_what_it_cannot_estimate() -> None:
    circuit = QuantumCircuit(1)
    with pytest.raises(XdvError) as caught:
        XdvEstimator().run([(circuit, "Z")], precision=0.0)
    assert caught.value.code is ErrorCode.Q_PUB_INVALID


def test_pauli_groups_are_qubit_wise_commuting() -> None:
    groups = pauli_groups(["ZZ", "ZI", "XX", "IX", "YI", "II"])
    for group in groups:
        for a in group:
            for b in group:
                assert all(x == y or "I" in (x, y) for x, y in zip(a, b, strict=True))
    assert sorted(label for group in groups for label in group) == [
        "II",
        "IX",
        "XX",
        "YI",
        "ZI",
        "ZZ",
    ]


def test_a_circuit_without_registers_warns_and_samples_nothing() -> None:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    with pytest.warns(UserWarning, match="no output classical registers"):
        result = XdvSampler().run([circuit], shots=10).result()
    assert len(result[0].data) == 0 and "xdv" not in result.metadata
