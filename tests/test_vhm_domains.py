"""VHMs with the Q and Φ domains: the Spawn rights rule on real managers, and quotas charged
through the managers' usage declarations."""

from __future__ import annotations

from typing import Any

import pytest

from xdv.core import KDomainManager, Operation
from xdv.domains.phi import PhiDomainManager
from xdv.domains.q import QDomainManager
from xdv.errors import XdvError
from xdv.runtime import make_kernel
from xdv.syscalls import Invoke, Release, Reserve, Sleep, Spawn, Wait
from xdv.trace import Domain, EventType, read_trace


@pytest.mark.spec("XDV-014-11")
@pytest.mark.spec("XDV-083-10")
def test_k_only_parent_cannot_mint_q_rights_for_a_child() -> None:
    """The minimal input of the rights-escalation report: a K-only parent spawns a child that
    declares Q. The kernel must not mint ALLOCATE(K→Q) for it: the child's Reserve is refused
    exactly as the parent's would be."""

    def child() -> Any:
        contract = yield Reserve("Q", "qubits", 1)
        return contract.id

    def parent() -> Any:
        pid = yield Spawn(child, domains=("K", "Q"))
        return (yield Wait(pid)).code

    kernel = make_kernel(0, domains=[KDomainManager(), QDomainManager()])
    pid = kernel.spawn(parent)
    result = kernel.run()
    assert result.exits[pid].value == "DOMAIN_UNAUTHORIZED"
    entries = read_trace(result.trace_bytes).entries
    grants = [
        entry
        for entry in entries
        if entry.event_type is EventType.CAPABILITY_GRANT and entry.process == pid + 1
    ]
    assert grants and all(entry.domain is not Domain.Q for entry in grants)


def test_a_q_parent_still_hands_q_rights_to_its_child() -> None:
    def child() -> Any:
        contract = yield Reserve("Q", "qubits", 1)
        return contract.amount

    def parent() -> Any:
        pid = yield Spawn(child, domains=("K", "Q"))
        return (yield Wait(pid)).value

    kernel = make_kernel(0, domains=[KDomainManager(), QDomainManager()])
    pid = kernel.spawn(parent, domains=("K", "Q"))
    result = kernel.run()
    assert result.ok and result.exits[pid].value == 1


BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


def q_tenant(qubits: int, duration: int | None, jobs: list[int]) -> Any:
    """Reserve qubits, run a Bell circuit once per entry of ``jobs`` (its shots), release."""
    try:
        contract = yield Reserve("Q", "qubits", qubits, duration=duration)
    except XdvError as error:
        return ["reserve", error.code.name]
    done: list[Any] = []
    for shots in jobs:
        try:
            counts = yield Invoke(contract, "run", (BELL, shots))
            done.append(sum(counts["counts"].values()))
        except XdvError as error:
            done.append(error.code.name)
    yield Release(contract)
    return done


def run_tenants(quotas: dict[str, int], *plans: tuple[int, int | None, list[int]]) -> Any:
    kernel = make_kernel(0, domains=[KDomainManager(), QDomainManager()])
    tenant = kernel.create_vhm("tenant", quotas=quotas)
    pids = []
    for plan in plans:
        pid = kernel.spawn(q_tenant, *plan, domains=("K", "Q"), vhm=tenant)
        kernel.grant(pid, Operation.MEASURE, "Q", "K")
        pids.append(pid)
    result = kernel.run()
    return result, [result.exits[pid].value for pid in pids], kernel.vhms.get(tenant)


@pytest.mark.spec("XDV-014-4.2")
@pytest.mark.spec("XDV-083-4.2")
@pytest.mark.spec("XDV-083-8.1")
def test_qubits_quota_is_held_and_given_back() -> None:
    result, values, tenant = run_tenants(
        {"qubits": 4}, (2, None, [10]), (2, None, [10]), (2, None, [10])
    )
    assert values[0] == [10] and values[1] == [10]
    assert values[2] == ["reserve", "VHM_QUOTA_EXCEEDED"]
    assert tenant.usage["qubits"] == 0 and tenant.usage["shots"] == 20
    denials = [
        e for e in read_trace(result.trace_bytes).entries if e.event_type is EventType.VHM_DENY
    ]
    assert [(d.domain, d.metadata["quota"]) for d in denials] == [(Domain.Q, "qubits")]


