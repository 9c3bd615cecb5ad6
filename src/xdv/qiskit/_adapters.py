"""Q provider adapters: IBM Quantum (qiskit-ibm-runtime's SamplerV2) and Amazon Braket.

Both are Q providers behind the QHPI like Aer: the Q manager admits them, pins their identity
key, has them sign calibration contracts and checks every job's budget before calling them;
a job's circuit goes to the backend and its counts come back, nothing else. They are plug-ins
(entry points ``ibm`` and ``braket`` in the group ``xdv.q_providers``; or a ``[q.ibm]`` /
``[q.braket]`` table in ``$XDV_HOME/providers.toml``), built by :func:`ibm_provider` and
:func:`braket_provider` from their configuration:

* ``ibm``: ``backend`` (a qiskit-ibm-runtime fake backend such as ``fake_manila``, which runs
  locally under the device snapshot's noise; or a device name such as ``ibm_brisbane``, reached
  through ``QiskitRuntimeService`` with the account saved by ``QiskitRuntimeService.save_account``
  or the ``channel``/``token``/``instance`` keys); ``optimization_level`` (default 1).
* ``braket``: ``device`` (``local`` for the Braket SDK's local state-vector simulator, the
  default; or a device ARN, reached with the AWS credentials of the environment) and
  ``s3_bucket``/``s3_prefix`` for a managed device's results.

The container's physical qubits (its mapping) become the transpiler's initial layout on an IBM
backend, so XDV's placement decides where the circuit runs. The job's seed seeds a simulator
backend; a device is not seeded, so its traces replay in inject mode only (XDV-072).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.security import ProviderIdentity, measure_provider

__all__ = ["BackendProvider", "BraketProvider", "braket_provider", "ibm_provider"]

_QUBITS_MAX_LOCAL = 30


def _failed(message: str, provider: str) -> XdvError:
    return XdvError(message, code=ErrorCode.Q_ADAPTER_FAILED, where=f"Q provider {provider}")


class _Adapter:
    """What both adapters share: identity, measurement, calibration signing."""

    provider_id: str
    methods: tuple[str, ...] = ("device",)
    _configuration: dict[str, Any]
    _identity: ProviderIdentity | None = None

    @property
    def identity(self) -> ProviderIdentity:
        """The adapter's identity key (kept in the node's key store, pinned on first use)."""
        if self._identity is None:
            self._identity = ProviderIdentity.from_store(self.provider_id)
        return self._identity

    def measurement(self) -> str:
        """SHA-256 over this module and the adapter's configuration (no credentials)."""
        return measure_provider([Path(__file__)], self._configuration)

    def calibrate(self, contract_id: int, profile: Any, now: int, validity: int) -> Any:
        """Sign a calibration contract for ``profile`` with the adapter's identity key."""
        from xdv.domains.q import sign_calibration

        return sign_calibration(self.identity, contract_id, profile, now, validity)


class BackendProvider(_Adapter):
    """A Q provider that runs jobs through qiskit-ibm-runtime's ``SamplerV2`` on ``backend``
    (a fake backend locally, or an IBM Quantum device). Built by :func:`ibm_provider`."""

    def __init__(
        self, backend: Any, *, provider_id: str = "ibm", optimization_level: int = 1
    ) -> None:
        import qiskit_ibm_runtime

        self.provider_id = provider_id
        self._backend = backend
        self._optimization_level = optimization_level
        self._simulated = type(backend).__module__.startswith("qiskit_ibm_runtime.fake_provider")
        self._configuration = {
            "provider": provider_id,
            "backend": str(backend.name),
            "qubits": int(backend.num_qubits),
            "optimization_level": optimization_level,
            "qiskit-ibm-runtime": qiskit_ibm_runtime.__version__,
        }

    def declaration(self) -> dict[str, Any]:
        """Operations, the backend and its size."""
        return {
            "provider": self.provider_id,
            "operations": ["run"],
            "methods": list(self.methods),
            "backend": self._configuration["backend"],
            "qubits_max": self._configuration["qubits"],
            "measurement_modes": ["counts"],
            "simulated": self._simulated,
            "no_cloning": True,
        }

    def qubits_max(self, method: str) -> int:
        """The backend's qubits."""
        return int(self._configuration["qubits"])

    def run(self, job: Any, profile: Any) -> dict[str, int]:
        """Transpile the job's circuit for the backend (the container's physical qubits as the
        initial layout when they exist on it) and run it with ``SamplerV2``; counts back."""
        from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
        from qiskit_ibm_runtime import SamplerV2

        circuit = job.circuit.circuit
        layout = list(job.mapping) if max(job.mapping) < self.qubits_max("device") else None
        try:
            manager = generate_preset_pass_manager(
                optimization_level=self._optimization_level,
                backend=self._backend,
                initial_layout=layout[: circuit.num_qubits] if layout else None,
                seed_transpiler=0,
            )
            isa = manager.run(circuit)
            with warnings.catch_warnings():
                # qiskit-ibm-runtime 0.50 deprecates SamplerV2 for a client-side Sampler; the
                # V2 path is the one IBM documents for devices today.
                warnings.simplefilter("ignore", DeprecationWarning)
                sampler = SamplerV2(mode=self._backend)
            if self._simulated:
                sampler.options.simulator.seed_simulator = job.seed
            result = sampler.run([isa], shots=job.shots).result()
            counts = result[0].join_data().get_counts()
        except XdvError:
            raise
        except Exception as error:
            raise _failed(
                f"SamplerV2 failed: {describe_exception(error)}", self.provider_id
            ) from None
        return {key.replace(" ", ""): int(value) for key, value in counts.items()}


