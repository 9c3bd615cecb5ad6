"""The deterministic orchestration core: the kernel, its clock and random streams, processes, the
domain interface every manager implements, and the K domain manager (the kernel's own domain)."""

from xdv.core._admission import PlacementContext
from xdv.core._audit import AuditConfig, AuditSink
from xdv.core._capability import (
    Capability,
    CapabilityAuthority,
    CapabilityTable,
    DerivedCapability,
    Operation,
    SupportsDerive,
    SupportsFreeze,
)
from xdv.core._clock import FixedWallClock, LogicalClock, SystemWallClock, WallClock
from xdv.core._domains import ProviderVerifier
from xdv.core._faults import FAULT_SITES, FaultPlan, FaultRule
from xdv.core._interface import (
    DomainManager,
    Invocation,
    Outcome,
    PreparedCall,
    ResourceContract,
    ResourceGrant,
    ResourceRequest,
    SupportsProviders,
    SupportsRights,
    SupportsTransfer,
    SupportsUsage,
)
from xdv.core._invariants import assert_scheduler, check_scheduler
from xdv.core._invoker import RecordedOutcome
from xdv.core._k_manager import KDomainManager
from xdv.core._kernel import Kernel, KernelLimits, RunResult
from xdv.core._lifecycle import LEGAL_TRANSITIONS, ProcessState, check_transition
from xdv.core._policy import (
    ComposedPolicy,
    EarliestDeadlinePolicy,
    FairSharePolicy,
    PlacementPolicy,
    PriorityPolicy,
    RoundRobinPolicy,
    SchedulerPolicy,
    parse_policy,
    policy_names,
    register_policy,
)
from xdv.core._process import ExitStatus, ProcessInfo
from xdv.core._random import RandomStream, derive_seed
from xdv.core._recorder import EmitSink
from xdv.core._transition import PHASES as TRANSITION_PHASES
from xdv.core._vhm import HELD_QUOTAS, QUOTA_NAMES, Vhm, VhmQuotas, VhmTable

__all__ = [
    "FAULT_SITES",
    "HELD_QUOTAS",
    "LEGAL_TRANSITIONS",
    "QUOTA_NAMES",
    "TRANSITION_PHASES",
    "AuditConfig",
    "AuditSink",
    "Capability",
    "CapabilityAuthority",
    "CapabilityTable",
    "ComposedPolicy",
    "DerivedCapability",
    "DomainManager",
    "EarliestDeadlinePolicy",
    "EmitSink",
    "ExitStatus",
    "FairSharePolicy",
    "FaultPlan",
    "FaultRule",
    "FixedWallClock",
    "Invocation",
    "KDomainManager",
    "Kernel",
    "KernelLimits",
    "LogicalClock",
    "Operation",
    "Outcome",
    "PlacementContext",
    "PlacementPolicy",
    "PreparedCall",
    "PriorityPolicy",
    "ProcessInfo",
    "ProcessState",
    "ProviderVerifier",
    "RandomStream",
    "RecordedOutcome",
    "ResourceContract",
    "ResourceGrant",
    "ResourceRequest",
    "RoundRobinPolicy",
    "RunResult",
    "SchedulerPolicy",
    "SupportsDerive",
    "SupportsFreeze",
    "SupportsProviders",
    "SupportsRights",
    "SupportsTransfer",
    "SupportsUsage",
    "SystemWallClock",
    "Vhm",
    "VhmQuotas",
    "VhmTable",
    "WallClock",
    "assert_scheduler",
    "check_scheduler",
    "check_transition",
    "derive_seed",
    "parse_policy",
    "policy_names",
    "register_policy",
]
