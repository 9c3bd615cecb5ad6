from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_testdata
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.domains.phi import (
    AnnealSchedule,
    IsingProblem,
    OscillatorCalibration,
    PhaseOscillatorProvider,
    PhiProblemError,
    ising_from_bqm,
    parse_gset,
)
from xdv.errors import ErrorCode, XdvError


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(-4, 4)),
                max_size=10,
            ),
            st.lists(st.integers(0, 1), min_size=n, max_size=n),
        )
    )
)
def test_qubo_and_its_ising_form_agree_on_every_configuration(
    case: tuple[int, list[tuple[int, int, int]], list[int]],
) -> None:
    n, entries, x = case
    problem = IsingProblem.parse({"kind": "qubo", "n": n, "Q": [list(e) for e in entries]})
    qubo = sum(q * x[i] * x[j] for i, j, q in entries)
    spins = np.array([2 * value - 1 for value in x])
    assert float(problem.energy(spins)) == pytest.approx(qubo)


def test_a_dimod_bqm_converts_with_its_labels() -> None:
    dimod = pytest.importorskip("dimod")
    bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": -2.0}, {("a", "b"): 3.0}, 0.5, "BINARY")
    problem = ising_from_bqm(bqm)
    assert problem.labels == ("a", "b")
    for sample in ({"a": 0, "b": 0}, {"a": 1, "b": 0}, {"a": 1, "b": 1}):
        spins = np.array([2 * sample["a"] - 1, 2 * sample["b"] - 1])
        assert float(problem.energy(spins)) == pytest.approx(bqm.energy(sample))


def test_malformed_ising_problems_are_refused() -> None:
    for problem in (
        {"kind": "ising", "n": 0},
        {"kind": "ising", "n": 2, "J": [[0, 0, 1.0]]},
        {"kind": "ising", "n": 2, "J": [[0, 1, float("nan")]]},
        {"kind": "ising", "n": 2, "h": [1.0]},
        {"kind": "potts", "n": 2},
        "not a problem",
    ):
        with pytest.raises(PhiProblemError):
            IsingProblem.parse(problem)


def test_gset_files_parse_and_malformed_ones_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "tiny.txt"
    good.write_text("3 2\n1 2 1\n2 3 1\n")
    problem, total = parse_gset(good)
    assert problem.n == 3 and total == 2
    assert (total - float(problem.energy(np.array([1, -1, 1])))) / 2 == 2  # both edges cut
    bad = tmp_path / "bad.txt"
    bad.write_text("3 2\n1 2 1\n")
    with pytest.raises(XdvError) as raised:
        parse_gset(bad)
    assert raised.value.code is ErrorCode.PHI_ERR_PROBLEM_INVALID


def test_the_same_seed_gives_the_same_readout_and_metrics() -> None:
    problem = IsingProblem.parse(
        {"kind": "ising", "n": 8, "J": [[i, (i + 3) % 8, (-1.0) ** i] for i in range(8)]}
    )
    outputs = []
    for _ in range(2):
        provider = PhaseOscillatorProvider()
        provider.anneal(1, problem, AnnealSchedule(steps=300, replicas=4), np.random.default_rng(9))
        outputs.append((provider.readout(1, True), provider.metrics(1), provider.checksum(1)))
    assert outputs[0] == outputs[1]
    readout = outputs[0][0]
    assert set(readout) == {
        "spins",
        "energy",
        "energy_binarized",
        "energy_mean",
        "replicas",
        "polish_flips",
    }
    assert readout["energy"] <= readout["energy_binarized"]


def test_noise_from_the_calibration_shows_in_the_noise_index() -> None:
    problem = IsingProblem.parse({"kind": "ising", "n": 4, "J": [[0, 1, 1.0], [2, 3, 1.0]]})
    quiet = PhaseOscillatorProvider(OscillatorCalibration(diffusion=0.0, detuning=0.0))
    noisy = PhaseOscillatorProvider(OscillatorCalibration(diffusion=0.05, detuning=0.01))
    for provider in (quiet, noisy):
        provider.load(1, problem, 2, np.random.default_rng(0))
        provider.couple(1, 100, 1.0, np.random.default_rng(1))
    assert quiet.metrics(1)["noise_index"] == 0 and quiet.metrics(1)["drift"] == 0
    assert noisy.metrics(1)["noise_index"] > 0.3 and noisy.metrics(1)["drift"] > 0


def test_schedules_outside_the_device_limits_are_refused() -> None:
    calibration = OscillatorCalibration()
    with pytest.raises(XdvError):
        AnnealSchedule.from_terms({"replicas": 10_000}, calibration)
    with pytest.raises(XdvError):
        AnnealSchedule.from_terms({"budget_ms": -1}, calibration)
    assert AnnealSchedule.from_terms({"budget_ms": 0.5}, calibration).steps == 500


def test_g1_anneals_to_a_good_cut() -> None:
    problem, total = parse_gset(shared_testdata("gset", "G1.txt"))
    provider = PhaseOscillatorProvider()
    provider.anneal(1, problem, AnnealSchedule(steps=300, replicas=4), np.random.default_rng(3))
    cut = (total - provider.readout(1, True)["energy"]) / 2
    assert cut > 0.98 * 11624  # the best-known cut of G1; a random cut is about 9600


