"""Tracebacks of failing workload code, kept out of the trace.

When a K anchor raises an exception that is not an ``XdvError``, the kernel records only
``PROCESS_FAULT`` and ``Type: message`` (a trace must not depend on file paths or line
numbers), and keeps the exception itself in :attr:`RunResult.exceptions
<xdv.core.RunResult.exceptions>`. A person running the workload needs to know where it failed:
:func:`format_traceback` turns such an exception into Python's report, starting at the first
frame of the workload's own code.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from types import TracebackType

__all__ = ["format_traceback"]

_PACKAGE = str(Path(__file__).resolve().parents[1])  # the xdv package's own source


def format_traceback(error: BaseException) -> str:
    """``error``'s traceback as Python prints it, without the leading frames of XDV's own
    code (the kernel loop or the runtime that called into the workload). For an exception
    raised in an isolated workload's worker process, the traceback the worker reported."""
    reported = getattr(error, "xdv_worker_traceback", None)
    if isinstance(reported, str):
        return reported
    tb: TracebackType | None = error.__traceback__
    while (
        tb is not None
        and tb.tb_next is not None
        and str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(_PACKAGE)
    ):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))
