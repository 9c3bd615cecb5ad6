"""Loading Python workloads: ``file.py``, ``file.py:function`` or ``package.module:function``.

A workload is a function that receives the :class:`~xdv.core.Kernel` and spawns processes::

    def main(kernel):
        kernel.spawn(ping, 3)

The loader records the target and a SHA-256 digest of its source in the trace, so a replay can
refuse to run a workload that has changed since the trace was made.

A *parameterized* workload takes keyword parameters after the kernel::

    def main(kernel, *, shots, circuit):
        ...

and is loaded with ``params={...}`` (a map of trace-encodable values). The parameters are
recorded beside the target, the digest then covers them as well as the source, and a replay
passes the recorded parameters back, so a run whose inputs are values rather than files (such as
``xdv qrun``'s circuit) is rebuilt exactly.

A Python workload may declare virtual hybrid machines as data, in a module-level ``XDV_VHMS``
list; the runtime creates them, in order, before calling the workload function, and records
the declaration beside the target so a replay rebuilds them::

    XDV_VHMS = [
        {"name": "tenant-a", "weight": 2, "quotas": {"processes": 8, "qubits": 5}},
        {"name": "batch", "parent": "tenant-a", "quotas": {"steps": 10_000}},
    ]

    def main(kernel):
        kernel.spawn(job, vhm=kernel.vhms.find("batch"))
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, TraceError, WorkloadError, safe_repr
from xdv.inputs import read_bounded
from xdv.trace import canonical_metadata, canonicalize, jsonable

__all__ = [
    "DomainDeclaration",
    "VhmDeclaration",
    "Workload",
    "load_dpl_program",
    "load_dpl_workload",
    "load_workload",
    "params_digest",
]

WorkloadFunction = Callable[[Any], Any]
DomainDeclaration = Mapping[str, Mapping[str, Any]]
"""Managers a workload asks for: domain label → manager description (``{"manager": "q"}``)."""
VhmDeclaration = tuple[Mapping[str, Any], ...]
"""VHMs a workload asks for, in creation order: ``{"name", "weight"?, "quotas"?, "parent"?}``
(``parent`` names an earlier VHM of the list; absent: the root VHM)."""
_VHM_KEYS = frozenset({"name", "weight", "quotas", "parent", "default"})
_VHMS_MAX = 256


@dataclass(frozen=True)
class Workload:
    """A loaded workload: the callable, the record that goes into the trace, and what the
    runtime needs to run it.

    ``domains`` declares the managers beside the K manager (from a Python module's
    ``XDV_DOMAINS``, a DPL program's regimes, or a Q or Φ job's provider); None means K only.
    ``language`` is ``"python"`` or ``"dpl"``: it decides which emitted values are outputs.
    """

    target: str
    entry: str
    function: WorkloadFunction
    digest: str
    params: Mapping[str, Any] | None = None
    domains: DomainDeclaration | None = None
    language: str = "python"
    vhms: VhmDeclaration | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"target": self.target, "entry": self.entry, "digest": self.digest}
        if self.params is not None:
            record["params"] = dict(self.params)
        if self.vhms:
            record["vhms"] = [dict(item) for item in self.vhms]
        return record

    def output(self, value: Any) -> tuple[bool, Any]:
        """Whether an emitted ``value`` is an output of the run, and the output itself: every
        value a Python workload emits; for a DPL program, the value of each ``emit`` (its other
        effects, such as ``observe`` and ``seal``, are recorded but are not outputs)."""
        if self.language != "dpl":
            return True, value
        if isinstance(value, dict) and value.get("effect") == "emit":
            return True, value.get("value")
        return False, None

    def output_line(self, value: Any) -> str | None:
        """The line ``xdv run`` prints for an emitted ``value`` (None: nothing): text as is,
        any other value as JSON."""
        if self.language == "dpl":
            from xdv import dpl  # loaded with the program (see load_dpl_program)

            return dpl.effect_record_text(value)
        if isinstance(value, str):
            return value
        return json.dumps(jsonable(value), sort_keys=True)


def params_digest(source_digest: str, params: Mapping[str, Any]) -> str:
    """The digest recorded for a parameterized workload: SHA-256 over the 32 bytes of the
    source's SHA-256 followed by the canonical trace encoding of ``params``."""

    encoded = canonical_metadata(dict(params))
    return hashlib.sha256(bytes.fromhex(source_digest) + encoded).hexdigest()


