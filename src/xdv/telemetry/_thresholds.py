"""Alert thresholds as data: defaults, a JSON form, and a typed refusal of bad values."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = ["TelemetryError", "Thresholds", "load_thresholds"]


class TelemetryError(XdvError):
    """A telemetry request that cannot be met: bad thresholds, an unknown format, a snapshot
    document that is not one, an export that the endpoint refused."""

    default_code = ErrorCode.TELEMETRY_THRESHOLDS_INVALID


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The bounds the alert rules compare with (``docs/telemetry.md``, alerts).

    - ``q_margin_min_ns``: a Q job whose T1 or T2 margin is below it fires ``q.decoherence_margin``;
    - ``q_budget_used_max``: a job using more than this share of its decoherence budget's
      duration fires ``q.decoherence_budget``;
    - ``q_fidelity_min``: the floor for a job's estimated fidelity when its contract names none
      (a contract's own ``fidelity_min``, when above 0, is used instead): ``q.fidelity``;
    - ``q_readout_error_max``: ``q.readout_error``;
    - ``phi_stability_min``, ``phi_noise_index_max``, ``phi_drift_max``: ``phi.stability``,
      ``phi.noise``, ``phi.drift`` after a Φ transform;
    - ``denials_max``: the ``security.denials`` alert fires when the count of denials and
      refusals reaches it;
    - ``alerts_max``: the most alerts a snapshot keeps (later ones are counted, not kept).
    """

    q_margin_min_ns: float = 1000.0
    q_budget_used_max: float = 0.9
    q_fidelity_min: float = 0.5
    q_readout_error_max: float = 0.1
    phi_stability_min: float = 0.9
    phi_noise_index_max: float = 0.1
    phi_drift_max: float = 0.5
    denials_max: int = 10
    alerts_max: int = 1000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(field.default, int):
                ok = type(value) is int and value >= 1
            else:
                ok = type(value) in (int, float) and math.isfinite(value) and value >= 0
            if ok and not isinstance(field.default, int):
                object.__setattr__(self, field.name, float(value))
            if not ok:
                wanted = (
                    "a positive integer"
                    if isinstance(field.default, int)
                    else "a finite number >= 0"
                )
                raise TelemetryError(
                    f"threshold {field.name} must be {wanted}, got {value!r}",
                    where=field.name,
                )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Any, where: str = "thresholds") -> Thresholds:
        """Thresholds from a JSON object naming some of the fields (the rest keep their
        defaults); TELEMETRY_THRESHOLDS_INVALID for anything else."""
        if not isinstance(document, dict):
            raise TelemetryError("thresholds must be a JSON object", where=where)
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise TelemetryError(
                f"unknown thresholds {unknown}; known: {sorted(known)}", where=where
            )
        return cls(**document)


def load_thresholds(path: Path) -> Thresholds:
    """Thresholds from a JSON file (see :meth:`Thresholds.from_json`)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TelemetryError(f"cannot read thresholds: {error}", where=str(path)) from None
    return Thresholds.from_json(document, where=str(path))
