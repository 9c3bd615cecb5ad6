"""Audit checkpoints: the kernel's side of the Merkle audit log.

With auditing on, the kernel keeps an RFC 9162 Merkle tree over the trace's entry hashes and,
whenever the trace has grown by ``interval`` entries (checked at the end of each time slice, so
the positions are deterministic), records a CHECKPOINT entry holding the tree size and root over
every entry before it. The checkpoint's bytes depend only on the entries, so they are
reproducible and replay re-creates them. Signatures, which are not reproducible, never enter the
trace: an :class:`AuditSink` receives each (size, root) after the entries it covers are written
and, at the end of the run, the final head over the whole trace (see :mod:`xdv.security`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from xdv.errors import ErrorCode, XdvError

__all__ = ["AuditConfig", "AuditSink"]

INTERVAL_MIN = 16
INTERVAL_MAX = 1 << 24


class AuditSink(Protocol):
    """Receives tree heads as the run goes (typically: signs them into a side file)."""

    def tree_head(self, run: bytes, size: int, root: bytes, final: bool) -> None:
        """``run`` is the hash of the run-start entry; ``size`` leaves have head ``root``;
        ``final`` marks the head over the complete trace, sent once after RUN_END."""
        ...


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Auditing of one run: checkpoint every ``interval`` entries; heads go to ``sink``.

    ``signed`` records that the run's heads are signed into an audit file (true whenever a sink
    is given); a replay sets it from the recording without signing anything itself.
    """

    interval: int = 16384
    sink: AuditSink | None = None
    signed: bool = False

    def __post_init__(self) -> None:
        if type(self.interval) is not int or not INTERVAL_MIN <= self.interval <= INTERVAL_MAX:
            raise XdvError(
                f"the checkpoint interval must be an integer in [{INTERVAL_MIN}, {INTERVAL_MAX}] "
                f"entries, got {self.interval!r}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="audit configuration",
            )

    def to_record(self) -> dict[str, Any]:
        """What RUN_START records (so a replay re-creates the same checkpoints)."""
        return {"interval": self.interval, "signed": self.signed or self.sink is not None}
