"""Tracebacks of failing workload code, kept out of the trace.

When a K anchor raises an exception that is not an ``XdvError``, the kernel records only
``PROCESS_FAULT`` and ``Type: message`` (a trace must not depend on file paths or line
numbers). A person running the workload needs to know where it failed, so the runtime watches
each anchor of a Python workload: a :class:`FaultWatch` wraps every anchor function given to
``kernel.spawn`` or to a ``Spawn`` system call in a generator that passes every value, system
call and error through unchanged and, when the anchor raises, keeps the formatted traceback
(file, line, code) before letting the exception go on to the kernel. The trace is the same
with and without the watch; only the reports differ.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import traceback
import weakref
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any

from xdv.core import ExitStatus, Kernel
from xdv.errors import ErrorCode, XdvError, describe_exception
from xdv.syscalls import Spawn
from xdv.trace import Domain

__all__ = ["FaultWatch", "WatchingKernel", "format_traceback"]

_WATCHED = "__xdv_watched__"


def format_traceback(error: BaseException, skip: int = 0) -> str:
    """``error``'s traceback as Python prints it, without its first ``skip`` frames (the
    runtime's own)."""
    tb: TracebackType | None = error.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


class FaultWatch:
    """Collects the tracebacks of anchors that raise (see the module docstring)."""

    def __init__(self) -> None:
        # (what the kernel records as the failure message, the formatted traceback), in order.
        self._seen: list[tuple[str, str]] = []

    def wrap(self, function: Any) -> Any:
        """``function`` watched; anything that is not a plain Python function (a builtin, a
        ``functools.partial``, a callable object) is returned unchanged, so the names the
        kernel records for it are the same."""
        if not inspect.isfunction(function) or getattr(function, _WATCHED, False):
            return function

        @functools.wraps(function)
        def anchor(*args: Any, **kwargs: Any) -> Any:
            body = function(*args, **kwargs)
            if inspect.isgenerator(body) or inspect.iscoroutine(body):
                watched = self._follow(body)
                if inspect.iscoroutine(body):
                    # An anchor the kernel never starts is closed unstarted: close the
                    # coroutine with it (else Python warns that it was never awaited).
                    weakref.finalize(watched, body.close)
                return watched
            return body  # not a generator: the kernel refuses it, naming the function

        setattr(anchor, _WATCHED, True)
        return anchor

    def _follow(self, body: Any) -> Generator[Any, Any, Any]:
        send, throw = body.send, body.throw
        value: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                if thrown is None:
                    call = send(value)
                else:
                    error, thrown = thrown, None
                    call = throw(error)
            except StopIteration as stop:
                return stop.value
            except XdvError:
                raise  # a typed error: the kernel records its code and message
            except (Exception, SystemExit) as error:
                self._seen.append((describe_exception(error), format_traceback(error, skip=1)))
                raise
            if isinstance(call, Spawn) and not getattr(call.anchor, _WATCHED, False):
                call = dataclasses.replace(call, anchor=self.wrap(call.anchor))
            try:
                value = yield call
            except BaseException as error:  # an error the kernel throws in, or GeneratorExit
                thrown, value = error, None

    def tracebacks(self, exits: dict[int, ExitStatus]) -> dict[int, str]:
        """The traceback of each process that ended with PROCESS_FAULT, by process id."""
        unused = list(self._seen)
        found: dict[int, str] = {}
        for pid, status in exits.items():
            if status.ok or status.code != ErrorCode.PROCESS_FAULT.name:
                continue
            for index, (message, text) in enumerate(unused):
                if message == status.message:
                    found[pid] = text
                    del unused[index]
                    break
        return found


class WatchingKernel(Kernel):
    """A kernel whose anchors, from ``spawn`` and from ``Spawn`` calls, are watched by
    ``watch`` (see :class:`FaultWatch`)."""

    def __init__(self, seed: int, watch: FaultWatch, **options: Any) -> None:
        super().__init__(seed, **options)
        self.watch = watch

    def spawn(
        self,
        anchor: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        priority: int = 0,
        domains: Any = (Domain.K,),
    ) -> int:
        """As :meth:`Kernel.spawn`, with ``anchor`` watched."""
        return super().spawn(
            self.watch.wrap(anchor), *args, name=name, priority=priority, domains=domains
        )
