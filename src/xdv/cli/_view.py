"""``xdv view``: a read-only web view of a trace, served on the loopback interface.

The view package (FastAPI, Jinja2, uvicorn) is imported inside the command, never when the
command line starts.
"""

from __future__ import annotations

from pathlib import Path

import click

from xdv.cli._common import EXIT_RUNTIME, EXIT_USAGE, fail
from xdv.errors import ErrorCode, XdvError

__all__ = ["register", "view"]


@click.command("view")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8750,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--diff",
    "other",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A second trace: the view shows where it first differs (at /diff).",
)
def view(trace: Path, port: int, other: Path | None) -> None:
    """Serve a read-only view of TRACE on 127.0.0.1 (docs/view.md): K, Q, Φ and audit panels,
    a zoomable timeline and time travel over logical time, until interrupted."""
    from xdv.view import serve_view

    try:
        serve_view(trace, port=port, diff=other)
    except OSError as error:
        fail(
            XdvError(f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}"),
            EXIT_USAGE,
            False,
        )
    except XdvError as error:
        code = EXIT_USAGE if error.code == ErrorCode.VIEW_TRACE_UNREADABLE else EXIT_RUNTIME
        fail(error, code, False)


def register(cli: click.Group) -> None:
    """Add ``xdv view`` to the command line."""
    cli.add_command(view)
