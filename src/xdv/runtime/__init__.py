"""The hybrid runtime: the one way into a run.

It loads a workload (a Python file or module, a DPL program, a Q job, a Φ job), chooses its
domain managers, providers and the security setup, runs it (:func:`run`: audited, signed with
the node key, witnesses written, SIGINT/SIGTERM ending the run cleanly), and replays a
recorded run (:func:`replay`). Every ``xdv`` command that runs something goes through here.
It also holds the whole-system simulator (:func:`simulate`, :func:`self_test`: ``xdv sim``),
which generates, runs, checks and shrinks random workloads in the real kernel.
"""

import importlib
from typing import TYPE_CHECKING, Any

from xdv.runtime._domains import declared_managers, recorded_managers
from xdv.runtime._jobs import JobFailed, phi_job, phi_report, q_job, q_report
from xdv.runtime._kernel import build_policy, make_kernel
from xdv.runtime._limits import ISOLATION_MODES, WorkerLimits
from xdv.runtime._node import NodeKey, default_witness_dir, xdv_home
from xdv.runtime._replay import ReplayMode, ReplayReport, recorded_outcomes, replay
from xdv.runtime._run import RunOutcome, RunRequest, run, run_workload
from xdv.runtime._signals import INTERRUPT_SIGNALS
from xdv.runtime._workload import (
    Workload,
    load_dpl_program,
    load_dpl_workload,
    load_workload,
    params_digest,
)

__all__ = [
    "INTERRUPT_SIGNALS",
    "ISOLATION_MODES",
    "SIM_TARGET",
    "JobFailed",
    "MutantResult",
    "NodeKey",
    "ReplayMode",
    "ReplayReport",
    "RunOutcome",
    "RunRequest",
    "SeedReport",
    "SelfTestReport",
    "SimReport",
    "Violation",
    "WorkerLimits",
    "Workload",
    "build_policy",
    "check_plan",
    "check_state",
    "declared_managers",
    "default_witness_dir",
    "generate_plan",
    "load_dpl_program",
    "load_dpl_workload",
    "load_workload",
    "make_kernel",
    "params_digest",
    "phi_job",
    "phi_report",
    "q_job",
    "q_report",
    "recorded_managers",
    "recorded_outcomes",
    "replay",
    "run",
    "run_plan",
    "run_seed",
    "run_workload",
    "self_test",
    "shrink_plan",
    "simulate",
    "xdv_home",
]

# The simulator is loaded on first use (PEP 562): `xdv sim` needs it, every other command and
# run does not, and it costs tens of milliseconds of start-up (benchmarks/startup.py).
_SIMULATOR = {
    **dict.fromkeys(
        (
            "MutantResult",
            "SeedReport",
            "SelfTestReport",
            "SimReport",
            "Violation",
            "check_state",
            "run_plan",
            "run_seed",
            "self_test",
            "simulate",
        ),
        "xdv.runtime._sim",
    ),
    **dict.fromkeys(("check_plan", "generate_plan", "shrink_plan"), "xdv.runtime._sim_plan"),
    "SIM_TARGET": "xdv.runtime._sim_workload",
}

if TYPE_CHECKING:
    from xdv.runtime._sim import (
        MutantResult,
        SeedReport,
        SelfTestReport,
        SimReport,
        Violation,
        check_state,
        run_plan,
        run_seed,
        self_test,
        simulate,
    )
    from xdv.runtime._sim_plan import check_plan, generate_plan, shrink_plan
    from xdv.runtime._sim_workload import SIM_TARGET


def __getattr__(name: str) -> Any:
    """Resolve a simulator name on first use."""
    owner = _SIMULATOR.get(name)
    if owner is None:
        raise AttributeError(f"module 'xdv.runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(owner), name)
    globals()[name] = value
    return value
