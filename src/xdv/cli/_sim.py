"""``xdv sim``: the whole-system simulator from the command line (see docs/sim.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from xdv import runtime  # its simulator loads on first use (see xdv.runtime.__getattr__)
from xdv.cli._common import EXIT_MISMATCH, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, err_console, fail
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import load_json, read_bounded
from xdv.trace import jsonable

if TYPE_CHECKING:
    from xdv.runtime import SeedReport

__all__ = ["register", "sim"]

# How many seeds --long runs when --seeds is not given.
LONG_SEEDS = 10_000


def _print_failure(report: SeedReport) -> None:
    for violation in report.violations:
        at = "" if violation.at is None else f" at L={violation.at}"
        err_console.print(
            f"[bold red]seed {report.seed}[/]: {violation.invariant}{at}: "
            f"{escape(violation.detail)}"
        )
    if report.shrunk is not None:
        reproduction = {"seed": report.seed, "plan": report.shrunk}
        err_console.print(
            "  shrunk reproduction (save as plan.json and run `xdv sim --plan plan.json`):"
        )
        click.echo(json.dumps(jsonable(reproduction), ensure_ascii=False, sort_keys=True))


def _load_plan(path: Path) -> tuple[int, dict[str, Any]]:
    document = load_json(read_bounded(path, "document_bytes_max", what="plan"), str(path))
    if not isinstance(document, dict) or type(document.get("seed")) is not int:
        raise XdvError(
            'a plan file is {"seed": N, "plan": {...}} (what a violation report prints)',
            code=ErrorCode.SIM_PLAN_INVALID,
            where=str(path),
        )
    return document["seed"], runtime.check_plan(document.get("plan"))


@click.command()
@click.option("--seeds", type=click.IntRange(1, 10**9), help="How many seeds to run.")
@click.option("--start", type=click.IntRange(0, 2**63), default=0, show_default=True)
@click.option(
    "--long", "long_mode", is_flag=True, help=f"Run {LONG_SEEDS:,} seeds (unless --seeds)."
)
@click.option("--self-test", "self_testing", is_flag=True, help="Plant every mutant; catch all.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Run one saved plan (a violation's reproduction) instead of generated ones.",
)
@click.option("--no-shrink", is_flag=True, help="Report violations without shrinking them.")
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes sharing the seeds (the results do not depend on it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def sim(
    seeds: int | None,
    start: int,
    long_mode: bool,
    self_testing: bool,
    plan_file: Path | None,
    no_shrink: bool,
    jobs: int,
    as_json: bool,
) -> None:
    """Simulate the whole system: run generated multi-process K/Q/Φ workloads with faults in
    the real kernel, check its invariants after every step, replay each run, and shrink any
    failure to a small reproduction.

    Exit status: 0 when nothing broke (every mutant caught, for --self-test), 1 otherwise.
    """
    try:
        if self_testing:
            _self_test(as_json)
        if plan_file is not None:
            seed, plan = _load_plan(plan_file)
            report = runtime.run_plan(seed, plan)
            if as_json:
                click.echo(json.dumps(jsonable(report.to_json()), sort_keys=True))
            elif report.violations:
                _print_failure(report)
            else:
                click.echo(f"plan of seed {seed}: no violation ({report.steps} steps)")
            sys.exit(EXIT_MISMATCH if report.violations else EXIT_OK)
        count = seeds if seeds is not None else (LONG_SEEDS if long_mode else 100)
        result = runtime.simulate(
            count,
            start,
            shrink_violations=not no_shrink,
            progress=None if as_json else _print_if_failed,
            jobs=jobs,
        )
    except XdvError as error:
        code = EXIT_USAGE if error.code is ErrorCode.SIM_PLAN_INVALID else EXIT_RUNTIME
        fail(error, code, as_json)
    if as_json:
        click.echo(json.dumps(jsonable(result.to_json()), ensure_ascii=False, sort_keys=True))
    else:
        click.echo(
            f"{result.runs} seeds ({start}..{start + result.runs - 1}), {result.steps} steps, "
            f"{result.events} trace entries: {result.violations} violation(s) in "
            f"{len(result.failures)} seed(s); {result.seconds:.1f} s "
            f"({result.runs / result.seconds if result.seconds else 0:.1f} seeds/s)"
        )
    sys.exit(EXIT_MISMATCH if result.failures else EXIT_OK)


def _print_if_failed(report: SeedReport) -> None:
    if report.violations:
        _print_failure(report)


def _self_test(as_json: bool) -> None:
    report = runtime.self_test()
    if as_json:
        click.echo(json.dumps(jsonable(report.to_json()), ensure_ascii=False, sort_keys=True))
    else:
        for result in report.results:
            if result.caught:
                click.echo(
                    f"caught   {result.name}: {result.invariant} (seed {result.seed}): "
                    f"{result.detail}"
                )
            else:
                click.echo(
                    f"MISSED   {result.name} ({result.seeds_run} seeds): {result.description}"
                )
        click.echo(
            f"{report.caught} of {report.mutants} mutants caught; "
            f"{report.clean.runs} unmutated seeds, {report.clean.violations} violation(s)"
        )
    sys.exit(EXIT_OK if report.ok else EXIT_MISMATCH)


def register(group: click.Group) -> None:
    """Add ``xdv sim`` to the ``xdv`` command group."""
    group.add_command(sim)
