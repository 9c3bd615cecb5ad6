"""Bad input and failing surroundings get typed errors, never crashes or lost acknowledgements."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, WORKLOADS, rechained, xdv
from xdv.core import FaultPlan, FaultRule, KDomainManager, Kernel, Operation
from xdv.errors import ErrorCode, XdvError
from xdv.syscalls import (
    Bind,
    Emit,
    Invoke,
    Random,
    Reserve,
    Resume,
    Sleep,
    Spawn,
    Suspend,
    Transition,
    Wait,
)
from xdv.trace import Domain, EventType, TraceWriter, read_trace, scan_trace


def test_a_trace_that_cannot_be_written_stops_the_run_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "full.xdvt"

    def small_file_limit() -> None:  # a real operating-system limit on file size
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    completed = subprocess.run(
        [sys.executable, "-m", "xdv", "run", str(WORKLOADS / "endless.py"), "--trace", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_file_limit,
        check=False,
    )
    assert completed.returncode == 70
    assert "TRACE_IO" in completed.stderr
    printed = completed.stdout.splitlines()
    scan = scan_trace(path)
    effects = [e.metadata["v"] for e in scan.entries if e.event_type is EventType.EFFECT]
    assert printed and printed == effects[: len(printed)]


def test_fsync_always_makes_every_entry_durable_before_append_returns(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "always.xdvt", fsync="always")
    for index in range(5):
        writer.append(index, 1 if index == 0 else 110, 0, 0, 0, 0, 0, 0, 0, {"i": index})
        assert writer.durable_count == writer.count == index + 1
        assert scan_trace(tmp_path / "always.xdvt").entries[-1].metadata == {"i": index}
    writer.close()


def bad_calls() -> list[Any]:
    def plain_function_that_raises() -> None:
        raise ValueError("not an anchor")

    def child():
        yield Emit("child")

    return [
        Spawn(plain_function_that_raises),
        Spawn(child, priority="high"),  # type: ignore[arg-type]
        Spawn(child, domains=(1,)),  # type: ignore[arg-type]
        Reserve(1, "lane"),  # type: ignore[arg-type]
        Reserve("K", 5),  # type: ignore[arg-type]
        Wait([1]),  # type: ignore[arg-type]
        Random(["x"]),  # type: ignore[arg-type]
        Transition(1, "K", "call"),  # type: ignore[arg-type]
        Transition("K", "K", "call", (abs, 1), latency_max="5"),  # type: ignore[arg-type]
        Transition("K", "K", "call", 5),  # type: ignore[arg-type]
        Sleep(-1),
        Sleep("1"),  # type: ignore[arg-type]
        Suspend("2"),  # type: ignore[arg-type]
        Invoke("not a contract", "call"),
    ]


@pytest.mark.parametrize("call", bad_calls(), ids=lambda call: type(call).__name__)
def test_bad_system_calls_are_typed_errors_thrown_back(call: Any) -> None:
    seen: list[ErrorCode] = []

    def anchor():
        try:
            yield call
        except XdvError as error:
            seen.append(error.code)
        yield Emit("still alive")

    kernel = Kernel()
    kernel.spawn(anchor)
    result = kernel.run()
    assert len(seen) == 1 and seen[0] is not ErrorCode.OK
    assert result.outputs[-1] == (1, "still alive")
    assert read_trace(result.trace_bytes).complete
    assert kernel.snapshot()["managers"]["K"]["lanes_in_use"] == 0
    assert all(p["state"] == "RELEASED" for p in kernel.snapshot()["processes"].values())


def test_an_anchor_calling_sys_exit_is_a_fault_of_that_process_only() -> None:
    def quitter():
        yield Emit("bye")
        sys.exit(0)

    kernel = Kernel()
    pid = kernel.spawn(quitter)
    result = kernel.run()
    assert result.exits[pid].code == "PROCESS_FAULT" and "SystemExit" in str(
        result.exits[pid].message
    )


def test_traces_hold_no_memory_addresses(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xdvt", tmp_path / "b.xdvt"
    for path in (first, second):
        assert xdv("run", str(WORKLOADS / "addresses.py"), "--trace", str(path)).returncode == 70
    assert first.read_bytes() == second.read_bytes()
    assert b"0x7" not in first.read_bytes() and "<Thing>" in first.read_bytes().decode(
        errors="replace"
    )


def test_the_spelling_of_a_workload_path_does_not_change_the_trace(tmp_path: Path) -> None:
    source = tmp_path / "work" / "ticker.py"
    source.parent.mkdir()
    source.write_text((WORKLOADS / "no_random.py").read_text())
    relative, absolute = tmp_path / "rel.xdvt", tmp_path / "abs.xdvt"
    assert xdv("run", "ticker.py", "--trace", str(relative), cwd=source.parent).returncode == 0
    assert xdv("run", str(source), "--trace", str(absolute), cwd=source.parent).returncode == 0
    assert relative.read_bytes() == absolute.read_bytes()
    # Replayed from elsewhere, the workload is found beside the trace.
    beside = source.parent / "rel.xdvt"
    beside.write_bytes(relative.read_bytes())
    assert xdv("replay", str(beside), cwd=tmp_path).returncode == 0


def test_shutdown_ends_survivors_without_waking_anyone() -> None:
    def child():
        yield Emit("never runs")

    def parent():
        pid = yield Spawn(child)
        yield Suspend(pid)
        yield Wait(pid)

    def waiter(other: int):
        yield Wait(other)

    kernel = Kernel()
    kernel.spawn(parent)  # pid 1; its child will be pid 4
    kernel.spawn(waiter, 3)  # pid 2 waits on 3 ...
    kernel.spawn(waiter, 2)  # ... and pid 3 on 2
    result = kernel.run()
    items = read_trace(result.trace_bytes).entries
    assert not [e for e in items if e.event_type is EventType.WAKE]
    messages = {pid: status.message for pid, status in result.exits.items()}
    assert messages[1] == "blocked forever waiting on process 4"
    assert messages[2] == "blocked forever waiting on process 3"
    assert messages[3] == "blocked forever waiting on process 2"
    assert messages[4] == "still suspended when the run ended"
    released = {e.process for e in items if e.metadata.get("state") == "RELEASED"}
    assert released == {1, 2, 3, 4}


class EchoQManager(KDomainManager):
    """A second domain for transitions across domains (K → Q)."""

    domain = Domain.Q

    def describe(self) -> dict[str, Any]:
        return {"manager": "echo-q", "lanes": self.lanes}


class BrokenContractManager(EchoQManager):
    def validate_contract(self, contract: Any, operation: str, latency_max: int | None) -> None:
        raise TypeError("a bug in the manager")


@pytest.mark.spec("XDV-003-7")
@pytest.mark.parametrize(
    "phase", ["binding", "projection", "activation", "logging", "broken-manager"]
)
def test_cross_domain_transitions_undo_a_new_binding(phase: str) -> None:
    observed: dict[str, Any] = {}
    manager: KDomainManager = (
        BrokenContractManager() if phase == "broken-manager" else EchoQManager()
    )
    faults = FaultPlan([] if phase == "broken-manager" else [FaultRule(f"transition.{phase}")])

    def anchor():
        observed["before"] = kernel.snapshot()
        try:
            yield Transition("K", "Q", "call", (abs, -4))
        except XdvError as error:
            observed["error"] = error.code
        observed["after"] = kernel.snapshot()

    kernel = Kernel(domains=[KDomainManager(), manager], faults=faults)
    pid = kernel.spawn(anchor)
    kernel.grant(pid, Operation.TRANSITION, "K", "Q")
    result = kernel.run()
    assert observed["after"] == observed["before"]
    assert observed["error"] is (
        ErrorCode.TRANSITION_FAILED if phase == "broken-manager" else ErrorCode.INJECTED_FAULT
    )
    rollback = next(
        e
        for e in read_trace(result.trace_bytes).entries
        if e.event_type is EventType.TRANSITION_ROLLBACK
    )
    newly_bound = phase in ("projection", "activation", "logging")
    assert ("binding" in rollback.metadata["undone"]) is newly_bound


@pytest.mark.parametrize(
    "edit",
    [
        lambda start: {**start, "workload": ["x"]},
        lambda start: {**start, "kernel": {**start["kernel"], "limits": {"steps_max": "many"}}},
        lambda start: {**start, "faults": [{"occurrence": 1}]},
        lambda start: {**start, "seed": "seven"},
        lambda start: {**start, "domains": {"K": {"manager": "k"}}},
    ],
    ids=["workload", "limits", "faults", "seed", "domains"],
)
def test_replay_of_a_malformed_run_start_is_a_typed_refusal(tmp_path: Path, edit: Any) -> None:
    original = tmp_path / "t.xdvt"
    # Unsigned, so that the rechained forgery passes `xdv verify` and reaches replay.
    run = xdv("run", str(WORKLOADS / "no_random.py"), "--trace", str(original), "--no-audit")
    assert run.returncode == 0
    crafted = tmp_path / "crafted.xdvt"
    crafted.write_bytes(rechained(original.read_bytes(), edit))
    assert xdv("verify", str(crafted)).returncode == 0  # intact chain, bad content
    completed = xdv("replay", str(crafted))
    assert completed.returncode == 1
    assert "REPLAY_INPUT_CHANGED" in completed.stderr and "Traceback" not in completed.stderr


def test_a_closed_output_pipe_does_not_cut_the_run_short(tmp_path: Path) -> None:
    path = tmp_path / "chatty.xdvt"
    process = subprocess.Popen(
        [sys.executable, "-m", "xdv", "run", str(WORKLOADS / "chatty.py"), "--trace", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith(b"line 0")
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert read_trace(path).complete


def test_module_targets_resolve_from_the_current_directory(tmp_path: Path) -> None:
    package = tmp_path / "mywork"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text((WORKLOADS / "no_random.py").read_text())
    console = Path(sys.executable).parent / "xdv"
    completed = subprocess.run(
        [str(console), "run", "mywork.jobs:main"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert completed.returncode == 0, completed.stderr


def test_bind_of_an_unknown_domain_value_is_typed() -> None:
    seen: list[ErrorCode] = []

    def anchor():
        try:
            yield Bind(3.5)  # type: ignore[arg-type]
        except XdvError as error:
            seen.append(error.code)
        yield Resume(99)

    kernel = Kernel()
    kernel.spawn(anchor)
    result = kernel.run()
    assert seen == [ErrorCode.INVALID_ARGUMENT]
    assert result.exits[1].code == "PROCESS_UNKNOWN"


class InterruptedWriter(TraceWriter):
    """Writes part of its second batch, then is interrupted (as by Ctrl-C mid-write)."""

    batches = 0

    def _write_file(self, data: bytes) -> None:
        self.batches += 1
        if self.batches == 3:
            super()._write_file(data[: len(data) // 2 + 3])  # stops inside a frame
            raise KeyboardInterrupt
        super()._write_file(data)


def test_an_interrupted_write_leaves_a_torn_tail_never_duplicated_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "interrupted.xdvt"

    def ticker():
        while True:
            yield Emit("tick")
            yield Sleep(1)

    kernel = Kernel(trace=InterruptedWriter(path, batch_entries=50))
    kernel.spawn(ticker)
    with pytest.raises(KeyboardInterrupt):
        kernel.run()
    scan = scan_trace(path)
    assert scan.error is not None and scan.error.code is ErrorCode.TRACE_TORN
    assert [entry.seq for entry in scan.entries] == list(range(len(scan.entries)))
    assert len(scan.entries) >= 50


def test_a_failing_output_sink_stops_the_run_with_a_typed_error_no_process_sees() -> None:
    seen: list[Any] = []

    def sink(pid: int, value: Any) -> None:
        raise OSError(28, "No space left on device")

    def talker():
        try:
            for index in range(5000):
                yield Emit(index)
        except XdvError as error:  # must never happen: the sink is not the process's business
            seen.append(error)

    kernel = Kernel(emit=sink)
    kernel.spawn(talker)
    with pytest.raises(XdvError) as raised:
        kernel.run()
    assert raised.value.code is ErrorCode.OUTPUT_FAILED and not seen


def test_stdout_that_cannot_be_written_is_a_runtime_failure(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        completed = subprocess.run(
            [sys.executable, "-m", "xdv", "run", str(WORKLOADS / "no_random.py")],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert completed.returncode == 70 and "OUTPUT_FAILED" in completed.stderr


def test_a_trace_that_cannot_even_start_is_a_typed_runtime_failure(tmp_path: Path) -> None:
    def tiny_file_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20, 20))

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "xdv",
            "run",
            str(WORKLOADS / "no_random.py"),
            "--trace",
            str(tmp_path / "t.xdvt"),
            "--fsync",
            "always",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=tiny_file_limit,
        check=False,
    )
    assert completed.returncode == 70, completed.stderr
    assert '"TRACE_IO"' in completed.stdout and "Traceback" not in completed.stderr


def test_inject_replay_needs_no_outcome_that_was_never_delivered(tmp_path: Path) -> None:
    source = tmp_path / "suspends.py"
    source.write_text(
        "from xdv.syscalls import Invoke, Reserve, Spawn, Suspend, Sleep\n"
        "def child():\n"
        "    lane = yield Reserve('K', 'lane', 1)\n"
        "    yield Invoke(lane, 'call', (abs, -2))\n"
        "def parent():\n"
        "    pid = yield Spawn(child)\n"
        "    yield Sleep(3)\n"
        "    yield Suspend(pid)\n"
        "def main(kernel):\n"
        "    kernel.spawn(parent, priority=1)\n"
    )
    path = tmp_path / "s.xdvt"
    assert xdv("run", str(source), "--trace", str(path)).returncode == 70
    items = read_trace(path).entries
    assert any(e.event_type is EventType.DOMAIN_INVOKE for e in items)
    assert not any(e.event_type is EventType.DOMAIN_RESULT for e in items)
    assert xdv("replay", str(path), "--mode", "inject").returncode == 0
    assert xdv("replay", str(path)).returncode == 0


def test_failed_sleep_subclass_is_recorded_as_a_sleep() -> None:
    class Nap(Sleep):
        pass

    def napper():
        with contextlib.suppress(XdvError):
            yield Nap(-5)

    kernel = Kernel()
    kernel.spawn(napper)
    items = read_trace(kernel.run().trace_bytes).entries
    failed = [e for e in items if e.status is ErrorCode.SYSCALL_INVALID]
    assert [e.event_type for e in failed] == [EventType.SLEEP]


def test_out_of_range_limits_and_ids_are_refused() -> None:
    from xdv.core import KernelLimits

    with pytest.raises(XdvError) as raised:
        Kernel(limits=KernelLimits(sleep_ticks_max=2**64 - 1))
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    with pytest.raises(XdvError):
        Kernel(vhm=2**40)
    with pytest.raises(XdvError):
        Kernel(limits=KernelLimits(steps_max=0))


def test_user_error_messages_lose_their_memory_addresses() -> None:
    error = XdvError(f"bad {object()}")
    assert "0x…" in error.message and "object at 0x" not in error.message.replace("0x…", "")
