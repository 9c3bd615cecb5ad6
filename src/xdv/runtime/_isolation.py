"""Isolated Python workloads: the kernel side of the worker process.

:func:`load_isolated` makes a :class:`~xdv.runtime.Workload` without importing it: the digest
covers the source bytes, and ``XDV_DOMAINS`` / ``XDV_VHMS`` are read from the module's syntax
tree (they must be literals). :class:`WorkerSession` starts the worker (a fresh interpreter,
scrubbed environment, scratch directory, resource limits, no privileges), sends it the source
bytes, runs the setup function there and gives the kernel a stand-in for every function the
worker hands over. A stand-in process's generator turns each resumption into an "advance"
message and yields the system call the worker answers with, so the kernel validates, records and
schedules exactly what it would for the same workload in process. See ``docs/isolation.md``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import enum
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import xdv
from xdv import errors as _errors
from xdv import syscalls as _syscalls
from xdv.core import Kernel, Operation, ProcessState, RandomStream
from xdv.errors import (
    ErrorCode,
    InvariantViolation,
    WorkloadError,
    XdvError,
    describe_exception,
)
from xdv.inputs import read_bounded
from xdv.runtime._limits import WorkerLimits
from xdv.runtime._link import Link, LinkBroken, decode_plain, encode_plain
from xdv.runtime._worker import PROXY_METHODS
from xdv.runtime._workload import (
    Workload,
    _canonical_file_target,
    _check_digest,
    _checked_params,
    _declared_domains,
    _digest,
    _split,
    declared_vhms,
    is_builtin_target,
)
from xdv.trace import Domain, EventType

__all__ = ["IsolatedEntry", "WorkerSession", "load_isolated", "worker_session"]

_SYSCALLS: dict[str, type] = {
    name: getattr(_syscalls, name) for name in _syscalls.__all__ if name != "Syscall"
}
_SYSCALL_FIELDS = {
    name: frozenset(field.name for field in dataclasses.fields(cls))
    for name, cls in _SYSCALLS.items()
}
_ENUMS: dict[tuple[str, str], type[enum.Enum]] = {
    (cls.__module__, cls.__qualname__): cls
    for cls in (Domain, Operation, ErrorCode, ProcessState, EventType)
}
_ERRORS = {
    name: cls
    for name, cls in vars(_errors).items()
    if isinstance(cls, type) and issubclass(cls, XdvError)
}
_FOREIGN_TYPES_MAX = 1024
# The worker's first statements: XDV's own package first on the import path, then the worker
# module loaded without running xdv.runtime's __init__ (the kernel side's modules: a third of
# the start-up), which is left for the workload to import for real if it wants it.
_BOOT = (
    "import os, sys, types; root = sys.argv.pop(3); sys.path.insert(0, root); import xdv; "
    "stub = types.ModuleType('xdv.runtime'); "
    "stub.__path__ = [os.path.join(root, 'xdv', 'runtime')]; sys.modules['xdv.runtime'] = stub; "
    "from xdv.runtime._worker import main; del sys.modules['xdv.runtime']; main()"
)


@dataclasses.dataclass(frozen=True)
class IsolatedEntry:
    """The function of an isolated workload: where its code is and how to call it. Calling it
    with a kernel is refused: an isolated workload runs through a :class:`WorkerSession`."""

    location: str
    target: str
    path: str
    module: str
    entry: str
    source: bytes
    params: Mapping[str, Any] | None
    check: bool
    refusal: str

    def __call__(self, kernel: Any) -> None:
        raise XdvError(
            "an isolated workload runs in a worker process (isolation='process')",
            code=ErrorCode.WORKER_REFUSED,
            where=self.target,
        )


def _literal(tree: ast.Module, name: str, target: str) -> Any:
    """The value of the module-level assignment ``name = <literal>``, or None."""
    found = None
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is not None and any(
            isinstance(item, ast.Name) and item.id == name for item in targets
        ):
            try:
                found = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise WorkloadError(
                    f"{name} of an isolated workload must be a literal (it is read without "
                    "running the module)",
                    code=ErrorCode.WORKER_START_FAILED,
                    where=target,
                ) from None
    return found


def load_isolated(
    target: str,
    *,
    expected_digest: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Workload:
    """The workload of the Python file ``target`` (``file.py`` or ``file.py:function``),
    loaded without importing or running any of it in this process."""
    refusal = (
        ErrorCode.WORKLOAD_INVALID if expected_digest is None else ErrorCode.REPLAY_INPUT_CHANGED
    )
    checked = None if params is None else _checked_params(params, target, refusal)
    location, entry = _split(target)
    path = Path(location)
    if not path.is_file():
        if location.endswith(".py"):
            raise WorkloadError(f"workload file not found: {location}", where=target)
        raise WorkloadError(
            "an isolated workload is a Python file (file.py or file.py:function)",
            code=ErrorCode.WORKER_START_FAILED,
            where=target,
        )
    canonical = _canonical_file_target(path, entry)
    source = read_bounded(path, "source_bytes_max", what="workload")
    digest = _digest(source, checked)
    _check_digest(canonical, digest, expected_digest, parameterized=checked is not None)
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise WorkloadError(
            f"importing {location} failed: {type(error).__name__}: {error}", where=canonical
        ) from None
    # Shapes are checked exactly as for a workload loaded in process.
    holder = type("Declared", (), {})()
    holder.XDV_DOMAINS = _literal(tree, "XDV_DOMAINS", canonical)
    entry_name = entry or "main"
    function = IsolatedEntry(
        location=location,
        target=canonical,
        path=str(path.resolve()),
        module=f"xdv_workload_{path.stem}",
        entry=entry_name,
        source=source,
        params=checked,
        check=checked is not None or expected_digest is not None,
        refusal=refusal.name,
    )
    return Workload(
        target=canonical,
        entry=entry_name,
        function=function,
        digest=digest,
        params=checked,
        domains=_declared_domains(holder, canonical),
        vhms=declared_vhms(_literal(tree, "XDV_VHMS", canonical), canonical),
    )


def isolated(workload: Workload) -> Workload:
    """``workload`` ready for a worker process: as it is when loaded for isolation; a Python
    file workload loaded in process is loaded again (same digest) without the import (a module
    target is refused); DPL programs and XDV's own workloads (Q and Φ jobs) run no user Python
    code and stay as they are."""
    if isinstance(workload.function, IsolatedEntry) or workload.language != "python":
        return workload
    if is_builtin_target(workload.target):
        return workload
    return load_isolated(
        workload.target,
        params=workload.params,
        expected_digest=None,
    )


class _RemoteFunction:
    """The kernel's stand-in for a function that lives in the worker: same names (so the
    trace records the same anchor), called through the pipe."""

    def __init__(self, session: WorkerSession, number: int, module: str, qualname: str, name: str):
        self._session = session
        self._number = number
        self.__module__ = module
        self.__qualname__ = qualname
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.call(self._number, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__qualname__} in the worker>"


def _remote_process(session: WorkerSession, number: int) -> Generator[Any, Any, Any]:
    """A stand-in process: each resumption goes to the worker, each answer comes back."""
    mode, value = "send", None
    while True:
        ended, answer = session.advance(number, mode, value)
        if ended:
            return answer
        try:
            value = yield answer
            mode = "send"
        except GeneratorExit:
            raise
        except BaseException as error:  # the kernel throws operating errors into a process
            mode, value = "throw", error


class WorkerSession:
    """One worker process serving one run (see the module docstring).

    Once the worker fails (it died, went past a limit, sent something malformed), it is ended
    and every later request raises the same typed error, so each process still running ends
    with it while the kernel goes on."""

    def __init__(self, workload: Workload, limits: WorkerLimits | None = None) -> None:
        entry = workload.function
        if not isinstance(entry, IsolatedEntry):
            raise XdvError(
                "this workload was not loaded for isolation", code=ErrorCode.WORKER_REFUSED
            )
        self.entry = entry
        self.limits = limits or WorkerLimits()
        self.kernel: Kernel | None = None
        self.failure: XdvError | None = None
        self.functions: dict[int, _RemoteFunction] = {}
        self.handles: dict[int, Any] = {}
        self.handle_ids: dict[int, int] = {}
        self.foreign: dict[tuple[str, str], type] = {}
        self.round_trips = 0
        self.scratch = Path(tempfile.mkdtemp(prefix="xdv-worker-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.started = time.monotonic()
        self.exit_status: int | None = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # Start and stop.

    def _start(self) -> None:
        drop = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            drop = [nobody.pw_uid, nobody.pw_gid]
            os.chown(self.scratch, nobody.pw_uid, nobody.pw_gid)
        to_worker_read, to_worker_write = os.pipe()
        from_worker_read, from_worker_write = os.pipe()
        package_root = str(Path(xdv.__file__).resolve().parent.parent)
        environment = {
            "PATH": os.defpath,
            "LANG": "C.UTF-8",
            "HOME": str(self.scratch),
            "TMPDIR": str(self.scratch),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-c",
                    _BOOT,
                    str(to_worker_read),
                    str(from_worker_write),
                    package_root,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(to_worker_read, from_worker_write),
                cwd=self.scratch,
                env=environment,
                start_new_session=True,
            )
        except OSError as error:
            raise XdvError(
                f"the worker process could not be started: {error.strerror}",
                code=ErrorCode.WORKER_START_FAILED,
                where="worker",
            ) from None
        finally:
            os.close(to_worker_read)
            os.close(from_worker_write)
        self.link = Link(
            from_worker_read, to_worker_write, self._serve, self._error_record, self._decode_error
        )
        self.link.deadline = self.started + self.limits.wall_s
        self.link.on_timeout = self._wall_limit
        self.link.on_eof = self._died
        entry = self.entry
        try:
            self.link.request(
                {
                    "op": "init",
                    "source": entry.source,
                    "path": entry.path,
                    "module": entry.module,
                    "entry": entry.entry,
                    "location": entry.location,
                    "target": entry.target,
                    "params": self._encode(dict(entry.params) if entry.params else None),
                    "check": entry.check,
                    "refusal": entry.refusal,
                    "limits": dataclasses.asdict(self.limits),
                    "drop": drop,
                }
            )
        except WorkloadError:
            raise
        except Exception as error:
            self._end()
            why = error.message if isinstance(error, XdvError) else describe_exception(error)
            raise XdvError(
                f"the worker process did not start: {why}",
                code=ErrorCode.WORKER_START_FAILED,
                where="worker",
            ) from None

    def _end(self) -> None:
        """Kill the worker (its whole process group) and reap it."""
        process = self.process
        if process is None or self.exit_status is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self._reap(block=True)

    def _reap(self, *, block: bool) -> int | None:
        process = self.process
        if process is None:
            return None
        if self.exit_status is None:
            try:
                pid, status, usage = os.wait4(process.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return process.returncode
            if pid == 0:
                return None
            self.exit_status = os.waitstatus_to_exitcode(status)
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
            process.returncode = self.exit_status
        return self.exit_status

    def close(self) -> None:
        """End the worker and remove its scratch directory."""
        process = self.process
        if process is not None and self.exit_status is None and self.failure is None:
            with contextlib.suppress(XdvError, OSError):
                self.link.send({"q": {"op": "stop"}})
            deadline = time.monotonic() + 1.0
            while self._reap(block=False) is None and time.monotonic() < deadline:
                time.sleep(0.002)
        self._end()
        if process is not None and hasattr(self, "link"):
            for descriptor in (self.link.read_fd, self.link.write_fd):
                with contextlib.suppress(OSError):
                    os.close(descriptor)
        shutil.rmtree(self.scratch, ignore_errors=True)

    # Failures.

    def _fail(self, error: XdvError) -> XdvError:
        """Record the worker's failure (the first one counts), end it, return the error."""
        if self.failure is None:
            self.failure = error
            self._end()
        return self._failed()

    def _failed(self) -> XdvError:
        failure = self.failure
        assert failure is not None
        return LinkBroken(failure.message, code=failure.code, where="worker")

    def _wall_limit(self) -> XdvError:
        return self._fail(
            XdvError(
                f"the worker went past its wall-clock limit of {self.limits.wall_s:g} s",
                code=ErrorCode.WORKER_LIMIT_EXCEEDED,
            )
        )

    def _died(self) -> XdvError:
        deadline = time.monotonic() + 2.0
        while self._reap(block=False) is None and time.monotonic() < deadline:
            time.sleep(0.002)
        status = self.exit_status
        cpu = getattr(self, "cpu_seconds", 0.0)
        if status in (-signal.SIGXCPU, -signal.SIGKILL) and cpu >= self.limits.cpu_s - 0.05:
            return self._fail(
                XdvError(
                    f"the worker went past its CPU limit of {self.limits.cpu_s:g} s",
                    code=ErrorCode.WORKER_LIMIT_EXCEEDED,
                )
            )
        if status is None:
            how = "closed its pipe"
        elif status < 0:
            how = f"was killed by {signal.Signals(-status).name}"
        else:
            how = f"exited with status {status}"
        return self._fail(XdvError(f"the worker process {how}", code=ErrorCode.WORKER_DIED))

    def _request(self, body: dict[str, Any]) -> Any:
        if self.failure is not None:
            raise self._failed()
        self.round_trips += 1
        try:
            answer = self.link.request(body)
        except LinkBroken as error:
            raise self._fail(XdvError(error.message, code=error.code)) from None
        if not isinstance(answer, dict) or len(answer) != 1:
            raise self._fail(
                XdvError(
                    "the worker answered with a malformed reply", code=ErrorCode.WORKER_PROTOCOL
                )
            )
        return answer

    def _protocol(self, why: str) -> XdvError:
        return self._fail(XdvError(f"the worker sent {why}", code=ErrorCode.WORKER_PROTOCOL))

    # Values.

    def _encode(self, value: Any, depth: int = 0) -> Any:
        """A kernel value for the worker: data as data, kernel objects by handle."""
        try:
            return encode_plain(value, lambda item: self._encode(item, depth + 1))
        except TypeError:
            pass
        if isinstance(value, _RemoteFunction):
            return {"$fn": [value._number]}
        if value is self.kernel and value is not None:
            return {"$k": 0}
        if isinstance(value, enum.Enum):
            kind = type(value)
            return {"$e": [kind.__module__, kind.__qualname__, value.name]}
        if isinstance(value, BaseException):
            return self._error_record(value)
        number = self.handle_ids.get(id(value))
        if number is not None and self.handles[number] is value:
            return {"$h": [number]}
        number = len(self.handles) + 1
        self.handles[number] = value
        self.handle_ids[id(value)] = number
        kind = type(value)
        if isinstance(value, RandomStream):
            return {
                "$h": [
                    number,
                    "rng",
                    value.seed,
                    list(value.identity),
                    value._counter,
                    list(value._buffer),
                ]
            }
        if dataclasses.is_dataclass(value) and kind.__module__.startswith("xdv."):
            fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
            return {
                "$h": [
                    number,
                    "dc",
                    kind.__module__,
                    kind.__qualname__,
                    self._encode(fields, depth + 1),
                ]
            }
        return {"$h": [number, "o", kind.__module__, kind.__qualname__]}

    def _decode(self, data: Any) -> Any:
        """A worker value for the kernel: only the kinds listed here are built."""
        try:
            return decode_plain(data, self._decode)
        except KeyError as missing:
            tag = missing.args[0]
        except (TypeError, ValueError) as error:  # an unhashable key, a bad number
            raise self._protocol(f"a malformed value ({type(error).__name__})") from None
        ((_, body),) = data.items()
        if tag == "$k" and self.kernel is not None:
            return self.kernel
        if not isinstance(body, list) and tag != "$h" and tag != "$g":
            raise self._protocol(f"a malformed {tag!r} value")
        if tag == "$c":
            return self._decode_call(body)
        if tag == "$h":
            found = self.handles.get(body) if type(body) is int else None
            if found is None:
                raise self._protocol("an unknown handle")
            return found
        if tag == "$fn":
            return self._function(body)
        if tag == "$g":
            if type(body) is not int:
                raise self._protocol("a malformed generator")
            return _remote_process(self, body)
        if tag == "$e":
            if len(body) != 3 or not all(type(item) is str for item in body):
                raise self._protocol("a malformed enum")
            kind = _ENUMS.get((body[0], body[1]))
            if kind is None or body[2] not in kind.__members__:
                raise self._protocol(f"an enum the kernel does not take ({body[1]})")
            return kind[body[2]]
        if tag == "$x":
            return self._decode_error(data)
        if tag == "$o":
            return self._foreign(body)()
        raise self._protocol(f"an unknown tag {tag!r}")

    def _decode_call(self, body: list[Any]) -> Any:
        if len(body) != 2 or type(body[0]) is not str:
            raise self._protocol("a malformed system call")
        name, encoded = body
        cls = _SYSCALLS.get(name)
        if cls is None:
            raise self._protocol(f"an unknown system call {name!r}")
        fields = self._decode(encoded)
        if not isinstance(fields, dict) or set(fields) != _SYSCALL_FIELDS[name]:
            raise self._protocol(f"a {name} with the wrong fields")
        call: Any = object.__new__(cls)
        for key, item in fields.items():
            object.__setattr__(call, key, item)
        return call

    def _function(self, body: list[Any]) -> _RemoteFunction:
        if len(body) != 4 or type(body[0]) is not int or not all(type(x) is str for x in body[1:]):
            raise self._protocol("a malformed function")
        number, module, qualname, name = body
        known = self.functions.get(number)
        if known is None:
            known = _RemoteFunction(self, number, module, qualname, name)
            self.functions[number] = known
        return known

    def _foreign(self, body: list[Any]) -> type:
        """A stand-in class named like a worker object the kernel does not take, so that the
        kernel refuses it with the same words as it would the object itself."""
        if len(body) != 2 or not all(type(item) is str for item in body):
            raise self._protocol("a malformed object")
        key = (body[0], body[1])
        found = self.foreign.get(key)
        if found is None:
            if len(self.foreign) >= _FOREIGN_TYPES_MAX:
                raise self._protocol("too many kinds of object")
            found = type(body[1].rpartition(".")[2] or "object", (), {"__module__": body[0]})
            found.__qualname__ = body[1]
            self.foreign[key] = found
        return found

    def _error_record(self, error: BaseException) -> Any:
        if isinstance(error, XdvError):
            return {
                "$x": ["xdv", type(error).__name__, error.code.name, error.message, error.where]
            }
        return {"$x": ["exc", type(error).__name__, None, str(error), type(error).__module__]}

    def _decode_error(self, data: Any) -> BaseException:
        body = data.get("$x") if isinstance(data, dict) else None
        if (
            not isinstance(body, list)
            or len(body) not in (5, 6)
            or body[0] not in ("xdv", "exc", "exit")
            or type(body[1]) is not str
            or type(body[3]) is not str
        ):
            raise self._protocol("a malformed error")
        kind, name, code, message, extra = body[:5]
        if kind == "xdv":
            if code not in ErrorCode.__members__ or not (extra is None or type(extra) is str):
                raise self._protocol("an error with an unknown code")
            cls = _ERRORS.get(name, XdvError)
            error = cls.__new__(cls)
            XdvError.__init__(error, message, code=ErrorCode[code], where=extra)
            return error
        base: type[BaseException] = SystemExit if kind == "exit" else Exception
        key = (f"exception:{kind}:{extra}", name)
        cls_found = self.foreign.get(key)
        if cls_found is None:
            if len(self.foreign) >= _FOREIGN_TYPES_MAX:
                raise self._protocol("too many kinds of object")
            cls_found = type(name, (base,), {"__str__": lambda self: self.args[0]})
            cls_found.__module__ = str(extra)
            self.foreign[key] = cls_found
        made: BaseException = cls_found(message)
        if len(body) == 6 and type(body[5]) is str:
            made.xdv_worker_traceback = body[5]  # type: ignore[attr-defined]
        return made

    def _answer(self, answer: dict[str, Any], expected: str) -> Any:
        ((kind, content),) = answer.items()
        if kind == "x":
            raise self._decode_error(content)
        if kind != expected:
            raise self._protocol(f"an answer of kind {kind!r} where {expected!r} was due")
        return self._decode(content)

    # Requests.

    def setup(self, kernel: Kernel) -> None:
        """Run the workload's setup function in the worker, serving its kernel requests."""
        self.kernel = kernel
        params = self.entry.params
        answer = self._request(
            {"op": "setup", "params": self._encode(dict(params) if params else None)}
        )
        self._answer(answer, "v")

    def call(self, number: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call worker function ``number`` (a process's anchor, a K call's function)."""
        answer = self._request(
            {"op": "call", "fn": number, "a": self._encode(args), "k": self._encode(kwargs)}
        )
        return self._answer(answer, "v")

    def advance(self, number: int, mode: str, value: Any) -> tuple[bool, Any]:
        """Resume worker generator ``number``: (False, the system call it yielded) or (True,
        its return value); an exception it ended with is raised."""
        answer = self._request({"op": "advance", "g": number, "m": mode, "v": self._encode(value)})
        ((kind, content),) = answer.items()
        if kind == "s":
            return True, self._decode(content)
        return False, self._answer(answer, "y")

    def _serve(self, body: Any) -> Any:
        """A request from the worker: one of the kernel's operator methods."""
        if not isinstance(body, dict) or body.get("op") != "kernel":
            raise self._protocol("a request the kernel does not serve")
        method, args, kwargs = (
            body.get("m"),
            self._decode(body.get("a")),
            self._decode(body.get("k")),
        )
        if method not in PROXY_METHODS:
            raise XdvError(
                f"the kernel does not serve {method!r} to an isolated workload",
                code=ErrorCode.WORKER_REFUSED,
                where="worker",
            )
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise self._protocol("a malformed kernel request")
        kernel = self.kernel
        if kernel is None:
            raise XdvError("the kernel is not ready", code=ErrorCode.WORKER_REFUSED)
        try:
            target: Any = kernel
            for part in method.split("."):
                target = getattr(target, part)
            result = target(*args, **kwargs)
        except InvariantViolation:
            raise
        return self._encode(result)


@contextlib.contextmanager
def worker_session(
    workload: Workload, isolation: str, limits: WorkerLimits | None
) -> Iterator[tuple[Workload, Any]]:
    """The workload to run and its setup function: in process, the workload's own; isolated,
    a :class:`WorkerSession`'s (the worker is ended when the block is left)."""
    if isolation != "process":
        yield workload, workload.function
        return
    workload = isolated(workload)
    if not isinstance(workload.function, IsolatedEntry):
        yield workload, workload.function
        return
    session = WorkerSession(workload, limits)
    try:
        yield workload, session.setup
    finally:
        session.close()
