"""The limits of an isolated workload's worker process (see ``docs/isolation.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdv.errors import ErrorCode, XdvError

__all__ = ["ISOLATION_MODES", "WorkerLimits"]

ISOLATION_MODES = ("inprocess", "process")
"""How a Python workload's code runs: in the kernel's process, or in a worker process."""


@dataclass(frozen=True)
class WorkerLimits:
    """What one isolated job's worker process may use.

    ``cpu_s``: CPU seconds of the worker (RLIMIT_CPU; the kernel kills it at the limit);
    ``memory_mb``: its address space in MiB (RLIMIT_AS); ``wall_s``: wall-clock seconds from
    the worker's start to the end of the run, enforced by the kernel side. A worker past a
    limit is ended and every process it still ran fails with a typed fault.
    """

    cpu_s: float = 60.0
    memory_mb: int = 2048
    wall_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("cpu_s", "wall_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 < value <= 86400 * 7
            ):
                raise XdvError(
                    f"worker limit {name} must be a number of seconds in (0, 604800], "
                    f"got {value!r}",
                    code=ErrorCode.WORKER_LIMITS_INVALID,
                    where="worker limits",
                )
        memory = self.memory_mb
        if isinstance(memory, bool) or not isinstance(memory, int) or not 64 <= memory <= 2**20:
            raise XdvError(
                f"worker limit memory_mb must be an integer in [64, 1048576], got {memory!r}",
                code=ErrorCode.WORKER_LIMITS_INVALID,
                where="worker limits",
            )
