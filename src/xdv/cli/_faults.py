"""``xdv faults``: check a fault plan, or draw a random one (see docs/faults.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from xdv.cli._common import EXIT_MISMATCH, fail
from xdv.core import FaultPlan, RandomStream
from xdv.errors import XdvError

__all__ = ["faults"]


def _document(plan: FaultPlan) -> dict[str, object]:
    """The plan in its full document form (even a plain plan of simple rules)."""
    record = plan.to_record()
    if isinstance(record, list):
        return {"version": 1, "inject": record, "policies": {}}
    return record


@click.group("faults")
def faults() -> None:
    """Fault plans for `xdv run --faults` (docs/faults.md)."""


@faults.command("check")
@click.argument("plan_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
def faults_check(plan_path: Path, as_json: bool) -> None:
    """Read a fault plan as `xdv run --faults` does; print it as the trace will record it
    (normalized: keys sorted, defaults left out), or the first problem and the field it is in
    (exit 1)."""
    try:
        plan = FaultPlan.from_file(plan_path)
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    document = _document(plan)
    if as_json:
        click.echo(json.dumps({"ok": True, "plan": document}, sort_keys=True, ensure_ascii=False))
        return
    click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
    click.echo(f"OK: {len(plan.rules)} injection rules, {len(plan.policies)} policies", err=True)


@faults.command("random")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option("--rules-max", type=click.IntRange(0, 256), default=4, show_default=True)
def faults_random(seed: int, rules_max: int) -> None:
    """Print a random fault plan drawn from SEED alone (the simulator's generator): the same
    seed prints the same plan."""
    plan = FaultPlan.random(RandomStream(seed, ("fault plan",)), rules_max=rules_max)
    click.echo(json.dumps(_document(plan), indent=2, sort_keys=True, ensure_ascii=False))
