from __future__ import annotations

import itertools
import json
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.core import KDomainManager, Operation
from xdv.domains.phi import (
    ConstraintProblem,
    ExactAdmissibilityProvider,
    PhiDomainManager,
    PhiProblemError,
    verify_witness,
)
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import make_kernel
from xdv.syscalls import Emit, Invoke, Reserve
from xdv.trace._format import jsonable


def var(name: str) -> dict[str, Any]:
    return {"var": name}


def const(value: int) -> dict[str, Any]:
    return {"const": value}


FEASIBLE = {
    "variables": [
        {"name": "x", "kind": "bool"},
        {"name": "n", "kind": "int", "lo": 0, "hi": 10},
        {"name": "m", "kind": "int", "lo": -5, "hi": 5},
    ],
    "constraints": [
        {
            "op": "or",
            "args": [{"op": "bool", "var": "x"}, {"op": ">=", "lhs": var("n"), "rhs": const(4)}],
        },
        {"op": "==", "lhs": {"op": "*", "args": [var("n"), var("m")]}, "rhs": const(-12)},
        {"op": "not", "arg": {"op": "<", "lhs": var("m"), "rhs": const(-3)}},
    ],
}
INFEASIBLE = {
    "variables": [{"name": "a", "kind": "int", "lo": 0, "hi": 3}, {"name": "b", "kind": "bool"}],
    "constraints": [
        {"op": ">", "lhs": {"op": "+", "args": [var("a"), var("b")]}, "rhs": const(4)},
    ],
}


def solve_through_kernel(
    problem: Any, signer_seed: int = 0
) -> tuple[dict[str, Any], PhiDomainManager]:
    manager = PhiDomainManager()

    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope")
        result = yield Invoke(contract, "solve", (problem,))
        yield Emit(result)

    kernel = make_kernel(signer_seed, domains=[KDomainManager(), manager])
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    kernel.run()
    return kernel.outputs[0][1], manager


def brute_force(problem: ConstraintProblem) -> dict[str, int | bool] | None:
    ranges = [range(v.lo, v.hi + 1) for v in problem.variables]
    for values in itertools.product(*ranges):  # lexicographic order, declaration order
        assignment: dict[str, int | bool] = {
            v.name: bool(x) if v.kind == "bool" else x
            for v, x in zip(problem.variables, values, strict=True)
        }
        if not problem.check(assignment):
            return assignment
    return None


def test_the_admissible_configuration_is_the_lexicographically_least() -> None:
    problem = ConstraintProblem.parse(FEASIBLE)
    result = ExactAdmissibilityProvider().solve(problem)
    assert result.status == "ADMISSIBLE"
    assert result.assignment == {"x": False, "n": 4, "m": -3} == brute_force(problem)


