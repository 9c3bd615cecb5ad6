"""Shared pytest configuration: the ``--long`` flag for soak and fuzz modes."""

from __future__ import annotations

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long mode: run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
