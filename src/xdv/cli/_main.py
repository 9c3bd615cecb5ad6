"""The ``xdv`` command line.

Exit codes: 0 success; 1 verification or replay mismatch; 64 usage error; 65 static error (a
workload that cannot be loaded); 70 runtime failure (a process failed, a limit was hit, or an
internal invariant broke); 71/72 a DPL admissibility failure or contract violation; 130
interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from xdv.cli import _cluster, _cts, _node, _phi, _q, _service, _sim, _telemetry, _view
from xdv.cli._audit import audit as _audit_group
from xdv.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STATIC,
    EXIT_USAGE,
    cli,
    echo_output,
    err_console,
    exit_code_for,
    fail,
    note_key,
    report_failures,
    run_failure_exit,
    run_options,
    run_request,
)
from xdv.cli._dpl import dpl_check, dpl_dir, dpl_static_failure
from xdv.cli._faults import faults as _faults_group
from xdv.cli._key import key as _key_group
from xdv.core import FaultPlan
from xdv.errors import ErrorCode, InvariantViolation, TraceError, XdvError
from xdv.runtime import WorkerLimits, load_dpl_program, load_workload
from xdv.runtime import replay as replay_trace
from xdv.runtime import run as run_workload
from xdv.security import verify_audit
from xdv.trace import diff_traces, first_divergence, jsonable, read_trace, scan_trace, verify_trace


def isolation_options(function: Any) -> Any:
    """``--isolate`` and the worker's limits (``--cpu-limit``, ``--memory-limit``,
    ``--wall-limit``) of a command that runs a workload."""
    defaults = WorkerLimits()
    decorators = [
        click.option(
            "--isolate",
            is_flag=True,
            help="Run a Python workload's code in a separate, limited worker process "
            "(docs/isolation.md).",
        ),
        click.option(
            "--cpu-limit",
            type=float,
            help=f"With --isolate: the worker's CPU seconds (default {defaults.cpu_s:g}).",
        ),
        click.option(
            "--memory-limit",
            type=int,
            help=f"With --isolate: the worker's memory in MiB (default {defaults.memory_mb}).",
        ),
        click.option(
            "--wall-limit",
            type=float,
            help=f"With --isolate: the worker's wall-clock seconds (default {defaults.wall_s:g}).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def worker_limits(
    isolate: bool,
    cpu: float | None,
    memory: int | None,
    wall: float | None,
    as_json: bool,
) -> WorkerLimits | None:
    """The worker limits the options ask for (None: the defaults); a limit without
    --isolate is a usage error."""
    given: dict[str, Any] = {
        name: value
        for name, value in (("cpu_s", cpu), ("memory_mb", memory), ("wall_s", wall))
        if value is not None
    }
    if not isolate:
        if given:
            raise click.UsageError("--cpu-limit, --memory-limit and --wall-limit need --isolate")
        return None
    try:
        return WorkerLimits(**given)
    except XdvError as error:
        fail(error, EXIT_USAGE, as_json)


@cli.command()
@click.argument("target")
@run_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option(
    "--quantum",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    help="Time slice, in deterministic steps.",
)
@click.option(
    "--fsync",
    type=click.Choice(["always", "batch", "never"]),
    default="batch",
    show_default=True,
    help="Trace durability policy.",
)
@click.option("--entry", help="DPL programs (.ds): the K process to run (default main).")
@click.option(
    "--witness-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where Φ witnesses go (default: beside the trace, else $XDV_HOME/witnesses).",
)
@click.option(
    "--faults",
    "faults_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fault plan (JSON, see docs/faults.md): faults to inject, recovery and escalation.",
)
@isolation_options
def run(
    target: str,
    as_json: bool,
    quantum: int,
    fsync: str,
    entry: str | None,
    witness_dir: Path | None,
    faults_path: Path | None,
    isolate: bool,
    cpu_limit: float | None,
    memory_limit: int | None,
    wall_limit: float | None,
    **options: Any,
) -> None:
    """Run a workload: a Python file (file.py[:function]), a module (package.module:function)
    or a DPL program (file.ds).

    Emitted values are printed one per line as the trace entries recording them become durable.
    With --trace the run is audited by default: the trace gets Merkle checkpoints and an audit
    file (TRACE.audit) of tree heads signed with the node key, created on first use. Witnesses
    of Φ work (DPL prove and seal, Python workloads on the Φ domain) are signed with the same
    key. SIGINT/SIGTERM end the run cleanly (exit 130/143; the trace records the interruption).
    With --faults the run follows a fault plan (docs/faults.md), recorded in the trace so that
    `xdv replay` rebuilds it. With --isolate a Python file's code runs in a worker process
    under CPU, memory and wall-clock limits, never in this one (docs/isolation.md); the trace
    is the same as without it.
    """
    limits = worker_limits(isolate, cpu_limit, memory_limit, wall_limit, as_json)
    isolation = "process" if isolate else "inprocess"
    faults = None
    if faults_path is not None:
        try:
            faults = FaultPlan.from_file(faults_path)
        except XdvError as error:
            fail(error, EXIT_USAGE, as_json)
    is_dpl = target.endswith(".ds") or ".ds:" in target or Path(target).is_dir()
    if entry is not None and not is_dpl:
        raise click.UsageError("--entry names a DPL process; for Python use file.py:function")
    try:
        workload = (
            load_dpl_program(target, entry)[0]
            if is_dpl
            else load_workload(target, isolation=isolation)
        )
    except XdvError as error:
        if is_dpl:  # a DPL program's diagnostics, rendered like `xdv check`
            dpl_static_failure(error, as_json)
        fail(error, EXIT_STATIC, as_json)

    def emit(pid: int, value: Any) -> None:
        line = workload.output_line(value)
        if line is not None and not as_json:
            echo_output(line)

    request = run_request(
        workload,
        options,
        quantum=quantum,
        fsync=fsync,
        witness_dir=witness_dir,
        faults=faults,
        isolation=isolation,
        limits=limits,
    )
    try:
        outcome = run_workload(request, emit=emit)
    except XdvError as error:
        fail(error, run_failure_exit(error), as_json)
    note_key(outcome, as_json)
    exit_code = exit_code_for(outcome)
    if as_json:
        click.echo(json.dumps({**outcome.to_json(), "exit_code": exit_code}, sort_keys=True))
    else:
        report_failures(outcome)
        for path in outcome.witnesses:
            err_console.print(f"[dim]witness {path}[/]")
        result = outcome.result
        trace_path = options["trace_path"]
        where = str(trace_path) if trace_path else "not saved (use --trace PATH)"
        signed = f", signed by {outcome.signer[:16]}…" if outcome.audit and outcome.signer else ""
        err_console.print(
            f"[dim]{result.status}: {result.steps} steps, {result.events} events, "
            f"L={result.logical_time}, head {result.head_hash[:16]}…, trace {where}{signed}, "
            f"{result.wall_seconds:.3f} s[/]"
        )
    sys.exit(exit_code)


@cli.command()
@click.argument("trace_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["reexecute", "inject"]),
    default="reexecute",
    show_default=True,
    help="reexecute: call the domains again; inject: feed recorded outcomes back.",
)
@click.option("--workload", help="Workload target to use instead of the recorded one.")
@click.option("--json", "as_json", is_flag=True)
@isolation_options
def replay(
    trace_path: Path,
    mode: str,
    workload: str | None,
    as_json: bool,
    isolate: bool,
    cpu_limit: float | None,
    memory_limit: int | None,
    wall_limit: float | None,
) -> None:
    """Replay a recorded run and check that it produces the identical trace.

    With --isolate a Python workload's code runs in a worker process (as for `xdv run
    --isolate`); the trace of a run made with or without --isolate replays either way."""

    limits = worker_limits(isolate, cpu_limit, memory_limit, wall_limit, as_json)
    try:
        report = replay_trace(
            trace_path,
            mode,
            workload=workload,
            isolation="process" if isolate else "inprocess",
            limits=limits,
        )
    except XdvError as error:
        fail(
            error,
            EXIT_STATIC if error.code is ErrorCode.WORKLOAD_INVALID else EXIT_MISMATCH,
            as_json,
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True, default=str))
    elif report.ok:
        click.echo(f"replay ({mode}) identical: {report.entries} entries")
    else:
        click.echo(f"replay ({mode}) DIVERGED")
        if report.divergence is not None:
            click.echo(report.divergence.describe())
    sys.exit(EXIT_OK if report.ok else EXIT_MISMATCH)


@cli.command()
@click.argument("trace_path", type=click.Path(path_type=Path))
@click.option(
    "--allow-open",
    is_flag=True,
    help="Accept a trace without a run-end entry (a run that was killed) if its chain is intact.",
)
@click.option(
    "--audit",
    "audit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Audit file of signed tree heads (default: TRACE.audit when it exists).",
)
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    help="Fingerprint of a key allowed to sign the audit file (repeatable).",
)
@click.option(
    "--require-signature",
    is_flag=True,
    help="Fail unless the trace has a valid signed audit (implied by --trusted-key).",
)
@click.option("--json", "as_json", is_flag=True)
def verify(
    trace_path: Path,
    allow_open: bool,
    audit_path: Path | None,
    trusted_keys: tuple[str, ...],
    require_signature: bool,
    as_json: bool,
) -> None:
    """Verify a trace: framing, checksums, canonical encoding, hash chain, order, completeness,
    Merkle checkpoints and, when the trace is signed, every signed tree head.

    A run that SIGINT or SIGTERM ended is complete (it has its run end) and is reported as
    interrupted, never as a normal completion.

    A directory is a cluster trace (`xdv cluster run --trace DIR`): every node trace, every job
    trace, the signed heads, the placements, the merged global order and the signed manifest
    are checked (docs/cluster.md)."""

    if trace_path.is_dir():
        verify_cluster(trace_path, trusted_keys, as_json)

    try:
        report = verify_trace(trace_path, allow_open=allow_open)
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    audit_report = None
    if report.ok:
        try:
            audit_report = verify_audit(
                trace_path,
                audit_path,
                trusted=set(trusted_keys) if trusted_keys else None,
                require_signature=require_signature,
                allow_open=allow_open,
            )
        except XdvError as error:
            fail(error, EXIT_MISMATCH, as_json)
    if as_json:
        document = report.to_json()
        document["end_status"] = report.end_status
        document["interrupted"] = report.interrupted
        if audit_report is not None:
            document["audit"] = {
                "checkpoints": audit_report.checkpoints,
                "root": audit_report.root,
                "signed": audit_report.signed,
                "heads": audit_report.heads,
                "signer": audit_report.signer,
                "trusted": audit_report.trusted,
            }
        click.echo(json.dumps(document, sort_keys=True))
    elif report.ok:
        if not report.complete:
            state = "open (no run-end entry)"
        elif report.interrupted:
            state = "complete, but the run was INTERRUPTED before it finished"
        else:
            state = "complete"
        click.echo(f"OK: {report.entries} entries, chain intact, {state}, head {report.head_hash}")
        if audit_report is not None:
            click.echo(f"Merkle root {audit_report.root}, {audit_report.checkpoints} checkpoints")
            if audit_report.signed and audit_report.signer is not None:
                plural = "" if audit_report.heads == 1 else "s"
                click.echo(
                    f"signed: {audit_report.heads} tree head{plural} by key {audit_report.signer}"
                    + (" (trusted)" if audit_report.trusted else "")
                )
            else:
                click.echo("not signed")
    else:
        problem = report.error if report.error is not None else TraceError("unknown problem")
        click.echo(
            f"FAILED at entry {problem.entry_index} (byte offset {problem.offset}): "
            f"{problem.code.name}: {problem.message}"
        )
        click.echo(f"{report.entries} entries before it verified")
    sys.exit(EXIT_OK if report.ok else EXIT_MISMATCH)


def verify_cluster(directory: Path, trusted_keys: tuple[str, ...], as_json: bool) -> None:
    """``xdv verify DIR`` for a cluster trace directory."""
    from xdv.cluster import verify_cluster_trace

    try:
        report = verify_cluster_trace(
            directory, trusted=set(trusted_keys) if trusted_keys else None
        )
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        lost = f", {len(report.lost)} lost ({', '.join(report.lost)})" if report.lost else ""
        click.echo(
            f"OK: cluster {report.cluster}: {report.traces} traces ({report.nodes} nodes{lost}), "
            f"{report.jobs} jobs in {report.epochs} epochs, every trace intact and its head signed"
        )
        click.echo(f"merged order: {report.entries} entries, root {report.merge_root}")
        click.echo(f"heads root {report.heads_root}")
        click.echo(
            f"manifest signed by key {report.signer}" + (" (trusted)" if report.trusted else "")
        )
    sys.exit(EXIT_OK)


@cli.group()
def trace() -> None:
    """Inspect traces."""


@trace.command("show")
@click.argument("trace_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@click.option("--process", "pid", type=int, help="Only entries of this process.")
@click.option("--event", "event_name", help="Only entries of this event type (e.g. EFFECT).")
@click.option("--vhm", "vhm", type=int, help="Only entries of this virtual hybrid machine.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many entries.")
def trace_show(
    trace_path: Path,
    as_json: bool,
    pid: int | None,
    event_name: str | None,
    vhm: int | None,
    limit: int | None,
) -> None:
    """Show a trace's entries (the intact prefix of a damaged trace, with a warning)."""

    try:
        scan = scan_trace(trace_path)
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    entries = [
        entry
        for entry in scan.entries
        if (pid is None or entry.process == pid)
        and (event_name is None or entry.event_name == event_name.upper())
        and (vhm is None or entry.vhm == vhm)
    ]
    if limit is not None:
        entries = entries[:limit]
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False))
    else:
        table = Table(box=None, header_style="bold")
        columns = ("#", "L", "event", "dom", "pid", "vhm", "cap", "contract", "status", "metadata")
        for column in columns:
            table.add_column(column, overflow="fold")
        for entry in entries:
            table.add_row(
                str(entry.seq),
                str(entry.logical_time),
                entry.event_name,
                entry.domain_label,
                str(entry.process),
                str(entry.vhm),
                str(entry.capability or ""),
                str(entry.contract or ""),
                entry.status_name,
                json.dumps(jsonable(entry.metadata), ensure_ascii=False, sort_keys=True),
            )
        Console(highlight=False, width=160).print(table)
    if scan.error is not None:
        err_console.print(f"[yellow]warning[/]: {scan.error}")
        sys.exit(EXIT_MISMATCH)


@trace.command("diff")
@click.argument("expected", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("actual", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="Every differing entry, not only the first.")
def trace_diff(expected: Path, actual: Path, as_json: bool, show_all: bool) -> None:
    """Compare two traces entry by entry; exit 1 if they differ."""

    try:
        left = read_trace(expected, allow_open=True)
        right = read_trace(actual, allow_open=True)
    except XdvError as error:
        fail(error, EXIT_MISMATCH, as_json)
    if show_all:
        divergences = diff_traces(left.entries, right.entries)
    else:  # stop at the first difference instead of diffing everything and keeping one
        first = first_divergence(left.entries, right.entries)
        divergences = [] if first is None else [first]
    if as_json:
        click.echo(json.dumps([d.to_json() for d in divergences], sort_keys=True, default=str))
    elif not divergences:
        click.echo(f"identical: {len(left.entries)} entries")
    else:
        for divergence in divergences:
            click.echo(divergence.describe())
    sys.exit(EXIT_MISMATCH if divergences else EXIT_OK)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``xdv`` command; maps errors to the documented exit codes."""
    try:
        cli.main(args=argv, prog_name="xdv", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        # A bare `xdv` (or `xdv trace`) names no command: show the help, as a usage error.
        click.echo(error.ctx.get_help() if error.ctx else str(error), err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as error:
        error.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_USAGE)
    except XdvError as error:  # an operating error no command mapped: a runtime failure
        code = EXIT_STATIC if error.code is ErrorCode.WORKLOAD_INVALID else EXIT_RUNTIME
        err_console.print(f"[bold red]error[/]: {error}")
        sys.exit(code)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except (InvariantViolation, Exception):
        # A broken invariant, or anything else nothing above expected, is a bug in XDV: show
        # everything, and exit as a runtime failure (never 1, which means "mismatch").
        err_console.print_exception()
        sys.exit(EXIT_RUNTIME)


# Commands registered on the group (the Q module registers its own on import).
cli.add_command(_audit_group)
cli.add_command(_key_group)
cli.add_command(_faults_group)
cli.add_command(dpl_check)
cli.add_command(dpl_dir)
_phi.register(cli)
_sim.register(cli)
_service.register(cli)  # node service: serve, tenant, submit, jobs, job, cancel
_node.register(cli)  # measured boot: node attest, node verify-quote
_telemetry.register(cli)  # xdv telemetry: metrics, spans and alerts from a trace
_cts.register(cli)  # conformance test suite: cts run, cts list, cts verify
_view.register(cli)  # xdv view: the read-only web view of a trace
_cluster.register(cli)  # xdv cluster run
_ = _q
