"""The workloads a node job runs: parameterized workloads (see :func:`xdv.runtime.load_workload`)
whose target names a function of this module and whose parameters are the job's inputs.

Recording the job as ``xdv.service._workloads:FUNCTION`` with its inputs as parameters makes
its trace self-contained: ``xdv replay`` imports this module, passes the recorded parameters
back and rebuilds the run, VHM placement included, from the trace alone.

Every function runs the job's processes inside the tenant's VHM (declared by the job's
workload and created, and recorded, before the function is called): the kernel the function
hands on spawns into that VHM unless told otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from xdv.runtime import load_workload

__all__ = ["DPL_TARGET", "NESTED_TARGET", "dpl_document", "dpl_job", "nested_job"]

DPL_TARGET = "xdv.service._workloads:dpl_job"
NESTED_TARGET = "xdv.service._workloads:nested_job"


class TenantKernel:
    """A view of the kernel for a job's workload: :meth:`spawn` places processes in the
    tenant's VHM; everything else is the kernel's own."""

    def __init__(self, kernel: Any, vhm: int) -> None:
        self._kernel = kernel
        self._vhm = vhm

    def spawn(self, anchor: Callable[..., Any], *args: Any, **options: Any) -> int:
        if options.get("vhm") is None:
            options["vhm"] = self._vhm
        pid: int = self._kernel.spawn(anchor, *args, **options)
        return pid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kernel, name)


@functools.lru_cache(maxsize=64)
def dpl_document(source: str, name: str) -> dict[str, Any]:
    """The DIR document of a DPL source (compiled once per runner for a repeated source);
    DplStaticError with the diagnostics if it has errors."""
    from xdv import dpl

    return dpl.compile_source(source, name)


def dpl_job(kernel: Any, *, source: str, name: str, entry: str, tenant: str) -> None:
    """Run process ``entry`` of the DPL program ``source`` in VHM ``tenant``."""
    from xdv import dpl

    program = dpl.Program(dpl_document(source, name), entry)
    dpl.spawn_dpl(TenantKernel(kernel, kernel.vhms.find(tenant)), program)


def nested_job(kernel: Any, *, target: str, params: dict[str, Any], tenant: str) -> None:
    """Run the parameterized workload ``target`` (a Q or Φ job of the runtime) with
    ``params`` in VHM ``tenant``."""
    inner = load_workload(target, params=params)
    inner.function(TenantKernel(kernel, kernel.vhms.find(tenant)))
