"""The public surface: every public name is exported once, and documented."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "xdv",
    "xdv.core",
    "xdv.domains",
    "xdv.domains.q",
    "xdv.domains.phi",
    "xdv.security",
    "xdv.trace",
    "xdv.runtime",
    "xdv.syscalls",
    "xdv.errors",
    "xdv.dpl",
    "xdv.qiskit",
    "xdv.cluster",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_unique_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol}"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_classes_and_functions_have_docstrings(name: str) -> None:
    module = importlib.import_module(name)
    for symbol in module.__all__:
        value = getattr(module, symbol)
        if callable(value) and not isinstance(value, int):
            assert value.__doc__, f"{name}.{symbol} has no docstring"