def _checked_params(params: Any, target: str, code: ErrorCode) -> dict[str, Any]:
    """``params`` in the canonical form the trace records (so the run sees exactly what a replay
    will pass back: lists for tuples, key-sorted maps), or an error with ``code``."""

    if not isinstance(params, Mapping) or not all(type(key) is str for key in params):
        raise WorkloadError(
            "workload parameters must be a map with text keys", code=code, where=target
        )
    try:
        canonical: dict[str, Any] = canonicalize(dict(params), "params")
    except TraceError as error:
        raise WorkloadError(
            f"workload parameters cannot enter a trace: {error.message}", code=code, where=target
        ) from None
    return canonical


def _check_call(
    function: WorkloadFunction, params: dict[str, Any] | None, target: str, code: ErrorCode
) -> None:
    """Refuse a workload function that cannot be called with the kernel and ``params``: a
    parameterized workload given other parameters (or none, in a replay of an edited trace)."""
    try:
        inspect.signature(function).bind(None, **(params or {}))
    except TypeError as error:
        raise WorkloadError(
            f"the workload cannot be called with "
            f"{'these parameters' if params else 'the kernel alone'}: {error}",
            code=code,
            where=target,
        ) from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass


def _bind(function: WorkloadFunction, params: dict[str, Any]) -> WorkloadFunction:
    """``function`` with ``params`` bound as keyword arguments after the kernel."""

    @functools.wraps(function)
    def bound(kernel: Any) -> Any:
        return function(kernel, **params)

    return bound


def is_builtin_target(target: str) -> bool:
    """Whether ``target`` names a workload of XDV's own (``xdv.module:function``, such as the
    Q and Φ job drivers), which runs in process even in an isolated run: it is not user code."""
    location, entry = _split(target)
    return entry is not None and location.startswith("xdv.") and not Path(location).exists()


def _split(target: str) -> tuple[str, str | None]:
    # "C:\\x.py" style drive letters are not a concern on the platforms XDV supports.
    if ":" in target:
        location, _, entry = target.rpartition(":")
        return location, entry or None
    return target, None


def load_workload(
    target: str,
    *,
    expected_digest: str | None = None,
    params: Mapping[str, Any] | None = None,
    isolation: str = "inprocess",
) -> Workload:
    """Import ``target`` and return its workload function.

    With ``isolation="process"`` a Python file is not imported: its workload is loaded for a
    worker process (see ``docs/isolation.md``; ``XDV_DOMAINS`` and ``XDV_VHMS`` must then be
    literals; other module targets are refused); a DPL program and XDV's own workloads (the Q
    and Φ job drivers) load as usual: no user Python code runs for them.

    With ``params`` the workload is parameterized: the function is called as
    ``function(kernel, **params)`` and the digest covers the parameters (:func:`params_digest`).
    With ``expected_digest`` (from a trace) a changed source, or changed parameters, is a
    REPLAY_INPUT_CHANGED error.
    """
    # Refusals that a replay meets come from the trace it was given, not from a mistake here.
    refusal = (
        ErrorCode.WORKLOAD_INVALID if expected_digest is None else ErrorCode.REPLAY_INPUT_CHANGED
    )
    is_dpl = target.endswith(".ds") or ".ds:" in target or _dpl_tree(target) is not None
    if isolation == "process" and not is_dpl and not is_builtin_target(target):
        # Loaded on first use, like the simulator (see xdv.runtime).
        isolation_module = importlib.import_module("xdv.runtime._isolation")
        isolated: Workload = isolation_module.load_isolated(
            target, expected_digest=expected_digest, params=params
        )
        return isolated
    if is_dpl:
        if params is not None:
            raise WorkloadError("DPL workloads take no parameters", code=refusal, where=target)
        return load_dpl_workload(target, expected_digest=expected_digest)
    checked = None if params is None else _checked_params(params, target, refusal)
    location, entry = _split(target)
    path = Path(location)
    if location.endswith(".py") or path.is_file():
        if not path.is_file():
            raise WorkloadError(f"workload file not found: {location}", where=target)
        target = _canonical_file_target(path, entry)
        source = read_bounded(path, "source_bytes_max", what="workload")
        digest = _digest(source, checked)
        _check_digest(target, digest, expected_digest, parameterized=checked is not None)
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
        digest = _digest(source, checked)
        _check_digest(target, digest, expected_digest, parameterized=checked is not None)
    entry_name = entry or "main"
    function = getattr(module, entry_name, None)
    if not callable(function):
        raise WorkloadError(
            f"{location} has no function {entry_name!r} (a workload is a function that takes "
            "the kernel and spawns processes)",
            where=target,
        )
    if checked is not None or expected_digest is not None:
        _check_call(function, checked, target, refusal)
    if checked is not None:
        function = _bind(function, checked)
    return Workload(
        target=target,
        entry=entry_name,
        function=function,
        digest=digest,
        params=checked,
        domains=_declared_domains(module, target),
        vhms=declared_vhms(getattr(module, "XDV_VHMS", None), target),
    )


