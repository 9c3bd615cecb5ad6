"""The hybrid runtime: loading a workload (a Python file or module, or a DPL program), running it
on a kernel with its domain managers and security, and replaying a recorded run."""

from xdv.runtime._kernel import make_kernel
from xdv.runtime._replay import ReplayMode, ReplayReport, recorded_outcomes, replay
from xdv.runtime._run import declared_domains, run_workload
from xdv.runtime._workload import (
    Workload,
    load_dpl_program,
    load_dpl_workload,
    load_workload,
    params_digest,
)

__all__ = [
    "ReplayMode",
    "ReplayReport",
    "Workload",
    "declared_domains",
    "load_dpl_program",
    "load_dpl_workload",
    "load_workload",
    "make_kernel",
    "params_digest",
    "recorded_outcomes",
    "replay",
    "run_workload",
]
