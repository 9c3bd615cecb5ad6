from __future__ import annotations

import pytest

from xdv.core import DomainManager, KDomainManager, Kernel
from xdv.core._interface import Invocation, ResourceContract, ResourceRequest
from xdv.domains.testing import assert_manager_consistent
from xdv.errors import ContractError, DomainError, ErrorCode, ResourceError, TraceError
from xdv.trace import Domain


@pytest.mark.spec("XDV-011-3.1")
def test_k_manager_implements_the_domain_interface() -> None:
    manager = KDomainManager(lanes=3)
    assert isinstance(manager, DomainManager)
    assert_manager_consistent(manager, resource="lane", operation="call")


@pytest.mark.spec("XDV-010-9")
def test_the_consistency_helper_rejects_a_manager_holding_the_kernel() -> None:
    class Leaky(KDomainManager):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = Kernel()

    with pytest.raises(AssertionError, match="Kernel"):
        assert_manager_consistent(Leaky(), resource="lane", operation="call")

    class Meddler(KDomainManager):
        def __init__(self) -> None:
            super().__init__()
            self.peers = [KDomainManager()]

    with pytest.raises(AssertionError, match="another manager"):
        assert_manager_consistent(Meddler(), resource="lane", operation="call")


def test_lanes_are_accounted_and_refusals_are_typed() -> None:
    manager = KDomainManager(lanes=2)
    request = ResourceRequest(1, Domain.K, "lane", 2, None, 0)
    grant = manager.request_resources(request)
    with pytest.raises(ResourceError) as raised:
        manager.request_resources(ResourceRequest(2, Domain.K, "lane", 1, None, 0))
    assert raised.value.code is ErrorCode.RESOURCE_EXHAUSTED
    contract = ResourceContract(1, 1, Domain.K, "lane", grant.amount, 0, None, 1)
    with pytest.raises(ContractError):
        manager.validate_contract(contract, "call", 0)
    manager.release(contract)
    assert manager.snapshot()["lanes_in_use"] == 0
    with pytest.raises(ContractError, match="no reservation terms"):
        manager.request_resources(ResourceRequest(1, Domain.K, "lane", 1, None, 0, {"x": 1}))
    assert manager.snapshot()["lanes_in_use"] == 0


def test_call_results_must_be_plain_values_and_errors_are_domain_faults() -> None:
    manager = KDomainManager()
    contract = ResourceContract(1, 1, Domain.K, "lane", 1, 0, None, 1)

    def invocation(*args: object) -> Invocation:
        prepared = manager.prepare("call", args)
        return Invocation(1, 1, Domain.K, contract, "call", args, 0, 0, prepared.parsed)

    assert manager.execute(invocation(sum, [1, 2, 3])).value == 6
    with pytest.raises(DomainError) as raised:
        manager.execute(invocation(int, "not a number"))
    assert raised.value.code is ErrorCode.DOMAIN_FAULT and "ValueError" in raised.value.message
    with pytest.raises(TraceError) as unencodable:
        manager.execute(invocation(object))
    assert unencodable.value.code is ErrorCode.TRACE_UNENCODABLE
