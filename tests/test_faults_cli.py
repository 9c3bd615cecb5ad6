"""`xdv faults check` and `xdv faults random`."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import EXAMPLES, xdv
from xdv.core import FaultPlan


def test_check_prints_the_plan_as_recorded_or_the_bad_field(tmp_path: Path) -> None:
    completed = xdv("faults", "check", str(EXAMPLES / "faults_plan.json"), "--json")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)["plan"]
    assert FaultPlan.from_document(document) == FaultPlan.from_file(EXAMPLES / "faults_plan.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"policies": {"q": {"retry": {"attempts": 1, "factor": 99}}}}')
    completed = xdv("faults", "check", str(bad), "--json")
    assert completed.returncode == 1
    error = json.loads(completed.stdout)["error"]
    assert error["code"] == "FAULT_PLAN_INVALID" and error["where"].endswith("retry.factor")


def test_random_plans_depend_on_the_seed_alone() -> None:
    first, again, other = (
        xdv("faults", "random", "--seed", seed, "--rules-max", "6") for seed in ("5", "5", "6")
    )
    assert first.returncode == 0 and first.stdout == again.stdout != other.stdout
    FaultPlan.from_document(json.loads(first.stdout))  # a valid plan
