"""The Q-Hardware Provider Interface (QHPI, XDV-060): what every Q provider implements.

A provider receives a :class:`QJob` (the job descriptor of XDV-060 §5.1: never Q state, only a
circuit description, a shot count, a seed and references to the contracts it runs under) and
answers with measurement counts. Q state lives and dies inside :meth:`QProvider.run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from xdv.domains.q._calibration import CalibrationContract, CalibrationProfile
from xdv.domains.q._circuit import ParsedCircuit
from xdv.security import AttestableProvider

__all__ = ["QJob", "QProvider"]


@dataclass(frozen=True)
class QJob:
    """A Q job descriptor (XDV-060 §5.1). It holds no Q state."""

    job_id: int
    pid: int
    contract_id: int
    calibration_id: int
    qubits: int
    circuit: ParsedCircuit
    shots: int
    method: str
    seed: int
    noise: bool
    mapping: tuple[int, ...]
    logical_time: int

    def to_record(self) -> dict[str, Any]:
        """Trace-encodable description of the descriptor."""
        return {
            "job": self.job_id,
            "pid": self.pid,
            "contract": self.contract_id,
            "calibration": self.calibration_id,
            "qubits": self.qubits,
            "circuit": self.circuit.sha256,
            "shots": self.shots,
            "method": self.method,
            "seed": self.seed,
            "noise": self.noise,
            "L": self.logical_time,
        }


@runtime_checkable
class QProvider(AttestableProvider, Protocol):
    """A Q provider (a simulator or a device adapter) behind the Q manager.

    It follows the provider model shared with Φ (:class:`xdv.security.AttestableProvider`:
    ``provider_id``, ``identity``, ``measurement()``, ``declaration()``) and adds what running
    Q jobs needs. Its identity signs its calibration contracts.
    """

    methods: tuple[str, ...]
    """Simulation methods (or device modes) it offers; the first is its default."""

    def qubits_max(self, method: str) -> int:
        """The most logical qubits one job may use with ``method``."""
        ...

    def calibrate(
        self, contract_id: int, profile: CalibrationProfile, now: int, validity: int
    ) -> CalibrationContract:
        """Issue a calibration contract for ``profile`` valid for ``validity`` steps, signed
        with the provider's secret identity key (:func:`sign_calibration`)."""
        ...

    def run(self, job: QJob, profile: CalibrationProfile) -> dict[str, int]:
        """Run ``job``; return counts by bitstring (classical bit 0 rightmost), summing to
        ``job.shots``. Never return, log or raise anything that reveals amplitudes."""
        ...


def counts_from_hex(raw: dict[str, int], clbits: int) -> dict[str, int]:
    """Aer's hex-keyed counts as bitstrings of ``clbits`` bits, classical bit 0 rightmost."""
    return {format(int(key, 16), f"0{clbits}b"): int(value) for key, value in raw.items()}


def mapped(mapping: Sequence[int], logical: int) -> int:
    return mapping[logical]