def _random_problem(seed: int, n: int = 12, fields: bool = True) -> IsingProblem:
    rng = np.random.default_rng(seed)
    couplings = [
        [i, j, float(rng.integers(-3, 4))]
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < 0.4
    ]
    h = [float(x) for x in rng.integers(-2, 3, size=n)] if fields else None
    return IsingProblem.parse({"kind": "ising", "n": n, "J": couplings, **({"h": h} if h else {})})


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_the_kernels_keep_fields_and_energies_exact(seed: int) -> None:
    from xdv.domains.phi import _kernels
    from xdv.domains.phi._oscillator import _csr_arrays, _symmetric

    problem = _random_problem(seed)
    indptr, indices, data = _csr_arrays(_symmetric(problem))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.1, 0.1, size=(3, problem.n))
    y = rng.uniform(-0.1, 0.1, size=(3, problem.n))
    spins = np.where(x >= 0, 1, -1).astype(np.int8)
    fields = _kernels.local_fields(indptr, indices, data, problem.h, spins)
    states = np.array([1, 2, 3], dtype=np.uint64)
    omega = np.zeros(problem.n)
    _kernels.sb_steps(
        indptr, indices, data, omega, x, y, spins, fields, states, 0, 40, 40, 0.5, 0.3, 0.01
    )
    # The incrementally kept fields are the fields of the signs of x.
    assert np.array_equal(spins, np.where(x >= 0, 1, -1))
    assert np.allclose(fields, _kernels.local_fields(indptr, indices, data, problem.h, spins))
    _kernels.descend(indptr, indices, data, problem.h, spins)
    local = _kernels.local_fields(indptr, indices, data, problem.h, spins)
    assert np.all(-2.0 * spins * local >= -1e-9)  # no single flip lowers the energy
    entry = problem.energy(spins)
    energies = entry.copy()
    _kernels.tabu(indptr, indices, data, problem.h, spins, energies, 200, 3, states)
    assert np.allclose(energies, problem.energy(spins)) and np.all(energies <= entry + 1e-9)


def test_both_dynamics_are_deterministic_and_tabu_never_worsens_the_readout() -> None:
    problem = _random_problem(5, n=40, fields=False)
    for dynamics in ("sb", "phase"):
        outputs = []
        for _ in range(2):
            provider = PhaseOscillatorProvider()
            schedule = AnnealSchedule(steps=120, replicas=3, dynamics=dynamics, tabu=50)
            provider.anneal(1, problem, schedule, np.random.default_rng(2))
            outputs.append(
                (provider.readout(1, True, 50), provider.metrics(1), provider.checksum(1))
            )
        assert outputs[0] == outputs[1]
        readout, metrics, _ = outputs[0]
        plain = provider.readout(1, True)
        assert readout["energy"] <= plain["energy"] <= readout["energy_binarized"]
        assert 0 <= metrics["stability"] <= 1


def test_bad_dynamics_and_tabu_are_refused() -> None:
    calibration = OscillatorCalibration()
    for terms in ({"dynamics": "quantum"}, {"tabu": -1}, {"tabu": 1.5}, {"coupling": -1}):
        with pytest.raises(XdvError) as raised:
            AnnealSchedule.from_terms(terms, calibration)
        assert raised.value.code is ErrorCode.PHI_ERR_PROBLEM_INVALID


def test_dimod_serializations_read_with_their_labels_and_vartype() -> None:
    dimod = pytest.importorskip("dimod")
    from xdv.domains.phi import parse_problem_document

    for vartype in ("BINARY", "SPIN"):
        bqm = dimod.BinaryQuadraticModel(
            {"a": 1.0, "b": -2.0, 3: 0.5}, {("a", "b"): 3.0, ("b", 3): -1.0}, 0.5, vartype
        )
        problem, solution = parse_problem_document(bqm.to_serializable())
        assert solution == {"vartype": vartype, "labels": ["a", "b", 3]}
        for values in ((0, 1, 1), (1, 0, 1), (1, 1, 0)):
            sample = dict(zip(["a", "b", 3], values, strict=True))
            if vartype == "SPIN":
                sample = {k: 2 * v - 1 for k, v in sample.items()}
            spins = np.array([2 * v - 1 for v in values])
            assert float(problem.energy(spins)) == pytest.approx(bqm.energy(sample))
    with pytest.raises(PhiProblemError):
        parse_problem_document({"type": "BinaryQuadraticModel", "version": {"bqm_schema": "9"}})
    assert (
        parse_problem_document({"kind": "qubo", "n": 1, "Q": [[0, 0, 1]]})[1]["vartype"] == "BINARY"
    )


@pytest.mark.slow
def test_the_bifurcation_machine_reaches_best_known_cuts() -> None:
    for name, best, floor in (("G43", 6660, 6655), ("G1", 11624, 11610), ("G14", 3064, 3045)):
        problem, total = parse_gset(shared_testdata("gset", f"{name}.txt"))
        provider = PhaseOscillatorProvider()
        provider.anneal(
            1, problem, AnnealSchedule(steps=1000, replicas=32), np.random.default_rng(1)
        )
        cut = (total - provider.readout(1, True)["energy"]) / 2
        assert floor <= cut <= best
