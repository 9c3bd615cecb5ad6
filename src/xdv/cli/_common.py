"""What the ``xdv`` commands share: the command group, exit codes, the options every
run-making command takes, and error and output helpers."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from xdv.errors import ErrorCode, XdvError
from xdv.runtime import RunOutcome, RunRequest, Workload, build_policy
from xdv.trace import jsonable

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 64
EXIT_STATIC = 65
EXIT_RUNTIME = 70
EXIT_ADMISSIBILITY = 71
EXIT_CONTRACT = 72
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

# A run that ended because a process failed with one of these codes exits with its own code.
_EXIT_BY_FAILURE = {
    ErrorCode.DPL_ADMISSIBILITY.name: EXIT_ADMISSIBILITY,
    ErrorCode.DPL_CONTRACT_VIOLATION.name: EXIT_CONTRACT,
}

# The code of the processes an interrupted run ends (the kernel's RUN_INTERRUPTED).
_ENDED_BY_INTERRUPT = "RUN_INTERRUPTED"

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(error: XdvError, exit_code: int, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_record()}, sort_keys=True))
    else:
        err_console.print(f"[bold red]error[/]: {escape(str(error))}")
        cause = error.__cause__
        if cause is not None and not isinstance(cause, XdvError):
            # A workload that failed to import: show where, as Python would.
            err_console.print(escape(_user_traceback(cause)), end="")
    sys.exit(exit_code)


def _user_traceback(error: BaseException) -> str:
    """``error``'s traceback without the frames of XDV and of Python's import machinery."""
    package = str(Path(__file__).resolve().parents[1])
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith(package) and "importlib" not in frame.filename
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines.extend(traceback.format_exception_only(type(error), error))
    return "".join(lines)


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


def _check_policy(context: click.Context, parameter: click.Parameter, value: str) -> str:
    """Refuse a policy spec that does not parse, as a usage error (exit 64)."""
    try:
        return build_policy(value).spec
    except XdvError as error:
        raise click.BadParameter(error.message) from None


def run_options(function: F) -> F:
    """The options of every command that makes a run: seed, trace, and the node's audit and
    signing setup (``--audit/--no-audit``, ``--checkpoint-interval``, ``--key-store``)."""
    decorators = [
        click.option(
            "--seed",
            type=click.IntRange(0, 2**64 - 1),
            default=0,
            show_default=True,
            help="Run seed: every random stream derives from it.",
        ),
        click.option(
            "--trace",
            "trace_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the hash-chained trace here.",
        ),
        click.option(
            "--audit/--no-audit",
            default=True,
            show_default=True,
            help="With --trace: Merkle checkpoints in the trace and signed tree heads beside it.",
        ),
        click.option(
            "--checkpoint-interval",
            type=click.IntRange(16, 1 << 24),
            default=16384,
            show_default=True,
            help="Entries between audit checkpoints.",
        ),
        click.option(
            "--policy",
            default="round-robin",
            show_default=True,
            callback=_check_policy,
            help="Scheduler policy: NAME[:key=value,...], parts joined with '+' "
            "(round-robin, priority, fair-share, edf, fidelity; see docs/scheduler.md).",
        ),
        click.option(
            "--key-store",
            type=click.Path(file_okay=False, path_type=Path),
            help="Node key store whose key signs the audit file and witnesses "
            "(default $XDV_HOME/keys or ~/.xdv/keys).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def run_request(workload: Workload, options: dict[str, Any], **settings: Any) -> RunRequest:
    """The request for a run of ``workload`` with the :func:`run_options` values in
    ``options`` (a command's keyword arguments) and any further ``settings``."""
    return RunRequest(
        workload,
        seed=options["seed"],
        trace=options["trace_path"],
        audit=options["audit"],
        checkpoint_interval=options["checkpoint_interval"],
        key_store=options["key_store"],
        handle_signals=True,
        policy=options["policy"],
        **settings,
    )


def run_failure_exit(error: XdvError) -> int:
    """The exit code of a run that could not start: 65 if the workload is at fault
    (WORKLOAD_INVALID, such as a wrong ``XDV_DOMAINS``), else 70."""
    return EXIT_STATIC if error.code is ErrorCode.WORKLOAD_INVALID else EXIT_RUNTIME


def exit_code_for(outcome: RunOutcome) -> int:
    """The exit code of a finished run: 0 ok; 130/143 interrupted by SIGINT/SIGTERM; 71/72 a
    DPL admissibility failure or contract violation; 70 any other failure or a limit."""
    if outcome.interrupted:
        return EXIT_TERMINATED if outcome.signal == "SIGTERM" else EXIT_INTERRUPTED
    if outcome.ok:
        return EXIT_OK
    for status in outcome.result.exits.values():
        if not status.ok and status.code in _EXIT_BY_FAILURE:
            return _EXIT_BY_FAILURE[status.code]
    return EXIT_RUNTIME


def note_key(outcome: RunOutcome, as_json: bool) -> None:
    """Say so on stderr when the run created the node key."""
    if outcome.key_created and not as_json and outcome.signer is not None:
        err_console.print(f"[dim]created node key {outcome.signer[:16]}… in {outcome.key_store}[/]")


def report_failures(outcome: RunOutcome) -> None:
    """On stderr: each failed process, with the traceback of an exception that ended it (or
    ended the workload's setup), and a note when the run was interrupted."""
    kinds = {EXIT_ADMISSIBILITY: "admissibility failure", EXIT_CONTRACT: "contract violation"}
    if 0 in outcome.faults:
        err_console.print("[red]the workload's setup failed[/]")
        err_console.print(escape(outcome.faults[0]), end="")
    for pid, status in outcome.result.exits.items():
        if status.ok or (outcome.interrupted and status.code == _ENDED_BY_INTERRUPT):
            continue  # an interrupted run's unfinished processes: the note below says it
        kind = kinds.get(_EXIT_BY_FAILURE.get(str(status.code), 0), f"process {pid} failed")
        err_console.print(f"[red]{kind}[/]: {status.code}: {escape(str(status.message))}")
        if pid in outcome.faults:
            err_console.print(escape(outcome.faults[pid]), end="")
    if outcome.interrupted:
        err_console.print(
            f"[yellow]interrupted[/] by {outcome.signal or 'request'}: the run was ended "
            "cleanly and its trace records the interruption"
        )


def interrupted(outcome: RunOutcome, as_json: bool) -> NoReturn:
    """Report a job run that a signal ended before its result, and exit 130 or 143."""
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": False,
                    "status": outcome.status,
                    "signal": outcome.signal,
                    "trace": None if outcome.trace is None else str(outcome.trace),
                    "head_hash": outcome.result.head_hash,
                },
                sort_keys=True,
            )
        )
    else:
        report_failures(outcome)
    sys.exit(exit_code_for(outcome))
