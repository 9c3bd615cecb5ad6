"""Shared pytest configuration: the ``--long`` flag for soak and fuzz modes."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run long soak/fuzz modes (many more examples and operations)",
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
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Commands run by the tests create node keys: keep them in a scratch home, never the
    # user's own (~/.xdv).
    if "XDV_HOME" not in os.environ:
        os.environ["XDV_HOME"] = tempfile.mkdtemp(prefix="xdv-home-")
