"""A Q provider for Clifford circuits: Stim (an optional extra, ``pip install 'xdv[stim]'``).

Stim samples stabilizer circuits of thousands of qubits quickly. It accepts Clifford gates
(``h``, ``s``, ``sdg``, ``x``, ``y``, ``z``, ``sx``, ``sxdg``, ``cx``, ``cy``, ``cz``,
``swap``), ``measure``, ``reset`` and ``barrier``; anything else (non-Clifford gates, classical
control) is refused with CIRCUIT_INVALID before any sampling. With noise, each gate is followed
by depolarizing noise at the calibrated rate and each measurement by a readout flip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdv.domains.q._calibration import CalibrationContract, CalibrationProfile
from xdv.domains.q._provider import QJob
from xdv.domains.q._signing import sign_calibration
from xdv.errors import ErrorCode, XdvError
from xdv.security import (
    KeyStore,
    ProviderIdentity,
    StoredIdentity,
    embedded_provider,
    measure_provider,
)

__all__ = ["StimProvider"]

_GATES = {
    "h": "H",
    "s": "S",
    "sdg": "S_DAG",
    "x": "X",
    "y": "Y",
    "z": "Z",
    "sx": "SQRT_X",
    "sxdg": "SQRT_X_DAG",
    "id": "I",
    "cx": "CX",
    "cy": "CY",
    "cz": "CZ",
    "swap": "SWAP",
}
_QUBITS_MAX = 10_000


@embedded_provider
class StimProvider(StoredIdentity):
    """Stim behind the QHPI: Clifford circuits only, method ``stabilizer``."""

    provider_id = "stim"
    methods: tuple[str, ...] = ("stabilizer",)

    def __init__(
        self, *, identity: ProviderIdentity | None = None, key_store: KeyStore | None = None
    ) -> None:
        import stim

        self._versions = {"stim": stim.__version__}
        self._identity = identity
        self._key_store = key_store

    def _configuration(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "qubits_max": _QUBITS_MAX, **self._versions}

    def measurement(self) -> str:
        return measure_provider([Path(__file__)], self._configuration())

    def declaration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "operations": ["run"],
            "methods": list(self.methods),
            "qubits_max": {"stabilizer": _QUBITS_MAX},
            "gates": sorted(_GATES),
            "measurement_modes": ["counts"],
            "noise": "calibration contract (depolarizing, readout)",
            "no_cloning": True,
            "versions": dict(self._versions),
        }

    def qubits_max(self, method: str) -> int:
        return _QUBITS_MAX

    def calibrate(
        self, contract_id: int, profile: CalibrationProfile, now: int, validity: int
    ) -> CalibrationContract:
        return sign_calibration(self.identity, contract_id, profile, now, validity)

    def run(self, job: QJob, profile: CalibrationProfile) -> dict[str, int]:
        import stim

        circuit = job.circuit.circuit
        program = stim.Circuit()
        # Which measurement record fills each classical bit (the last one written wins).
        sources: dict[int, int] = {}
        records = 0
        for instruction in circuit.data:
            operation = instruction.operation
            name = operation.name
            qubits = [circuit.find_bit(q).index for q in instruction.qubits]
            if name == "barrier":
                continue
            if getattr(operation, "blocks", ()) or getattr(operation, "condition", None):
                raise XdvError(
                    "Stim runs no classical control; use the aer provider",
                    code=ErrorCode.CIRCUIT_INVALID,
                    where=f"Q job {job.job_id}",
                )
            if name == "measure":
                (qubit,) = qubits
                if job.noise:
                    error = profile.qubits[job.mapping[qubit]].readout_error
                    program.append("X_ERROR", [qubit], error)
                program.append("M", [qubit])
                sources[circuit.find_bit(instruction.clbits[0]).index] = records
                records += 1
            elif name == "reset":
                program.append("R", qubits)
            elif name in _GATES:
                program.append(_GATES[name], qubits)
                if job.noise:
                    if len(qubits) == 1:
                        error = profile.qubits[job.mapping[qubits[0]]].gate_error
                        program.append("DEPOLARIZE1", qubits, min(error * 1.5, 0.75))
                    else:
                        error, _ = profile.pair(job.mapping[qubits[0]], job.mapping[qubits[1]])
                        program.append("DEPOLARIZE2", qubits, min(error * 1.25, 0.9375))
            else:
                raise XdvError(
                    f"gate {name!r} is not Clifford (Stim runs: {', '.join(sorted(_GATES))})",
                    code=ErrorCode.CIRCUIT_INVALID,
                    where=f"Q job {job.job_id}",
                )
        sampler = program.compile_sampler(seed=job.seed)
        samples = sampler.sample(job.shots)
        clbits = job.circuit.clbits
        counts: dict[str, int] = {}
        for row in samples:
            bits = ["0"] * clbits
            for clbit, record in sources.items():
                if row[record]:
                    bits[clbits - 1 - clbit] = "1"
            key = "".join(bits)
            counts[key] = counts.get(key, 0) + 1
        return counts
