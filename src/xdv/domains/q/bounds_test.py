"""OpenQASM input limits: each breach is a typed error naming the limit, found before Qiskit's
importers allocate anything; whatever the parsers raise, Rust panics included, is typed too."""

from __future__ import annotations

import time

import pytest

from xdv.domains.q import parse_circuit
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import limit

V2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
V3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def refusal(text: str) -> XdvError:
    with pytest.raises(XdvError) as raised:
        parse_circuit(text, "c.qasm")
    return raised.value


def beyond(text: str, name: str) -> str:
    """The message of the INPUT_LIMIT_EXCEEDED ``text`` gets, which must name limit ``name``."""
    error = refusal(text)
    assert error.code is ErrorCode.INPUT_LIMIT_EXCEEDED, error
    assert f"limit {name} = {limit(name)}" in error.message, error
    assert error.where == "c.qasm"
    return error.message


def chain(version: int, depth: int) -> str:
    """Gate definitions that each call the previous one twice: 2**depth gates in ~depth lines."""
    if version == 2:
        lines = [V2 + "gate g0 a { h a; }"]
        lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, depth + 1)]
        lines += ["qreg q[1];", "creg c[1];", f"g{depth} q[0];", "measure q -> c;"]
    else:
        lines = [V3 + "gate g0 a { h a; }"]
        lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, depth + 1)]
        lines += ["qubit[1] q;", "bit[1] c;", f"g{depth} q[0];", "c = measure q;"]
    return "\n".join(lines) + "\n"


def test_a_register_of_10_to_the_30_qubits_is_a_limit_not_a_rust_panic() -> None:
    # Qiskit's OpenQASM 2 parser panics on this literal (and the panic used to exit 1).
    message = beyond(V2 + "qreg q[1000000000000000000000000000000];\n", "qasm_literal_bits_max")
    assert "line 3, column 8" in message


@pytest.mark.parametrize(
    "text",
    [V3 + "qubit[2000000000] q;\n", V2 + "qreg q[2000000000];\n", V2 + "qreg a[6000];\n" * 2],
)
def test_huge_registers_are_refused_before_anything_allocates(text: str) -> None:
    started = time.perf_counter()
    beyond(text, "qasm_qubits_max")
    assert time.perf_counter() - started < 2


def test_huge_bit_registers_are_refused() -> None:
    beyond(V2 + "qreg q[1];\ncreg c[2000000];\n", "qasm_clbits_max")
    beyond(V3 + "qubit q;\nbit[2000000] c;\n", "qasm_clbits_max")


@pytest.mark.parametrize("version", [2, 3])
def test_the_22_line_gate_explosion_is_refused_quickly_in_both_versions(version: int) -> None:
    text = chain(version, 17)
    started = time.perf_counter()
    message = beyond(text, "qasm_statements_max")
    assert time.perf_counter() - started < 2
    assert "'g17'" in message


def test_openqasm2_calls_of_nested_definitions_are_bounded() -> None:
    # 2**13 gates is within qasm_statements_max, but 16383 nested calls would take Qiskit's
    # exporter and transpiler minutes: refused by qasm_gate_calls_max.
    started = time.perf_counter()
    beyond(chain(2, 13), "qasm_gate_calls_max")
    assert time.perf_counter() - started < 2


def test_openqasm3_with_many_nested_calls_is_inlined_flat_by_xdvs_front_end() -> None:
    # The same program in OpenQASM 3 is built by XDV's front-end, which inlines definitions:
    # a flat circuit of 2**12 gates, no nested definitions left for the exporter to walk.
    parsed = parse_circuit(chain(3, 12))
    names = {instruction.operation.name for instruction in parsed.circuit.data}
    assert names == {"h", "measure"}
    assert len(parsed.circuit.data) == 2**12 + 1


def test_broadcast_over_registers_counts_every_application() -> None:
    text = V2 + "qreg q[5000];\ncreg c[5000];\n" + "h q;\n" * 21 + "measure q -> c;\n"
    message = beyond(text, "qasm_statements_max")
    assert "(line 25)" in message  # the 21st broadcast, which passes 100,000


@pytest.mark.parametrize("version", [2, 3])
def test_deep_nesting_is_refused_before_a_parser_recurses(version: int) -> None:
    header = V2 + "qreg q[1];\n" if version == 2 else V3 + "qubit[1] q;\n"
    text = header + "rz(" + "(" * 5000 + "1" + ")" * 5000 + ") q[0];\n"
    started = time.perf_counter()
    beyond(text, "qasm_nesting_max")
    assert time.perf_counter() - started < 1
    # Brackets in comments do not count.
    assert parse_circuit(header + "// " + "(" * 100 + "\nh q[0];\n").qubits == 1


def test_openqasm3_text_larger_than_its_parser_can_read_quickly_is_refused() -> None:
    text = V3 + "qubit q;\n" + "h q;\n" * (limit("qasm_v3_bytes_max") // 5)
    beyond(text, "qasm_v3_bytes_max")


def test_a_rust_panic_from_qiskit_becomes_circuit_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    from xdv.domains.q import _circuit

    # With the pre-check off, Qiskit's real parser panics on the literal: the panic must still
    # become a typed error.
    monkeypatch.setattr(_circuit, "check_qasm2", lambda text, where: None)
    error = refusal(V2 + "qreg q[1000000000000000000000000000000];\n")
    assert error.code is ErrorCode.CIRCUIT_INVALID
    assert "PanicException" in error.message


def test_interrupts_are_never_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from xdv.domains.q import _circuit

    def interrupted(text: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_circuit, "_load_qasm2", interrupted)
    with pytest.raises(KeyboardInterrupt):
        parse_circuit(V2 + "qreg q[1];\n")


def test_a_definition_that_reaches_itself_is_circuit_invalid() -> None:
    text = V3 + "gate a x { b x; }\ngate b x { a x; }\nqubit q;\na q;\n"
    error = refusal(text)
    assert error.code is ErrorCode.CIRCUIT_INVALID
    assert "itself" in error.message
