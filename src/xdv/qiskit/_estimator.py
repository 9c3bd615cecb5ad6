"""``XdvEstimator``: Qiskit's Estimator V2 primitive, answered by the XDV kernel.

Expectation values are estimated from measurements, since measurement is the only way anything
leaves the Q domain (amplitudes never do): the Pauli terms of a pub's observables are split
into qubit-wise commuting groups, each group is one Q job of the circuit followed by the
group's basis change and measurements, and each term's value is the mean parity of its qubits
over the shots. A pub's ``precision`` sets the shots of its jobs, ``ceil(1 / precision²)``
(one Pauli term's standard error is then at most ``precision``); ``stds`` reports each
estimate's standard error from the sample variances of its terms (taken as independent).
All of a call's jobs run in one XDV run, through the kernel like any Q job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from qiskit.primitives import (
    BaseEstimatorV2,
    DataBin,
    PrimitiveJob,
    PrimitiveResult,
    PubResult,
)
from qiskit.primitives.containers.estimator_pub import EstimatorPub, EstimatorPubLike

from xdv.qiskit._run import Executed, PubError, QOptions, execute

__all__ = ["XdvEstimator", "pauli_groups"]

_PAULI = frozenset("IXYZ")


def pauli_groups(labels: Iterable[str]) -> list[list[str]]:
    """``labels`` (Pauli strings, qubit 0 rightmost) in qubit-wise commuting groups, in a
    deterministic order (greedy, first group that takes a label)."""
    groups: list[tuple[dict[int, str], list[str]]] = []
    for label in sorted(set(labels)):
        support = {qubit: letter for qubit, letter in enumerate(reversed(label)) if letter != "I"}
        for bases, members in groups:
            if all(bases.get(qubit, letter) == letter for qubit, letter in support.items()):
                bases.update(support)
                members.append(label)
                break
        else:
            groups.append((dict(support), [label]))
    return [members for _, members in groups]


def _measurement_circuit(circuit: Any, group: list[str]) -> tuple[Any, list[int]]:
    """``circuit`` followed by the basis change of ``group`` and measurements of the qubits
    it acts on, into a new register; returns the circuit and the measured qubits in order."""
    from qiskit.circuit import ClassicalRegister

    bases: dict[int, str] = {}
    for label in group:
        for qubit, letter in enumerate(reversed(label)):
            if letter != "I":
                bases[qubit] = letter
    qubits = sorted(bases)
    measured = circuit.copy_empty_like()
    measured.compose(circuit, inplace=True)
    register = ClassicalRegister(max(len(qubits), 1), "xdv_estimator")
    measured.add_register(register)
    for qubit in qubits:
        if bases[qubit] == "X":
            measured.h(qubit)
        elif bases[qubit] == "Y":
            measured.sdg(qubit)
            measured.h(qubit)
    if not qubits:  # only the identity: measure one qubit, its parity is ignored
        measured.measure(0, register[0])
    for position, qubit in enumerate(qubits):
        measured.measure(qubit, register[position])
    return measured, qubits


def _term_statistics(
    label: str, qubits: list[int], counts: Mapping[str, int], offset: int
) -> tuple[float, float]:
    """Mean and variance of the ±1 eigenvalue of Pauli ``label`` over ``counts`` (flat
    bitstrings; the group's register starts at classical bit ``offset``)."""
    positions = [
        offset + qubits.index(qubit)
        for qubit, letter in enumerate(reversed(label))
        if letter != "I"
    ]
    total = sum(counts.values())
    if not positions:
        return 1.0, 0.0
    value = 0
    for bits, count in counts.items():
        number = int(bits, 2)
        parity = sum((number >> position) & 1 for position in positions) & 1
        value += -count if parity else count
    mean = value / total
    return mean, max(0.0, 1.0 - mean * mean)


class XdvEstimator(BaseEstimatorV2):  # type: ignore[misc]
    """Qiskit's ``BaseEstimatorV2`` on XDV (see the module docstring): every job goes through
    the kernel (capability, contract, calibration, decoherence budget, provider, trace).

    ``default_precision`` applies to pubs that name none; the other settings are those of
    :class:`~xdv.qiskit.XdvSampler`. The last run's outcome is :attr:`last_run`.
    """

    def __init__(
        self,
        *,
        default_precision: float = 0.015625,
        seed: int = 0,
        provider: str = "aer",
        method: str | None = None,
        calibration: str | None = None,
        noise: bool = False,
        work_max: int | None = None,
        trace: str | Path | None = None,
    ) -> None:
        if not default_precision > 0:
            raise PubError(f"precision must be positive, got {default_precision!r}")
        self._default_precision = default_precision
        self._options = QOptions(
            provider=provider,
            method=method,
            calibration=calibration,
            noise=noise,
            work_max=work_max,
            seed=seed,
            trace=None if trace is None else Path(trace),
        )
        self.last_run: Executed | None = None

    @property
    def default_precision(self) -> float:
        """Precision of a pub that names none."""
        return self._default_precision

    @property
    def options(self) -> QOptions:
        """The Q options every run uses."""
        return self._options

    def run(
        self, pubs: Iterable[EstimatorPubLike], *, precision: float | None = None
    ) -> PrimitiveJob[PrimitiveResult[PubResult]]:
        """Estimate each pub's expectation values (see Qiskit's ``BaseEstimatorV2``)."""
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        for pub in coerced:
            if pub.precision is None or not pub.precision > 0:
                raise PubError(f"precision must be positive, got {pub.precision!r}")
        job: PrimitiveJob[PrimitiveResult[PubResult]] = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[EstimatorPub]) -> PrimitiveResult[PubResult]:
        # Plan: per pub and parameter set, the groups of the Pauli terms its observables need.
        circuits: list[Any] = []
        shots: list[int] = []
        plans: list[dict[tuple[int, ...], list[tuple[list[str], list[int], int]]]] = []
        for pub in pubs:
            pub_shots = math.ceil(1.0 / float(pub.precision) ** 2)
            bound = pub.parameter_values.bind_all(pub.circuit)
            observables = np.broadcast_to(
                np.asarray(pub.observables.tolist(), dtype=object), pub.shape
            )
            parameter_index = np.broadcast_to(
                np.arange(max(bound.size, 1)).reshape(bound.shape), pub.shape
            )
            labels: dict[int, set[str]] = {}
            for index in np.ndindex(*pub.shape):
                observable = observables[index]
                for label in observable:
                    if not set(label) <= _PAULI:
                        raise PubError(
                            f"observable term {label!r} is not a Pauli string (XDV estimates "
                            "Pauli sums)"
                        )
                labels.setdefault(int(parameter_index[index]), set()).update(observable)
            plan: dict[tuple[int, ...], list[tuple[list[str], list[int], int]]] = {}
            flat_bound = bound.reshape(-1) if bound.ndim else bound.reshape(1)
            for number, needed in sorted(labels.items()):
                entries = []
                for group in pauli_groups(needed):
                    circuit, qubits = _measurement_circuit(flat_bound[number], group)
                    entries.append((group, qubits, len(circuits)))
                    circuits.append(circuit)
                    shots.append(pub_shots)
                plan[(number,)] = entries
            plans.append(plan)
        executed = execute(circuits, shots, self._options) if circuits else None
        self.last_run = executed
        results = []
        for pub, plan in zip(pubs, plans, strict=True):
            bound_shape = pub.parameter_values.shape
            parameter_index = np.broadcast_to(
                np.arange(max(int(np.prod(bound_shape)), 1)).reshape(bound_shape), pub.shape
            )
            observables = np.broadcast_to(
                np.asarray(pub.observables.tolist(), dtype=object), pub.shape
            )
            evs = np.zeros(pub.shape)
            stds = np.zeros(pub.shape)
            pub_shots = math.ceil(1.0 / float(pub.precision) ** 2)
            for index in np.ndindex(*pub.shape):
                statistics: dict[str, tuple[float, float]] = {}
                for group, qubits, job in plan[(int(parameter_index[index]),)]:
                    counts = executed.counts[job] if executed is not None else {}
                    offset = circuits[job].num_clbits - circuits[job].cregs[-1].size
                    for label in group:
                        statistics[label] = _term_statistics(label, qubits, counts, offset)
                value = 0.0
                variance = 0.0
                terms: dict[str, complex] = dict(observables[index])
                for label, coefficient in terms.items():
                    mean, spread = statistics[label]
                    value += float(np.real(coefficient)) * mean
                    variance += float(abs(coefficient)) ** 2 * spread
                evs[index] = value
                stds[index] = math.sqrt(variance / pub_shots)
            results.append(
                PubResult(
                    DataBin(evs=evs, stds=stds, shape=pub.shape),
                    metadata={
                        "target_precision": pub.precision,
                        "shots": pub_shots,
                        "circuit_metadata": pub.circuit.metadata,
                    },
                )
            )
        metadata: dict[str, Any] = {"version": 2}
        if executed is not None:
            metadata["xdv"] = {
                "seed": executed.outcome.seed,
                "trace": None if executed.outcome.trace is None else str(executed.outcome.trace),
                "contract": executed.contract,
            }
        return PrimitiveResult(results, metadata=metadata)
