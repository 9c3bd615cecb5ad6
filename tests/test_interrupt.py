"""Interrupting a run (Ctrl-C, SIGTERM, another thread): the run ends at once, every live process
is ended, RUN_END says "interrupted", and the trace is complete, audited and verifiable."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any

from workloads import interrupted
from xdv.core import AuditConfig, KDomainManager, Kernel
from xdv.core._interface import Invocation, Outcome
from xdv.errors import ErrorCode
from xdv.runtime import make_kernel
from xdv.security import HybridKeyPair, SignedHeadLog, audit_path_for, verify_audit
from xdv.syscalls import Emit, Invoke, Reserve, Sleep
from xdv.trace import EventType, read_trace, verify_trace

KEYS = HybridKeyPair.from_seed(b"interrupt test")


def end_of(data: bytes) -> Any:
    entries = read_trace(data).entries
    assert entries[-1].event_type is EventType.RUN_END
    return entries[-1]


def test_an_interrupt_from_a_process_ends_the_run_at_the_next_slice() -> None:
    kernel = Kernel(quantum=4)

    def endless():
        while True:
            yield Sleep(1)

    def hook():
        yield Emit("working")
        yield Emit("still working")
        kernel.interrupt("SIGINT")  # as the SIGINT handler would, at a known point
        yield Emit("the rest of this slice runs")
        yield Emit("but no other slice")

    sleeper = kernel.spawn(endless)
    hooked = kernel.spawn(hook)
    result = kernel.run()
    assert result.status == "interrupted" and not result.ok
    assert [value for _, value in result.outputs] == [
        "working",
        "still working",
        "the rest of this slice runs",
        "but no other slice",
    ]
    for pid in (sleeper, hooked):
        assert result.exits[pid].code == "RUN_INTERRUPTED"
        assert "interrupted (SIGINT)" in (result.exits[pid].message or "")
    assert result.trace_bytes is not None
    end = end_of(result.trace_bytes)
    assert end.status is ErrorCode.RUN_INTERRUPTED
    assert end.metadata["status"] == "interrupted" and end.metadata["reason"] == "SIGINT"
    assert end.metadata["failed"] == [sleeper, hooked]
    report = verify_trace(result.trace_bytes)
    assert report.ok and report.complete and report.interrupted
    assert (report.end_status, report.end_reason) == ("interrupted", "SIGINT")
    assert report.to_json()["interrupted"] is True


def test_a_normal_run_is_not_reported_as_interrupted() -> None:
    kernel = Kernel()

    def once():
        yield Emit("done")

    kernel.spawn(once)
    result = kernel.run()
    assert result.trace_bytes is not None
    report = verify_trace(result.trace_bytes)
    assert report.ok and not report.interrupted and report.end_status == "ok"
    assert report.end_reason is None and "reason" not in end_of(result.trace_bytes).metadata
    kernel.interrupt("late")  # after the run: nothing happens, and nothing fails


def test_an_interrupt_before_the_run_ends_it_before_any_step() -> None:
    kernel = Kernel()

    def never():
        yield Emit("never")

    kernel.spawn(never)
    kernel.interrupt("SIGTERM")
    kernel.interrupt("a second reason is ignored")
    result = kernel.run()
    assert (result.status, result.steps, result.outputs) == ("interrupted", 0, [])
    assert result.trace_bytes is not None
    assert end_of(result.trace_bytes).metadata["reason"] == "SIGTERM"


def test_another_thread_interrupts_an_endless_audited_run(tmp_path: Path) -> None:
    trace = tmp_path / "endless.xdvt"
    kernel = make_kernel(
        trace=trace,
        audit=AuditConfig(16, SignedHeadLog(audit_path_for(trace), KEYS)),
        fsync="never",
    )
    interrupted.main(kernel)
    timer = threading.Timer(0.2, kernel.interrupt, ("SIGINT",))  # as a signal handler would
    timer.start()
    result = kernel.run()
    timer.join()
    assert result.status == "interrupted" and result.steps > 0
    report = verify_trace(trace)
    assert report.ok and report.complete and report.interrupted
    audit = verify_audit(trace, trusted={KEYS.public.fingerprint})
    assert audit.signed and audit.trusted and audit.entries == report.entries
    exits = [e for e in read_trace(trace).entries if e.event_type is EventType.PROCESS_EXIT]
    assert {e.process for e in exits} == {1, 2}
    assert {e.status for e in exits} == {ErrorCode.RUN_INTERRUPTED}


class NeverManager(KDomainManager):
    """Hands the kernel a Future that never completes (a device that hangs)."""

    def __init__(self) -> None:
        super().__init__(call_latency=2)
        self.futures: list[concurrent.futures.Future[Any]] = []

    def execute(self, invocation: Invocation) -> Outcome:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.futures.append(future)
        return Outcome(future)


def test_an_interrupt_is_seen_while_the_kernel_waits_for_an_outcome() -> None:
    manager = NeverManager()
    kernel = make_kernel(domains=[manager])
    seen: list[ErrorCode] = []

    def caller():
        lane = yield Reserve("K", "lane", 1)
        try:
            yield Invoke(lane, "call", (abs, -1))
        except Exception as error:
            seen.append(error.code)  # type: ignore[attr-defined]

    kernel.spawn(caller)
    timer = threading.Timer(0.3, kernel.interrupt, ("SIGINT",))
    timer.start()
    started = time.monotonic()
    result = kernel.run()
    timer.join()
    assert time.monotonic() - started < 10
    assert result.status == "interrupted"
    assert seen == [ErrorCode.RUN_INTERRUPTED]
    assert manager.futures[0].cancelled()
    assert result.trace_bytes is not None
    outcome = [
        e for e in read_trace(result.trace_bytes).entries if e.event_type is EventType.DOMAIN_RESULT
    ]
    assert outcome[0].status is ErrorCode.RUN_INTERRUPTED
    assert "interrupted (SIGINT)" in outcome[0].metadata["error"]
    assert verify_trace(result.trace_bytes).interrupted
