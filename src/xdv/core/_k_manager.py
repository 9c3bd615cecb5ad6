"""The K (classical) domain manager.

It owns a fixed pool of K compute *lanes*. A process reserves lanes with a resource contract and
runs classical jobs on them with the ``call`` operation: a deterministic Python function applied
to trace-encodable arguments, whose trace-encodable result is the outcome. A ``call`` costs
``call_latency`` logical steps (one by default): the outcome is delivered that many steps after
the invocation, whatever the wall time the function took.
"""

from __future__ import annotations

from typing import Any

from xdv.core._interface import (
    Invocation,
    Outcome,
    PreparedCall,
    ResourceContract,
    ResourceGrant,
    ResourceRequest,
)
from xdv.errors import (
    ContractError,
    DomainError,
    ErrorCode,
    ResourceError,
    describe_exception,
    invariant,
)
from xdv.trace import Domain, canonicalize

__all__ = ["KDomainManager"]

_OPERATIONS = ("call",)


def qualified_name(function: Any) -> str:
    """``module:qualname`` of a function, for traces and error messages."""
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"{module}:{name}"


class KDomainManager:
    """Classical domain manager with ``lanes`` compute lanes.

    Invariant: ``0 <= lanes_in_use <= lanes`` and ``lanes_in_use`` equals the sum of the
    amounts of live contracts.
    """

    domain = Domain.K

    def __init__(self, lanes: int = 4, call_latency: int = 1) -> None:
        if lanes < 1:
            raise ResourceError(f"a K manager needs at least one lane, got {lanes}", where="K")
        if call_latency < 0:
            raise ContractError(f"call latency cannot be negative: {call_latency}", where="K")
        self.lanes = lanes
        self.call_latency = call_latency
        self.lanes_in_use = 0
        self._bound: set[int] = set()
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"manager": "k", "lanes": self.lanes, "call_latency": self.call_latency}

    def init(self, pid: int) -> dict[str, Any]:
        invariant(pid not in self._bound, f"process {pid} is bound to K only once")
        self._bound.add(pid)
        return {}

    def request_resources(self, request: ResourceRequest) -> ResourceGrant:
        if request.resource != "lane":
            raise ResourceError(
                f"the K domain offers 'lane' resources, not {request.resource!r}",
                code=ErrorCode.RESOURCE_UNKNOWN,
                where="K.request_resources",
            )
        if request.terms:
            raise ContractError(
                f"the K domain takes no reservation terms, got {sorted(request.terms)}",
                where="K.request_resources",
            )
        if request.amount < 1:
            raise ResourceError(
                f"a reservation is for at least one lane, got {request.amount}",
                code=ErrorCode.CONTRACT_INVALID,
                where="K.request_resources",
            )
        free = self.lanes - self.lanes_in_use
        if request.amount > free:
            raise ResourceError(
                f"process {request.pid} asked for {request.amount} K lane(s); "
                f"{free} of {self.lanes} are free",
                where="K.request_resources",
            )
        self.lanes_in_use += request.amount
        return ResourceGrant("lane", request.amount)

    def release(self, contract: ResourceContract) -> None:
        self.lanes_in_use -= contract.amount
        invariant(0 <= self.lanes_in_use <= self.lanes, "K lane accounting stays within bounds")

    def latency(self, operation: str) -> int:
        if operation not in _OPERATIONS:
            raise DomainError(
                f"the K domain has no operation {operation!r} (it has: {', '.join(_OPERATIONS)})",
                code=ErrorCode.OPERATION_UNSUPPORTED,
                where="K",
            )
        return self.call_latency

    def validate_contract(
        self, contract: ResourceContract, operation: str, latency_max: int | None
    ) -> None:
        latency = self.latency(operation)
        if latency_max is not None and latency > latency_max:
            raise ContractError(
                f"K {operation!r} takes {latency} logical step(s); the contract allows "
                f"at most {latency_max}",
                where=f"contract {contract.id}",
            )

    def prepare(self, operation: str, args: tuple[Any, ...]) -> PreparedCall:
        self.latency(operation)  # refuses an unknown operation
        if not args or not callable(args[0]):
            raise DomainError(
                "K 'call' takes a function followed by its arguments",
                code=ErrorCode.SYSCALL_INVALID,
                where="K.call",
            )
        function, arguments = args[0], tuple(args[1:])
        record = {
            "fn": qualified_name(function),
            "args": canonicalize(list(arguments), "K.call.args"),
        }
        return PreparedCall(operation, record, (function, arguments))

    def execute(self, invocation: Invocation) -> Outcome:
        function, arguments = invocation.parsed
        self.calls += 1
        try:
            result = function(*arguments)
        except Exception as error:
            raise DomainError(
                f"{qualified_name(function)} raised {describe_exception(error)}",
                where=f"K.call (invocation {invocation.id})",
            ) from error
        return Outcome(canonicalize(result, f"result of {qualified_name(function)}"))

    def project(self, pid: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        # K state is copyable: projection hands the target a canonical copy, so later changes
        # to the process's own objects cannot alter what crossed the boundary.
        projected = []
        for index, arg in enumerate(args):
            projected.append(arg if callable(arg) else canonicalize(arg, f"projection[{index}]"))
        return tuple(projected)

    def terminate(self, pid: int) -> None:
        self._bound.discard(pid)

    def report_fault(self, pid: int, error: BaseException) -> dict[str, Any]:
        return {"domain": "K", "error": type(error).__name__}

    def snapshot(self) -> dict[str, Any]:
        return {"lanes_in_use": self.lanes_in_use, "bound": sorted(self._bound)}
