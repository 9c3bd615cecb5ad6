"""The whole-system simulator: seeds pass, every planted bug is caught, failures shrink."""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from xdv.core import MUTANTS, Kernel, mutation
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import (
    check_plan,
    generate_plan,
    run_plan,
    run_seed,
    self_test,
    simulate,
)
from xdv.runtime._sim_plan import plan_size
from xdv.syscalls import Emit, Sleep

SEEDS = 50 if not os.environ.get("XDV_LONG") else 5000

# Violations the simulator finds in the scheduler as merged today, each with a minimal
# reproduction in the simulator's report: (invariant, a phrase of its message). Anything else
# fails the test; remove an entry once its bug is fixed.
KNOWN_ISSUES: tuple[tuple[str, str], ...] = ()


def _unknown(violations: list[Any]) -> list[Any]:
    return [
        violation
        for violation in violations
        if not any(
            violation.invariant == invariant and phrase in violation.detail
            for invariant, phrase in KNOWN_ISSUES
        )
    ]


def test_generated_seeds_hold_every_invariant() -> None:
    report = simulate(SEEDS, start=0, shrink_violations=False)
    unknown = [(f.seed, _unknown(f.violations)) for f in report.failures if _unknown(f.violations)]
    assert unknown == []
    assert report.runs == SEEDS
    # The plans do real work: many steps and entries per seed on average.
    assert report.steps > 10 * SEEDS
    assert report.events > 50 * SEEDS


@pytest.mark.slow
def test_thousands_of_seeds_hold_every_invariant() -> None:
    report = simulate(5000, start=1_000_000, shrink_violations=False, jobs=2)
    assert [
        (f.seed, _unknown(f.violations)) for f in report.failures if _unknown(f.violations)
    ] == []


def test_self_test_catches_every_mutant() -> None:
    # Every third mutant in the default run (CI also runs `xdv sim --self-test`, which plants
    # them all); all of them with --long.
    assert len(MUTANTS) >= 10
    names = sorted(MUTANTS) if os.environ.get("XDV_LONG") else sorted(MUTANTS)[::3]
    report = self_test(names, seeds_max=100, clean_seeds=10)
    missed = [result.name for result in report.results if not result.caught]
    assert missed == []
    assert report.mutants == len(names)
    assert report.ok
    document = report.to_json()
    assert document["mutants"] == document["mutants_caught"] == len(names)


def test_a_mutant_is_removed_when_its_block_ends() -> None:
    plan = generate_plan(0)
    with mutation("skip-quota-check"):
        assert run_plan(0, plan).violations
    assert not run_plan(0, plan).violations
    with pytest.raises(XdvError) as raised, mutation("no-such-mutant"):
        pass
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT


def test_a_violation_shrinks_to_a_small_plan_that_still_fails() -> None:
    with mutation("lose-wakeup"):
        report = run_seed(1)
        assert report.violations[0].invariant == "liveness"
        assert report.shrunk is not None
        assert plan_size(report.shrunk) < plan_size(generate_plan(1)) // 4
        again = run_plan(1, report.shrunk)
    assert again.violations[0].invariant == "liveness"
    # The reproduction is plain JSON, and passes once the bug is gone.
    assert json.loads(json.dumps(report.to_json()))["reproduction"]["seed"] == 1
    assert not run_plan(1, report.shrunk).violations


def test_plans_are_a_function_of_the_seed() -> None:
    assert generate_plan(42) == generate_plan(42)
    assert generate_plan(42) != generate_plan(43)
    for seed in range(50):
        assert check_plan(generate_plan(seed))


@pytest.mark.parametrize(
    "edit",
    [
        lambda plan: plan.pop("procs"),
        lambda plan: plan.update(quantum=0),
        lambda plan: plan["procs"][0]["ops"].append(["fork", 1]),
        lambda plan: plan["procs"][0]["ops"].append(["sleep"]),
        lambda plan: plan["procs"][0]["ops"].append(["reserve", "X", 1, 0, 4]),
        lambda plan: plan["procs"][0].update(domains=["Q"]),
        lambda plan: plan.update(faults=[{"site": "nowhere"}]),
        lambda plan: plan["managers"].pop("K"),
    ],
)
def test_malformed_plans_are_refused(edit: Any) -> None:
    plan = generate_plan(3)
    edit(plan)
    with pytest.raises(XdvError) as raised:
        run_plan(3, plan)
    assert raised.value.code is ErrorCode.SIM_PLAN_INVALID


def test_the_step_observer_sees_every_step_in_order() -> None:
    seen: list[tuple[int, int]] = []

    def worker(n: int) -> Generator[Any, Any, None]:
        for i in range(n):
            yield Emit(i)
            yield Sleep(1)

    kernel = Kernel(3, quantum=2, observer=lambda steps: seen.append((steps, kernel.clock.now)))
    kernel.spawn(worker, 3)
    kernel.spawn(worker, 2)
    result = kernel.run()
    assert [steps for steps, _ in seen] == list(range(result.steps))
    times = [now for _, now in seen]
    assert times == sorted(set(times))  # strictly increasing between steps
    # Without an observer the same run makes the same trace.
    plain = Kernel(3, quantum=2)
    plain.spawn(worker, 3)
    plain.spawn(worker, 2)
    assert plain.run().head_hash == result.head_hash


def test_an_observer_that_raises_stops_the_run() -> None:
    def worker() -> Generator[Any, Any, None]:
        while True:
            yield Sleep(1)

    def observer(steps: int) -> None:
        if steps == 5:
            raise RuntimeError("stop")

    kernel = Kernel(0, observer=observer)
    kernel.spawn(worker)
    with pytest.raises(RuntimeError, match="stop"):
        kernel.run()


def test_cli_runs_seeds_and_refuses_a_bad_plan(tmp_path: Path) -> None:
    from tests.helpers import xdv

    done = xdv("sim", "--seeds", "4", "--start", "20", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["runs"] == 4 and document["violations"] == len(document["failures"]) == 0

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"seed": 1, "plan": {"procs": []}}), encoding="utf-8")
    refused = xdv("sim", "--plan", str(bad), "--json")
    assert refused.returncode == 64
    assert json.loads(refused.stdout)["error"]["code"] == "SIM_PLAN_INVALID"
