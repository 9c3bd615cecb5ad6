"""The worker process of an isolated workload: where the workload's own code runs.

Started by the kernel side (:mod:`xdv.runtime._isolation`) as a fresh interpreter with two pipe
descriptors. It holds no kernel object: it loads the workload from the source bytes the kernel
sent (the bytes the kernel hashed), runs the setup function with a :class:`KernelProxy`, and
keeps every process's generator. The kernel drives it: "call this function", "advance this
generator with this value or error"; the worker answers with the system call the generator
yielded (as data) or how it ended. Before any workload code runs, the worker applies its
resource limits and, when started as root, drops to an unprivileged user.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import enum
import functools
import importlib
import inspect
import os
import resource
import sys
import types
from typing import Any

from xdv import errors as _errors
from xdv import syscalls as _syscalls
from xdv.core import RandomStream
from xdv.errors import ErrorCode, WorkloadError, XdvError
from xdv.runtime._faults import format_traceback
from xdv.runtime._link import Link, LinkBroken, decode_plain, encode_plain

__all__ = ["KernelProxy", "main"]

_SYSCALLS = {name: getattr(_syscalls, name) for name in _syscalls.__all__ if name != "Syscall"}
_SYSCALL_TYPES = frozenset(_SYSCALLS.values())
_SYSCALL_FIELDS = {
    cls: tuple(field.name for field in dataclasses.fields(cls)) for cls in _SYSCALL_TYPES
}
_MIB = 1 << 20
_NOFILE = 256
_FSIZE = 64 * _MIB
_DEPTH_MAX = 200
_TRACEBACK_CHARS = 16384

# The kernel methods a workload's setup may call (the same names as on the kernel).
PROXY_METHODS = (
    "spawn",
    "create_vhm",
    "destroy_vhm",
    "grant",
    "channel",
    "revoke",
    "freeze",
    "vhms.find",
    "vhms.get",
)
_NAMESPACES = frozenset(name.partition(".")[0] for name in PROXY_METHODS if "." in name)


class _Opaque:
    """A kernel object the worker cannot rebuild: it can only be handed back."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<kernel object {self.kind}>"


def _exception_record(error: BaseException) -> dict[str, Any]:
    """How an exception crosses the pipe (either way)."""
    kind = type(error)
    if isinstance(error, XdvError):
        return {
            "$x": [
                "xdv",
                kind.__name__,
                error.code.name,
                error.message,
                error.where,
            ]
        }
    return {
        "$x": [
            "exit" if isinstance(error, SystemExit) else "exc",
            kind.__name__,
            None,
            str(error),
            kind.__module__,
            format_traceback(error)[-_TRACEBACK_CHARS:],
        ]
    }


class _Namespace:
    """A part of the kernel proxy such as ``kernel.vhms`` (its methods go to the kernel)."""

    def __init__(self, worker: Worker, prefix: str) -> None:
        self._worker = worker
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        method = f"{self._prefix}.{name}"
        if method not in PROXY_METHODS:
            raise XdvError(
                f"an isolated workload's kernel offers only {list(PROXY_METHODS)}, not {method!r}",
                code=ErrorCode.WORKER_REFUSED,
                where="kernel proxy",
            )
        return functools.partial(self._worker.kernel_call, method)


