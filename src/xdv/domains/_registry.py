"""Re-creating domain managers from their recorded descriptions (for replay).

Each manager's :meth:`describe` output is recorded in the run-start entry. A replay rebuilds the
same managers from it through the factory registered under the description's ``manager`` name.
Later domains register their own factories.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from xdv.core import DomainManager, KDomainManager
from xdv.errors import ErrorCode, XdvError

__all__ = ["manager_from_description", "register_manager_factory"]

ManagerFactory = Callable[[Mapping[str, Any]], DomainManager]

_FACTORIES: dict[str, ManagerFactory] = {
    "k": lambda description: KDomainManager(
        lanes=int(description["lanes"]), call_latency=int(description["call_latency"])
    ),
}


def register_manager_factory(name: str, factory: ManagerFactory) -> None:
    """Register how to rebuild managers whose description says ``manager: name``."""
    _FACTORIES[name] = factory


# Managers whose packages register their factory on import (loaded on first use).


def manager_from_description(label: str, description: Mapping[str, Any]) -> DomainManager:
    """Build the manager a run-start entry describes for domain ``label``."""
    name = description.get("manager")
    factory = _FACTORIES.get(name) if isinstance(name, str) else None
    if factory is None and isinstance(name, str) and name.isidentifier():
        # Domain packages register their factories when imported: try xdv.domains.<name>.
        with contextlib.suppress(ImportError):
            importlib.import_module(f"xdv.domains.{name}")
        factory = _FACTORIES.get(name)
    if factory is None:
        raise XdvError(
            f"the trace's {label} domain uses manager {name!r}, which this XDV cannot rebuild",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            where=f"domain {label}",
        )
    try:
        return factory(description)
    except (KeyError, TypeError, ValueError) as error:
        raise XdvError(
            f"the trace's description of the {label} manager is malformed: {error}",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            where=f"domain {label}",
        ) from None
