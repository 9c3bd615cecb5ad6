"""The DPL VM's cross-regime calls through the kernel: bind, reserve with terms, invoke ``run``
or ``solve``, release, all recorded in the trace.

The Q and Φ managers are separate components. The managers below are test doubles that
implement the domain manager interface (the cross-team contract: Q ``run(circuit_text, shots)``
→ ``{"counts", "shots"}``, Φ ``solve(problem)`` → ``{"status", "assignment", "witness"}``); the
Φ double solves by exhaustive enumeration, the Q double answers every shot with the all-zero
string. They check the wiring the real managers will use, not quantum or phase physics.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import openqasm3
import pytest

from helpers import EXAMPLES
from xdv.core import KDomainManager, PreparedCall
from xdv.core._interface import (
    Invocation,
    Outcome,
    ResourceContract,
    ResourceGrant,
    ResourceRequest,
)
from xdv.dpl import effect_record_text
from xdv.dpl._lower import evaluate_constraint
from xdv.runtime import load_dpl_workload, run_workload
from xdv.trace import Domain, read_trace


class _Double:
    domain: Domain
    resource: str

    def __init__(self) -> None:
        self.requests: list[ResourceRequest] = []
        self.invocations: list[tuple[str, tuple[Any, ...]]] = []

    def describe(self) -> dict[str, Any]:
        return {"manager": f"test-{self.resource}"}

    def init(self, pid: int) -> dict[str, Any]:
        return {}

    def request_resources(self, request: ResourceRequest) -> ResourceGrant:
        self.requests.append(request)
        return ResourceGrant(self.resource, request.amount, dict(request.terms))

    def release(self, contract: ResourceContract) -> None:
        return None

    def latency(self, operation: str) -> int:
        return 3

    def validate_contract(
        self, contract: ResourceContract, operation: str, latency_max: int | None
    ) -> None:
        return None

    def prepare(self, operation: str, args: tuple[Any, ...]) -> PreparedCall:
        return PreparedCall(operation, {"operation": operation})

    def project(self, pid: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args

    def terminate(self, pid: int) -> None:
        return None

    def report_fault(self, pid: int, error: BaseException) -> dict[str, Any]:
        return {}

    def snapshot(self) -> dict[str, Any]:
        return {}


class QDouble(_Double):
    domain = Domain.Q
    resource = "qubits"

    def execute(self, invocation: Invocation) -> Outcome:
        circuit, shots = invocation.args
        self.invocations.append((invocation.operation, invocation.args))
        program = openqasm3.parse(circuit)  # what arrives is valid OpenQASM 3
        bits = sum(1 for s in program.statements if "Measurement" in type(s).__name__)
        return Outcome({"counts": {"0" * bits: shots}, "shots": shots})


class PhiDouble(_Double):
    domain = Domain.PHI
    resource = "envelope"

    def execute(self, invocation: Invocation) -> Outcome:
        (problem,) = invocation.args
        self.invocations.append((invocation.operation, invocation.args))
        ranges = [
            [False, True] if v["kind"] == "bool" else range(v["lo"], v["hi"] + 1)
            for v in problem["variables"]
        ]
        names = [v["name"] for v in problem["variables"]]
        for values in itertools.product(*ranges):
            assignment = dict(zip(names, values, strict=True))
            if all(evaluate_constraint(c, assignment) for c in problem["constraints"]):
                return Outcome({"status": "ADMISSIBLE", "assignment": assignment, "witness": {}})
        return Outcome({"status": "INADMISSIBLE", "witness": {}})


@pytest.mark.spec("XDV-052-5.1")
def test_hybrid_example_runs_through_the_kernel_with_q_and_phi_managers(tmp_path: Path) -> None:
    q, phi = QDouble(), PhiDouble()
    lines: list[str] = []

    def sink(pid: int, value: Any) -> None:
        text = effect_record_text(value)
        if text is not None:
            lines.append(text)

    trace = tmp_path / "hybrid.xdvt"
    result = run_workload(
        load_dpl_workload(str(EXAMPLES / "hybrid.ds")),
        trace=trace,
        emit=sink,
        domains=[KDomainManager(), q, phi],
    )
    assert result.ok, result.exits
    assert lines == ["hybrid run", "bell pair measured 00", "split 40 into 30 and 10"]
    (request,) = q.requests
    assert request.amount == 2 and dict(request.terms) == {"shots_max": 256}
    ((operation, args),) = q.invocations
    assert operation == "run" and args[1] == 256 and args[0].startswith("OPENQASM 3.0;")
    ((operation, (problem,)),) = phi.invocations
    assert operation == "solve" and [v["name"] for v in problem["variables"]] == ["a", "b"]
    events = [entry.event_name for entry in read_trace(trace).entries]
    for event in ("RESOURCE_RESERVE", "DOMAIN_INVOKE", "DOMAIN_RESULT", "RESOURCE_RELEASE"):
        assert events.count(event) == 2, event
