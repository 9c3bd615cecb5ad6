"""Ending a run cleanly on SIGINT (Ctrl-C) or SIGTERM.

For the duration of :meth:`Kernel.run`, the runtime's handlers ask the kernel to stop
(:meth:`Kernel.interrupt`): the loop ends the run at its next decision point, every process
still running is ended, and the run-end entry says the run was interrupted, so the trace is
complete, verifiable, signed, and never mistaken for a normal completion. A second signal
while the kernel is stopping raises :class:`KeyboardInterrupt` at once (the trace then keeps
its intact prefix and has no run end). Outside a run, and in threads other than the main one
(where Python cannot install handlers), signals keep their usual effect.

A signal that arrives while a provider computes in native code (a CP-SAT search, an Aer
simulation) is seen by Python when that call returns: the operation finishes, within its own
deterministic bounds, and the run stops right after it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from xdv.core import Kernel

__all__ = ["INTERRUPT_SIGNALS", "interrupts"]

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that interrupt a run."""


@contextlib.contextmanager
def interrupts(kernel: Kernel, *, enabled: bool = True) -> Iterator[list[str]]:
    """Within the block, SIGINT and SIGTERM interrupt ``kernel``'s run; yields the list of
    the names of the signals that arrived (``["SIGINT"]``), empty if none did."""
    caught: list[str] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handle(number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if caught:  # asked twice: stop now, without waiting for the kernel
            raise KeyboardInterrupt(name)
        caught.append(name)
        kernel.interrupt(name)

    previous = {number: signal.signal(number, handle) for number in INTERRUPT_SIGNALS}
    try:
        yield caught
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
