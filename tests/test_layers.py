"""The layers of ``src/xdv``, read from the source's imports (``ast``).

The packages form one stack; each layer imports only the layers below it::

    errors → trace → core → security → domains → dpl → runtime → qiskit → dimod → telemetry →
    view → service → cluster → cts → cli

``xdv.syscalls`` is the public face of the core's system calls and counts as ``core``; the
package root (``xdv/__init__.py``, which resolves public names lazily) and ``__main__`` sit on
top. Inside ``domains`` the Q and Φ packages are peers and never import each other. Across
packages a module imports only public names (``from xdv.trace import canonicalize``, never
``from xdv.trace._format import …``). Imports inside functions are kept for modules that need an
optional heavy dependency (the Q and Φ domain packages, and the providers that import Qiskit or
Stim) and for the DPL toolchain, which the runtime and the command line load with the first DPL
program rather than at start-up; every other import is at module level.
"""

from __future__ import annotations

import ast
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "xdv"

LAYERS = [
    "errors",
    "trace",
    "core",
    "security",
    "domains",
    "dpl",
    "runtime",
    "qiskit",  # the Qiskit primitives (xdv.qiskit), over the runtime
    "dimod",  # the Ocean sampler (xdv.dimod), over the runtime
    "telemetry",  # metrics and spans derived from traces (xdv telemetry)
    "view",  # XDV View, the read-only web view of traces (xdv view)
    "service",  # the node service (xdv serve), over the runtime
    "cluster",  # XDV nodes as Ray actors (xdv cluster), over the node service
    "cts",  # the conformance test suite (xdv cts), over everything it checks
    "cli",
]
TOP = len(LAYERS)  # the package root and __main__
# The conformance cases are data (workloads run by the suite), not modules of the package.
CTS_CASES = SOURCE / "cts" / "cases"

