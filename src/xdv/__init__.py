"""XDV, the Cross-Domain Virtualizer.

Classical (K), quantum (Q) and phase-native (Φ) computation as peer domains under one
deterministic orchestration core, with a hash-chained trace that replays exactly.

The public API is re-exported here from the layer that owns each name; implementation modules
are private (``_name``). Names are resolved on first use, so ``import xdv`` (and the command
line's start-up) does not load every layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Where each public name lives (one owner each; see tests/test_layers.py for the layer order).
_EXPORTS: dict[str, str] = {
    "ErrorCode": "xdv.errors",
    "InvariantViolation": "xdv.errors",
    "XdvError": "xdv.errors",
    "invariant": "xdv.errors",
    "Domain": "xdv.trace",
    "EventType": "xdv.trace",
    "Trace": "xdv.trace",
    "TraceEntry": "xdv.trace",
    "read_trace": "xdv.trace",
    "verify_trace": "xdv.trace",
    "Capability": "xdv.core",
    "DomainManager": "xdv.core",
    "ExitStatus": "xdv.core",
    "FaultPlan": "xdv.core",
    "FaultRule": "xdv.core",
    "KDomainManager": "xdv.core",
    "Kernel": "xdv.core",
    "KernelLimits": "xdv.core",
    "Operation": "xdv.core",
    "Outcome": "xdv.core",
    "ProcessInfo": "xdv.core",
    "ProcessState": "xdv.core",
    "RandomStream": "xdv.core",
    "ResourceContract": "xdv.core",
    "RunResult": "xdv.core",
    "derive_seed": "xdv.core",
    "ReplayMode": "xdv.runtime",
    "ReplayReport": "xdv.runtime",
    "load_workload": "xdv.runtime",
    "replay": "xdv.runtime",
    "run_workload": "xdv.runtime",
    "run_circuit": "xdv.qiskit",
}

__all__ = [
    "Capability",
    "Domain",
    "DomainManager",
    "ErrorCode",
    "EventType",
    "ExitStatus",
    "FaultPlan",
    "FaultRule",
    "InvariantViolation",
    "KDomainManager",
    "Kernel",
    "KernelLimits",
    "Operation",
    "Outcome",
    "ProcessInfo",
    "ProcessState",
    "RandomStream",
    "ReplayMode",
    "ReplayReport",
    "ResourceContract",
    "RunResult",
    "Trace",
    "TraceEntry",
    "XdvError",
    "derive_seed",
    "invariant",
    "load_workload",
    "read_trace",
    "replay",
    "run_circuit",
    "run_workload",
    "syscalls",
    "verify_trace",
]

if TYPE_CHECKING:
    from xdv import syscalls
    from xdv.core import (
        Capability,
        DomainManager,
        ExitStatus,
        FaultPlan,
        FaultRule,
        KDomainManager,
        Kernel,
        KernelLimits,
        Operation,
        Outcome,
        ProcessInfo,
        ProcessState,
        RandomStream,
        ResourceContract,
        RunResult,
        derive_seed,
    )
    from xdv.errors import ErrorCode, InvariantViolation, XdvError, invariant
    from xdv.qiskit import run_circuit
    from xdv.runtime import ReplayMode, ReplayReport, load_workload, replay, run_workload
    from xdv.trace import Domain, EventType, Trace, TraceEntry, read_trace, verify_trace


def __getattr__(name: str) -> Any:
    """Resolve a public name from the layer that owns it, on first use."""
    if name == "syscalls":
        return importlib.import_module("xdv.syscalls")
    owner = _EXPORTS.get(name)
    if owner is None:
        raise AttributeError(f"module 'xdv' has no attribute {name!r}")
    value = getattr(importlib.import_module(owner), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
