"""The DPL commands ``xdv check FILE.ds`` and ``xdv dir FILE.ds``, and the printing of a DPL
program's static errors (``xdv run FILE.ds`` is ``xdv run``, in ``_main``).

Exit codes: 0 success; 65 static error (diagnostics). A run's codes (70 runtime failure, 71
admissibility failure, 72 contract violation) are ``xdv run``'s; ``docs/dpl.md`` documents them
with ``docs/errors.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from xdv.cli._common import EXIT_STATIC, err_console
from xdv.errors import XdvError

__all__ = ["dpl_check", "dpl_dir", "dpl_static_failure"]


def dpl_static_failure(error: XdvError, as_json: bool) -> NoReturn:
    """Print a DPL program's diagnostics (or another static error) and exit 65."""
    # The DPL toolchain is imported when a DPL command needs it, not when `xdv` starts.
    from xdv.dpl import DplStaticError, render

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
            dropped = any(d.code == "P005" for d in error.diagnostics)
            # With the diagnostic caps reached, the count is of those shown (the note says how
            # many more there were).
            click.echo(f"{errors} error(s){' shown' if dropped else ''}", err=True)
    elif as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_record()}, sort_keys=True))
    else:
        err_console.print(f"[bold red]error[/]: {error}")
    sys.exit(EXIT_STATIC)


@click.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--profile",
    type=click.Choice(["kernel"]),
    help="Also enforce a profile (kernel: the kernel-safe subset of XDV-050).",
)
@click.option("--json", "as_json", is_flag=True, help="Diagnostics as one JSON document.")
def dpl_check(path: Path, profile: str | None, as_json: bool) -> None:
    """Check a DPL program (a .ds file, or a directory of them: one program of modules);
    print OK, or the diagnostics (exit 65)."""
    from xdv.dpl import compile_source, compile_tree, read_text, read_tree

    try:
        if path.is_dir():
            compile_tree(read_tree(path), path.name, profile)
        else:
            compile_source(read_text(path), path.name, profile)
    except XdvError as error:
        dpl_static_failure(error, as_json)
    click.echo(json.dumps({"ok": True, "diagnostics": []}) if as_json else "OK")


@click.command("dir")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pretty", is_flag=True, help="A disassembly listing instead of canonical JSON.")
def dpl_dir(path: Path, pretty: bool) -> None:
    from xdv.dpl import canonical_bytes, compile_source, disassemble, read_text

    """Print the DIR of a DPL program (canonical JSON, or a listing with --pretty)."""

    try:
        document = compile_source(read_text(path), path.name)
    except XdvError as error:
        dpl_static_failure(error, False)
    if pretty:
        click.echo(disassemble(document), nl=False)
    else:
        click.echo(canonical_bytes(document).decode("utf-8"))
