"""XDV, the Cross-Domain Virtualizer.

Classical (K), quantum (Q) and phase-native (Φ) computation as peer domains under one
deterministic orchestration core, with a hash-chained trace that replays exactly.

The public API is re-exported here; implementation modules are private (``_name``).
"""

from xdv import syscalls
from xdv.core import (
    Capability,
    Domain,
    EventType,
    ExitStatus,
    FaultPlan,
    FaultRule,
    Kernel,
    KernelLimits,
    Operation,
    ProcessInfo,
    ProcessState,
    RandomStream,
    RunResult,
    derive_seed,
)
from xdv.domains import DomainManager, KDomainManager, Outcome, ResourceContract
from xdv.errors import ErrorCode, InvariantViolation, XdvError, invariant
from xdv.replay import ReplayMode, ReplayReport, replay
from xdv.runner import run_workload
from xdv.trace import Trace, TraceEntry, read_trace, verify_trace
from xdv.workload import load_workload

__version__ = "0.1.0"

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
    "run_workload",
    "syscalls",
    "verify_trace",
]
