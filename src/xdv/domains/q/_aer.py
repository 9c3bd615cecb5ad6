"""The embedded default Q provider: Qiskit Aer.

Methods: ``statevector`` (the default), ``density_matrix``, ``matrix_product_state`` and
``stabilizer``. Without noise a job runs as written. With noise (the ``noise`` reservation term)
the circuit is translated to the calibration's native gates and run under a noise model built
from the calibration contract: depolarizing gate errors at the calibrated rates, thermal
relaxation over each gate's calibrated duration (T1, T2), and readout errors. The stabilizer
method takes only the Pauli part (depolarizing and readout), since relaxation is not Clifford.

The simulator seed is derived from the kernel's per-invocation seed and the job id, so the same
run seed gives the same counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdv.domains.q._calibration import CalibrationContract, CalibrationProfile
from xdv.domains.q._provider import QJob, counts_from_hex
from xdv.domains.q._signing import sign_calibration
from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.security import (
    KeyStore,
    ProviderIdentity,
    StoredIdentity,
    embedded_provider,
    measure_provider,
)

__all__ = ["AerProvider"]

_METHODS = ("statevector", "density_matrix", "matrix_product_state", "stabilizer")
# Bounds keep one job inside a 24 GiB machine: 2**30 amplitudes of 16 bytes is 16 GiB.
_QUBITS_MAX = {
    "statevector": 30,
    "density_matrix": 15,
    "matrix_product_state": 100,
    "stabilizer": 1000,
}


_TRANSLATIONS_MAX = 256


def _uses_only(circuit: Any, supported: set[str]) -> bool:
    for instruction in circuit.data:
        operation = instruction.operation
        if operation.name not in supported:
            return False
        for block in getattr(operation, "blocks", ()):
            if not _uses_only(block, supported):
                return False
    return True


@embedded_provider
class AerProvider(StoredIdentity):
    """Qiskit Aer behind the QHPI."""

    provider_id = "aer"
    methods: tuple[str, ...] = _METHODS

    def __init__(
        self, *, identity: ProviderIdentity | None = None, key_store: KeyStore | None = None
    ) -> None:
        import qiskit
        import qiskit_aer

        self._versions = {"qiskit": qiskit.__version__, "qiskit-aer": qiskit_aer.__version__}
        self._simulators: dict[str, Any] = {}
        self._noise_models: dict[tuple[str, tuple[int, ...], str], Any] = {}
        self._translations: dict[tuple[str, str, tuple[str, ...] | None], Any] = {}
        self._supported_gates: dict[str, set[str]] = {}
        self._identity = identity
        self._key_store = key_store

    def _configuration(self) -> dict[str, Any]:
        return {"provider": self.provider_id, "qubits_max": dict(_QUBITS_MAX), **self._versions}

    def measurement(self) -> str:
        return measure_provider([Path(__file__)], self._configuration())

    def declaration(self) -> dict[str, Any]:
        return {
            "provider": self.provider_id,
            "operations": ["run"],
            "methods": list(self.methods),
            "qubits_max": dict(_QUBITS_MAX),
            "gates": "qiskit standard gates; noisy runs use the calibration's native gates",
            "measurement_modes": ["counts"],
            "noise": "calibration contract (depolarizing, thermal relaxation, readout)",
            "no_cloning": True,
            "versions": dict(self._versions),
        }

    def qubits_max(self, method: str) -> int:
        return _QUBITS_MAX[method]

    def calibrate(
        self, contract_id: int, profile: CalibrationProfile, now: int, validity: int
    ) -> CalibrationContract:
        return sign_calibration(self.identity, contract_id, profile, now, validity)

    def _simulator(self, method: str) -> Any:
        simulator = self._simulators.get(method)
        if simulator is None:
            from qiskit_aer import AerSimulator

            simulator = AerSimulator(method=method)
            self._simulators[method] = simulator
        return simulator

    def run(self, job: QJob, profile: CalibrationProfile) -> dict[str, int]:
        if job.method not in _METHODS:
            raise XdvError(
                f"Aer has no method {job.method!r}",
                code=ErrorCode.OPERATION_UNSUPPORTED,
                where=f"Q job {job.job_id}",
            )
        options: dict[str, Any] = {"shots": job.shots, "seed_simulator": job.seed}
        if job.noise:
            basis = (*profile.basis, "measure", "reset", "delay", "barrier", "if_else", "for_loop")
            circuit = self._translated(job, basis)
            options["noise_model"] = self._noise_model(profile, job.mapping, job.method)
        else:
            circuit = self._translated(job, None)
        try:
            result = self._simulator(job.method).run(circuit, **options).result()
            if not result.success:
                raise RuntimeError(str(result.status))
            raw = result.results[0].data.counts
        except XdvError:
            raise
        except Exception as error:
            # Aer's messages describe circuits and options, never amplitudes.
            raise XdvError(
                f"Aer failed: {describe_exception(error)}",
                code=ErrorCode.Q_PROVIDER_FAILED,
                where=f"Q job {job.job_id}",
            ) from None
        return counts_from_hex(dict(raw), job.circuit.clbits)

    def _translated(self, job: QJob, basis: tuple[str, ...] | None) -> Any:
        """The job's circuit in gates Aer runs (``basis`` for noisy runs; else Aer's own set).

        Translation is deterministic (optimization level 0, fixed transpiler seed) and cached by
        the circuit's hash."""
        key = (job.circuit.sha256, job.method, basis)
        cached = self._translations.get(key)
        if cached is not None:
            return cached
        circuit = job.circuit.circuit
        supported = set(basis) if basis is not None else self._supported(job.method)
        if not _uses_only(circuit, supported):
            from qiskit import transpile

            if basis is None:  # Aer's own target knows every gate it runs
                circuit = transpile(
                    circuit,
                    backend=self._simulator(job.method),
                    optimization_level=0,
                    seed_transpiler=0,
                )
            else:
                circuit = transpile(
                    circuit,
                    basis_gates=sorted(supported - {"barrier"}),
                    optimization_level=0,
                    seed_transpiler=0,
                )
        if len(self._translations) >= _TRANSLATIONS_MAX:
            self._translations.pop(next(iter(self._translations)))
        self._translations[key] = circuit
        return circuit

    def _supported(self, method: str) -> set[str]:
        found = self._supported_gates.get(method)
        if found is None:
            names = set(self._simulator(method).configuration().basis_gates)
            found = {name for name in names if not name.startswith(("save_", "set_"))}
            found |= {"measure", "reset", "barrier", "delay"}
            self._supported_gates[method] = found
        return found

    def _noise_model(
        self, profile: CalibrationProfile, mapping: tuple[int, ...], method: str
    ) -> Any:
        pauli_only = method == "stabilizer"
        key = (profile.name, mapping, "pauli" if pauli_only else "full")
        model = self._noise_models.get(key)
        if model is None:
            model = build_noise_model(profile, mapping, pauli_only=pauli_only)
            self._noise_models[key] = model
        return model


