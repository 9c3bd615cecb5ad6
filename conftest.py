"""Shared pytest configuration: the ``--long`` flag for soak and fuzz modes, and the one way
tests find the shared test data.

The shared test data (RFC 9162 vectors, G-set graphs, QASM circuits) lives beside the project,
in ``../shared/testdata``. A test that needs it asks :func:`shared_testdata`, which skips the test
when the data is absent, except under continuous integration (``CI`` set, as CI services do),
where absent data is a failure: a CI run must not pass by skipping what it was meant to check.
Test modules import it with ``from conftest import shared_testdata``.
"""

from __future__ import annotations

import os
import resource
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parent.parent / "shared" / "testdata"


def in_ci(environ: dict[str, str] | None = None) -> bool:
    """Whether this is a continuous-integration run: ``CI`` set to anything but a false value."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def shared_testdata_path(*parts: str, root: Path | None = None) -> Path:
    """Where ``parts`` of the shared test data would be; checks nothing (for collection)."""
    return (TESTDATA if root is None else root).joinpath(*parts)


def shared_testdata(*parts: str, root: Path | None = None) -> Path:
    """The path of ``parts`` in the shared test data (a file or a folder).

    When it is absent the calling test is skipped, or fails when :func:`in_ci` says this is a
    continuous-integration run.
    """
    path = shared_testdata_path(*parts, root=root)
    if path.exists():
        return path
    where = "/".join(("testdata", *parts))
    if in_ci():
        pytest.fail(f"shared test data {where} is absent (required when CI is set)")
    pytest.skip(f"shared test data {where} is absent")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run long soak/fuzz modes (many more examples and operations)",
    )
    parser.addoption(
        "--system",
        action="store_true",
        default=False,
        help="also run the end-to-end system tests (marker `system`): real servers killed "
        "under load and similar; CI runs them as a separate step",
    )
    parser.addoption(
        "--cpu-durations",
        type=int,
        default=None,
        metavar="N",
        help="show the N tests that used the most processor time (user + system, the test's "
        "own process and the processes it started and waited for; 0 for all): a measure that "
        "a busy machine does not inflate as it does wall time",
    )


def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import settings

    settings.register_profile("long", max_examples=2000, deadline=None)
    settings.register_profile("default", deadline=None)
    settings.load_profile("long" if config.getoption("--long") else "default")
    if config.getoption("--long"):
        os.environ["XDV_LONG"] = "1"  # read by tests that size themselves (and by xdist workers)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long mode: run with --long")
    skip_system = pytest.mark.skip(reason="system test: run with --system (CI does)")
    system = config.getoption("--system")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
        elif "system" in item.keywords and not system:
            item.add_marker(skip_system)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Commands run by the tests create node keys: keep them in a scratch home, never the
    # user's own (~/.xdv).
    if "XDV_HOME" not in os.environ:
        os.environ["XDV_HOME"] = tempfile.mkdtemp(prefix="xdv-home-")


def _cpu_seconds() -> float:
    """Processor time of this process and of its waited-for children, in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measured(item: pytest.Item, phase: str) -> Generator[None, None, None]:
    if item.config.getoption("--cpu-durations") is None:
        yield
        return
    before = _cpu_seconds()
    yield
    # Carried by the phase's report (to the controlling process under xdist).
    item.user_properties.append((f"cpu_{phase}", _cpu_seconds() - before))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    yield from _measured(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield from _measured(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield from _measured(item, "teardown")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    count = terminalreporter.config.getoption("--cpu-durations")
    if count is None:
        return
    seconds: dict[str, dict[str, float]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if isinstance(name, str) and name.startswith("cpu_"):
                    seconds.setdefault(report.nodeid, {})[name[4:]] = float(value)
    totals = sorted(
        ((sum(phases.values()), nodeid, phases) for nodeid, phases in seconds.items()),
        reverse=True,
    )
    terminalreporter.write_sep("=", f"processor time: {sum(t for t, _, _ in totals):.1f} s in all")
    for total, nodeid, phases in totals[: count or None]:
        setup = phases.get("setup", 0.0) + phases.get("teardown", 0.0)
        terminalreporter.write_line(f"{total:7.2f}s cpu (setup+teardown {setup:5.2f}s)  {nodeid}")
