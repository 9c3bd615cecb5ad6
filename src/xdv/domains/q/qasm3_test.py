"""XDV's OpenQASM 3 front-end: what it translates, and how it refuses what it does not."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.domains.q import parse_circuit
from xdv.domains.q._qasm3 import STATEMENTS_MAX, Qasm3Unsupported, translate
from xdv.errors import ErrorCode, XdvError

HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def unitary_of(text: str) -> object:
    from qiskit.quantum_info import Operator

    return Operator(translate(text))


def refused(text: str, code: ErrorCode = ErrorCode.CIRCUIT_INVALID) -> str:
    """The message of the error (CIRCUIT_INVALID unless ``code`` says otherwise)
    ``parse_circuit`` gives for ``text``."""
    with pytest.raises(XdvError) as raised:
        parse_circuit(text)
    assert raised.value.code is code, raised.value
    return raised.value.message


def beyond_limit(text: str, name: str) -> str:
    """The INPUT_LIMIT_EXCEEDED message for ``text``, which must name the limit ``name``."""
    message = refused(text, ErrorCode.INPUT_LIMIT_EXCEEDED)
    assert f"limit {name} =" in message, message
    return message


def test_constants_casts_and_bit_indexing_are_evaluated_before_the_run() -> None:
    circuit = translate(
        HEADER + "qubit[4] q;\nuint[4] k = 10;\nconst int n = 4;\n"
        "for uint i in [0: n - 1] { if (bool(k[i])) x q[i]; }\n"
    )
    flipped = [circuit.find_bit(i.qubits[0]).index for i in circuit.data if i.name == "x"]
    assert flipped == [1, 3]  # 10 = 0b1010


def test_declared_widths_wrap_and_assignments_update_constants() -> None:
    circuit = translate(
        HEADER + "qubit[1] q;\nuint[3] k = 9;\nint s = 0;\n"
        "for int i in {1, 2, 3} { s += i; }\nrz(s * k) q[0];\n"
    )
    (instruction,) = circuit.data
    assert math.isclose(float(instruction.operation.params[0]), 6 * 1)  # 9 wraps to 1 in 3 bits


def test_descending_ranges_run_backwards() -> None:
    circuit = translate(HEADER + "qubit[3] q;\nfor uint i in [2: -1: 0] { h q[i]; }\n")
    order = [circuit.find_bit(i.qubits[0]).index for i in circuit.data]
    assert order == [2, 1, 0]


def test_custom_gates_are_inlined_with_their_parameters() -> None:
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Operator

    text = HEADER + (
        "gate rot(a, b) u, v { ry(a) u; cx u, v; rz(b / 2) v; }\n"
        "gate nothing u { }\n"
        "qubit[2] q;\nrot(pi / 3, 2 * pi / 5) q[0], q[1];\nnothing q[1];\n"
        "U(0.3, 0.2, 0.1) q[1];\n"
    )
    expected = QuantumCircuit(2)
    expected.ry(math.pi / 3, 0)
    expected.cx(0, 1)
    expected.rz(math.pi / 5, 1)
    expected.u(0.3, 0.2, 0.1, 1)
    assert unitary_of(text).equiv(Operator(expected))


def test_gates_broadcast_over_registers() -> None:
    circuit = translate(HEADER + "qubit[3] a;\nqubit[3] b;\ncx a, b;\nh a[0:1];\n")
    assert [i.name for i in circuit.data] == ["cx"] * 3 + ["h"] * 2


def test_runtime_conditions_become_if_tests() -> None:
    circuit = translate(
        HEADER + "qubit[2] q;\nbit c0;\nbit[2] c;\nc0 = measure q[0];\n"
        "if (c0 == 1) x q[1];\nif (int[2](c) == 3) { h q[0]; } else { z q[0]; }\n"
        "if (c[1]) y q[1];\n"
    )
    conditions = [i.operation.condition for i in circuit.data if i.name == "if_else"]
    assert len(conditions) == 3
    assert conditions[0][1] == 1 and conditions[1][1] == 3 and conditions[2][1] == 1
    assert circuit.data[2].operation.blocks[1] is not None  # the else branch


def test_the_canonical_text_of_a_translated_program_parses_again() -> None:
    parsed = parse_circuit(
        HEADER + "qubit[2] q;\nbit[2] c;\nuint[2] k = 3;\n"
        "for uint i in [0: 1] { if (bool(k[i])) x q[i]; }\n"
        "c[0] = measure q[0];\nif (c == 1) x q[1];\nmeasure q[1] -> c[1];\n"
    )
    again = parse_circuit(parsed.canonical)
    assert again.sha256 == parsed.sha256 and again.measures == 2


@pytest.mark.parametrize(
    ("text", "construct", "line"),
    [
        ("qubit q;\nwhile (true) { h q; }\n", "while loop", 4),
        ("qubit q;\nbit c;\nswitch (c) { case 0 { x q; } }\n", "switch", 5),
        ("qubit q;\ndef f() { }\n", "subroutine", 4),
        ("qubit q;\nbit c;\nc = measure q;\nint x = c;\n", "measured bit", 6),
        ("qubit q;\nbit c;\nc = measure q;\nif (c == 1 && c == 0) x q;\n", "'&&'", 6),
        ("qubit q;\nfoo q;\n", "'foo' is not defined", 4),
        ("qubit[2] q;\nh q[2];\n", "out of range", 4),
        ('include "other.inc";\nqubit q;\n', "other.inc", 3),
        ("qubit q;\ninput float t;\n", "input/output", 4),
        ("qubit q;\nbit c;\nc = measure q;\nif (c == 1) { int k = 0; k = 1; }\n", "assign", 6),
        ("qubit q;\nh q\n", "syntax error", 5),
    ],
)
def test_unsupported_constructs_are_refused_with_their_line(
    text: str, construct: str, line: int
) -> None:
    message = refused(HEADER + text)
    assert construct in message, message
    assert f"line {line}," in message, message


def test_a_loop_that_unrolls_too_far_is_refused_quickly() -> None:
    text = HEADER + "qubit q;\nfor uint i in [0: 1000000000000] { x q; }\n"
    message = beyond_limit(text, "qasm_statements_max")
    assert str(STATEMENTS_MAX) in message and "line 4," in message
    # Nested loops, each small, together past the bound.
    nested = "qubit q;\nfor int i in [0:999] { for int j in [0:999] { x q; } }\n"
    beyond_limit(HEADER + nested, "qasm_statements_max")
    # Gates that call gates grow exponentially; the same bound stops the front-end (Qiskit's
    # importer, tried first by parse_circuit, expands such programs itself: see docs/q-domain.md).
    gates = "gate g0 a { x a; }\n" + "".join(
        f"gate g{n} a {{ g{n - 1} a; g{n - 1} a; }}\n" for n in range(1, 40)
    )
    with pytest.raises(Qasm3Unsupported, match="statements"):
        translate(HEADER + gates + "qubit q;\ng39 q;\n")


def test_huge_numbers_are_refused_not_computed() -> None:
    assert "too large" in beyond_limit(
        HEADER + "qubit q;\nint k = 2 ** 100000000;\n", "qasm_int_bits_max"
    )
    assert "shift" in beyond_limit(
        HEADER + "qubit q;\nint k = 1 << 100000000;\n", "qasm_int_bits_max"
    )
    assert "qubit register" in beyond_limit(HEADER + "qubit[100000000000] q;\n", "qasm_qubits_max")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=" qubitxh[]0123456789;{}()=+-*/forin:ifmeasure@ctrl\n", max_size=80))
def test_arbitrary_text_is_a_circuit_or_circuit_invalid(text: str) -> None:
    try:
        parse_circuit(HEADER + "qubit[2] q;\nbit[2] c;\n" + text)
    except XdvError as error:
        assert error.code in (ErrorCode.CIRCUIT_INVALID, ErrorCode.INPUT_LIMIT_EXCEEDED)


def test_translate_refusals_carry_line_and_column() -> None:
    with pytest.raises(Qasm3Unsupported) as raised:
        translate(HEADER + "qubit q;\n  reset r;\n")
    assert (raised.value.line, raised.value.column) == (4, 2)  # the reset statement


def test_exploding_gate_definitions_are_refused_before_any_importer_expands_them() -> None:
    from xdv.domains.q._circuit import parse_circuit
    from xdv.errors import ErrorCode, XdvError

    lines = ["OPENQASM 3;", 'include "stdgates.inc";', "gate g0 a { x a; }"]
    lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, 60)]
    lines += ["qubit[1] q;", "g59 q[0];"]
    with pytest.raises(XdvError) as raised:
        parse_circuit("\n".join(lines))
    assert raised.value.code is ErrorCode.INPUT_LIMIT_EXCEEDED
    assert "expands to more than" in raised.value.message
