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
