"""Conformance helpers the domains' tests call.

:func:`assert_manager_consistent` exercises a manager through the Domain Abstraction Layer
exactly as the kernel does and checks the properties the kernel relies on: the interface is
complete, descriptions and snapshots are trace-encodable, unknown operations and resources are
refused with typed errors, reservations are accounted and fully returned, refusals change
nothing, and the manager holds no reference to a kernel or to another manager.

:func:`assert_provider_consistent` (from :mod:`xdv.security.testing`, where the provider model
lives) checks any Q or Φ provider against the model they share; the Q helper
(:mod:`xdv.domains.q.testing`) adds the QHPI's own checks on top.
"""

from __future__ import annotations

from typing import Any

from xdv.core import DomainManager, Kernel, ResourceContract, ResourceRequest
from xdv.errors import ErrorCode, XdvError
from xdv.security.testing import assert_provider_consistent
from xdv.trace import Domain, canonicalize

__all__ = ["assert_manager_consistent", "assert_provider_consistent"]

_METHODS = (
    "describe",
    "init",
    "request_resources",
    "release",
    "latency",
    "validate_contract",
    "prepare",
    "execute",
    "project",
    "terminate",
    "report_fault",
    "snapshot",
)


def _fail(manager: Any, message: str) -> AssertionError:
    return AssertionError(f"{type(manager).__name__}: {message}")


def _holds_forbidden_reference(value: Any, manager: DomainManager, depth: int = 0) -> str | None:

    if isinstance(value, Kernel):
        return "a Kernel"
    if value is not manager and isinstance(value, DomainManager) and not isinstance(value, type):
        return f"another manager ({type(value).__name__})"
    if depth >= 2:
        return None
    children: list[Any] = []
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, list | tuple | set | frozenset):
        children = list(value)
    elif depth == 0 and hasattr(value, "__dict__"):
        children = list(vars(value).values())
    for child in children:
        found = _holds_forbidden_reference(child, manager, depth + 1)
        if found:
            return found
    return None


def assert_manager_consistent(
    manager: DomainManager, *, resource: str, operation: str, pid: int = 1
) -> None:
    """Check ``manager`` against the DAL contract using ``resource`` and ``operation``."""
    for name in _METHODS:
        if not callable(getattr(manager, name, None)):
            raise _fail(manager, f"missing DAL method {name}()")
    if not isinstance(manager, DomainManager):
        raise _fail(manager, "does not satisfy the DomainManager protocol")
    if not isinstance(manager.domain, Domain) or manager.domain is Domain.ORCHESTRATION:
        raise _fail(manager, "domain must be K, Q or Φ")
    description = canonicalize(manager.describe(), "describe()")
    if not isinstance(description.get("manager"), str):
        raise _fail(manager, "describe() must name the manager (for replay)")
    baseline = canonicalize(manager.snapshot(), "snapshot()")

    found = _holds_forbidden_reference(manager, manager)
    if found:
        raise _fail(manager, f"holds a reference to {found}: managers talk only to the kernel")

    try:
        manager.latency("no-such-operation")
    except XdvError as error:
        if error.code is not ErrorCode.OPERATION_UNSUPPORTED:
            raise _fail(manager, f"unknown operation gave {error.code.name}") from None
    else:
        raise _fail(manager, "an unknown operation was accepted")
    if not isinstance(manager.latency(operation), int) or manager.latency(operation) < 0:
        raise _fail(manager, "latency() must be a non-negative integer of logical steps")

    canonicalize(manager.init(pid), "init()")
    request = ResourceRequest(pid, manager.domain, "no-such-resource", 1, None, 0)
    before = canonicalize(manager.snapshot(), "snapshot()")
    try:
        manager.request_resources(request)
    except XdvError:
        pass
    else:
        raise _fail(manager, "an unknown resource was granted")
    if canonicalize(manager.snapshot(), "snapshot()") != before:
        raise _fail(manager, "a refused reservation changed the manager's state")

    grant = manager.request_resources(ResourceRequest(pid, manager.domain, resource, 1, None, 0))
    if grant.amount != 1:
        raise _fail(manager, f"asked for 1 {resource}, granted {grant.amount}")
    canonicalize(dict(grant.detail), "grant detail")
    contract = ResourceContract(
        1, pid, manager.domain, grant.resource, grant.amount, 0, None, 1, dict(grant.detail)
    )
    manager.validate_contract(contract, operation, None)
    if canonicalize(manager.snapshot(), "snapshot()") == before:
        raise _fail(manager, "a granted reservation is not visible in snapshot()")
    manager.release(contract)
    manager.terminate(pid)
    if canonicalize(manager.snapshot(), "snapshot()") != baseline:
        raise _fail(manager, "release() and terminate() did not return to the initial state")
    canonicalize(manager.report_fault(pid, RuntimeError("probe")), "report_fault()")