class KernelProxy:
    """What a workload's setup function gets in place of the kernel: the operator methods
    (``spawn``, ``create_vhm``, ``grant``, ``channel``, ...), each sent to the kernel as a
    message and answered there. Anything else is refused (WORKER_REFUSED)."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def __getattr__(self, name: str) -> Any:
        if name in _NAMESPACES:
            return _Namespace(self._worker, name)
        if name not in PROXY_METHODS:
            raise XdvError(
                f"an isolated workload's kernel offers only {list(PROXY_METHODS)}, not {name!r}",
                code=ErrorCode.WORKER_REFUSED,
                where="kernel proxy",
            )
        return functools.partial(self._worker.kernel_call, name)

    def __repr__(self) -> str:
        return "<kernel proxy>"


class Worker:
    """The worker's state: the workload module, functions and generators it handed out, and
    the kernel objects it was given (by handle)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.link = Link(read_fd, write_fd, self.serve, _exception_record, self.decode_error)
        self.function: Any = None
        self.functions: dict[int, Any] = {}
        self.function_ids: dict[int, int] = {}
        self.generators: dict[int, Any] = {}
        self.next_generator = 1
        self.handles: dict[int, Any] = {}
        self.handle_ids: dict[int, int] = {}
        self.limits: dict[str, Any] = {}

    # Values.

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > _DEPTH_MAX:
            raise XdvError(
                "a value sent to the kernel nests too deep",
                code=ErrorCode.TRACE_UNENCODABLE,
                where="worker",
            )
        try:
            return encode_plain(value, lambda item: self.encode(item, depth + 1))
        except TypeError:
            pass
        handle = self.handle_ids.get(id(value))
        if handle is not None and self.handles.get(handle) is value:
            return {"$h": handle}
        if isinstance(value, KernelProxy):
            return {"$k": 0}
        kind = type(value)
        if kind in _SYSCALL_TYPES:
            fields = {name: getattr(value, name) for name in _SYSCALL_FIELDS[kind]}
            return {"$c": [kind.__name__, self.encode(fields, depth + 1)]}
        if isinstance(value, enum.Enum):
            return {"$e": [kind.__module__, kind.__qualname__, value.name]}
        if isinstance(value, BaseException):
            return _exception_record(value)
        if inspect.isgenerator(value) or inspect.iscoroutine(value):
            number = self.next_generator
            self.next_generator += 1
            self.generators[number] = value
            return {"$g": number}
        if callable(value) and not isinstance(value, type):
            known = self.function_ids.get(id(value))
            if known is not None and self.functions[known] is value:
                number = known
            else:
                number = len(self.functions) + 1
                self.functions[number] = value
                self.function_ids[id(value)] = number
            return {
                "$fn": [
                    number,
                    str(getattr(value, "__module__", None) or "?"),
                    str(getattr(value, "__qualname__", None) or kind.__name__),
                    str(getattr(value, "__name__", None) or "process"),
                ]
            }
        return {"$o": [str(kind.__module__), str(kind.__qualname__)]}

    def decode(self, data: Any) -> Any:
        try:
            return decode_plain(data, self.decode)
        except KeyError as missing:
            tag = missing.args[0]
        ((_, body),) = data.items()
        if tag == "$h":
            return self.decode_handle(body)
        if tag == "$k":
            return KernelProxy(self)
        if tag == "$fn":
            return self.functions[body[0]]
        if tag == "$e":
            module, qualname, name = body
            owner: Any = importlib.import_module(module)
            for part in qualname.split("."):
                owner = getattr(owner, part)
            return owner[name]
        if tag == "$x":
            return self.decode_error(data)
        raise LinkBroken(f"the kernel sent an unknown tag {tag!r}")

    def decode_handle(self, body: list[Any]) -> Any:
        number = body[0]
        if number in self.handles:
            return self.handles[number]
        kind = body[1]
        value: Any
        if kind == "dc":
            module, qualname, fields = body[2], body[3], body[4]
            owner: Any = importlib.import_module(module)
            for part in qualname.split("."):
                owner = getattr(owner, part)
            value = object.__new__(owner)
            for name, item in self.decode(fields).items():
                object.__setattr__(value, name, item)
        elif kind == "rng":
            seed, identity, counter, buffer = body[2], body[3], body[4], body[5]
            value = RandomStream(seed, tuple(identity))
            value._counter = counter
            value._buffer = list(buffer)
        else:
            value = _Opaque(str(body[3]))
        self.handles[number] = value
        self.handle_ids[id(value)] = number
        return value

    def decode_error(self, data: Any) -> BaseException:
        kind, name, code, message, where = data["$x"][:5]
        if kind == "xdv":
            cls = getattr(_errors, name, None)
            if not (isinstance(cls, type) and issubclass(cls, XdvError)):
                cls = XdvError
            error = cls.__new__(cls)
            XdvError.__init__(error, message, code=ErrorCode[code], where=where)
            return error
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, Exception):
            with contextlib.suppress(Exception):
                made: BaseException = builtin(message)
                if str(made) == message:
                    return made
        return RuntimeError(f"{name}: {message}")

    # Requests.

    def serve(self, body: Any) -> Any:
        operation = body["op"]
        if operation == "advance":
            return self.advance(body["g"], body["m"], body["v"])
        if operation == "call":
            function = self.functions[body["fn"]]
            args = self.decode(body["a"])
            kwargs = self.decode(body["k"])
            try:
                return {"v": self.encode(function(*args, **kwargs))}
            except (Exception, SystemExit) as error:
                return {"x": _exception_record(self.worker_error(error))}
        if operation == "setup":
            params = self.decode(body["params"]) or {}
            try:
                self.function(KernelProxy(self), **params)
            except (Exception, SystemExit) as error:
                return {"x": _exception_record(self.worker_error(error))}
            return {"v": None}
        if operation == "init":
            return self.init(body)
        if operation == "stop":
            os._exit(0)
        raise LinkBroken(f"unknown request {operation!r}")

    def worker_error(self, error: BaseException) -> BaseException:
        """The error the kernel is told of: a memory error is the worker's memory limit."""
        if isinstance(error, MemoryError):
            return XdvError(
                f"the worker ran out of memory (limit {self.limits.get('memory_mb')} MiB)",
                code=ErrorCode.WORKER_LIMIT_EXCEEDED,
                where="worker",
            )
        if isinstance(error, _errors.InvariantViolation):
            return RuntimeError(str(error))
        return error

    def advance(self, number: int, mode: str, data: Any) -> Any:
        generator = self.generators[number]
        value = self.decode(data)
        try:
            call = generator.throw(value) if mode == "throw" else generator.send(value)
        except StopIteration as stop:
            del self.generators[number]
            return {"s": self.encode(stop.value)}
        except BaseException as error:
            del self.generators[number]
            if isinstance(error, KeyboardInterrupt):
                raise
            return {"x": _exception_record(self.worker_error(error))}
        return {"y": self.encode(call)}

    def kernel_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        answer = self.link.request(
            {"op": "kernel", "m": method, "a": self.encode(args), "k": self.encode(kwargs)}
        )
        return self.decode(answer)

    def init(self, body: dict[str, Any]) -> Any:
        self.limits = body["limits"]
        _apply_limits(self.limits)
        drop = body.get("drop")
        if drop is not None:
            _drop_privileges(int(drop[0]), int(drop[1]))
        name, path, entry = body["module"], body["path"], body["entry"]
        module = types.ModuleType(name)
        module.__file__ = path
        sys.modules[name] = module
        try:
            code = compile(body["source"], path, "exec")
            exec(code, module.__dict__)
        except (Exception, SystemExit) as error:
            raise WorkloadError(
                f"importing {body['location']} failed: {type(error).__name__}: {error}",
                where=body["target"],
            ) from None
        function = getattr(module, entry, None)
        if not callable(function):
            raise WorkloadError(
                f"{body['location']} has no function {entry!r} (a workload is a function that "
                "takes the kernel and spawns processes)",
                where=body["target"],
            )
        params = self.decode(body["params"])
        if body["check"]:
            try:
                inspect.signature(function).bind(None, **(params or {}))
            except TypeError as error:
                raise WorkloadError(
                    f"the workload cannot be called with "
                    f"{'these parameters' if params else 'the kernel alone'}: {error}",
                    code=ErrorCode[body["refusal"]],
                    where=body["target"],
                ) from None
            except ValueError:
                pass
        self.function = function
        return {"uid": os.getuid(), "pid": os.getpid()}