def ibm_provider(config: Mapping[str, Any]) -> BackendProvider:
    """The plug-in factory of the IBM Quantum adapter (see the module docstring)."""
    name = str(config.get("backend", "fake_manila"))
    level = int(config.get("optimization_level", 1))
    if name.startswith("fake_"):
        from qiskit_ibm_runtime import fake_provider

        stem = "Fake" + "".join(part.capitalize() for part in name.split("_")[1:])
        for attribute in (stem + "V2", stem):
            found = getattr(fake_provider, attribute, None)
            if found is not None:
                return BackendProvider(found(), optimization_level=level)
        raise _failed(f"qiskit-ibm-runtime has no fake backend {name!r}", "ibm")
    from qiskit_ibm_runtime import QiskitRuntimeService

    account = {key: config[key] for key in ("channel", "token", "instance") if key in config}
    try:
        service = QiskitRuntimeService(**account)
        backend = service.backend(name)
    except Exception as error:
        raise _failed(
            f"cannot reach IBM Quantum backend {name!r}: {describe_exception(error)}", "ibm"
        ) from None
    return BackendProvider(backend, optimization_level=level)


class BraketProvider(_Adapter):
    """A Q provider that runs jobs on an Amazon Braket device: the SDK's local simulator, or a
    managed device by ARN. Built by :func:`braket_provider`."""

    def __init__(self, device: Any, *, provider_id: str = "braket", name: str = "local") -> None:
        import braket._sdk as sdk

        self.provider_id = provider_id
        self._device = device
        self._local = name == "local"
        self._configuration = {
            "provider": provider_id,
            "device": name,
            "amazon-braket-sdk": sdk.__version__,
        }
        self._s3: tuple[str, str] | None = None

    def declaration(self) -> dict[str, Any]:
        """Operations and the device."""
        return {
            "provider": self.provider_id,
            "operations": ["run"],
            "methods": list(self.methods),
            "device": self._configuration["device"],
            "qubits_max": _QUBITS_MAX_LOCAL,
            "measurement_modes": ["counts"],
            "no_cloning": True,
        }

    def qubits_max(self, method: str) -> int:
        """The most qubits a job may use (the local simulator's practical bound)."""
        return _QUBITS_MAX_LOCAL

    def run(self, job: Any, profile: Any) -> dict[str, int]:
        """Run the job's circuit as an OpenQASM 3 program on the device; counts back with
        classical bit 0 rightmost.

        The local simulator draws its shots from an unseeded generator, so XDV asks it for the
        measured qubits' exact distribution instead (a ``probability`` result, with zero shots)
        and draws the shots from the job's seed: same seed, same counts. A managed device runs
        the shots itself."""
        import warnings

        import numpy as np
        from braket.ir.openqasm import Program
        from qiskit import QuantumCircuit, qasm3, transpile

        circuit = job.circuit.circuit
        clbit_of = _final_measurements(circuit, self.provider_id)
        measured = sorted(clbit_of)
        unitary = QuantumCircuit(circuit.num_qubits)
        unitary.compose(
            circuit.remove_final_measurements(inplace=False),
            range(circuit.num_qubits),
            inplace=True,
        )
        try:
            basic = transpile(unitary, basis_gates=["u", "cx"], optimization_level=0)
            source = qasm3.dumps(basic, includes=(), basis_gates=("U",), disable_constants=True)
            with _quiet_braket(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self._local:
                    targets = ", ".join(f"q[{qubit}]" for qubit in measured)
                    program = Program(
                        source=f"{source}#pragma braket result probability {targets}\n"
                    )
                    result = self._device.run(program, shots=0).result()
                    probabilities = np.clip(np.asarray(result.values[0], dtype=float), 0, None)
                    rng = np.random.default_rng(job.seed)
                    drawn = rng.multinomial(job.shots, probabilities / probabilities.sum())
                    width = len(measured)
                    raw = {
                        format(index, f"0{width}b"): int(count)
                        for index, count in enumerate(drawn)
                        if count
                    }
                else:
                    measuring = QuantumCircuit(circuit.num_qubits, len(measured))
                    measuring.compose(basic, inplace=True)
                    measuring.measure(measured, range(len(measured)))
                    text = qasm3.dumps(
                        measuring, includes=(), basis_gates=("U",), disable_constants=True
                    )
                    program = Program(source=text)
                    result = self._device.run(
                        program, shots=job.shots, s3_destination_folder=self._s3
                    ).result()
                    raw = dict(result.measurement_counts)
                    measured = list(result.measured_qubits)
        except XdvError:
            raise
        except Exception as error:
            raise _failed(f"Braket failed: {describe_exception(error)}", self.provider_id) from None
        counts: dict[str, int] = {}
        width = circuit.num_clbits
        for key, count in raw.items():
            value = 0
            for position, qubit in enumerate(measured):
                if key[position] == "1" and qubit in clbit_of:
                    value |= 1 << clbit_of[qubit]
            bits = format(value, f"0{width}b")
            counts[bits] = counts.get(bits, 0) + int(count)
        return counts


@contextlib.contextmanager
def _quiet_braket() -> Iterator[None]:
    """The local simulator logs a warning for every program that defines a gate with a control
    modifier (how cx is spelled out in OpenQASM 3 without stdgates.inc): not for our users."""
    interpreter = logging.getLogger("braket.default_simulator.openqasm.interpreter")
    level = interpreter.level
    interpreter.setLevel(logging.ERROR)
    try:
        yield
    finally:
        interpreter.setLevel(level)


def _final_measurements(circuit: Any, provider: str) -> dict[int, int]:
    """Qubit -> classical bit of each measurement; a circuit measuring a qubit twice or
    measuring mid-circuit cannot be read back from Braket's per-qubit results."""
    found: dict[int, int] = {}
    for instruction in circuit.data:
        qubits = [circuit.find_bit(qubit).index for qubit in instruction.qubits]
        if instruction.operation.name == "measure":
            if qubits[0] in found:
                raise XdvError(
                    "Braket returns one result per qubit: measure each qubit once, at the end",
                    code=ErrorCode.CIRCUIT_INVALID,
                    where=f"Q provider {provider}",
                )
            found[qubits[0]] = circuit.find_bit(instruction.clbits[0]).index
        elif any(qubit in found for qubit in qubits) and instruction.operation.name != "barrier":
            raise XdvError(
                "Braket returns one result per qubit: no gates after a qubit's measurement",
                code=ErrorCode.CIRCUIT_INVALID,
                where=f"Q provider {provider}",
            )
    return found


def braket_provider(config: Mapping[str, Any]) -> BraketProvider:
    """The plug-in factory of the Amazon Braket adapter (see the module docstring)."""
    name = str(config.get("device", "local"))
    try:
        if name == "local":
            from braket.devices import LocalSimulator

            return BraketProvider(LocalSimulator(), name="local")
        from braket.aws import AwsDevice

        provider = BraketProvider(AwsDevice(name), name=name)
    except Exception as error:
        raise _failed(
            f"cannot reach Braket device {name!r}: {describe_exception(error)}", "braket"
        ) from None
    if "s3_bucket" in config:
        provider._s3 = (str(config["s3_bucket"]), str(config.get("s3_prefix", "xdv")))
    return provider
