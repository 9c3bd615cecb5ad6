"""Lowering: Q processes to OpenQASM 3 (checked with the OpenQASM 3 reference parser) and Φ
processes to the canonical constraint problem (checked against exhaustive enumeration)."""

from __future__ import annotations

import itertools
from pathlib import Path

import openqasm3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.dpl import DirProcess, DplRuntimeFailure, analyze, compile_dir, lower_phi, lower_q
from xdv.dpl._lower import evaluate_constraint

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [p.read_text("utf-8") for p in sorted((ROOT / "tests" / "dpl").rglob("*.ds"))]
SOURCES.extend(
    (ROOT / "examples" / name).read_text("utf-8") for name in ("hybrid.ds", "qaoa.ds", "vqe.ds")
)


def q_processes() -> list[DirProcess]:
    found = []
    for text in SOURCES:
        program = analyze(text).program
        if program is not None:
            # Circuit processes (those that observe qubits); a linear-value Q process has no
            # circuit (docs/dpl.md section 4).
            found.extend(p for p in program.processes if p.regime == "Q" and _observes(p.body))
    return found


def _sample(type_name: str) -> object:
    """A value of a Q process's classical parameter type (``f64[2]`` → ``(0.5, 0.5)``)."""
    if type_name.endswith("]"):
        element, _, size = type_name[:-1].rpartition("[")
        return tuple(_sample(element) for _ in range(int(size)))
    return {"Int": 1, "Bool": True}.get(type_name, 0.5)


def _observes(body: tuple[object, ...]) -> bool:
    return any(getattr(node, "kind", None) == "observe" for node in body)


@pytest.mark.parametrize("process", q_processes(), ids=lambda p: p.name)
def test_every_q_lowering_is_valid_openqasm3(process: DirProcess) -> None:
    circuit = lower_q(process, tuple(_sample(type_name) for _, type_name in process.params))
    program = openqasm3.parse(circuit.text)
    gates = [s for s in program.statements if type(s).__name__ == "QuantumGate"]
    measures = [s for s in program.statements if "Measurement" in type(s).__name__]
    assert len(measures) == circuit.bits
    assert circuit.text.count(";") - 4 == len(gates) + len(measures)


def test_q_lowering_orders_qubits_by_allocation_and_bits_by_observation() -> None:
    program = compile_dir(
        """
        proc Q::p() -> Bits uses qubits(n = 3) linear {
            let a = q::alloc(2);
            let b = q::alloc(1);
            let b = q::x(b, 0);
            observe b;
            let a = q::ry(a, 1, 0.25);
            observe a;
        }
        """
    )
    circuit = lower_q(program.processes[0])
    assert circuit.qubits == 3 and circuit.bits == 3
    assert circuit.text.splitlines()[4:] == [
        "x q[2];",
        "c[0] = measure q[2];",
        "ry(0.25) q[1];",
        "c[1] = measure q[0];",
        "c[2] = measure q[1];",
    ]


PHI = """
proc Φ::p(k: i64, flag: bool) -> Witness {
    let x = phi::int(-3, 4);
    let y = phi::int(0, 5);
    let b = phi::bool();
    constrain x + y * 2 >= k;
    constrain x - y != 1 || b;
    constrain !b == flag || x * y < 3;
    constrain (x > 0) == b;
    prove w from x;
    return w;
}
"""


def _reference(x: int, y: int, b: bool, k: int, flag: bool) -> bool:
    return (
        x + y * 2 >= k and (x - y != 1 or b) and ((not b) == flag or x * y < 3) and ((x > 0) == b)
    )


@settings(max_examples=60)
@given(st.integers(-10, 14), st.booleans())
def test_phi_lowering_means_what_the_source_says(k: int, flag: bool) -> None:
    process = compile_dir(PHI).processes[0]
    problem = lower_phi(process, (k, flag))
    assert [v["name"] for v in problem["variables"]] == ["x", "y", "b"]
    for x, y, b in itertools.product(range(-3, 5), range(0, 6), (False, True)):
        assignment = {"x": x, "y": y, "b": b}
        lowered = all(evaluate_constraint(c, assignment) for c in problem["constraints"])
        assert lowered == _reference(x, y, b, k, flag), assignment


def test_empty_ranges_are_runtime_failures() -> None:
    process = compile_dir(
        "proc Φ::p(n: i64) -> Witness { let x = phi::int(n, 0); prove w from x; return w; }"
    ).processes[0]
    with pytest.raises(DplRuntimeFailure, match="empty range"):
        lower_phi(process, (5,))
