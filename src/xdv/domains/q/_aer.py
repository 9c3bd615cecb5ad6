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

import math
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
_NOISE_MODELS_MAX = 64
_NOISE_MODELS: dict[tuple[str, tuple[int, ...], str], Any] = {}
_TRANSLATIONS: dict[
    tuple[str, str, tuple[str, ...] | None, tuple[tuple[int, int], ...] | None], Any
] = {}


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
        # Shared by every Aer provider of the process: both are pure functions of immutable
        # inputs (the profile's digest and the placement; the circuit's hash and the basis), and
        # each run builds its own provider, so per-instance caches would never be hit twice.
        self._noise_models = _NOISE_MODELS
        self._translations = _TRANSLATIONS
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
            circuit = self._translated(job, basis, container_coupling(profile, job.mapping))
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

    def _translated(
        self,
        job: QJob,
        basis: tuple[str, ...] | None,
        coupling: tuple[tuple[int, int], ...] | None = None,
    ) -> Any:
        """The job's circuit in gates Aer runs (``basis`` for noisy runs; else Aer's own set).

        A noisy run is also routed onto ``coupling`` (the calibration's couplings among the
        container's qubits, on logical indices): SWAPs are inserted where the circuit couples
        qubits the device does not, as the device itself would need, at optimization level 1
        (runs of single-qubit gates merged, as Qiskit's default preset does; otherwise level
        0). Translation is deterministic (trivial initial layout, fixed transpiler seed) and
        cached by the circuit's hash."""
        key = (job.circuit.sha256, job.method, basis, coupling)
        cached = self._translations.get(key)
        if cached is not None:
            return cached
        circuit = job.circuit.circuit
        supported = set(basis) if basis is not None else self._supported(job.method)
        if coupling is not None or not _uses_only(circuit, supported):
            from qiskit import transpile

            if basis is None:  # Aer's own target knows every gate it runs
                circuit = transpile(
                    circuit,
                    backend=self._simulator(job.method),
                    optimization_level=0,
                    seed_transpiler=0,
                )
            elif coupling is not None:
                from qiskit.transpiler import CouplingMap

                circuit = transpile(
                    circuit,
                    basis_gates=sorted(supported - {"barrier"}),
                    coupling_map=CouplingMap([list(edge) for edge in coupling]),
                    initial_layout=list(range(circuit.num_qubits)),
                    layout_method="trivial",
                    routing_method="sabre",
                    optimization_level=1,
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
            self._translations.pop(next(iter(self._translations)), None)
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
        key = (profile.digest, mapping, "pauli" if pauli_only else "full")
        model = self._noise_models.get(key)
        if model is None:
            model = build_noise_model(profile, mapping, pauli_only=pauli_only)
            if len(self._noise_models) >= _NOISE_MODELS_MAX:
                self._noise_models.pop(next(iter(self._noise_models)), None)
            self._noise_models[key] = model
        return model


def container_coupling(
    profile: CalibrationProfile, mapping: tuple[int, ...]
) -> tuple[tuple[int, int], ...] | None:
    """The calibration's two-qubit couplings among ``mapping``'s physical qubits, on logical
    indices (directed as the device's gate is), when they connect every qubit of the container;
    None otherwise (a container spread over disconnected qubits runs unrouted, each uncoupled
    pair at the profile's median two-qubit error: see docs/q-domain.md)."""
    index = {physical: logical for logical, physical in enumerate(mapping)}
    edges = sorted(
        (index[a], index[b]) for a, b in profile.pairs if a in index and b in index and a != b
    )
    if len(mapping) < 2:
        return None
    reached = {0}
    frontier = [0]
    while frontier:
        node = frontier.pop()
        for a, b in edges:
            for here, there in ((a, b), (b, a)):
                if here == node and there not in reached:
                    reached.add(there)
                    frontier.append(there)
    return tuple(edges) if len(reached) == len(mapping) else None


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

    def gate_error(error: float, qubits: int, relaxation: tuple[Any, float] | None) -> Any:
        # The calibrated gate error is the gate's whole average infidelity, relaxation during
        # the gate included: the depolarizing part makes up only what relaxation does not
        # explain (the construction Qiskit Aer uses for device noise models), so relaxation
        # is not counted twice. With F_r the relaxation channel's average gate fidelity and
        # d = 2**n: p = d·(r - (1 - F_r)) / (d·F_r - 1).
        dimension = 2**qubits
        error = min(error, dimension / (dimension + 1))
        if relaxation is None:
            channel, relaxation_fidelity = None, 1.0
        else:
            channel, process_fidelity = relaxation
            relaxation_fidelity = (dimension * process_fidelity + 1) / (dimension + 1)
        infidelity = 1.0 - relaxation_fidelity
        parameter = 0.0
        if error > infidelity:
            parameter = dimension * (error - infidelity) / (dimension * relaxation_fidelity - 1)
            parameter = min(parameter, 4**qubits / (4**qubits - 1))
        if channel is None:
            return depolarizing_error(parameter, qubits)
        if parameter <= 0.0:
            return channel
        return depolarizing_error(parameter, qubits).compose(channel)

    def relaxation(physical: int, ns: float) -> tuple[Any, float]:
        """Thermal relaxation over ``ns`` and its process fidelity: its Pauli transfer matrix
        keeps X and Y at exp(-t/T2) and Z at exp(-t/T1), so F_pro = (1 + 2e^(-t/T2) +
        e^(-t/T1)) / 4 (computed here rather than from the channel's superoperator)."""
        qubit = profile.qubits[physical]
        # T2 cannot exceed 2·T1 physically; a snapshot's rounding may say otherwise.
        t2 = min(qubit.t2_ns, 2 * qubit.t1_ns)
        fidelity = (1 + 2 * math.exp(-ns / t2) + math.exp(-ns / qubit.t1_ns)) / 4
        return thermal_relaxation_error(qubit.t1_ns, t2, ns), fidelity

    for logical, physical in enumerate(mapping):
        calibration = profile.qubits[physical]
        error = gate_error(
            calibration.gate_error,
            1,
            None if pauli_only else relaxation(physical, calibration.gate_ns),
        )
        for gate in one_qubit:
            model.add_quantum_error(error, gate, [logical])
        p01 = calibration.readout_error
        model.add_readout_error(ReadoutError([[1 - p01, p01], [p01, 1 - p01]]), [logical])
    coupling = container_coupling(profile, mapping)
    if coupling is not None:  # routed: two-qubit gates act on coupled pairs only
        pairs = sorted({pair for a, b in coupling for pair in ((a, b), (b, a))})
    else:
        pairs = [(a, b) for a in range(len(mapping)) for b in range(len(mapping)) if a != b]
    for a, b in pairs:
        physical_a, physical_b = mapping[a], mapping[b]
        pair_error, ns = profile.pair(physical_a, physical_b)
        both = None
        if not pauli_only:
            (channel_a, fidelity_a), (channel_b, fidelity_b) = (
                relaxation(physical_a, ns),
                relaxation(physical_b, ns),
            )
            both = (channel_a.expand(channel_b), fidelity_a * fidelity_b)
        model.add_quantum_error(gate_error(pair_error, 2, both), two, [a, b])
    return model