def _apply_limits(limits: dict[str, Any]) -> None:
    """The worker's resource limits, set before any workload code runs."""
    cpu = max(1, int(-(-float(limits["cpu_s"]) // 1)))
    memory = int(limits["memory_mb"]) * _MIB
    settings = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (_NOFILE, _NOFILE)),
        (resource.RLIMIT_FSIZE, (_FSIZE, _FSIZE)),
        (resource.RLIMIT_NPROC, (0, 0)),
    ]
    for which, (soft, hard) in settings:
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))


def _drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good (no supplementary groups, no saved root id).

    The interpreter's own files may lie where that user cannot look (a root-only home): each
    import directory is opened first and the import path is rewritten to go through those
    descriptors, so imports keep working while nothing else of the old user's becomes
    readable."""
    import ctypes  # before the change of user: it may not be importable after it

    mapping: list[tuple[str, str]] = []
    for entry in list(sys.path):
        if entry and os.path.isdir(entry):
            descriptor = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
            mapping.append((os.path.abspath(entry), f"/proc/self/fd/{descriptor}"))
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise XdvError(
            "the worker could not drop its privileges", code=ErrorCode.WORKER_START_FAILED
        )
    with contextlib.suppress(OSError, AttributeError):
        # Changing user made the process undumpable, which hides /proc/self/fd from itself.
        ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE

    def rewrite(path: str) -> str:
        for original, through in mapping:
            if path == original or path.startswith(original + os.sep):
                return through + path[len(original) :]
        return path

    sys.path[:] = [rewrite(entry) for entry in sys.path]
    for module in list(sys.modules.values()):
        package_path = getattr(module, "__path__", None)
        if isinstance(package_path, list):
            package_path[:] = [rewrite(entry) for entry in package_path]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def main() -> None:
    """Serve the kernel on the descriptors named by ``sys.argv[1:3]`` until it says stop or
    closes the pipe."""
    worker = Worker(int(sys.argv[1]), int(sys.argv[2]))
    link = worker.link
    while True:
        try:
            message = link.receive()
        except LinkBroken:
            os._exit(0)
        body = message.get("q") if isinstance(message, dict) else None
        if body is None:
            os._exit(3)
        try:
            answer: dict[str, Any] = {"r": worker.serve(body)}
        except LinkBroken:
            os._exit(3)
        except Exception as error:
            answer = {"e": _exception_record(worker.worker_error(error))}
        try:
            link.send(answer)
        except XdvError:
            os._exit(0)
