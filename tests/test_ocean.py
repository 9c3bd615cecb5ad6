"""XDV for D-Wave Ocean users: :class:`xdv.dimod.XdvSampler` against dimod's own sampler test
helpers, the D-Wave sampler adapters as Φ providers (``xdv phirun --provider sa|tabu``), a
third-party Φ sampler plug-in installed as a real distribution, and the walk-through in
``docs/ocean.md`` run as written."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path

import dimod
import dimod.testing
import numpy as np
import pytest
from click.testing import CliRunner

from xdv.cli import cli
from xdv.core import KDomainManager
from xdv.dimod import XdvSampler
from xdv.domains import PluginError
from xdv.domains.phi import PhiDomainManager, ising_from_bqm, verify_witness
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import JobFailed, RunRequest, phi_problem_job, phi_report, replay, run
from xdv.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "plugins" / "acme_phi.py"


def sa_sampler() -> XdvSampler:
    """An XdvSampler on dwave-samplers' simulated annealing, short schedules."""
    return XdvSampler("sa", params={"num_sweeps": 50})


def phase_sampler() -> XdvSampler:
    """An XdvSampler on XDV's phase-oscillator machine, short anneals."""
    return XdvSampler("phase", params={"steps": 60})


# dimod's own sampler tests: empty, one-variable, path models; SPIN and BINARY; three BQM types.
@dimod.testing.load_sampler_bqm_tests(sa_sampler)
class TestDimodHelpersOnSimulatedAnnealing(unittest.TestCase):
    """dimod.testing's generated sampler tests, on the sa provider."""


@dimod.testing.load_sampler_bqm_tests(phase_sampler, max_num_variables=2)
class TestDimodHelpersOnThePhaseMachine(unittest.TestCase):
    """dimod.testing's generated sampler tests, on the phase provider (up to two variables)."""


def test_the_sampler_follows_dimods_sampler_api() -> None:
    dimod.testing.assert_sampler_api(XdvSampler())
    assert set(XdvSampler().parameters) >= {"num_reads", "seed", "provider"}


MODEL = dimod.BinaryQuadraticModel(
    {"a": 1.0, ("x", 1): -2.0, "c": 0.5},
    {("a", ("x", 1)): 1.5, ("a", "c"): -1.0, (("x", 1), "c"): 0.25},
    0.5,
    "BINARY",
)
GROUND = float(dimod.ExactSolver().sample(MODEL).first.energy)  # dimod's brute force


@pytest.mark.parametrize("provider", ["phase", "sa", "tabu"])
def test_every_read_comes_back_labelled_in_the_models_vartype(provider: str) -> None:
    params = {"phase": {"steps": 60}, "sa": {"num_sweeps": 50}, "tabu": {}}[provider]
    sampleset = XdvSampler(provider).sample(MODEL, num_reads=7, seed=4, **params)
    assert len(sampleset) == 7 and set(sampleset.record.num_occurrences) == {1}
    assert set(sampleset.variables) == set(MODEL.variables)
    assert sampleset.vartype is dimod.BINARY
    assert set(np.unique(sampleset.record.sample)) <= {0, 1}
    dimod.testing.assert_sampleset_energies(sampleset, MODEL)
    assert sampleset.first.energy == pytest.approx(GROUND)  # three variables: all find it
    info = sampleset.info
    assert info["provider"] == provider and info["seed"] == 4
    assert 0 <= info["stability"]["stability"] <= 1 and info["stability"]["checksum"]
    # The witness on disk verifies offline and is the best read's.
    document = json.loads(Path(info["witness"]["file"]).read_text())
    assert verify_witness(document)["digest"] == info["witness"]["digest"]
    assert document["payload"]["verification"]["reads"] == 7
    # SPIN models keep ±1.
    spin = MODEL.change_vartype("SPIN", inplace=False)
    spins = XdvSampler(provider).sample(spin, num_reads=3, seed=4, **params)
    assert spins.vartype is dimod.SPIN and set(np.unique(spins.record.sample)) <= {-1, 1}
    dimod.testing.assert_sampleset_energies(spins, spin)


