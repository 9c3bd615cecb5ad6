"""The DPL commands: ``xdv run FILE.ds``, ``xdv check FILE.ds``, ``xdv dir FILE.ds``.

Exit codes: 0 success; 65 static error (diagnostics); 70 runtime failure; 71 admissibility
failure (a Φ process has no admissible configuration); 72 contract violation (a bind's contract
could not be met). ``docs/dpl.md`` documents them with ``docs/errors.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from xdv.cli._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STATIC,
    echo_output,
    err_console,
    make_audit_config,
)
from xdv.dpl import (
    DplStaticError,
    canonical_bytes,
    compile_source,
    disassemble,
    dpl_domains,
    effect_record_text,
    read_text,
    render,
)
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import load_dpl_program, run_workload

__all__ = ["EXIT_ADMISSIBILITY", "EXIT_CONTRACT", "dpl_check", "dpl_dir", "run_dpl"]

EXIT_ADMISSIBILITY = 71
EXIT_CONTRACT = 72

_EXIT_BY_CODE = {
    ErrorCode.DPL_ADMISSIBILITY.name: EXIT_ADMISSIBILITY,
    ErrorCode.DPL_CONTRACT_VIOLATION.name: EXIT_CONTRACT,
}


def _static_failure(error: XdvError, as_json: bool) -> NoReturn:

    if isinstance(error, DplStaticError):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "ok": False,
                        "diagnostics": [d.to_json(error.source) for d in error.diagnostics],
                    },
                    sort_keys=True,
                    ensure_ascii=False,
                )
            )
        else:
            for diagnostic in error.diagnostics:
                click.echo(render(diagnostic, error.source), err=True)
            errors = sum(1 for d in error.diagnostics if d.severity == "error")
            click.echo(f"{errors} error(s)", err=True)
    elif as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_record()}, sort_keys=True))
    else:
        err_console.print(f"[bold red]error[/]: {error}")
    sys.exit(EXIT_STATIC)


def run_dpl(
    target: str,
    entry: str | None,
    seed: int,
    trace_path: Path | None,
    as_json: bool,
    quantum: int,
    fsync: str,
    audit_options: tuple[bool, int, Path | None] = (False, 16384, None),
) -> NoReturn:
    """Run a ``.ds`` program: emitted lines on stdout, one per ``emit``. ``audit_options`` is
    (audit, checkpoint interval, key store), as for any ``xdv run`` with ``--trace``."""

    try:
        workload, document = load_dpl_program(target, entry)
    except XdvError as error:
        _static_failure(error, as_json)
    try:
        domains = dpl_domains(document)
    except ImportError as error:  # a Q or Φ provider's library is not installed
        err_console.print(f"[bold red]error[/]: a domain provider is not installed: {error}")
        sys.exit(EXIT_RUNTIME)

    audit, interval, key_store = audit_options
    audit_config = None
    if audit and trace_path is not None:
        try:
            audit_config = make_audit_config(trace_path, interval, key_store, as_json)
        except XdvError as error:
            err_console.print(f"[bold red]error[/]: {error}")
            sys.exit(EXIT_RUNTIME)

    def emit(pid: int, value: Any) -> None:
        text = effect_record_text(value)
        if text is not None and not as_json:
            echo_output(text)

    try:
        result = run_workload(
            workload,
            seed=seed,
            trace=trace_path,
            emit=emit,
            quantum=quantum,
            fsync=fsync,
            audit=audit_config,
            domains=domains,
        )
    except XdvError as error:
        err_console.print(f"[bold red]error[/]: {error}")
        sys.exit(EXIT_RUNTIME)
    failures = {pid: status for pid, status in result.exits.items() if not status.ok}
    exit_code = EXIT_OK
    for status in failures.values():
        exit_code = _EXIT_BY_CODE.get(str(status.code), EXIT_RUNTIME)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "status": result.status,
                    "outputs": [
                        effect_record_text(value)
                        for _, value in result.outputs
                        if effect_record_text(value) is not None
                    ],
                    "failures": {
                        str(p): {"code": s.code, "message": s.message} for p, s in failures.items()
                    },
                    "steps": result.steps,
                    "logical_time": result.logical_time,
                    "head_hash": result.head_hash,
                    "exit_code": exit_code,
                },
                sort_keys=True,
                ensure_ascii=False,
            )
        )
    else:
        for status in failures.values():
            kind = {
                EXIT_ADMISSIBILITY: "admissibility failure",
                EXIT_CONTRACT: "contract violation",
            }.get(exit_code, "runtime failure")
            err_console.print(f"[red]{kind}[/]: {status.code}: {status.message}")
    sys.exit(exit_code)


@click.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--profile",
    type=click.Choice(["kernel"]),
    help="Also enforce a profile (kernel: the kernel-safe subset of XDV-050).",
)
@click.option("--json", "as_json", is_flag=True, help="Diagnostics as one JSON document.")
def dpl_check(path: Path, profile: str | None, as_json: bool) -> None:
    """Check a DPL program; print OK, or the diagnostics (exit 65)."""

    try:
        compile_source(read_text(path), path.name, profile)
    except XdvError as error:
        _static_failure(error, as_json)
    click.echo(json.dumps({"ok": True, "diagnostics": []}) if as_json else "OK")


@click.command("dir")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pretty", is_flag=True, help="A disassembly listing instead of canonical JSON.")
def dpl_dir(path: Path, pretty: bool) -> None:
    """Print the DIR of a DPL program (canonical JSON, or a listing with --pretty)."""

    try:
        document = compile_source(read_text(path), path.name)
    except XdvError as error:
        _static_failure(error, False)
    if pretty:
        click.echo(disassemble(document), nl=False)
    else:
        click.echo(canonical_bytes(document).decode("utf-8"))
