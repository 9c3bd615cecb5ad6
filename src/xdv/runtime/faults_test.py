"""Tracebacks of failing anchors: reported by the runtime, never written to the trace."""

from __future__ import annotations

from pathlib import Path

from xdv.runtime import RunRequest, load_workload, run, run_workload

ROOT = Path(__file__).resolve().parents[3]

FAILING = """
from xdv.syscalls import Emit, Spawn, Wait


def helper(value):
    return 10 // value


def child(value):
    yield Emit("child")
    yield Emit(helper(value))


async def waiter():
    await Emit("async")
    raise RuntimeError("async anchor")


def counted(prefix, count):
    for index in range(count):
        yield Emit(f"{prefix} {index}")


def parent():
    pid = yield Spawn(child, (0,), name="child")
    yield Wait(pid)
    return "parent done"


def main(kernel):
    kernel.spawn(parent, name="parent")
    kernel.spawn(waiter, name="waiter")
    kernel.spawn(__import__("functools").partial(counted, "partial"), 2, name="partial")
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "failing.py"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tracebacks_change_nothing_in_the_trace(tmp_path: Path) -> None:
    workload = load_workload(str(ROOT / "tests" / "workloads" / "mixed.py"))
    reported = run(RunRequest(workload, seed=9, trace=tmp_path / "reported.xdvt", audit=False))
    run_workload(workload, seed=9, trace=tmp_path / "bare.xdvt")
    assert (tmp_path / "reported.xdvt").read_bytes() == (tmp_path / "bare.xdvt").read_bytes()
    (pid,) = reported.faults
    text = reported.faults[pid]
    assert reported.result.exits[pid].message == "ValueError: a bug in the anchor"
    assert 'mixed.py", line 66, in faulty' in text and text.endswith("a bug in the anchor\n")
    assert "_faults.py" not in text and "_kernel.py" not in text  # only the workload's frames
    assert b"line 66" not in (tmp_path / "reported.xdvt").read_bytes()


def test_children_async_anchors_and_callables_are_covered(tmp_path: Path) -> None:
    workload = load_workload(write(tmp_path, FAILING))
    outcome = run(RunRequest(workload, trace=tmp_path / "t.xdvt", audit=False))
    run_workload(workload, trace=tmp_path / "bare.xdvt")
    assert (tmp_path / "t.xdvt").read_bytes() == (tmp_path / "bare.xdvt").read_bytes()
    by_name = {status.message: pid for pid, status in outcome.result.exits.items()}
    child = outcome.faults[by_name["ZeroDivisionError: integer division or modulo by zero"]]
    assert "in child" in child and "in helper" in child and "return 10 // value" in child
    assert "in waiter" in outcome.faults[by_name["RuntimeError: async anchor"]]
    assert len(outcome.faults) == 2  # the parent, and the partial's process, ended well
    assert sorted(outcome.outputs()) == ["async", "child", "partial 0", "partial 1"]


def test_a_failing_setup_is_reported_with_its_traceback(tmp_path: Path) -> None:
    text = "def main(kernel):\n    raise KeyError('no such thing')\n"
    outcome = run(RunRequest(load_workload(write(tmp_path, text))))
    assert outcome.status == "failed" and 'failing.py", line 2, in main' in outcome.faults[0]
    assert "run_test" not in outcome.faults[0] and "_run.py" not in outcome.faults[0]
