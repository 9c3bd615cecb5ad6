"""Choosing a run's domain managers: the one place where they are built.

A run gets its managers from one of two sources, and from nowhere else:

* a **declaration** (what a workload asks for: a Python module's ``XDV_DOMAINS``, a DPL
  program's regimes, a Q or Φ job's provider): a map from domain label to a manager
  description, in the short form ``{"manager": "phi"}`` or with any of the manager's settings;
  missing settings take the manager's defaults, and a description that names no usable
  manager, a manager of another domain, or a setting the manager does not have is a
  WORKLOAD_INVALID error;
* a **record** (a trace's run-start entry, for a replay): every manager's full description,
  rebuilt through the registered factories; a record that cannot be rebuilt is the trace's
  problem (REPLAY_INPUT_CHANGED).

The K manager is always there (with its defaults unless the declaration describes it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xdv.core import DomainManager, KDomainManager
from xdv.domains import manager_from_description
from xdv.errors import ErrorCode, WorkloadError, XdvError, safe_repr
from xdv.runtime._workload import DomainDeclaration
from xdv.trace import Domain

__all__ = ["declared_managers", "recorded_managers"]


def _phi_defaults() -> dict[str, Any]:
    from xdv.domains.phi import PhiDomainManager

    return PhiDomainManager().describe()


# The full default description of managers whose factory needs every setting (the Q factory
# fills its own defaults, and building a default Q manager would load a simulator).
_DEFAULT_DESCRIPTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "k": lambda: KDomainManager().describe(),
    "phi": _phi_defaults,
}


# Errors of building a declared manager that reach the caller as they are.
_PASSED_ON = frozenset(
    {
        ErrorCode.PROVIDER_KEY_MISMATCH,
        ErrorCode.PLUGIN_NOT_FOUND,
        ErrorCode.PLUGIN_LOAD_FAILED,
        ErrorCode.PLUGIN_FACTORY_FAILED,
        ErrorCode.PLUGIN_INVALID,
        ErrorCode.PLUGIN_CONFIG_INVALID,
        ErrorCode.PHI_PROVIDER_UNAVAILABLE,
        ErrorCode.PHI_PROVIDER_INVALID,
        ErrorCode.PHI_SAMPLER_PARAMS_INVALID,
    }
)


def declared_managers(declared: DomainDeclaration | None) -> list[DomainManager]:
    """The managers a workload declares, beside the K manager (see the module docstring)."""
    managers: dict[Domain, DomainManager] = {Domain.K: KDomainManager()}
    for label, description in (declared or {}).items():
        where = f"XDV_DOMAINS[{label!r}]"
        try:
            domain = Domain.parse(label)
        except XdvError:
            domain = Domain.ORCHESTRATION
        if domain is Domain.ORCHESTRATION:
            raise WorkloadError(f"{where}: {label!r} is not a domain (K, Q or Φ)", where=where)
        name = description.get("manager") if isinstance(description, Mapping) else None
        if not isinstance(name, str):
            raise WorkloadError(
                f"{where} must name its manager, for example {{'manager': 'q'}}; got "
                f"{safe_repr(description)}",
                where=where,
            )
        defaults = _DEFAULT_DESCRIPTIONS.get(name)
        complete = {**defaults(), **description} if defaults is not None else dict(description)
        try:
            manager = manager_from_description(domain.label, complete)
        except ImportError as error:  # the manager's provider library is not installed
            raise XdvError(
                f"{where}: the {name!r} manager cannot be built here: {error}",
                code=ErrorCode.DOMAIN_UNAVAILABLE,
                where=where,
            ) from None
        except XdvError as error:
            if error.code in _PASSED_ON:  # a plug-in's own failure says more than "invalid"
                raise
            raise WorkloadError(
                f"{where} does not describe a manager this XDV can build ({error.message})",
                where=where,
            ) from None
        if manager.domain is not domain:
            raise WorkloadError(
                f"{where}: manager {name!r} manages the {manager.domain.label} domain, "
                f"not {domain.label}",
                where=where,
            )
        unknown = sorted(set(description) - set(manager.describe()))
        if unknown:
            raise WorkloadError(
                f"{where}: the {name!r} manager has no setting(s) {unknown}", where=where
            )
        managers[domain] = manager
    return [managers[domain] for domain in sorted(managers)]


def recorded_managers(recorded: Mapping[str, Any]) -> list[DomainManager]:
    """The managers a run-start entry records (its ``domains`` map), for a replay."""
    return [manager_from_description(label, description) for label, description in recorded.items()]
