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
from xdv.core._channels import (
    CATEGORIES as CHANNEL_CATEGORIES,
)
from xdv.core._channels import (
    CrossingCost,
    Message,
    channel_resource,
    crossing_cost,
)
from xdv.core._clock import FixedWallClock, LogicalClock, SystemWallClock, WallClock
from xdv.core._domains import ProviderVerifier
from xdv.core._explore import Counterexample, ExplorableSystem, Exploration, explore
from xdv.core._fault_handler import FaultStats
from xdv.core._faults import (
    FAULT_CLASSES,
    FAULT_SITES,
    ClassPolicy,
    FaultClass,
    FaultLevel,
    FaultPlan,
    FaultRule,
    RetryPolicy,
    Threshold,
    classify,
)
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
from xdv.core._kernel import Kernel, KernelLimits, RunResult, StepObserver
from xdv.core._lifecycle import LEGAL_TRANSITIONS, ProcessState, check_transition
from xdv.core._mutants import MUTANTS, Mutant, mutation, register_mutant
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
    "CHANNEL_CATEGORIES",
    "FAULT_CLASSES",
    "FAULT_SITES",
    "HELD_QUOTAS",
    "LEGAL_TRANSITIONS",
    "MUTANTS",
    "QUOTA_NAMES",
    "TRANSITION_PHASES",
    "AuditConfig",
    "AuditSink",
    "Capability",
    "CapabilityAuthority",
    "CapabilityTable",
    "ClassPolicy",
    "ComposedPolicy",
    "Counterexample",
    "CrossingCost",
    "DerivedCapability",
    "DomainManager",
    "EarliestDeadlinePolicy",
    "EmitSink",
    "ExitStatus",
    "ExplorableSystem",
    "Exploration",
    "FairSharePolicy",
    "FaultClass",
    "FaultLevel",
    "FaultPlan",
    "FaultRule",
    "FaultStats",
    "FixedWallClock",
    "Invocation",
    "KDomainManager",
    "Kernel",
    "KernelLimits",
    "LogicalClock",
    "Message",
    "Mutant",
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
    "RetryPolicy",
    "RoundRobinPolicy",
    "RunResult",
    "SchedulerPolicy",
    "StepObserver",
    "SupportsDerive",
    "SupportsFreeze",
    "SupportsProviders",
    "SupportsRights",
    "SupportsTransfer",
    "SupportsUsage",
    "SystemWallClock",
    "Threshold",
    "Vhm",
    "VhmQuotas",
    "VhmTable",
    "WallClock",
    "assert_scheduler",
    "channel_resource",
    "check_scheduler",
    "check_transition",
    "classify",
    "crossing_cost",
    "derive_seed",
    "explore",
    "mutation",
    "parse_policy",
    "policy_names",
    "register_mutant",
    "register_policy",
]
