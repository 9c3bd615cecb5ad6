"""Φ-domain commands: ``xdv phirun`` (a MaxCut or BQM problem as a Φ job) and
``xdv witness verify`` (offline re-verification of a witness file, and of who signed it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from xdv.cli._common import (
    EXIT_MISMATCH,
    EXIT_RUNTIME,
    EXIT_STATIC,
    EXIT_USAGE,
    fail,
    interrupted,
    note_key,
    run_failure_exit,
    run_options,
    run_request,
)
from xdv.cli._progress import spinner, steps_bar
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import load_json, read_bounded
from xdv.runtime import phi_job, phi_report, run
from xdv.trace import jsonable

__all__ = ["phirun", "register", "witness"]


@click.command("phirun")
@click.argument("problem_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "problem_format",
    type=click.Choice(["gset", "bqm-json"]),
    default="gset",
    show_default=True,
    help="gset: a MaxCut graph; bqm-json: an Ising/QUBO problem in the Φ dictionary form, or "
    "a dimod BinaryQuadraticModel.to_serializable() document.",
)
@click.option(
    "--provider",
    type=click.Choice(["phase", "exact", "sa", "tabu"]),
    default="phase",
    show_default=True,
    help="phase: the oscillator machine; exact: CP-SAT; sa, tabu: D-Wave's simulated annealing "
    "and tabu samplers (the dwave extra), 16 reads.",
)
@click.option(
    "--budget-ms",
    type=click.FloatRange(0.001, 1e6),
    help="Anneal length in modelled device milliseconds (never wall time); phase provider.",
)
@click.option(
    "--tabu",
    type=click.IntRange(0, 1_000_000),
    help="Phase provider: tabu-search iterations per replica after the anneal's descent "
    "(default 0).",
)
@click.option(
    "--work-limit",
    type=click.FloatRange(0.001, 600.0),
    help="Exact provider: CP-SAT deterministic-time limit (a work measure, never wall time; "
    "default 10).",
)
@click.option(
    "--witness-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the signed witness goes (default: beside the trace, else $XDV_HOME/witnesses).",
)
@run_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def phirun(
    problem_file: Path,
    problem_format: str,
    provider: str,
    budget_ms: float | None,
    tabu: int | None,
    work_limit: float | None,
    witness_dir: Path | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Solve a MaxCut (G-set) or BQM problem as a Φ job: capability, coherence-window contract,
    provider (phase: anneal; exact: CP-SAT optimization), classical verification, witness and
    trace. The witness is signed with the node key; with --trace the run is audited and signed
    like any `xdv run`, and `xdv replay` rebuilds it from the trace alone."""
    if not problem_file.exists():
        fail(XdvError(f"no such file: {problem_file}", where="phirun"), EXIT_USAGE, as_json)
    try:
        workload = phi_job(
            problem_file,
            problem_format=problem_format,
            provider=provider,
            budget_ms=budget_ms,
            work_limit=work_limit,
            schedule=None if tabu is None else {"tabu": tabu},
        )
    except XdvError as error:
        fail(error, EXIT_STATIC, as_json)
    request = run_request(workload, options, witness_dir=witness_dir)
    try:
        if provider == "phase":
            with steps_bar("anneal", as_json) as advance:
                outcome = run(request, progress=advance)
        else:
            with spinner(f"{provider} provider", as_json):
                outcome = run(request)
    except XdvError as error:
        fail(error, run_failure_exit(error), as_json)
    note_key(outcome, as_json)
    if outcome.interrupted:
        interrupted(outcome, as_json)
    try:
        report = phi_report(outcome, source=problem_file.name, problem_format=problem_format)
    except XdvError as error:
        static = error.code in (
            ErrorCode.PHI_ERR_PROBLEM_INVALID,
            ErrorCode.OPERATION_UNSUPPORTED,
            ErrorCode.INPUT_LIMIT_EXCEEDED,
        )
        fail(
            XdvError(f"the Φ job failed: {error.code.name}: {error.message}", code=error.code),
            EXIT_STATIC if static else EXIT_RUNTIME,
            as_json,
        )
    if as_json:
        click.echo(json.dumps({"ok": True, **jsonable(report)}, sort_keys=True))
        return
    if "cut" in report:
        click.echo(f"cut {report['cut']:g}")
    click.echo(f"energy {report['energy']:g}")
    stability = report["stability"]
    if "status" in report:
        bound = f"cut ≤ {report['cut_bound']:g}" if "cut_bound" in report else ""
        click.echo(f"status {report['status']}  energy bound {report['bound']:g}  {bound}".rstrip())
        click.echo(
            f"stability {stability['stability']:.4f}  work {report['solver']['work']:.4g}  "
            f"checksum {stability['checksum']}"
        )
    elif "order_parameter" in report:
        click.echo(
            f"stability {stability['stability']:.4f}  noise index "
            f"{stability['noise_index']:.4f}  order parameter {report['order_parameter']:.4f}  "
            f"checksum {stability['checksum']}"
        )
    else:  # a sampler provider's reads
        click.echo(
            f"stability {stability['stability']:.4f}  reads {len(report['reads']['energies'])}"
            f"  checksum {stability['checksum']}"
        )
    _echo_solution(report.get("solution"))
    click.echo(f"witness {report['witness']['file'] or report['witness']['digest']}")
    if report["trace"]:
        click.echo(f"trace {report['trace']}")


