"""What the ``xdv`` commands share: the command group, exit codes, error and output helpers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from xdv.core import AuditConfig
from xdv.errors import XdvError
from xdv.security import KeyStore, SignedHeadLog, audit_path_for
from xdv.trace import jsonable

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 64
EXIT_STATIC = 65
EXIT_RUNTIME = 70
EXIT_INTERRUPTED = 130

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(error: XdvError, exit_code: int, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_record()}, sort_keys=True))
    else:
        err_console.print(f"[bold red]error[/]: {error}")
    sys.exit(exit_code)


def echo_output(text: str) -> None:
    """Print one line of a run's output on standard output.

    If the reader went away (`xdv run ... | head`), the run itself goes on to the end, so the
    trace is complete; the rest of the output goes nowhere. (The recipe of Python's signal
    documentation: point stdout at /dev/null so that nothing later, the final flush included,
    fails again.)
    """
    try:
        click.echo(text)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(jsonable(value), sort_keys=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xdv")
def cli() -> None:
    """XDV, the Cross-Domain Virtualizer: K, Q and Φ computation under one deterministic core."""


def make_audit_config(
    trace_path: Path, interval: int, key_store: Path | None, as_json: bool
) -> Any:

    store = KeyStore(key_store) if key_store is not None else KeyStore.default()
    keys, created = store.load_or_create()
    if created and not as_json:
        err_console.print(
            f"[dim]created node key {keys.public.fingerprint[:16]}… in {store.path}[/]"
        )
    return AuditConfig(interval, SignedHeadLog(audit_path_for(trace_path), keys))
