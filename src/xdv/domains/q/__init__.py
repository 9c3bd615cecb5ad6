"""The Q domain: Q manager, provider interface (QHPI), providers, calibration, budgets, handles.

Importing this package is cheap: Qiskit, Aer and Stim are imported when a provider is built.
"""

from xdv.domains import register_manager_factory
from xdv.domains.q._budget import DecoherenceBudget, JobEstimate, estimate
from xdv.domains.q._calibration import (
    CalibrationContract,
    CalibrationProfile,
    ProfileListing,
    QubitCalibration,
    list_profiles,
    load_profile,
    profile_names,
)
from xdv.domains.q._circuit import (
    NoCloningViolation,
    ParsedCircuit,
    circuit_to_text,
    parse_circuit,
)
from xdv.domains.q._diagnostics import job_diagnostics
from xdv.domains.q._handle import QHandle
from xdv.domains.q._manager import (
    DEFAULT_CALIBRATION,
    QDomainManager,
    manager_from_description,
    provider_factories,
)
from xdv.domains.q._placement import (
    FidelityPlacementPolicy,
    best_chain,
    chain_log_fidelity,
    circuit_placement,
)
from xdv.domains.q._provider import QJob, QProvider
from xdv.domains.q._signing import sign_calibration, verify_calibration
from xdv.domains.q._work import JobWork, check_job_work, job_work

register_manager_factory("q", manager_from_description)

__all__ = [
    "DEFAULT_CALIBRATION",
    "CalibrationContract",
    "CalibrationProfile",
    "DecoherenceBudget",
    "FidelityPlacementPolicy",
    "JobEstimate",
    "JobWork",
    "NoCloningViolation",
    "ParsedCircuit",
    "ProfileListing",
    "QDomainManager",
    "QHandle",
    "QJob",
    "QProvider",
    "QubitCalibration",
    "best_chain",
    "chain_log_fidelity",
    "check_job_work",
    "circuit_placement",
    "circuit_to_text",
    "estimate",
    "job_diagnostics",
    "job_work",
    "list_profiles",
    "load_profile",
    "manager_from_description",
    "parse_circuit",
    "profile_names",
    "provider_factories",
    "sign_calibration",
    "verify_calibration",
]