def _declared_domains(module: Any, target: str) -> DomainDeclaration | None:
    """The module's ``XDV_DOMAINS``, checked for shape (the managers are built, and their
    descriptions checked, when the run starts)."""
    declared = getattr(module, "XDV_DOMAINS", None)
    if declared is None:
        return None
    if not isinstance(declared, Mapping):
        raise WorkloadError(
            "XDV_DOMAINS must map domain labels to manager descriptions, for example "
            '{"Q": {"manager": "q"}}',
            where=target,
        )
    for label, description in declared.items():
        if not isinstance(label, str) or not isinstance(description, Mapping):
            raise WorkloadError(
                f'XDV_DOMAINS[{label!r}] must be a manager description such as {{"manager": "q"}}',
                where=target,
            )
    return {label: dict(description) for label, description in declared.items()}


def declared_vhms(declared: Any, where: str) -> VhmDeclaration | None:
    """A VHM declaration (a module's ``XDV_VHMS``, or the one a trace recorded), checked for
    shape and made canonical; the kernel checks the values when it creates the VHMs."""
    if declared is None:
        return None

    def refuse(why: str) -> WorkloadError:
        return WorkloadError(
            f"XDV_VHMS {why}; expected a list such as "
            '[{"name": "a", "weight": 2, "quotas": {"processes": 4}}]',
            code=ErrorCode.WORKLOAD_INVALID,
            where=where,
        )

    if not isinstance(declared, list | tuple) or len(declared) > _VHMS_MAX:
        raise refuse(f"must be a list of at most {_VHMS_MAX} VHM descriptions")
    names: set[str] = set()
    checked: list[Mapping[str, Any]] = []
    for item in declared:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise refuse(f"has {safe_repr(item)}, which is not a map with a text name")
        unknown = sorted(str(key) for key in item if key not in _VHM_KEYS)
        if unknown:
            raise refuse(f"entry {item['name']!r} has unknown keys {unknown}")
        parent = item.get("parent")
        if parent is not None and parent not in names:
            raise refuse(f"entry {item['name']!r} names parent {safe_repr(parent)} before it")
        if item.get("quotas") is not None and not isinstance(item["quotas"], Mapping):
            raise refuse(f"entry {item['name']!r} has quotas that are not a map")
        if "default" in item:
            if not isinstance(item["default"], bool):
                raise refuse(f"entry {item['name']!r} has a default that is not true or false")
            if item["default"] and any(other.get("default") for other in checked):
                raise refuse(f"entry {item['name']!r} is a second default VHM")
        names.add(item["name"])
        try:
            checked.append(canonicalize(dict(item), "XDV_VHMS"))
        except TraceError as error:
            raise refuse(f"cannot enter a trace: {error.message}") from None
    return tuple(checked)


