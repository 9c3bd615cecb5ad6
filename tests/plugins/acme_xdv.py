"""A third-party Q provider shipped as a plug-in (test fixture).

The tests install it as a real distribution (``acme-xdv``, a ``*.dist-info`` folder with its
``entry_points.txt`` on ``sys.path``), the way ``pip install`` would, and XDV finds it through
the ``xdv.q_providers`` entry-point group. It uses only XDV's public names, as a provider from
another package must: it runs circuits on Qiskit Aer's noiseless simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xdv.domains.q import CalibrationContract, CalibrationProfile, QJob, sign_calibration
from xdv.security import ProviderIdentity, measure_provider


class AcmeProvider:
    """A Q provider built by :func:`factory` from its configuration."""

    methods = ("statevector",)

    def __init__(self, provider_id: str, config: Mapping[str, Any]) -> None:
        self.provider_id = provider_id
        self.config = dict(config)
        self._identity: ProviderIdentity | None = None

    @property
    def identity(self) -> ProviderIdentity:
        if self._identity is None:
            self._identity = ProviderIdentity.from_store(self.provider_id)
        return self._identity

    def measurement(self) -> str:
        return measure_provider([Path(__file__)], {"provider": self.provider_id, **self.config})

    def declaration(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "operations": ["run"], "methods": ["statevector"]}

    def qubits_max(self, method: str) -> int:
        return int(self.config.get("qubits_max", 20))

    def calibrate(
        self, contract_id: int, profile: CalibrationProfile, now: int, validity: int
    ) -> CalibrationContract:
        return sign_calibration(self.identity, contract_id, profile, now, validity)

    def run(self, job: QJob, profile: CalibrationProfile) -> dict[str, int]:
        from qiskit import transpile
        from qiskit_aer import AerSimulator

        simulator = AerSimulator(method="statevector")
        circuit = transpile(job.circuit.circuit, simulator, optimization_level=0)
        counts = simulator.run(circuit, shots=job.shots, seed_simulator=job.seed).result()
        raw = counts.get_counts()
        return {key.replace(" ", ""): int(value) for key, value in raw.items()}


def factory(config: Mapping[str, Any]) -> AcmeProvider:
    """The plug-in factory: ``factory(config) -> provider``."""
    return AcmeProvider(str(config.get("provider_id", "acme")), config)


def failing_factory(config: Mapping[str, Any]) -> AcmeProvider:
    """A factory that cannot build its provider (for the error tests)."""
    raise RuntimeError("the acme device is offline")


def wrong_type(config: Mapping[str, Any]) -> object:
    """A factory that builds something that is not a Q provider."""
    return object()
