"""Progress displays of long commands (``xdv phirun``, ``xdv qrun``): on a terminal only, on
standard error, never with ``--json``; they only watch, so results and traces are the same with
or without them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from xdv.cli._common import err_console

__all__ = ["shown", "spinner", "steps_bar"]

StepsCallback = Callable[[int, int], None]


def shown(as_json: bool) -> bool:
    """Whether a progress display may appear: standard error is a terminal and no --json."""
    return not as_json and err_console.is_terminal


@contextmanager
def steps_bar(label: str, as_json: bool) -> Iterator[StepsCallback | None]:
    """A bar fed ``(done, total)`` by the callback it yields (None where nothing is shown)."""
    if not shown(as_json):
        yield None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@contextmanager
def spinner(label: str, as_json: bool) -> Iterator[None]:
    """A spinner with the elapsed time, for work that reports no fraction done."""
    if not shown(as_json):
        yield
        return
    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as display:
        display.add_task(label, total=None)
        yield
