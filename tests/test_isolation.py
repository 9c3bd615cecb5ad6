"""Isolated Python workloads (docs/isolation.md): the workload's code runs in a worker process,
the kernel keeps the authority, and the trace is byte for byte the in-process trace. Hostile
workloads end with typed faults while the kernel, and what it already accepted, survive."""

from __future__ import annotations

import contextlib
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdv.core import FaultPlan, RunResult
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import (
    RunRequest,
    WorkerLimits,
    declared_managers,
    load_workload,
    replay,
    run,
    run_workload,
)
from xdv.trace import read_trace, verify_trace

ROOT = Path(__file__).resolve().parent.parent


def _both(target: str, tmp_path: Path, **options: Any) -> tuple[bytes, bytes, RunResult]:
    """The trace bytes of ``target`` run in process and isolated, and the isolated result."""
    traces = []
    result = None
    for isolation in ("inprocess", "process"):
        path = tmp_path / f"{isolation}.xdvt"
        domains = options.pop("phi", None)
        result = run_workload(
            target,
            trace=path,
            isolation=isolation,
            domains=None if domains is None else declared_managers(domains),
            **options,
        )
        if domains is not None:
            options["phi"] = domains
        traces.append(path.read_bytes())
    assert result is not None
    return traces[0], traces[1], result


