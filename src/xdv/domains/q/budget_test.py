from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.domains.q import DecoherenceBudget, estimate, load_profile, parse_circuit
from xdv.errors import ErrorCode, XdvError

CHAIN = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
x q[0];
x q[0];
cx q[0], q[1];
c = measure q;
"""


@pytest.mark.spec("XDV-013-5.3")
def test_duration_is_the_calibrated_critical_path() -> None:
    profile = load_profile("fake_manila")
    job = estimate(parse_circuit(CHAIN).circuit, profile, (0, 1), "test")
    q0, q1 = profile.qubits[0], profile.qubits[1]
    error, cx_ns = profile.pairs[(0, 1)]
    # q0: two x gates, then the cx (q1 waits for q0), then both read out in parallel.
    expected = 2 * q0.gate_ns + cx_ns + max(q0.readout_ns, q1.readout_ns)
    assert math.isclose(job.duration_ns, expected)
    fidelity = (
        (1 - q0.gate_error) ** 2
        * (1 - error)
        * (1 - q0.readout_error)
        * (1 - q1.readout_error)
        * math.exp(-expected / q0.t2_ns - expected / q1.t2_ns)
    )
    assert math.isclose(job.fidelity, fidelity, rel_tol=1e-12)
    assert math.isclose(job.t1_margin_ns, min(q0.t1_ns, q1.t1_ns) - expected)
    assert job.readout_error == max(q0.readout_error, q1.readout_error)
    assert (job.single_qubit_gates, job.two_qubit_gates) == (2, 1)


def test_non_native_gates_cost_their_decomposition() -> None:
    profile = load_profile("fake_manila")
    text = CHAIN.replace("cx q[0], q[1];", "swap q[0], q[1];")
    job = estimate(parse_circuit(text).circuit, profile, (0, 1), "test")
    assert job.two_qubit_gates == 3  # a swap is three CNOTs


def test_a_while_loop_has_no_bounded_duration() -> None:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(1, 1)
    circuit.h(0)
    circuit.measure(0, 0)
    with circuit.while_loop((circuit.clbits[0], True)):
        circuit.h(0)
        circuit.measure(0, 0)
    with pytest.raises(XdvError) as raised:
        estimate(circuit, load_profile("fake_manila"), (0,), "test")
    assert raised.value.code is ErrorCode.CIRCUIT_INVALID


@pytest.mark.parametrize(
    "terms",
    [
        {"duration_ns_max": -1},
        {"duration_ns_max": True},
        {"fidelity_min": 1.5},
        {"shots_per_window": 0},
        {"window": 0},
        {"colour": 1},
        [],
    ],
)
def test_malformed_budgets_are_refused(terms: Any) -> None:
    with pytest.raises(XdvError) as raised:
        DecoherenceBudget.from_terms(terms, "test")
    assert raised.value.code is ErrorCode.CONTRACT_INVALID


GATES = st.lists(
    st.tuples(
        st.sampled_from(["h", "x", "sx", "cx", "cz", "swap", "ccx"]), st.permutations([0, 1, 2])
    ),
    max_size=25,
)


def circuit_text(gates: list[tuple[str, list[int]]]) -> str:
    arity = {"h": 1, "x": 1, "sx": 1, "cx": 2, "cz": 2, "swap": 2, "ccx": 3}
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', "qubit[3] q;", "bit[3] c;"]
    for name, qubits in gates:
        operands = ", ".join(f"q[{q}]" for q in qubits[: arity[name]])
        lines.append(f"{name} {operands};")
    lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


@given(GATES, st.sampled_from(["h", "cx", "ccx"]))
def test_adding_a_gate_never_shortens_a_job_or_raises_its_fidelity(
    gates: list[tuple[str, list[int]]], extra: str
) -> None:
    profile = load_profile("fake_manila")
    mapping = (0, 1, 2)
    before = estimate(parse_circuit(circuit_text(gates)).circuit, profile, mapping, "test")
    after = estimate(
        parse_circuit(circuit_text([*gates, (extra, [2, 1, 0])])).circuit, profile, mapping, "t"
    )
    assert after.duration_ns >= before.duration_ns
    assert after.fidelity <= before.fidelity
    assert 0.0 <= after.fidelity <= 1.0
