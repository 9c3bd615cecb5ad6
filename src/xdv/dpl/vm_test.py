"""The VM: effects in order, slicing, fail-before-effect, binds and their contracts, and the
handling of Q and Φ outcomes behind the domain adapter.

The Q and Φ managers are separate components; these tests drive the VM through the adapter
interface with a scripted adapter whose outcomes are computed (the Φ one enumerates the problem
exhaustively and returns the lexicographically least assignment, as the interface specifies).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from xdv.core import Kernel
from xdv.core._syscalls import Sleep
from xdv.dpl import Program, compile_source, effect_record_text
from xdv.dpl._lower import evaluate_constraint
from xdv.dpl._vm import Steps
from xdv.trace import read_trace

HYBRID = (Path(__file__).resolve().parents[3] / "examples" / "hybrid.ds").read_text("utf-8")


def least_assignment(problem: dict[str, Any]) -> dict[str, Any] | None:
    """The lexicographically least admissible assignment, by exhaustive enumeration."""
    domains = [
        [False, True] if v["kind"] == "bool" else list(range(v["lo"], v["hi"] + 1))
        for v in problem["variables"]
    ]
    names = [v["name"] for v in problem["variables"]]
    for values in itertools.product(*domains):
        assignment = dict(zip(names, values, strict=True))
        if all(evaluate_constraint(c, assignment) for c in problem["constraints"]):
            return assignment
    return None


class ScriptedAdapter:
    """Answers ``run`` with fixed counts and ``solve`` by enumeration; ``delay`` logical steps
    before each answer; ``forge`` replaces the assignment (a fabricated witness)."""

    def __init__(self, delay: int = 0, forge: dict[str, Any] | None = None) -> None:
        self.delay = delay
        self.forge = forge
        self.circuits: list[tuple[str, int, int, dict[str, Any]]] = []
        self.problems: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def run_circuit(self, circuit: str, qubits: int, shots: int, terms: Mapping[str, Any]) -> Steps:
        self.circuits.append((circuit, qubits, shots, dict(terms)))
        if self.delay:
            yield Sleep(self.delay)
        return {"counts": {"00": shots // 2 + 3, "11": shots // 2 - 3}, "shots": shots}

    def solve(self, problem: dict[str, Any], terms: Mapping[str, Any]) -> Steps:
        self.problems.append((problem, dict(terms)))
        if self.delay:
            yield Sleep(self.delay)
        assignment = self.forge or least_assignment(problem)
        if assignment is None:
            return {"status": "INADMISSIBLE", "witness": {"reason": "enumerated"}}
        return {"status": "ADMISSIBLE", "assignment": assignment, "witness": {}}


def run(source: str, adapter: Any = None, path: Path | None = None, seed: int = 3) -> Any:
    document = compile_source(source)
    program = Program(document, adapter=adapter)
    lines: list[str] = []

    def sink(pid: int, value: Any) -> None:
        text = effect_record_text(value)
        if text is not None:
            lines.append(text)

    kernel = Kernel(seed, trace=path, emit=sink)
    kernel.spawn(program.anchor, name="dpl")
    result = kernel.run()
    return result, lines


def effects(path: Path) -> list[dict[str, Any]]:
    return [e.metadata["v"] for e in read_trace(path).entries if e.event_name == "EFFECT"]


@pytest.mark.spec("XDV-052-5.1")
@pytest.mark.spec("XDV-052-5.3")
def test_hybrid_program_runs_through_the_adapter(tmp_path: Path) -> None:
    adapter = ScriptedAdapter()
    result, lines = run(HYBRID, adapter, tmp_path / "t.xdvt")
    assert result.ok
    assert lines == ["hybrid run", "bell pair measured 00", "split 40 into 30 and 10"]
    circuit, qubits, shots, terms = adapter.circuits[0]
    assert circuit.startswith("OPENQASM 3.0;") and qubits == 2 and shots == 256
    assert terms == {"shots_max": 256}
    problem, phi_terms = adapter.problems[0]
    assert [v["name"] for v in problem["variables"]] == ["a", "b"]
    assert phi_terms == {"provider": "exact", "window": 16}
    kinds = [e["effect"] for e in effects(tmp_path / "t.xdvt")]
    assert kinds == ["emit", "observe", "bind", "emit", "bind", "emit", "seal"]


def test_counts_observation_returns_the_histogram() -> None:
    source = (
        HYBRID.replace("observation == sample;", "observation == counts;")
        .replace('emit "bell pair measured {bits}";', "emit bits;")
        .replace("let bits = Q::bell();", "let bits = Q::bell();")
    )
    _, lines = run(source, ScriptedAdapter())
    assert lines[1] == '{"00": 131, "11": 125}'


@pytest.mark.spec("XDV-052-8")
def test_inadmissible_problem_is_an_admissibility_failure_before_any_later_effect(
    tmp_path: Path,
) -> None:
    source = HYBRID.replace("constrain a == 3 * b;", "constrain a == 3 * b + 1;")
    result, lines = run(source, ScriptedAdapter(), tmp_path / "t.xdvt")
    (status,) = result.exits.values()
    assert status.code == "DPL_ADMISSIBILITY"
    assert lines == ["hybrid run", "bell pair measured 00"]
    assert [e["effect"] for e in effects(tmp_path / "t.xdvt")] == [
        "emit",
        "observe",
        "bind",
        "emit",
    ]


def test_a_fabricated_witness_is_refused() -> None:
    result, lines = run(HYBRID, ScriptedAdapter(forge={"a": 1, "b": 1}))
    (status,) = result.exits.values()
    assert status.code == "PHI_ERR_WITNESS_INVALID"
    assert "split" not in " ".join(lines)


@pytest.mark.spec("XDV-052-5.2")
def test_a_late_outcome_violates_the_latency_bound_and_nothing_crosses(tmp_path: Path) -> None:
    result, lines = run(HYBRID, ScriptedAdapter(delay=100), tmp_path / "t.xdvt")
    (status,) = result.exits.values()
    assert status.code == "DPL_CONTRACT_VIOLATION"
    assert lines == ["hybrid run"]
    assert [e["effect"] for e in effects(tmp_path / "t.xdvt")] == ["emit"]


def test_without_managers_the_first_cross_regime_call_fails_after_earlier_effects() -> None:
    result, lines = run(HYBRID)
    (status,) = result.exits.values()
    assert status.code == "DOMAIN_UNAVAILABLE"
    assert lines == ["hybrid run"]


@pytest.mark.spec("XDV-050-4.1")
def test_same_program_and_seed_give_the_same_trace_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    run(HYBRID, ScriptedAdapter(), first)
    run(HYBRID, ScriptedAdapter(), second)
    assert first.read_bytes() == second.read_bytes()


def test_long_loops_are_sliced_so_processes_interleave() -> None:
    source = """
    K main {
        for round in 0..3 {
            mut let spin = 0;
            for i in 0..3000 { spin = spin + 1; }
            emit "{round}";
        }
    }
    """
    document = compile_source(source)
    lines: list[tuple[int, str]] = []

    def sink(pid: int, value: Any) -> None:
        text = effect_record_text(value)
        if text is not None:
            lines.append((pid, text))

    kernel = Kernel(0, emit=sink, quantum=1)
    first = kernel.spawn(Program(document).anchor, name="a")
    second = kernel.spawn(Program(document).anchor, name="b")
    kernel.run()
    # Each process yields every 1024 steps, so neither finishes all its rounds first.
    assert [pid for pid, _ in lines] == [first, second] * 3


def test_step_counting_is_deterministic() -> None:
    document = compile_source("K main { mut let s = 0; for i in 0..5000 { s = s + i; } }")
    counts = []
    for _ in range(2):
        program = Program(document)
        kernel = Kernel(0)
        kernel.spawn(program.anchor)
        kernel.run()
        counts.append(program.steps_used)
    assert counts[0] == counts[1] == 5000


def test_entry_must_be_a_parameterless_k_process() -> None:
    document = compile_source("K f(K[Int] n) -> K[Int] { n }")
    with pytest.raises(Exception, match="entry K::main"):
        Program(document)
    with pytest.raises(Exception, match="entry K::f"):
        Program(document, "f")