# Function-level imports allowed: modules whose import needs an optional extra (the q and phi
# extras), imported where they are used so that K-only runs never load them; and the DPL
# toolchain (tens of milliseconds of class construction), loaded with the first DPL program so
# that `xdv --help` and Python runs start without it (benchmarks/startup.py).
DEFERRED_OK = (
    "xdv.domains.q",
    "xdv.domains.phi",
    "xdv.dpl",
    # The node service (FastAPI, uvicorn) and the Qiskit/Ocean interfaces load only with the
    # commands that use them, so that `xdv --help` and plain runs start without them.
    "xdv.service",
    "xdv.qiskit",
    "xdv.dimod",
    # Telemetry (OpenTelemetry), the view (FastAPI, Jinja), the cluster (Ray) and the
    # conformance suite load only with the commands that use them.
    "xdv.telemetry",
    "xdv.view",
    "xdv.cluster",
    "xdv.cts",
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. xdv.cli._main
    target: str  # the imported module, e.g. xdv.trace._format
    names: tuple[str, ...]
    line: int
    deferred: bool  # inside a function


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(module: str) -> bool:
    return (SOURCE.parent / module.replace(".", "/") / "__init__.py").is_file()


class _Reader(ast.NodeVisitor):
    """The ``xdv`` imports of one module, each marked deferred when it sits in a function."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.functions = 0  # how many function definitions enclose the current node
        self.found: list[Import] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        self._add(node.names[0].name, (), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            if not _is_package(self.module):
                base = base[:-1]
            base = base[: len(base) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
        else:
            target = node.module or ""
        self._add(target, tuple(alias.name for alias in node.names), node.lineno)

    def _add(self, target: str, names: tuple[str, ...], line: int) -> None:
        if not target.startswith("xdv"):
            return
        deferred = self.functions > 0
        if target == "xdv":  # `from xdv import dpl`: the subpackages named
            for name in names:
                self.found.append(Import(self.module, f"xdv.{name}", (), line, deferred))
            return
        self.found.append(Import(self.module, target, names, line, deferred))


@functools.cache
def _imports() -> tuple[Import, ...]:
    """Every ``xdv`` import of the package's modules (read once, when a test first asks)."""
    found: list[Import] = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name.endswith("_test.py") or CTS_CASES in path.parents:
            continue
        reader = _Reader(_module_name(path))
        reader.visit(ast.parse(path.read_text("utf-8")))
        found.extend(reader.found)
    return tuple(found)


def _package(module: str) -> str:
    """The unit of the layer rules: a top-level package (or module), with the domain packages
    (``xdv.domains.q``, ``xdv.domains.phi``) as units of their own."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "xdv"
    if parts[1] == "syscalls":
        return "xdv.core"
    if parts[1] == "inputs":  # input limits and safe reading: part of the foundation
        return "xdv.errors"
    if parts[1] == "domains" and len(parts) > 2 and not parts[2].startswith("_"):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def _layer(module: str) -> int:
    package = _package(module)
    if package == "xdv":
        return TOP
    return LAYERS.index(package.split(".")[1])


def test_every_module_belongs_to_a_layer() -> None:
    for item in _imports():
        for module in (item.source, item.target):
            _layer(module)  # raises ValueError for a package outside the stack


def test_no_import_runs_back_up_a_layer() -> None:
    upward = [
        f"{item.source}:{item.line} imports {item.target}"
        for item in _imports()
        if _layer(item.target) > _layer(item.source)
    ]
    assert upward == []


def test_domain_packages_are_peers() -> None:
    crossing = [
        f"{item.source}:{item.line} imports {item.target}"
        for item in _imports()
        if _package(item.source).startswith("xdv.domains.")
        and _package(item.target).startswith("xdv.domains.")
        and _package(item.source) != _package(item.target)
    ]
    assert crossing == []


def test_no_package_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for item in _imports():
        source, target = _package(item.source), _package(item.target)
        if source != target:
            graph.setdefault(source, set()).add(target)
    # Depth-first search; a back edge is a cycle.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def _private(item: Import) -> str | None:
    """What a cross-package import reaches that is private, or None."""
    if _package(item.source) == _package(item.target):
        return None
    target_parts = item.target.split(".")
    package_depth = len(_package(item.target).split("."))
    if _package(item.target) == "xdv.core" and item.target == "xdv.syscalls":
        return None
    if any(part.startswith("_") for part in target_parts[package_depth:]):
        return item.target
    hidden = [name for name in item.names if name.startswith("_")]
    return f"{item.target}.{hidden[0]}" if hidden else None


def test_no_reach_into_another_package_s_private_modules() -> None:
    reaches = [
        f"{item.source}:{item.line} reaches {private}"
        for item in _imports()
        if (private := _private(item)) is not None
        and not (item.source == "xdv.syscalls" and item.target == "xdv.core._syscalls")
    ]
    assert reaches == []


def test_imports_inside_functions_only_defer_optional_heavy_packages() -> None:
    deferred = [
        f"{item.source}:{item.line} imports {item.target} inside a function"
        for item in _imports()
        if item.deferred
        and not any(
            item.target == allowed or item.target.startswith(allowed + ".")
            for allowed in DEFERRED_OK
        )
    ]
    assert deferred == []


@pytest.mark.parametrize(
    ("source", "target", "broken"),
    [
        ("xdv.trace._format", "xdv.core._kernel", "upward"),
        ("xdv.domains.q._manager", "xdv.domains.phi", "peer"),
        ("xdv.cli._main", "xdv.trace._format", "private"),
    ],
)
def test_the_rules_catch_what_they_describe(source: str, target: str, broken: str) -> None:
    """The checks above are not vacuous: a made-up import of each kind is flagged."""
    item = Import(source, target, ("x",), 1, False)
    if broken == "upward":
        assert _layer(item.target) > _layer(item.source)
    elif broken == "peer":
        assert _package(item.source) != _package(item.target)
        assert all(_package(m).startswith("xdv.domains.") for m in (source, target))
    else:
        assert _private(item) == "xdv.trace._format"


def test_the_reader_sees_the_real_graph() -> None:
    """A sanity floor: the stack really is connected the way the docstring says."""
    edges = {(_package(i.source), _package(i.target)) for i in _imports()}
    for lower, upper in itertools.pairwise(["xdv.errors", "xdv.trace", "xdv.core"]):
        assert (upper, lower) in edges
    assert ("xdv.cli", "xdv.runtime") in edges
    assert ("xdv.runtime", "xdv.dpl") in edges
