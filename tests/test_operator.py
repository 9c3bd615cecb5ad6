"""Operator actions belong to the setup phase: a running process cannot authorize itself."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from helpers import WORKLOADS, xdv
from xdv.core import Kernel, Operation
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import replay
from xdv.syscalls import Emit, Sleep
from xdv.trace import Domain, EventType, read_trace


def denials(data: bytes) -> list[Any]:
    return [e for e in read_trace(data).entries if e.event_type is EventType.CAPABILITY_DENY]


def test_a_self_grant_mid_run_is_refused_recorded_and_fails_the_process() -> None:
    kernel = Kernel()

    def greedy():
        yield Emit("before")
        kernel.grant(1, Operation.MEASURE, "Q", "K")
        yield Emit("after")

    pid = kernel.spawn(greedy)
    result = kernel.run()
    assert result.status == "failed" and not result.ok
    assert result.exits[pid].code == "OPERATOR_ONLY"
    assert [value for _, value in result.outputs] == ["before"]
    assert result.trace_bytes is not None
    (denied,) = denials(result.trace_bytes)
    assert denied.process == pid and denied.status is ErrorCode.OPERATOR_ONLY
    assert denied.metadata["call"] == "Kernel.grant"
    assert denied.domain is Domain.ORCHESTRATION
    # Nothing was granted: no MEASURE grant anywhere in the trace.
    grants = [
        e.metadata["op"]
        for e in read_trace(result.trace_bytes).entries
        if e.event_type is EventType.CAPABILITY_GRANT
    ]
    assert "MEASURE" not in grants


@pytest.mark.parametrize(
    ("action", "call"),
    [
        (lambda kernel: kernel.grant(1, Operation.FREEZE, "K", "K"), "Kernel.grant"),
        (lambda kernel: kernel.revoke(1), "Kernel.revoke"),
        (lambda kernel: kernel.freeze("Q"), "Kernel.freeze"),
    ],
)
def test_every_operator_action_is_refused_to_a_process_that_may_catch_it(
    action: Any, call: str
) -> None:
    kernel = Kernel()
    caught: list[ErrorCode] = []

    def cautious():
        yield Sleep(1)
        try:
            action(kernel)
        except XdvError as error:
            caught.append(error.code)
        yield Emit("carried on")

    kernel.spawn(cautious)
    result = kernel.run()
    assert caught == [ErrorCode.OPERATOR_ONLY] and result.ok
    assert result.trace_bytes is not None
    (denied,) = denials(result.trace_bytes)
    assert denied.metadata["call"] == call and denied.process == 1
    # Nothing was revoked or frozen either.
    events = {e.event_type for e in read_trace(result.trace_bytes).entries if e.process == 1}
    assert EventType.DOMAIN_FREEZE not in events
    assert kernel.snapshot()["capabilities"] == []  # released at exit, not before


def test_operator_actions_work_in_the_setup_phase_and_are_refused_after_the_run() -> None:
    kernel = Kernel()

    def idle():
        yield Sleep(1)

    pid = kernel.spawn(idle)
    granted = kernel.grant(pid, Operation.FREEZE, "K", "K")
    kernel.revoke(granted.id)
    kernel.run()
    with pytest.raises(XdvError) as refused:
        kernel.grant(pid, Operation.MEASURE, "Q", "K")
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


def test_a_call_from_another_thread_during_the_run_is_refused_without_a_record() -> None:
    kernel = Kernel()
    caught: list[ErrorCode] = []

    def other_thread() -> None:
        try:
            kernel.grant(1, Operation.MEASURE, "Q", "K")
        except XdvError as error:
            caught.append(error.code)

    def starter():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()  # the loop waits here: the other thread's call happens mid-run
        yield Emit("done")

    kernel.spawn(starter)
    result = kernel.run()
    assert caught == [ErrorCode.OPERATOR_ONLY] and result.ok
    assert result.trace_bytes is not None and denials(result.trace_bytes) == []


def test_xdv_run_of_a_self_granting_workload_fails_and_replays_identically(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "greedy.xdvt"
    ran = xdv("run", str(WORKLOADS / "self_grant.py"), "--trace", str(trace))
    assert ran.returncode != 0, ran.stdout + ran.stderr
    assert "OPERATOR_ONLY" in ran.stdout + ran.stderr
    data = trace.read_bytes()
    (denied,) = denials(data)
    assert denied.status is ErrorCode.OPERATOR_ONLY and denied.process == 1
    end = read_trace(data).entries[-1]
    assert end.metadata["status"] == "failed" and end.metadata["failed"] == [1]
    for mode in ("reexecute", "inject"):
        report = replay(trace, mode)
        assert report.ok, report.divergence
    assert xdv("replay", str(trace)).returncode == 0