terms = st.deferred(
    lambda: st.one_of(
        st.builds(const, st.integers(-3, 3)),
        st.builds(var, st.sampled_from(["p", "q", "r"])),
        st.builds(
            lambda op, args: {"op": op, "args": args},
            st.sampled_from(["+", "-", "*"]),
            st.lists(terms, min_size=1, max_size=2),
        ),
    )
)
expressions = st.deferred(
    lambda: st.one_of(
        st.builds(
            lambda op, lhs, rhs: {"op": op, "lhs": lhs, "rhs": rhs},
            st.sampled_from(["==", "!=", "<=", "<", ">=", ">"]),
            terms,
            terms,
        ),
        st.builds(lambda arg: {"op": "not", "arg": arg}, expressions),
        st.builds(
            lambda op, args: {"op": op, "args": args},
            st.sampled_from(["and", "or"]),
            st.lists(expressions, min_size=1, max_size=2),
        ),
        st.just({"op": "bool", "var": "p"}),
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(expressions, max_size=3), st.integers(-2, 1), st.integers(0, 3))
def test_cp_sat_agrees_with_brute_force_on_small_sets(
    constraints: list[dict[str, Any]], lo: int, width: int
) -> None:
    problem = ConstraintProblem.parse(
        {
            "variables": [
                {"name": "p", "kind": "bool"},
                {"name": "q", "kind": "int", "lo": lo, "hi": lo + width},
                {"name": "r", "kind": "int", "lo": -1, "hi": 2},
            ],
            "constraints": constraints,
        }
    )
    expected = brute_force(problem)
    result = ExactAdmissibilityProvider().solve(problem)
    assert result.assignment == expected
    assert result.status == ("INADMISSIBLE" if expected is None else "ADMISSIBLE")


@pytest.mark.spec("XDV-061-5.3")
def test_the_exact_provider_returns_the_same_witness_every_run() -> None:
    first, manager = solve_through_kernel(FEASIBLE, 1)
    second, _ = solve_through_kernel(FEASIBLE, 2)
    assert first["status"] == "ADMISSIBLE" and first["assignment"] == {"x": False, "n": 4, "m": -3}
    # The witness depends on the problem and the envelope/contract/time, not on the run seed.
    assert first["witness"]["digest"] == second["witness"]["digest"]
    document = manager.witnesses[first["witness"]["digest"]]
    report = verify_witness(json.loads(json.dumps(jsonable(document))))
    assert report["verified"] and report["rechecked"] and report["status"] == "ADMISSIBLE"


def test_infeasible_sets_are_proved_inadmissible_and_the_proof_reverifies() -> None:
    result, manager = solve_through_kernel(INFEASIBLE)
    assert result["status"] == "INADMISSIBLE" and "assignment" not in result
    assert "INFEASIBLE" in result["witness"]["verification"]["proof"]
    document = manager.witnesses[result["witness"]["digest"]]
    assert verify_witness(document)["status"] == "INADMISSIBLE"


def test_a_tampered_witness_does_not_verify() -> None:
    result, manager = solve_through_kernel(FEASIBLE)
    document = json.loads(json.dumps(jsonable(manager.witnesses[result["witness"]["digest"]])))
    lying = json.loads(json.dumps(document))
    lying["payload"]["configuration"]["n"] = 6
    with pytest.raises(XdvError) as raised:
        verify_witness(lying)
    assert raised.value.code is ErrorCode.PHI_ERR_WITNESS_INVALID
    # A self-consistent forgery (digest recomputed) still fails: 6 * -2 = -12 holds but it is
    # not the admissible configuration, and its digest no longer matches the trace's.
    from xdv.domains.phi import DigestSigner, sign_witness

    forged_payload = dict(lying["payload"])
    forged_payload["configuration"] = {"x": False, "n": 6, "m": -2}
    forged = json.loads(json.dumps(jsonable(sign_witness(forged_payload, DigestSigner()))))
    with pytest.raises(XdvError, match="another configuration"):
        verify_witness(forged)
    claims_inadmissible = json.loads(json.dumps(document))
    claims_inadmissible["payload"]["status"] = "INADMISSIBLE"
    with pytest.raises(XdvError):
        verify_witness(claims_inadmissible)


@pytest.mark.parametrize(
    ("problem", "where"),
    [
        ({"variables": [{"name": "x", "kind": "float"}]}, "problem.variables[0]"),
        ({"variables": [{"name": "x", "kind": "int", "lo": 3, "hi": 1}]}, "problem.variables[0]"),
        (
            {"variables": [{"name": "x", "kind": "bool"}], "constraints": [{"op": "~"}]},
            "problem.constraints[0]",
        ),
        (
            {
                "variables": [{"name": "x", "kind": "bool"}],
                "constraints": [{"op": "==", "lhs": var("y"), "rhs": const(1)}],
            },
            "problem.constraints[0].lhs.var",
        ),
        ({"variables": [], "extra": 1}, "problem"),
    ],
)
def test_malformed_problems_are_refused_with_the_path(problem: Any, where: str) -> None:
    with pytest.raises(PhiProblemError) as raised:
        ConstraintProblem.parse(problem)
    assert raised.value.code is ErrorCode.PHI_ERR_PROBLEM_INVALID and raised.value.where == where


def test_hybrid_signed_witnesses_verify_and_signatures_stay_out_of_the_trace() -> None:
    from xdv.domains.phi import HybridSigner
    from xdv.security import HybridKeyPair

    keys = HybridKeyPair.from_seed(b"phi witness test")
    traces, signatures = [], []
    for _ in range(2):
        manager = PhiDomainManager(signer=HybridSigner(keys))

        def anchor() -> Generator[Any, Any, Any]:
            contract = yield Reserve("Φ", "envelope")
            yield Invoke(contract, "solve", (FEASIBLE,))

        kernel = make_kernel(3, domains=[KDomainManager(), manager])
        pid = kernel.spawn(anchor, domains=("K", "Φ"))
        kernel.grant(pid, Operation.PROJECT, "Φ", "K")
        traces.append(kernel.run().trace_bytes)
        (document,) = manager.witnesses.values()
        report = verify_witness(json.loads(json.dumps(jsonable(document))))
        assert report["signature"] == f"hybrid signature by {keys.public.fingerprint}"
        signatures.append(document["signature"]["value"])
        assert document["signature"]["value"].encode() not in traces[-1]
    assert traces[0] == traces[1]  # hedged signatures differ; the trace does not
    assert signatures[0] != signatures[1]