@pytest.mark.spec("XDV-014-4.2")
def test_shots_and_qubit_time_quotas() -> None:
    _, values, tenant = run_tenants({"shots": 25, "qubit_time": 100}, (2, 40, [10, 10, 10]))
    assert values[0] == [10, 10, "VHM_QUOTA_EXCEEDED"]
    assert tenant.usage["shots"] == 20 and tenant.usage["qubit_time"] == 80
    _, values, _ = run_tenants({"qubit_time": 100}, (2, 60, [10]), (1, None, [10]))
    assert values == [["reserve", "VHM_QUOTA_EXCEEDED"], ["reserve", "VHM_QUOTA_EXCEEDED"]]


@pytest.mark.spec("XDV-014-4.3")
@pytest.mark.spec("XDV-083-4.3")
def test_phi_envelopes_and_window_steps_quotas() -> None:

    def phi_tenant(windows: list[int]) -> Any:
        held, codes = [], []
        for window in windows:
            try:
                held.append((yield Reserve("Φ", "envelope", terms={"window": window})))
                codes.append("ok")
            except XdvError as error:
                codes.append(error.code.name)
        for contract in held:
            yield Release(contract)
        return codes

    kernel = make_kernel(0, domains=[KDomainManager(), PhiDomainManager()])
    tenant = kernel.create_vhm("phi", quotas={"envelopes": 2, "window_steps": 50})
    a = kernel.spawn(phi_tenant, [10, 10, 10], domains=("K", "Φ"), vhm=tenant)
    b = kernel.spawn(phi_tenant, [40, 20], domains=("K", "Φ"), vhm=tenant)
    result = kernel.run()
    assert result.exits[a].value == ["ok", "ok", "VHM_QUOTA_EXCEEDED"]
    assert result.exits[b].value == ["VHM_QUOTA_EXCEEDED", "ok"]
    usage = kernel.vhms.get(tenant).usage
    assert usage["envelopes"] == 0 and usage["window_steps"] == 40


@pytest.mark.parametrize(
    ("domain", "resource"), [("K", "lane"), ("Q", "qubits"), ("Φ", "envelope")]
)
@pytest.mark.spec("XDV-014-7")
@pytest.mark.spec("XDV-083-3.2")
@pytest.mark.spec("XDV-083-4.2")
@pytest.mark.spec("XDV-083-4.3")
@pytest.mark.spec("XDV-083-10")
def test_transfer_and_delegate_across_vhms_are_refused(domain: str, resource: str) -> None:
    from xdv.syscalls import Contracts, Delegate, Transfer

    def giver(to: int) -> Any:
        contract = yield Reserve(domain, resource)
        codes = []
        try:
            yield Transfer(contract, to)
        except XdvError as error:
            codes.append(error.code.name)
        capability = next(iter(kernel.authority.held_by(giver_pid))).id
        try:
            yield Delegate(capability, to)
        except XdvError as error:
            codes.append(error.code.name)
        return codes

    def taker() -> Any:
        yield Sleep(5)
        return len((yield Contracts()))

    managers = {"K": [], "Q": [QDomainManager()], "Φ": [PhiDomainManager()]}[domain]
    kernel = make_kernel(0, domains=[KDomainManager(), *managers])
    a = kernel.create_vhm("a")
    b = kernel.create_vhm("b")
    declared = ("K", domain)
    taker_pid = kernel.spawn(taker, vhm=b, domains=declared)
    giver_pid = kernel.spawn(giver, taker_pid, vhm=a, domains=declared)
    result = kernel.run()
    assert result.exits[giver_pid].value == ["VHM_ISOLATION", "VHM_ISOLATION"]
    assert result.exits[taker_pid].value == 0
