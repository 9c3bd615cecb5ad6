"""Exact Ising/QUBO/MaxCut optimization on the exact provider (operation ``optimize``)."""

from __future__ import annotations

import itertools
from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.core import KDomainManager, Operation
from xdv.domains.phi import ExactAdmissibilityProvider, IsingProblem, PhiDomainManager
from xdv.domains.phi._problems import ising_cut
from xdv.domains.phi._witness import verify_witness
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import make_kernel
from xdv.syscalls import Emit, Invoke, Release, Reserve
from xdv.trace import EventType, read_trace


def brute_force_energy(problem: IsingProblem) -> float:
    codes = np.array(list(itertools.product((-1, 1), repeat=problem.n)))
    return float(problem.energy(codes).min())


def optimize_job(problem: Any, options: dict[str, Any] | None = None) -> Any:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "exact"})
        try:
            result = yield Invoke(contract, "optimize", (problem, options or {}))
        except XdvError as error:
            yield Emit(error.code.name)
            return
        yield Emit(result)
        yield Release(contract)

    return anchor


def run(problem: Any, seed: int = 7, options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    manager = PhiDomainManager()
    kernel = make_kernel(seed, domains=[KDomainManager(), manager])
    pid = kernel.spawn(optimize_job(problem, options), domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    result = kernel.run()
    return result, manager


graphs = st.integers(2, 12).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(1, 5)),
            max_size=3 * n,
        ),
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs, st.integers(0, 2**32))
def test_the_maxcut_optimum_equals_the_brute_force_maximum(
    graph: tuple[int, list[tuple[int, int, int]]], seed: int
) -> None:
    n, edges = graph
    edges = [(i, j, w) for i, j, w in edges if i != j]
    problem = IsingProblem.build(n, None, [(i, j, float(w)) for i, j, w in edges])
    result = ExactAdmissibilityProvider().optimize(problem, seed=seed)
    best_cut = max(
        sum(w for i, j, w in edges if bits[i] != bits[j])
        for bits in itertools.product((0, 1), repeat=n)
    )
    assert result.status == "OPTIMAL"
    assert ising_cut(problem, np.array(result.spins)) == best_cut
    assert result.bound == result.energy == float(problem.energy(np.array(result.spins)))


coefficients = st.sampled_from([-2.0, -1.5, -1.0, -0.75, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.lists(coefficients, min_size=n, max_size=n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), coefficients),
                max_size=3 * n,
            ),
            st.sampled_from(["ising", "qubo"]),
        )
    )
)
def test_the_bqm_optimum_equals_the_brute_force_minimum(
    case: tuple[list[float], list[tuple[int, int, float]], str],
) -> None:
    fields, pairs, kind = case
    n = len(fields)
    if kind == "ising":
        problem = IsingProblem.parse(
            {"kind": "ising", "n": n, "h": fields, "J": [list(p) for p in pairs if p[0] != p[1]]}
        )
    else:
        entries = [[i, i, q] for i, q in enumerate(fields)] + [list(p) for p in pairs]
        problem = IsingProblem.parse({"kind": "qubo", "n": n, "Q": entries, "offset": 0.5})
    result = ExactAdmissibilityProvider().optimize(problem, seed=1)
    assert result.status == "OPTIMAL"
    assert result.energy == pytest.approx(brute_force_energy(problem), abs=1e-9)


