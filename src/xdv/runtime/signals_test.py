"""SIGINT and SIGTERM during a run ask the kernel to stop; outside a run they do not."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from xdv.runtime._signals import INTERRUPT_SIGNALS, interrupts


class Recorder:
    """Stands in for the kernel: records the interrupt requests it receives."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def interrupt(self, reason: str) -> None:
        self.reasons.append(reason)


def test_a_signal_during_the_run_asks_the_kernel_to_stop_and_a_second_one_forces_it() -> None:
    before = {number: signal.getsignal(number) for number in INTERRUPT_SIGNALS}
    kernel: Any = Recorder()
    with interrupts(kernel) as caught:
        os.kill(os.getpid(), signal.SIGTERM)
        assert kernel.reasons == ["SIGTERM"] and caught == ["SIGTERM"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {number: signal.getsignal(number) for number in INTERRUPT_SIGNALS} == before


def test_nothing_is_installed_when_disabled_or_off_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGINT)
    kernel: Any = Recorder()
    with interrupts(kernel, enabled=False) as caught:
        assert signal.getsignal(signal.SIGINT) is before and caught == []
    seen: list[Any] = []

    def worker() -> None:
        with interrupts(kernel) as caught:
            seen.append(signal.getsignal(signal.SIGINT))
            seen.append(caught)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before, []]
