"""``XdvSampler``: Qiskit's Sampler V2 primitive, answered by the XDV kernel.

Each ``run(pubs)`` is one XDV run: every pub's circuit, bound to each of its parameter value
sets, is one Q job of one container (see :mod:`xdv.qiskit.workloads`), and the counts come back
as a :class:`~qiskit.primitives.BitArray` per classical register, shaped like the pub's
parameter broadcast, as Qiskit's own samplers answer. XDV returns counts, never per-shot
memory: the shots of a BitArray are the counts expanded and put in an order drawn from the run
seed (so slicing the first shots is a fair sample, and the same seed gives the same array).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from qiskit.primitives import (
    BaseSamplerV2,
    BitArray,
    DataBin,
    PrimitiveJob,
    PrimitiveResult,
    SamplerPubResult,
)
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike

from xdv.errors import invariant
from xdv.qiskit._run import Executed, QOptions, execute

__all__ = ["XdvSampler", "register_samples"]


def register_samples(
    circuit: Any, counts: Mapping[str, int], rng: np.random.Generator
) -> dict[str, list[int]]:
    """Per classical register of ``circuit``, one value per shot (register bit 0 the least
    significant), from XDV's flat counts (classical bit 0 rightmost), shots shuffled by
    ``rng``."""
    flat: list[int] = []
    for bits, count in sorted(counts.items()):
        flat.extend([int(bits, 2)] * count)
    order = rng.permutation(len(flat))
    shots = [flat[index] for index in order]
    samples: dict[str, list[int]] = {}
    for register in circuit.cregs:
        positions = [circuit.find_bit(bit).index for bit in register]
        values = []
        for shot in shots:
            value = 0
            for k, position in enumerate(positions):
                value |= ((shot >> position) & 1) << k
            values.append(value)
        samples[register.name] = values
    return samples


class XdvSampler(BaseSamplerV2):  # type: ignore[misc]
    """Qiskit's ``BaseSamplerV2`` on XDV: every job goes through the kernel (capability,
    contract, calibration, decoherence budget, provider, trace).

    ``default_shots`` applies to pubs that name none; ``seed`` is the run seed (default 0:
    the same call gives the same bits); ``provider``, ``method``, ``calibration``, ``noise``
    and ``work_max`` are the Q reservation terms of ``xdv qrun``; with ``trace`` each run is
    saved there (audited and signed; a later run replaces it) and ``xdv replay`` repeats it.
    The last run's outcome is :attr:`last_run` (trace path, contract, seed).
    """

    def __init__(
        self,
        *,
        default_shots: int = 1024,
        seed: int = 0,
        provider: str = "aer",
        method: str | None = None,
        calibration: str | None = None,
        noise: bool = False,
        work_max: int | None = None,
        trace: str | Path | None = None,
    ) -> None:
        self._default_shots = default_shots
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
    def default_shots(self) -> int:
        """Shots of a pub that names none."""
        return self._default_shots

    @property
    def options(self) -> QOptions:
        """The Q options every run uses."""
        return self._options

    def run(
        self, pubs: Iterable[SamplerPubLike], *, shots: int | None = None
    ) -> PrimitiveJob[PrimitiveResult[SamplerPubResult]]:
        """Sample each pub (see :class:`~qiskit.primitives.BaseSamplerV2`)."""
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        if any(len(pub.circuit.cregs) == 0 for pub in coerced):
            warnings.warn(
                "One of your circuits has no output classical registers and so the result "
                "will be empty. Did you mean to add measurement instructions?",
                UserWarning,
                stacklevel=2,
            )
        job: PrimitiveJob[PrimitiveResult[SamplerPubResult]] = PrimitiveJob(self._run, coerced)
        job._submit()
        return job

    def _run(self, pubs: list[SamplerPub]) -> PrimitiveResult[SamplerPubResult]:
        bound: list[tuple[int, tuple[int, ...], Any]] = []
        for number, pub in enumerate(pubs):
            if not pub.circuit.cregs:
                continue
            circuits = pub.parameter_values.bind_all(pub.circuit)
            for index, circuit in np.ndenumerate(circuits):
                bound.append((number, index, circuit))
        executed = None
        if bound:
            executed = execute(
                [circuit for _, _, circuit in bound],
                [pubs[number].shots for number, _, _ in bound],
                self._options,
            )
            self.last_run = executed
        arrays: list[dict[str, np.ndarray[Any, Any]]] = [
            {
                register.name: np.zeros(
                    (*pub.shape, pub.shots, (register.size + 7) // 8), dtype=np.uint8
                )
                for register in pub.circuit.cregs
            }
            for pub in pubs
        ]
        rng = np.random.default_rng(self._options.seed)
        for job, (number, index, circuit) in enumerate(bound):
            invariant(executed is not None, "jobs ran for the bound circuits")
            samples = register_samples(circuit, executed.counts[job] if executed else {}, rng)
            for register in circuit.cregs:
                bits = BitArray.from_samples(samples[register.name], register.size)
                arrays[number][register.name][index] = bits.array
        results = []
        for pub, registers in zip(pubs, arrays, strict=True):
            data = {
                register.name: BitArray(registers[register.name], register.size)
                for register in pub.circuit.cregs
            }
            results.append(
                SamplerPubResult(
                    DataBin(**data, shape=pub.shape),
                    metadata={"shots": pub.shots, "circuit_metadata": pub.circuit.metadata},
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
