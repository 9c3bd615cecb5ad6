"""VHMs with the Q and Φ domains: the Spawn rights rule on real managers, and quotas charged
through the managers' usage declarations."""

from __future__ import annotations

from typing import Any

from xdv.core import KDomainManager
from xdv.domains.q import QDomainManager
from xdv.runtime import make_kernel
from xdv.syscalls import Reserve, Spawn, Wait
from xdv.trace import Domain, EventType, read_trace


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
