"""XDV for Qiskit users: the Sampler and Estimator V2 primitives, a one-call circuit runner, and
Q provider adapters for IBM Quantum and Amazon Braket.

Everything here runs circuits through the XDV kernel, the way ``xdv qrun`` does: a Q container
reserved under a capability and a resource contract, a signed calibration contract, the
decoherence budget, the provider, and a hash-chained trace that ``xdv replay`` repeats. See
``docs/qiskit.md`` for a walk-through.
"""

from xdv.qiskit._adapters import (
    BackendProvider,
    BraketProvider,
    braket_provider,
    ibm_provider,
)
from xdv.qiskit._estimator import XdvEstimator, pauli_groups
from xdv.qiskit._run import CircuitRun, PubError, QOptions, qiskit_counts, run_circuit
from xdv.qiskit._sampler import XdvSampler, register_samples

__all__ = [
    "BackendProvider",
    "BraketProvider",
    "CircuitRun",
    "PubError",
    "QOptions",
    "XdvEstimator",
    "XdvSampler",
    "braket_provider",
    "ibm_provider",
    "pauli_groups",
    "qiskit_counts",
    "register_samples",
    "run_circuit",
]