def _echo_solution(solution: dict[str, Any] | None) -> None:
    """Print a MaxCut partition (two lines of vertex numbers) or a BQM sample (label=value)."""
    if not solution:
        return
    if "partition" in solution:
        for name, side in zip("AB", solution["partition"], strict=True):
            click.echo(f"side {name} ({len(side)} vertices): {' '.join(map(str, side))}")
        return
    pairs = " ".join(f"{label}={value}" for label, value in solution["sample"].items())
    click.echo(f"sample ({solution['vartype']}) {pairs}")


@click.group("witness")
def witness() -> None:
    """Φ witnesses: signed, self-describing records of verified configurations."""


@witness.command("verify")
@click.argument("witness_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-recheck", is_flag=True, help="Skip re-deciding constraint sets.")
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    help="Fingerprint of a key allowed to sign the witness (repeatable; see `xdv key show`).",
)
@click.option(
    "--require-signature",
    is_flag=True,
    help="Fail unless the witness carries a valid signature (implied by --trusted-key).",
)
@click.option("--json", "as_json", is_flag=True)
def witness_verify(
    witness_file: Path,
    no_recheck: bool,
    trusted_keys: tuple[str, ...],
    require_signature: bool,
    as_json: bool,
) -> None:
    """Re-verify a witness offline: problem hash, configuration, signature (exit 1 if not).

    A valid signature proves only that the key's holder signed the witness; --trusted-key
    says whose key that must be (the node key's fingerprint, from `xdv key show`)."""
    from xdv.domains.phi import verify_witness

    try:
        data = read_bounded(witness_file, "document_bytes_max", what="witness")
    except XdvError as error:
        fail(
            error,
            EXIT_USAGE if error.code is ErrorCode.INVALID_ARGUMENT else EXIT_MISMATCH,
            as_json,
        )
    try:
        document = load_json(data, f"witness {witness_file}")
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    try:
        report = verify_witness(
            document,
            recheck=not no_recheck,
            trusted=set(trusted_keys) if trusted_keys else None,
            require_signature=require_signature,
        )
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **jsonable(report)}, sort_keys=True))
    else:
        click.echo(
            f"OK: {report['kind']} witness {report['digest'][:16]}…, status {report['status']} "
            f"(checked: {', '.join(report['checked'])}), "
            f"{report['signature']}" + (" (trusted)" if report["trusted"] else "")
        )


def register(group: click.Group) -> None:
    """Add the Φ commands to the ``xdv`` command group."""
    group.add_command(phirun)
    group.add_command(witness)
