"""The XDV conformance test suite (XDV-084): cases as data, a runner, a signed report.

Cases are files under ``cases/<area>/`` (package data), one case per file, with front matter
that names the spec clauses checked, the level, the features required and the expected outcome
(:mod:`xdv.cts._case`). :func:`run_cases` runs them against XDV in process or against another
implementation through the adapter contract (``docs/conformance.md``); :func:`build_report`
and :func:`sign_report` make the signed compliance report that :func:`verify_report` checks.
"""

from xdv.cts._case import (
    ACTIONS,
    CASES_ROOT,
    EXIT_CLASSES,
    FEATURES,
    LEVELS,
    MUTATIONS,
    Case,
    CaseError,
    load_case,
    load_cases,
    parse_case,
    select,
    suite_digest,
)
from xdv.cts._executor import (
    AdapterExecutor,
    Identity,
    InProcessExecutor,
    Observation,
    xdv_code_digest,
)
from xdv.cts._report import (
    CTS_VERSION,
    REPORT_FORMAT,
    TIERS,
    ReportCheck,
    ReportError,
    build_report,
    canonical,
    certification,
    sign_report,
    verify_report,
)
from xdv.cts._runner import CaseResult, available_features, mutate_trace, run_case, run_cases

__all__ = [
    "ACTIONS",
    "CASES_ROOT",
    "CTS_VERSION",
    "EXIT_CLASSES",
    "FEATURES",
    "LEVELS",
    "MUTATIONS",
    "REPORT_FORMAT",
    "TIERS",
    "AdapterExecutor",
    "Case",
    "CaseError",
    "CaseResult",
    "Identity",
    "InProcessExecutor",
    "Observation",
    "ReportCheck",
    "ReportError",
    "available_features",
    "build_report",
    "canonical",
    "certification",
    "load_case",
    "load_cases",
    "mutate_trace",
    "parse_case",
    "run_case",
    "run_cases",
    "select",
    "sign_report",
    "suite_digest",
    "verify_report",
    "xdv_code_digest",
]