def _digest(source: bytes, params: dict[str, Any] | None) -> str:
    digest = hashlib.sha256(source).hexdigest()
    return digest if params is None else params_digest(digest, params)


def _canonical_file_target(path: Path, entry: str | None) -> str:
    """How a file target is recorded: relative to the current directory when it lies inside it
    (so ``x.py``, ``./x.py`` and its absolute spelling record the same run), else absolute."""
    resolved = path.resolve()
    try:
        location = resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        location = resolved.as_posix()
    return f"{location}:{entry}" if entry else location


def _check_digest(
    target: str, digest: str, expected: str | None, *, parameterized: bool = False
) -> None:
    if expected is not None and digest != expected:
        what = "source or its parameters" if parameterized else "source"
        raise WorkloadError(
            f"the workload's {what} changed since the trace was recorded "
            f"(recorded sha256 {expected[:16]}…, now {digest[:16]}…)",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            where=target,
        )


def load_dpl_workload(
    target: str,
    entry: str | None = None,
    *,
    expected_digest: str | None = None,
    steps_max: int | None = None,
) -> Workload:
    """A kernel :class:`Workload` running ``entry`` (default ``main``) of a
    ``.ds`` file; ``target`` may be ``file.ds`` or ``file.ds:entry``."""
    return load_dpl_program(target, entry, expected_digest=expected_digest, steps_max=steps_max)[0]


def load_dpl_program(
    target: str,
    entry: str | None = None,
    *,
    expected_digest: str | None = None,
    steps_max: int | None = None,
) -> tuple[Workload, dict[str, Any]]:
    """The workload of a ``.ds`` file (as :func:`load_dpl_workload`) and its DIR document."""
    location, _, named = target.partition(".ds:")
    if named:
        location += ".ds"
    tree = _dpl_tree(target)
    if tree is not None:
        location, named = tree
    entry_name = entry or named or "main"
    path = Path(location)
    # The DPL toolchain loads with the first DPL program, not with every command.
    from xdv import dpl

    canonical = _canonical_file_target(path, entry_name if entry_name != "main" else None)
    if path.is_dir():
        # A source tree (modules): every .ds file under it, compiled as one program; its
        # digest covers each file's relative path and text, in order.
        files = dpl.read_tree(path)
        hasher = hashlib.sha256()
        for name, content in files:
            for part in (name, content):
                data = part.encode("utf-8")
                hasher.update(len(data).to_bytes(8, "big") + data)
        digest = hasher.hexdigest()
        _check_digest(canonical, digest, expected_digest)
        document = dpl.compile_tree(files, path.name)
    else:
        text = dpl.read_text(path)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        _check_digest(canonical, digest, expected_digest)
        document = dpl.compile_source(text, path.name)
    program = dpl.Program(document, entry_name, steps_max=steps_max)

    def workload(kernel: Any) -> None:
        dpl.spawn_dpl(kernel, program)

    loaded = Workload(
        target=canonical,
        entry=entry_name,
        function=workload,
        digest=digest,
        domains=_dpl_domains(document),
        language="dpl",
    )
    return loaded, document


def _dpl_tree(target: str) -> tuple[str, str] | None:
    """A DPL source tree target, ``DIR`` or ``DIR:entry``, as (directory, entry or ""); None
    when ``target`` names no directory."""
    if Path(target).is_dir():
        return target, ""
    location, separator, entry = target.rpartition(":")
    if separator and location and Path(location).is_dir():
        return location, entry
    return None


def _dpl_domains(document: Mapping[str, Any]) -> DomainDeclaration | None:
    """The managers a DPL program needs beside K: the Q manager (Aer provider) when it has Q
    processes, the Φ manager when it has Φ processes."""
    regimes = {process["regime"] for process in document["processes"]}
    declared: dict[str, Mapping[str, Any]] = {}
    if "Q" in regimes:
        declared["Q"] = {"manager": "q", "providers": ["aer"]}
    if "Φ" in regimes:
        declared["Φ"] = {"manager": "phi"}
    return declared or None
