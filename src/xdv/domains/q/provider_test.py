from __future__ import annotations

import dataclasses

import pytest

from xdv.domains.q import load_profile, profile_names, verify_calibration
from xdv.domains.q._aer import AerProvider
from xdv.domains.q.testing import assert_provider_consistent
from xdv.errors import ErrorCode, XdvError


@pytest.mark.spec("XDV-060-3.2")
def test_aer_provider_passes_the_provider_consistency_helper() -> None:
    assert_provider_consistent(AerProvider())


@pytest.mark.spec("XDV-060-3.2")
def test_stim_provider_passes_the_provider_consistency_helper() -> None:
    pytest.importorskip("stim")
    from xdv.domains.q._stim import StimProvider

    provider = StimProvider()
    assert provider.methods == ("stabilizer",)
    assert_provider_consistent(provider)


def test_the_helper_catches_a_provider_that_ignores_its_seed() -> None:
    class Drifting(AerProvider):
        calls = 0

        def run(self, job, profile):  # type: ignore[no-untyped-def]
            Drifting.calls += 1
            return super().run(dataclasses.replace(job, seed=job.seed + Drifting.calls), profile)

    with pytest.raises(AssertionError, match="same seed"):
        assert_provider_consistent(Drifting())


@pytest.mark.spec("XDV-060-4.2")
def test_profiles_are_real_device_snapshots() -> None:
    assert "fake_sherbrooke" in profile_names() and "fake_manila" in profile_names()
    manila = load_profile("fake_manila")
    assert manila.size == 5 and manila.two_qubit_gate == "cx"
    assert (0, 1) in manila.pairs
    for qubit in manila.qubits:
        assert 1_000 < qubit.t1_ns < 10_000_000 and 0 < qubit.t2_ns <= 2 * qubit.t1_ns
        assert 0 < qubit.readout_error < 0.5 and 0 < qubit.gate_ns < 1_000
    # The profile digest pins the snapshot's content.
    assert load_profile("fake_manila").digest == manila.digest
    assert load_profile("fake_sherbrooke").digest != manila.digest


def test_unknown_profile_is_a_typed_error() -> None:
    with pytest.raises(XdvError) as raised:
        load_profile("fake_nowhere")
    assert raised.value.code is ErrorCode.CALIBRATION_INVALID


@pytest.mark.spec("XDV-060-4.2")
def test_calibration_contracts_are_signed_and_tampering_is_detected() -> None:
    provider = AerProvider()
    contract = provider.calibrate(3, load_profile("fake_manila"), 0, 50)
    verify_calibration(contract, provider.identity.public, "test")
    forged = dataclasses.replace(contract, profile="fake_sherbrooke")
    with pytest.raises(XdvError) as raised:
        verify_calibration(forged, provider.identity.public, "test")
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    assert "signature" not in contract.to_record()
