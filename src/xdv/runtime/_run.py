"""Running a Python workload on a fresh kernel: what ``xdv run`` does."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xdv.core import (
    AuditConfig,
    DomainManager,
    EmitSink,
    FaultPlan,
    KDomainManager,
    KernelLimits,
    RecordedOutcome,
    RunResult,
)
from xdv.domains import manager_from_description
from xdv.errors import InvariantViolation, WorkloadError
from xdv.runtime._kernel import make_kernel
from xdv.runtime._workload import Workload, load_workload
from xdv.trace import FsyncPolicy, TraceWriter

__all__ = ["declared_domains", "run_workload"]


def declared_domains(loaded: Workload) -> list[DomainManager] | None:
    """The managers a workload module declares in ``XDV_DOMAINS`` (a mapping from domain label
    to a manager description such as ``{"Q": {"manager": "q"}}``), beside the default K
    manager; None when it declares none."""
    module = sys.modules.get(getattr(loaded.function, "__module__", "") or "")
    declared = getattr(module, "XDV_DOMAINS", None)
    if not declared:
        return None
    if not isinstance(declared, Mapping):
        raise WorkloadError("XDV_DOMAINS must map domain labels to manager descriptions")
    managers: list[DomainManager] = [KDomainManager()]
    for label, description in declared.items():
        if not isinstance(description, Mapping):
            raise WorkloadError(f"XDV_DOMAINS[{label!r}] must be a manager description")
        managers.append(manager_from_description(str(label), description))
    return managers


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
    recorded_target: str | None = None,
    vhm: int = 0,
    node: int = 0,
    audit: AuditConfig | None = None,
    params: Mapping[str, Any] | None = None,
) -> RunResult:
    """Load ``workload`` (unless already loaded), run it, and return the result.

    A workload whose setup raises still produces a complete trace: the failure is recorded and
    the run ends with status ``failed``. ``recorded_target`` replaces the target string written
    to the trace (a replay that loads the workload from another location keeps the original).
    ``params`` makes a target string a parameterized workload (see :mod:`xdv.workload`).
    """
    if isinstance(workload, Workload):
        if params is not None:
            raise WorkloadError("params apply to a target string, not a loaded workload")
        loaded = workload
    else:
        loaded = load_workload(workload, expected_digest=expected_digest, params=params)
    if domains is None:
        domains = declared_domains(loaded)
    record = loaded.to_record()
    if recorded_target is not None:
        record["target"] = recorded_target
    kernel = make_kernel(
        seed,
        trace=trace,
        domains=domains,
        quantum=quantum,
        faults=faults,
        limits=limits,
        workload=record,
        vhm=vhm,
        node=node,
        emit=emit,
        fsync=fsync,
        replay_outcomes=replay_outcomes,
        audit=audit,
    )
    try:
        loaded.function(kernel)
    except InvariantViolation:
        raise
    except Exception as error:  # the workload's setup failed: record it, close the trace
        return kernel.abort(error)
    return kernel.run()
