"""The deterministic orchestration core: clock, random streams, events, processes, kernel."""

from xdv.core._audit import AuditConfig, AuditSink
from xdv.core._capability import Capability, CapabilityAuthority, CapabilityTable, Operation
from xdv.core._clock import FixedWallClock, LogicalClock, SystemWallClock, WallClock
from xdv.core._events import Domain, EventType
from xdv.core._faults import FAULT_SITES, FaultPlan, FaultRule
from xdv.core._kernel import Kernel, KernelLimits, RecordedOutcome, RunResult
from xdv.core._lifecycle import LEGAL_TRANSITIONS, ProcessState, check_transition
from xdv.core._policy import RoundRobinPolicy, SchedulerPolicy
from xdv.core._process import ExitStatus, ProcessInfo
from xdv.core._random import RandomStream, derive_seed
from xdv.core._transition import PHASES as TRANSITION_PHASES

__all__ = [
    "FAULT_SITES",
    "LEGAL_TRANSITIONS",
    "TRANSITION_PHASES",
    "AuditConfig",
    "AuditSink",
    "Capability",
    "CapabilityAuthority",
    "CapabilityTable",
    "Domain",
    "EventType",
    "ExitStatus",
    "FaultPlan",
    "FaultRule",
    "FixedWallClock",
    "Kernel",
    "KernelLimits",
    "LogicalClock",
    "Operation",
    "ProcessInfo",
    "ProcessState",
    "RandomStream",
    "RecordedOutcome",
    "RoundRobinPolicy",
    "RunResult",
    "SchedulerPolicy",
    "SystemWallClock",
    "WallClock",
    "check_transition",
    "derive_seed",
]