def test_an_optimum_goes_through_verification_witness_and_trace() -> None:
    ring = {"kind": "ising", "n": 7, "J": [[i, (i + 1) % 7, 1.0] for i in range(7)]}
    result, manager = run(ring)
    assert result.ok
    output = result.outputs[0][1]
    assert output["status"] == "OPTIMAL" and output["energy"] == -5.0
    assert output["cut"] == 6.0 and output["cut_bound"] == 6.0  # an odd ring cuts all but one
    assert output["transform"]["flow"][-3:] == ["verify", "witness", "result"]
    assert "phases" not in output and output["witness"]["status"] == "OPTIMAL"
    assert output["witness"]["verification"]["cut"] == 6.0
    (document,) = manager.witnesses.values()
    report = verify_witness(document)
    assert report["verified"] and report["rechecked"] and report["cut"] == 6.0
    forged = {
        "payload": {**document["payload"], "verification": {**document["payload"]["verification"]}}
    }
    forged["payload"]["verification"]["cut"] = 7.0
    from xdv.domains.phi._witness import DigestSigner, sign_witness

    with pytest.raises(XdvError) as caught:
        verify_witness(sign_witness(forged["payload"], DigestSigner()))
    assert caught.value.code is ErrorCode.PHI_ERR_WITNESS_INVALID
    # A sub-optimal configuration claimed OPTIMAL is caught by the re-decision.
    worse = dict(document["payload"])
    worse["configuration"] = [1] * 7
    energy = 7.0
    worse["verification"] = {
        **worse["verification"],
        "energy": energy,
        "bound": energy,
        "cut": 0.0,
    }
    with pytest.raises(XdvError) as caught:
        verify_witness(sign_witness(worse, DigestSigner()))
    assert caught.value.code is ErrorCode.PHI_ERR_WITNESS_INVALID
    assert PhiDomainManager().rights("optimize") == {"PROJECT"}


def test_same_seed_same_optimum_and_same_trace_bytes() -> None:
    rng = np.random.default_rng(3)
    couplings = [[i, j, float(rng.integers(-3, 4))] for i in range(14) for j in range(i + 1, 14)]
    problem = {"kind": "ising", "n": 14, "h": [0.5] * 14, "J": couplings}
    first, _ = run(problem, seed=11, options={"work_limit": 0.05})
    second, _ = run(problem, seed=11, options={"work_limit": 0.05})
    assert first.ok and first.trace_bytes == second.trace_bytes
    assert first.outputs == second.outputs
    output = first.outputs[0][1]
    assert output["status"] in ("OPTIMAL", "FEASIBLE") and output["bound"] <= output["energy"]
    assert output["solver"]["workers"] == 1 and output["solver"]["work"] > 0


def test_oversized_or_inexact_problems_are_refused_before_any_solve() -> None:
    manager = PhiDomainManager()
    limit = manager.exact.declaration()["optimize"]["spins_max"]
    large = {"kind": "ising", "n": limit + 1, "J": [[0, 1, 1.0]]}
    for problem in (large, {"kind": "ising", "n": 2, "J": [[0, 1, 0.1]]}):
        result, manager = run(problem)
        assert result.outputs[0][1] == "PHI_ERR_PROBLEM_INVALID"
        entries = read_trace(result.trace_bytes).entries
        (invoke,) = [e for e in entries if e.event_type is EventType.DOMAIN_INVOKE]
        assert invoke.status is ErrorCode.PHI_ERR_PROBLEM_INVALID  # the Invoke's failure entry
        assert not [e for e in entries if e.event_type is EventType.DOMAIN_RESULT]
        assert not manager.witnesses
    result, _ = run({"kind": "ising", "n": 2, "J": [[0, 1, 1.0]]}, options={"work_limit": 1e9})
    assert result.outputs[0][1] == "PHI_ERR_PROBLEM_INVALID"
    with pytest.raises(XdvError) as caught:
        ExactAdmissibilityProvider(spins_max=4).optimize(
            IsingProblem.build(5, None, [(0, 1, 1.0)]), seed=0
        )
    assert caught.value.code is ErrorCode.PHI_ERR_PROBLEM_INVALID


def test_the_phase_provider_does_not_offer_optimize() -> None:
    def anchor() -> Generator[Any, Any, Any]:
        contract = yield Reserve("Φ", "envelope", terms={"provider": "phase"})
        try:
            yield Invoke(contract, "optimize", ({"kind": "ising", "n": 1},))
        except XdvError as error:
            yield Emit(error.code.name)

    kernel = make_kernel(1, domains=[KDomainManager(), PhiDomainManager()])
    pid = kernel.spawn(anchor, domains=("K", "Φ"))
    kernel.grant(pid, Operation.PROJECT, "Φ", "K")
    assert kernel.run().outputs[0][1] == "OPERATION_UNSUPPORTED"