@pytest.mark.spec("XDV-081-13")
@pytest.mark.spec("XDV-010-10.4")
@pytest.mark.parametrize(
    ("target", "options", "status"),
    [
        ("examples/ping_pong.py", {"seed": 7}, "ok"),
        # A process that fails with a typed error (its own bug: PROCESS_FAULT).
        ("tests/workloads/mixed.py", {"seed": 3}, "failed"),
        # Injected faults, a VHM restarted from its K snapshot, then ended.
        (
            "examples/fault_isolation.py",
            {"seed": 1, "faults": "examples/faults_vhm_plan.json"},
            "failed",
        ),
        pytest.param(  # the Q domain (Aer): seconds of Qiskit import, so in the long run only
            "examples/fault_tolerant_q.py", {"seed": 5}, "ok", marks=pytest.mark.slow
        ),
        ("tests/workloads/phi_job.py", {"seed": 2, "phi": {"Φ": {"manager": "phi"}}}, "ok"),
    ],
)
def test_isolated_trace_is_the_in_process_trace(
    target: str, options: dict[str, Any], status: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(ROOT)
    if "faults" in options:
        options = {**options, "faults": FaultPlan.from_file(Path(options["faults"]))}
    inprocess, isolated, result = _both(target, tmp_path, **options)
    assert result.status == status
    assert isolated == inprocess
    # The isolated run's trace replays, in process and isolated.
    assert replay(tmp_path / "process.xdvt").ok
    assert replay(tmp_path / "inprocess.xdvt", isolation="process").ok


def _workload(tmp_path: Path, source: str, name: str = "hostile") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def _isolated(
    target: str,
    limits: WorkerLimits | None = None,
    params: dict[str, Any] | None = None,
    trace: Path | None = None,
) -> tuple[RunResult, list[Any]]:
    outputs: list[Any] = []
    result = run_workload(
        target,
        trace=trace,
        isolation="process",
        worker_limits=limits,
        params=params,
        emit=lambda pid, value: outputs.append(value),
    )
    return result, outputs


def _failure(result: RunResult, pid: int = 1) -> tuple[str | None, str | None]:
    status = result.exits[pid]
    assert not status.ok
    return status.code, status.message


def _no_children_left() -> None:
    """No worker process of this test process is left running (other tests' children, which
    share the process under xdist, are not looked at)."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == os.getpid() and b"xdv.runtime._worker" in command:
            left.append((entry.name, fields[0], command[:80]))
    assert left == []


@pytest.mark.spec("XDV-010-11")
def test_the_worker_holds_no_secret_and_no_kernel(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDV_TOKEN", "secret-token")
    home = tmp_path / "home"
    key = home / "keys" / "node.key"
    key.parent.mkdir(parents=True)
    key.write_text("private")
    key.chmod(0o600)
    monkeypatch.setenv("XDV_HOME", str(home))
    target = _workload(
        tmp_path,
        """
        import gc, os
        from xdv.syscalls import Emit

        def opened(number):
            try:
                return os.readlink(f"/proc/self/fd/{number}")
            except OSError:  # the descriptor that listed the folder, closed since
                return "/dev/null"

        def probe(key):
            yield Emit(sorted(name for name in os.environ if name.startswith("XDV")))
            yield Emit(os.getcwd() != KERNEL_CWD)
            yield Emit(sum(type(o).__name__ == "Kernel" for o in gc.get_objects()))
            yield Emit([opened(n) for n in os.listdir("/proc/self/fd")])
            with open(key) as handle:
                yield Emit(handle.read())

        KERNEL_CWD = None

        def main(kernel, key, cwd):
            global KERNEL_CWD
            KERNEL_CWD = cwd
            kernel.spawn(probe, key)
        """,
    )
    trace = tmp_path / "t.xdvt"
    result, outputs = _isolated(target, params={"key": str(key), "cwd": os.getcwd()}, trace=trace)
    assert outputs[0] == []  # no XDV_TOKEN, no XDV_HOME
    assert outputs[1] is True  # a scratch directory of its own
    assert outputs[2] == 0  # no kernel object in the worker
    # Only /dev/null, its two pipe ends and directories (of the import path) are open: not the
    # trace, nor anything else of the kernel's.
    for opened in outputs[3]:
        assert opened == "/dev/null" or opened.startswith("pipe:") or Path(opened).is_dir()
    if os.geteuid() == 0:  # as root the worker drops to nobody: the node key is out of reach
        assert _failure(result) == (
            "PROCESS_FAULT",
            f"PermissionError: [Errno 13] Permission denied: '{key}'",
        )
        assert len(outputs) == 4
    _no_children_left()


@pytest.mark.spec("XDV-010-11")
def test_the_kernel_proxy_refuses_what_is_not_a_setup_call(tmp_path: Path) -> None:
    target = _workload(
        tmp_path,
        """
        from xdv.errors import XdvError
        from xdv.syscalls import Emit

        def reach(kernel):
            for attempt in ("_table", "authority", "run"):
                try:
                    getattr(kernel, attempt)
                except XdvError as error:
                    yield Emit([attempt, error.code.name])
            # A message crafted by hand asks the kernel to run: refused there.
            try:
                kernel._worker.kernel_call("run")
            except XdvError as error:
                yield Emit(["raw run", error.code.name])

        def main(kernel):
            kernel.spawn(reach, kernel)
        """,
    )
    result, outputs = _isolated(target)
    assert result.status == "ok"
    assert outputs == [
        ["_table", "WORKER_REFUSED"],
        ["authority", "WORKER_REFUSED"],
        ["run", "WORKER_REFUSED"],
        ["raw run", "WORKER_REFUSED"],
    ]


_STEADY = """
from xdv.syscalls import Emit, Sleep

def steady():
    for tick in range(4):
        yield Emit(tick)
        yield Sleep(1)

def main(kernel):
    kernel.spawn(steady, name="steady")
    kernel.spawn(hostile, name="hostile")
"""


@pytest.mark.spec("XDV-010-12.1")
@pytest.mark.parametrize(
    ("body", "limits", "code", "message", "survives"),
    [
        (
            "while True:\n        pass",
            WorkerLimits(cpu_s=1),
            "WORKER_LIMIT_EXCEEDED",
            "the worker went past its CPU limit of 1 s",
            False,
        ),
        (
            "import time\n    time.sleep(60)",
            WorkerLimits(wall_s=1.5),
            "WORKER_LIMIT_EXCEEDED",
            "the worker went past its wall-clock limit of 1.5 s",
            False,
        ),
        (
            "hoard = [bytearray(64 << 20) for _ in range(64)]",
            WorkerLimits(memory_mb=512),
            "WORKER_LIMIT_EXCEEDED",
            "the worker ran out of memory (limit 512 MiB)",
            True,  # the allocation failed in the worker, which goes on serving the others
        ),
        (
            "import os\n    os._exit(3)",
            None,
            "WORKER_DIED",
            "the worker process exited with status 3",
            False,
        ),
        (
            "import os, sys\n    os.write(int(sys.argv[2]), b'\\xff' * 16)",
            None,
            "WORKER_PROTOCOL",
            "a message of 4294967295 bytes is over the limit worker_message_bytes_max = 16777216",
            False,
        ),
        (
            "import os, sys\n    os.write(int(sys.argv[2]), b'\\x00\\x00\\x00\\x02\\xc1\\x00')",
            None,
            "WORKER_PROTOCOL",
            "a message is not well-formed: a CBOR tag at byte 0 (tags are outside the trace "
            "format)",
            False,
        ),
        (
            # A well-formed answer, out of turn, naming a kernel object it was never given.
            "import os, sys, cbor2\n    forged = cbor2.dumps({'r': {'y': {'$h': 999}}})\n"
            "    os.write(int(sys.argv[2]), len(forged).to_bytes(4, 'big') + forged)\n"
            "    import time\n    time.sleep(60)",
            None,
            "WORKER_PROTOCOL",
            "the worker sent an unknown handle",
            False,
        ),
    ],
    ids=["cpu", "wall", "memory", "exit", "oversized", "garbage", "forged"],
)
def test_a_hostile_worker_ends_with_a_typed_fault(
    body: str,
    limits: WorkerLimits | None,
    code: str,
    message: str,
    survives: bool,
    tmp_path: Path,
) -> None:
    source = _STEADY + f"\ndef hostile():\n    yield Sleep(2)\n    {body}\n    yield Emit('x')\n"
    target = _workload(tmp_path, source)
    trace = tmp_path / "t.xdvt"
    outputs: list[Any] = []
    result = run_workload(
        target,
        trace=trace,
        isolation="process",
        worker_limits=limits,
        emit=lambda pid, value: outputs.append(value),
    )
    assert result.status == "failed"
    assert _failure(result, 2) == (code, message)
    # What the kernel accepted before the fault stays: the ticks already emitted, a trace that
    # verifies; the other process ends with the same fault when next resumed, unless the
    # worker itself survived.
    assert outputs[:2] == [0, 1]
    if survives:
        assert result.exits[1].ok and outputs == [0, 1, 2, 3]
    else:
        assert _failure(result, 1)[0] == code
    assert verify_trace(trace).ok
    faults = [entry for entry in read_trace(trace).entries if entry.status.name == code]
    assert faults
    _no_children_left()


@pytest.mark.spec("XDV-010-12.1")
def test_a_fork_bomb_cannot_fork(tmp_path: Path) -> None:
    target = _workload(
        tmp_path,
        """
        import os
        from xdv.syscalls import Emit

        def bomb():
            for _ in range(64):
                if os.fork() == 0:
                    os._exit(0)
            yield Emit("forked")

        def main(kernel):
            kernel.spawn(bomb)
        """,
    )
    result, outputs = _isolated(target)
    code, message = _failure(result)
    assert code == "PROCESS_FAULT"
    assert message is not None and message.startswith("BlockingIOError")
    assert outputs == []
    _no_children_left()


@pytest.mark.spec("XDV-010-10.4")
def test_loading_an_isolated_workload_imports_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    target = _workload(
        tmp_path,
        f"""
        open({str(marker)!r}, "w").close()
        XDV_DOMAINS = {{"Q": {{"manager": "q"}}}}
        XDV_VHMS = [{{"name": "a", "weight": 2}}]

        def main(kernel):
            pass
        """,
    )
    workload = load_workload(target, isolation="process")
    assert not marker.exists()
    assert workload.domains == {"Q": {"manager": "q"}}
    assert workload.vhms == ({"name": "a", "weight": 2},)
    assert workload.digest == load_workload(target).digest  # the same source digest
    marker.unlink()
    computed = _workload(tmp_path, "XDV_DOMAINS = dict(Q={'manager': 'q'})\n", "computed")
    with pytest.raises(XdvError) as refused:
        load_workload(computed, isolation="process")
    assert refused.value.code is ErrorCode.WORKER_START_FAILED
    # A module target could run anything importable: refused, never run in process instead.
    with pytest.raises(XdvError) as module:
        run(RunRequest(load_workload("examples.ping_pong:main"), isolation="process"))
    assert module.value.code is ErrorCode.WORKER_START_FAILED


def test_an_import_failure_is_refused_before_the_run(tmp_path: Path) -> None:
    target = _workload(tmp_path, "raise ValueError('no')\n")
    with pytest.raises(XdvError) as refused:
        run(RunRequest(load_workload(target, isolation="process"), isolation="process"))
    assert refused.value.code is ErrorCode.WORKLOAD_INVALID
    assert "ValueError: no" in refused.value.message


def test_worker_limits_are_checked() -> None:
    for bad in ({"cpu_s": 0}, {"memory_mb": 1}, {"wall_s": float("nan")}):
        with pytest.raises(XdvError) as refused:
            WorkerLimits(**bad)
        assert refused.value.code is ErrorCode.WORKER_LIMITS_INVALID
    with pytest.raises(XdvError):
        RunRequest(load_workload("examples/ping_pong.py"), isolation="thread")


_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("emit"), st.integers(-(2**70), 2**70) | st.text(max_size=4)),
        st.tuples(st.just("sleep"), st.integers(-1, 3)),
        st.tuples(st.just("now"), st.none()),
        st.tuples(st.just("random"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("child"), st.integers(0, 2)),
        st.tuples(st.just("bad"), st.sampled_from(["Wait(99)", "Release(7)", "'not a call'"])),
        st.tuples(st.just("raise"), st.none()),
    ),
    max_size=12,
)

_STEP = {
    "emit": "yield Emit({arg!r})",
    "sleep": "try:\n        yield Sleep({arg})\n    except XdvError as e:\n"
    "        yield Emit(e.code.name)",
    "now": "yield Emit((yield Now()))",
    "random": "rng = yield Random({arg!r})\n    yield Emit(rng.randint(0, 9))",
    "child": "pid = yield Spawn(child, ({arg},))\n    yield Emit((yield Wait(pid)).value)",
    "bad": "try:\n        yield {arg}\n    except XdvError as e:\n        yield Emit(e.code.name)",
    "raise": "raise KeyError({arg!r})",
}


@pytest.mark.spec("XDV-010-10.4")
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_OPERATIONS)
def test_random_system_calls_give_the_same_trace_isolated(
    operations: list[tuple[str, Any]], tmp_path_factory: Any
) -> None:
    lines = [_STEP[kind].format(arg=arg) for kind, arg in operations]
    source = (
        "from xdv.errors import XdvError\n"
        "from xdv.syscalls import Emit, Now, Random, Release, Sleep, Spawn, Wait\n\n"
        "def child(n):\n    for i in range(n):\n        yield Sleep(1)\n    return n * 2\n\n"
        "def anchor():\n    yield Emit('start')\n    " + "\n    ".join(lines) + "\n\n"
        "def main(kernel):\n    kernel.spawn(anchor)\n"
    )
    tmp_path = tmp_path_factory.mktemp("random")
    target = _workload(tmp_path, source, "random_calls")
    inprocess, isolated, _ = _both(target, tmp_path, seed=len(operations))
    assert isolated == inprocess


def test_xdv_run_isolate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from xdv.cli import cli

    trace = tmp_path / "t.xdvt"
    runner = CliRunner()
    base = [str(ROOT / "examples" / "ping_pong.py"), "--seed", "7", "--no-audit"]
    result = runner.invoke(
        cli, ["run", *base, "--isolate", "--cpu-limit", "20", "--trace", str(trace)]
    )
    assert result.exit_code == 0, result.output
    assert "ping paused" in result.output
    assert runner.invoke(cli, ["replay", "--isolate", str(trace)]).exit_code == 0
    refused = runner.invoke(cli, ["run", *base, "--memory-limit", "100"])
    assert refused.exit_code == 2


def test_link_values_round_trip_and_frames_are_checked() -> None:
    from xdv.runtime._link import Link, LinkBroken, decode_plain, encode_plain

    def encode(value: Any) -> Any:
        return encode_plain(value, encode)

    def decode(data: Any) -> Any:
        return decode_plain(data, decode)

    value = {
        1: [None, True, 2**80, -(2**70), float("inf"), 0.5, "τ", b"\x00"],
        ("t", 1): frozenset({1}),
        "s": {2, 3},
        "{'$d': 1}": {"$d": [1]},
    }
    read_fd, write_fd = os.pipe()
    try:
        link = Link(read_fd, write_fd, lambda body: None, repr, RuntimeError)
        link.send(encode(value))
        assert decode(link.receive()) == value
        decoded_nan = decode(encode(float("nan")))
        assert decoded_nan != decoded_nan
        os.write(write_fd, b"\x00\x00\x00\x01\xff")  # a break byte: outside the profile
        with pytest.raises(LinkBroken) as broken:
            link.receive()
        assert broken.value.code is ErrorCode.WORKER_PROTOCOL
        os.close(write_fd)
        with pytest.raises(LinkBroken) as ended:
            link.receive()
        assert ended.value.code is ErrorCode.WORKER_DIED
    finally:
        os.close(read_fd)
        with contextlib.suppress(OSError):
            os.close(write_fd)