def test_reads_beyond_the_phase_devices_replicas_run_as_further_anneals() -> None:
    model = dimod.BinaryQuadraticModel.from_ising({0: 0.5}, {(0, 1): -1.0})
    sampleset = XdvSampler("phase").sample(model, num_reads=300, steps=60)
    assert len(sampleset) == 300  # 256 replicas, then 44 in a second anneal
    dimod.testing.assert_sampleset_energies(sampleset, model)
    # Polished (the default): every read is a single-flip local minimum of the model.
    for sample, energy in sampleset.data(["sample", "energy"]):
        for variable in model.variables:
            flipped = dict(sample)
            flipped[variable] = -flipped[variable]
            assert model.energy(flipped) >= energy - 1e-9


def test_the_exact_provider_answers_its_proven_optimum_once() -> None:
    sampleset = XdvSampler("exact").sample(MODEL, num_reads=5)
    assert len(sampleset) == 1 and sampleset.info["status"] == "OPTIMAL"
    assert sampleset.first.energy == pytest.approx(GROUND)


def test_a_seeded_call_is_deterministic_and_its_trace_replays(tmp_path: Path) -> None:
    trace = tmp_path / "ocean.xdvt"
    first = XdvSampler("sa", trace=trace).sample(MODEL, num_reads=5, seed=9, num_sweeps=30)
    assert replay(trace).ok
    start = read_trace(trace.read_bytes()).entries[0].metadata
    assert start["domains"]["Φ"]["providers"] == {"sa": {}}
    again = XdvSampler("sa").sample(MODEL, num_reads=5, seed=9, num_sweeps=30)
    assert np.array_equal(first.record.sample, again.record.sample)
    assert first.info["witness"]["digest"] == again.info["witness"]["digest"]


@pytest.mark.parametrize(
    ("provider", "params", "code"),
    [
        ("tabu", {"timeout": 20}, ErrorCode.PHI_SAMPLER_PARAMS_INVALID),
        ("sa", {"num_sweeps": 0}, ErrorCode.PHI_SAMPLER_PARAMS_INVALID),
        ("sa", {"initial_states": []}, ErrorCode.PHI_SAMPLER_PARAMS_INVALID),
        ("sa", {"num_reads_per_call": 3}, ErrorCode.PHI_SAMPLER_PARAMS_INVALID),
        ("nobody", {}, ErrorCode.PLUGIN_NOT_FOUND),
    ],
)
def test_refusals_are_typed(provider: str, params: dict[str, object], code: ErrorCode) -> None:
    with pytest.raises(XdvError) as caught:
        XdvSampler(provider).sample(MODEL, num_reads=2, **params)
    assert caught.value.code is code


def test_reads_past_the_trace_limit_are_refused_before_the_run() -> None:
    wide = dimod.BinaryQuadraticModel.from_ising({i: 1.0 for i in range(600)}, {})
    with pytest.raises(XdvError) as caught:
        XdvSampler("sa").sample(wide, num_reads=500)
    assert caught.value.code is ErrorCode.PHI_SAMPLER_PARAMS_INVALID
    assert "phi_sample_spins_max" in caught.value.message


