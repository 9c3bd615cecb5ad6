"""Running a Python workload on a fresh kernel: what ``xdv run`` does."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xdv.core import FaultPlan, Kernel, KernelLimits, RecordedOutcome, RunResult
from xdv.core._kernel import EmitSink
from xdv.domains import DomainManager
from xdv.errors import InvariantViolation
from xdv.trace import FsyncPolicy, TraceWriter
from xdv.workload import Workload, load_workload

__all__ = ["run_workload"]


def run_workload(
    workload: Workload | str,
    *,
    seed: int = 0,
    trace: str | Path | TraceWriter | None = None,
    emit: EmitSink | None = None,
    fsync: FsyncPolicy | str = FsyncPolicy.BATCH,
    quantum: int = 8,
    domains: Iterable[DomainManager] | None = None,
    faults: FaultPlan | None = None,
    limits: KernelLimits | None = None,
    replay_outcomes: dict[int, RecordedOutcome] | None = None,
    expected_digest: str | None = None,
) -> RunResult:
    """Load ``workload`` (unless already loaded), run it, and return the result.

    A workload whose setup raises still produces a complete trace: the failure is recorded and
    the run ends with status ``failed``.
    """
    loaded = (
        workload
        if isinstance(workload, Workload)
        else load_workload(workload, expected_digest=expected_digest)
    )
    kernel = Kernel(
        seed,
        trace=trace,
        domains=domains,
        quantum=quantum,
        faults=faults,
        limits=limits,
        workload=loaded.to_record(),
        emit=emit,
        fsync=fsync,
        replay_outcomes=replay_outcomes,
    )
    try:
        loaded.function(kernel)
    except InvariantViolation:
        raise
    except Exception as error:  # the workload's setup failed: record it, close the trace
        return kernel.abort(error)
    return kernel.run()