def build_noise_model(
    profile: CalibrationProfile, mapping: tuple[int, ...], *, pauli_only: bool = False
) -> Any:
    """An Aer noise model on logical qubits 0..n-1 placed on ``mapping``'s physical qubits."""
    from qiskit_aer.noise import (
        NoiseModel,
        ReadoutError,
        depolarizing_error,
        thermal_relaxation_error,
    )

    basis = [*profile.basis, "measure", "reset"]
    model = NoiseModel(basis_gates=basis)
    one_qubit = [gate for gate in profile.basis if gate in ("sx", "x")]
    two = profile.two_qubit_gate

    def depolarizing_parameter(error: float, qubits: int) -> float:
        # An average gate infidelity r corresponds to depolarizing p = r·d/(d-1), d = 2**n.
        dimension = 2**qubits
        return float(min(error * dimension / (dimension - 1), 1.0))

    for logical, physical in enumerate(mapping):
        calibration = profile.qubits[physical]
        error = depolarizing_error(depolarizing_parameter(calibration.gate_error, 1), 1)
        if not pauli_only:
            error = error.compose(
                thermal_relaxation_error(calibration.t1_ns, calibration.t2_ns, calibration.gate_ns)
            )
        for gate in one_qubit:
            model.add_quantum_error(error, gate, [logical])
        p01 = calibration.readout_error
        model.add_readout_error(ReadoutError([[1 - p01, p01], [p01, 1 - p01]]), [logical])
    for a, physical_a in enumerate(mapping):
        for b, physical_b in enumerate(mapping):
            if a == b:
                continue
            gate_error, ns = profile.pair(physical_a, physical_b)
            error = depolarizing_error(depolarizing_parameter(gate_error, 2), 2)
            if not pauli_only:
                qa, qb = profile.qubits[physical_a], profile.qubits[physical_b]
                relaxation = thermal_relaxation_error(qa.t1_ns, qa.t2_ns, ns).expand(
                    thermal_relaxation_error(qb.t1_ns, qb.t2_ns, ns)
                )
                error = error.compose(relaxation)
            model.add_quantum_error(error, two, [a, b])
    return model