def test_phirun_runs_the_dwave_adapters_and_the_trace_replays(tmp_path: Path) -> None:
    graph = tmp_path / "ring.txt"
    graph.write_text("6 6\n1 2 1\n2 3 1\n3 4 1\n4 5 1\n5 6 1\n6 1 1\n")
    trace = tmp_path / "ring.xdvt"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["phirun", str(graph), "--provider", "sa", "--trace", str(trace), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cut"] == 6 and len(report["reads"]["energies"]) == 16
    assert report["provider"] == "sa" and report["sampler"]["sampler"]
    assert runner.invoke(cli, ["replay", str(trace)]).exit_code == 0
    text = runner.invoke(cli, ["phirun", str(graph), "--provider", "tabu"])
    assert text.exit_code == 0 and "cut 6" in text.stdout and "reads 16" in text.stdout
    refused = runner.invoke(cli, ["phirun", str(graph), "--provider", "sa", "--budget-ms", "1"])
    assert refused.exit_code != 0 and "OPERATION_UNSUPPORTED" in refused.output


# -- a third-party sampler provider ------------------------------------------------------------


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """acme-phi installed as a real distribution in a site folder on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(FIXTURE, site / "acme_phi.py")
    info = site / "acme_phi-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-phi\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(
        "[xdv.phi_providers]\nacmephi = acme_phi:factory\nacmequiet = acme_phi:not_a_sampler\n"
    )
    importlib.invalidate_caches()
    monkeypatch.setenv("XDV_HOME", str(tmp_path / "home"))
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("acme_phi", None)


def test_a_plugin_sampler_runs_under_the_phi_contract_and_replays(
    acme: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "acme.xdvt"
    sampler = XdvSampler("acmephi", config={"sweeps": 20}, trace=trace)
    sampleset = sampler.sample(MODEL, num_reads=6, seed=2)
    assert len(sampleset) == 6
    dimod.testing.assert_sampleset_energies(sampleset, MODEL)
    assert sampleset.info["sampler"] == {"sweeps": 20}
    start = read_trace(trace.read_bytes()).entries[0].metadata
    entry = start["domains"]["Φ"]["providers"]["acmephi"]
    assert entry["plugin"]["distribution"] == "acme-phi" and entry["config"] == {"sweeps": 20}
    assert replay(trace).ok
    # The manager rebuilds it from the description alone.
    manager = PhiDomainManager.from_description(
        PhiDomainManager(providers={"acmephi": {}}).describe()
    )
    assert manager.providers()["acmephi"].provider_id == "acmephi"


def test_a_plugin_that_does_not_sample_is_refused(acme: Path) -> None:
    with pytest.raises(XdvError) as caught:
        PhiDomainManager(providers={"acmequiet": {}})
    assert caught.value.code in (ErrorCode.PHI_PROVIDER_INVALID, ErrorCode.PLUGIN_INVALID)
    with pytest.raises(XdvError) as caught:
        PhiDomainManager(providers={"phase": {}})
    assert caught.value.code is ErrorCode.PHI_PROVIDER_INVALID
    with pytest.raises(PluginError):
        PhiDomainManager(providers={"acmeabsent": {}})


# -- the walk-through --------------------------------------------------------------------------


def test_the_ocean_walkthrough_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ```python block of docs/ocean.md, in order, in one namespace."""
    text = (ROOT / "docs" / "ocean.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "ocean_walkthrough"}
    for block in blocks:
        exec(compile(block, "docs/ocean.md", "exec"), namespace)


def test_a_sampler_envelope_under_a_phase_diffusion_burst_breaches_its_contract() -> None:
    """The Φ contract holds for sampler providers too: a fault injected into the envelope's
    window drops its stability below tolerance, the envelope is invalidated and nothing is
    projected (the reads never reach the caller)."""
    problem = ising_from_bqm(MODEL)
    job = phi_problem_job(problem, "sa", {"reads": 4, "params": {"num_sweeps": 20}})
    faulty = PhiDomainManager(providers={"sa": {}}, instability_at=(2,), window=1_000_000)
    outcome = run(RunRequest(job, handle_signals=False), domains=[KDomainManager(), faulty])
    with pytest.raises(JobFailed) as caught:
        phi_report(outcome, source="model", problem_format="dimod")
    assert caught.value.code is ErrorCode.PHI_ERR_STABILITY_BREACH
    clean = PhiDomainManager(providers={"sa": {}}, window=1_000_000)
    outcome = run(RunRequest(job, handle_signals=False), domains=[KDomainManager(), clean])
    assert outcome.ok


def test_the_dwave_system_adapter_without_dwave_system_is_unavailable_typed() -> None:
    if importlib.util.find_spec("dwave.system") is not None:
        pytest.skip("dwave-system is installed here; the adapter needs an account to run")
    with pytest.raises(XdvError) as caught:
        XdvSampler("dwave").sample(MODEL, num_reads=2)
    assert caught.value.code is ErrorCode.PHI_PROVIDER_UNAVAILABLE
    assert "dwave-system" in caught.value.message
