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
import tempfile
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
