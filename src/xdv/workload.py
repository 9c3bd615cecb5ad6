"""Loading Python workloads: ``file.py``, ``file.py:function`` or ``package.module:function``.

A workload is a function that receives the :class:`~xdv.core.Kernel` and spawns processes::

    def main(kernel):
        kernel.spawn(ping, 3)

The loader records the target and a SHA-256 digest of its source in the trace, so a replay can
refuse to run a workload that has changed since the trace was made.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, WorkloadError

__all__ = ["Workload", "load_workload"]

WorkloadFunction = Callable[[Any], Any]


@dataclass(frozen=True)
class Workload:
    """A loaded workload: the callable, and the record that goes into the trace."""

    target: str
    entry: str
    function: WorkloadFunction
    digest: str

    def to_record(self) -> dict[str, Any]:
        return {"target": self.target, "entry": self.entry, "digest": self.digest}


def _split(target: str) -> tuple[str, str | None]:
    # "C:\\x.py" style drive letters are not a concern on the platforms XDV supports.
    if ":" in target:
        location, _, entry = target.rpartition(":")
        return location, entry or None
    return target, None


def load_workload(target: str, *, expected_digest: str | None = None) -> Workload:
    """Import ``target`` and return its workload function.

    With ``expected_digest`` (from a trace) a changed source is a REPLAY_INPUT_CHANGED error.
    """
    if target.endswith(".ds") or ".ds:" in target:
        from xdv.dpl import load_dpl_workload

        loaded: Workload = load_dpl_workload(target, expected_digest=expected_digest)
        return loaded
    location, entry = _split(target)
    path = Path(location)
    if location.endswith(".py") or path.is_file():
        if not path.is_file():
            raise WorkloadError(f"workload file not found: {location}", where=target)
        target = _canonical_file_target(path, entry)
        source = path.read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        _check_digest(target, digest, expected_digest)
        # A stable module name (the file's stem, not its location or digest) keeps the names
        # of anchor functions in traces independent of where the workload file lives.
        module_name = f"xdv_workload_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise WorkloadError(f"cannot import {location}", where=target)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise WorkloadError(
                f"importing {location} failed: {type(error).__name__}: {error}", where=target
            ) from error
    else:
        if entry is None:
            raise WorkloadError(
                "a module target needs a function: package.module:function", where=target
            )
        # Like `python -m`, a module target is looked up from the current directory too.
        working_directory = str(Path.cwd())
        if working_directory not in sys.path:
            sys.path.insert(0, working_directory)
        try:
            module = importlib.import_module(location)
        except Exception as error:
            raise WorkloadError(
                f"cannot import module {location}: {type(error).__name__}: {error}", where=target
            ) from error
        module_file = getattr(module, "__file__", None)
        source = Path(module_file).read_bytes() if module_file else location.encode()
        digest = hashlib.sha256(source).hexdigest()
        _check_digest(target, digest, expected_digest)
    entry_name = entry or "main"
    function = getattr(module, entry_name, None)
    if not callable(function):
        raise WorkloadError(
            f"{location} has no function {entry_name!r} (a workload is a function that takes "
            "the kernel and spawns processes)",
            where=target,
        )
    return Workload(target=target, entry=entry_name, function=function, digest=digest)


def _canonical_file_target(path: Path, entry: str | None) -> str:
    """How a file target is recorded: relative to the current directory when it lies inside it
    (so ``x.py``, ``./x.py`` and its absolute spelling record the same run), else absolute."""
    resolved = path.resolve()
    try:
        location = resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        location = resolved.as_posix()
    return f"{location}:{entry}" if entry else location


def _check_digest(target: str, digest: str, expected: str | None) -> None:
    if expected is not None and digest != expected:
        raise WorkloadError(
            f"the workload's source changed since the trace was recorded "
            f"(recorded sha256 {expected[:16]}…, now {digest[:16]}…)",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            where=target,
        )
