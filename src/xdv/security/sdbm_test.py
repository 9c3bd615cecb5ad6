"""The SDBM inside the kernel: one validation path, derived capabilities, freeze, attestation."""

from __future__ import annotations

from typing import Any

import pytest

from xdv.core import KDomainManager, Kernel, Operation
from xdv.core._interface import Invocation, Outcome, ResourceContract, ResourceRequest
from xdv.errors import ErrorCode, XdvError
from xdv.runtime import make_kernel
from xdv.security import (
    FOREVER,
    AttestationVerifier,
    HybridKeyPair,
    ProviderIdentity,
    ProviderRegistry,
    TokenAuthority,
    attest,
)
from xdv.syscalls import (
    Attenuate,
    Bind,
    Delegate,
    Freeze,
    Invoke,
    Release,
    Reserve,
    Revoke,
    Self,
    Sleep,
    Spawn,
    Transition,
    Wait,
)
from xdv.trace import Domain, EventType, TraceEntry, read_trace


def entries(result: Any) -> list[TraceEntry]:
    return read_trace(result.trace_bytes).entries


class WatchedQ(KDomainManager):
    """A Q-domain stand-in built on the K manager that notes every call the kernel makes."""

    domain = Domain.Q

    def __init__(self) -> None:
        super().__init__(lanes=2)
        self.seen: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"manager": "k", "lanes": self.lanes, "call_latency": self.call_latency}

    def init(self, pid: int) -> dict[str, Any]:
        self.seen.append("init")
        return super().init(pid)

    def request_resources(self, request: ResourceRequest) -> Any:
        self.seen.append("request_resources")
        return super().request_resources(request)

    def execute(self, invocation: Invocation) -> Outcome:
        self.seen.append("execute")
        return super().execute(invocation)

    def release(self, contract: ResourceContract) -> None:
        self.seen.append("release")
        super().release(contract)

    def project(self, pid: int, args: tuple[Any, ...]) -> tuple[Any, ...]:
        self.seen.append("project")
        return super().project(pid, args)


@pytest.mark.spec("XDV-015-7")
@pytest.mark.spec("XDV-030-2.2")
def test_no_system_call_reaches_a_domain_manager_around_the_validation_path() -> None:
    watched = WatchedQ()
    codes: list[tuple[str, ErrorCode]] = []

    def intruder():
        fake = ResourceContract(99, 1, Domain.Q, "lane", 1, 0, None, 1)
        attempts = [
            ("bind", Bind("Q")),
            ("reserve", Reserve("Q", "lane", 1)),
            ("invoke", Invoke(fake, "call", (abs, -1))),
            ("release", Release(fake)),
            ("transition", Transition("K", "Q", "call", (abs, -1))),
            ("freeze", Freeze("Q")),
        ]
        for name, call in attempts:
            try:
                yield call
            except XdvError as error:
                codes.append((name, error.code))

    kernel = make_kernel(domains=[KDomainManager(), watched])
    kernel.spawn(intruder)
    kernel.run()
    assert [name for name, _ in codes] == [
        "bind",
        "reserve",
        "invoke",
        "release",
        "transition",
        "freeze",
    ]
    assert watched.seen == []  # nothing reached the manager
    by_name = dict(codes)
    assert by_name["bind"] is ErrorCode.DOMAIN_UNAUTHORIZED
    assert by_name["transition"] is ErrorCode.DOMAIN_UNAUTHORIZED
    assert by_name["freeze"] is ErrorCode.DOMAIN_UNAUTHORIZED
    # With the capabilities, the same calls do reach it, each after its check.
    watched = WatchedQ()
    kernel = make_kernel(domains=[KDomainManager(), watched])

    def allowed():
        yield Bind("Q")
        contract = yield Reserve("Q", "lane", 1)
        yield Invoke(contract, "call", (abs, -3))
        yield Release(contract)

    pid = kernel.spawn(allowed)
    for operation in (Operation.ALLOCATE, Operation.EXECUTE):
        kernel.grant(pid, operation, "K", "Q")
    assert kernel.run().ok
    assert watched.seen == ["init", "request_resources", "execute", "release"]


@pytest.mark.spec("XDV-002-8.2")
@pytest.mark.spec("XDV-015-3.2")
@pytest.mark.spec("XDV-030-6")
def test_derived_capabilities_narrow_and_die_with_their_parent() -> None:
    log: list[Any] = []

    def child():
        yield Bind("Q")
        for attempt in range(2):
            try:
                contract = yield Reserve("Q", "lane", 1)
                yield Release(contract)
                log.append(("child reserved", attempt))
            except XdvError as error:
                log.append(("child refused", error.code))
            yield Sleep(6)

    def parent():
        me = yield Self()
        allocate = next(c.id for c in kernel.authority.held_by(me.pid) if c.target is Domain.Q)
        try:  # asking for a right the capability does not hold widens it: refused
            yield Attenuate(allocate, [{"op": "EXECUTE", "from": "K", "to": "Q"}])
        except XdvError as error:
            log.append(("widen", error.code))
        narrowed = yield Attenuate(
            allocate, [{"op": "ALLOCATE", "from": "K", "to": "Q", "times": [[0, 50]]}]
        )
        pid = yield Spawn(child)
        given = yield Delegate(narrowed, pid, None, 100)
        log.append(("delegated", given))
        yield Sleep(4)  # the child uses it once
        yield Revoke(narrowed)  # revokes what was delegated from it too
        yield Wait(pid)

    kernel = make_kernel(domains=[KDomainManager(), WatchedQ()])
    parent_pid = kernel.spawn(parent)
    kernel.grant(parent_pid, Operation.ALLOCATE, "K", "Q")
    result = kernel.run()
    assert result.ok, result.exits
    assert log[0] == ("widen", ErrorCode.ATTENUATION_WIDENS)
    assert ("child reserved", 0) in log
    assert ("child refused", ErrorCode.CAPABILITY_REVOKED) in log
    trace = entries(result)
    derived = [
        e for e in trace if e.event_type is EventType.CAPABILITY_GRANT and "parent" in e.metadata
    ]
    assert len(derived) == 2 and derived[1].metadata["parent"] == derived[0].capability
    assert derived[1].metadata["expires"] == 100
    # The refused attenuation minted nothing: the first derived id follows its parent's.
    assert derived[0].capability == derived[0].metadata["parent"] + 1
    revoke = next(e for e in trace if e.event_type is EventType.CAPABILITY_REVOKE)
    assert revoke.metadata["ids"] == [derived[0].capability, derived[1].capability]


@pytest.mark.spec("XDV-015-8.2")
def test_an_emergency_freeze_revokes_fails_pending_work_and_refuses_new_work() -> None:
    watched = WatchedQ()
    watched.call_latency = 5
    seen: list[Any] = []

    def worker():
        yield Bind("Q")
        contract = yield Reserve("Q", "lane", 1)
        try:
            yield Invoke(contract, "call", (abs, -3))  # outcome due 5 steps later
        except XdvError as error:
            seen.append(error.code)
        try:
            yield Reserve("Q", "lane", 1)
        except XdvError as error:
            seen.append(error.code)

    def guard():
        yield Sleep(3)
        yield Freeze("Q", "coherence instability")

    kernel = make_kernel(domains=[KDomainManager(), watched])
    pid = kernel.spawn(worker)
    for operation in (Operation.ALLOCATE, Operation.EXECUTE):
        kernel.grant(pid, operation, "K", "Q")
    guard_pid = kernel.spawn(guard)
    kernel.grant(guard_pid, Operation.FREEZE, "K", "Q")
    with pytest.raises(XdvError) as k_freeze:  # the K domain itself can never be frozen
        kernel.freeze("K")
    assert k_freeze.value.code is not ErrorCode.OPERATOR_ONLY
    result = kernel.run()
    assert seen == [ErrorCode.DOMAIN_FROZEN, ErrorCode.DOMAIN_FROZEN]
    freeze = [e for e in entries(result) if e.event_type is EventType.DOMAIN_FREEZE]
    assert len(freeze) == 1 and freeze[0].process == guard_pid
    assert freeze[0].metadata["reason"] == "coherence instability"
    touching_q = {
        e.capability
        for e in entries(result)
        if e.event_type is EventType.CAPABILITY_GRANT
        and "Q" in (e.metadata["from"], e.metadata["to"])
    }
    assert set(freeze[0].metadata["revoked"]) == touching_q and len(touching_q) == 3


ACME_IDENTITY = ProviderIdentity("acme-qpu", HybridKeyPair.from_seed(b"acme identity"))
NODE_KEY = HybridKeyPair.from_seed(b"sdbm test node key")


class Provider:
    """A third-party provider (not part of XDV): it must be attested before use."""

    def __init__(self, config: str = "a", identity: ProviderIdentity = ACME_IDENTITY) -> None:
        self.provider_id = "acme-qpu"
        self.config = config
        self.identity = identity

    def measurement(self) -> str:
        import hashlib

        return hashlib.sha256(b"acme firmware 1.0|" + self.config.encode()).hexdigest()

    def declaration(self) -> dict[str, Any]:
        return {"operations": ["call"], "qubits": 2, "signatures": "Ed25519+ML-DSA-65"}


Provider.__module__ = "acme.providers"  # as a third party's class would be


def verifier(**options: Any) -> AttestationVerifier:
    """A verifier with its own node key and an in-memory provider registry (no key store)."""
    options.setdefault("node_key", NODE_KEY)
    options.setdefault("registry", ProviderRegistry())
    return AttestationVerifier(**options)


class ProvidedQ(WatchedQ):
    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def providers(self) -> dict[str, Provider]:
        return {self.provider.provider_id: self.provider}


def bind_with(verifier: AttestationVerifier, provider: Provider) -> tuple[Any, list[ErrorCode]]:
    codes: list[ErrorCode] = []

    def binder():
        try:
            yield Bind("Q")
        except XdvError as error:
            codes.append(error.code)

    kernel = make_kernel(domains=[KDomainManager(), ProvidedQ(provider)], attestation=verifier)
    pid = kernel.spawn(binder)
    kernel.grant(pid, Operation.ALLOCATE, "K", "Q")
    return kernel.run(), codes


def verdict(result: Any) -> TraceEntry:
    return next(e for e in entries(result) if e.event_type is EventType.ATTESTATION)


@pytest.mark.spec("XDV-015-4.2")
@pytest.mark.spec("XDV-034-6.4")
def test_binding_needs_a_valid_attestation_of_every_provider() -> None:
    provider = Provider()
    # Unattested: refused, and the verdict is traced.
    result, codes = bind_with(verifier(), provider)
    assert codes == [ErrorCode.ATTESTATION_FAILED]
    assert verdict(result).status is ErrorCode.ATTESTATION_FAILED
    # Attested by its own identity: bound, with the measurement in the trace and no key.
    attested = verifier()
    attested.register(attest(provider, provider.identity, 0, valid_until=1000))
    result, codes = bind_with(attested, provider)
    assert codes == []
    assert verdict(result).status is ErrorCode.OK
    assert verdict(result).metadata == {
        "provider": "acme-qpu",
        "measurement": provider.measurement(),
        "declaration": attested.attestation("acme-qpu").facts.declaration_digest(),  # type: ignore[union-attr]
        "valid_until": 1000,
    }
    # Reconfigured since it was attested (e.g. recalibrated): refused until re-attested.
    _, codes = bind_with(attested, Provider("b"))
    assert codes == [ErrorCode.ATTESTATION_FAILED]
    # Expired.
    expired = verifier()
    expired.register(attest(provider, provider.identity, 0, valid_until=0))  # bind at L=1
    _, codes = bind_with(expired, provider)
    assert codes == [ErrorCode.ATTESTATION_FAILED]
    # Signed by a key that is neither the node key nor the provider's identity.
    impostor = verifier()
    impostor.register(attest(provider, HybridKeyPair.from_seed(b"impostor"), 0))
    _, codes = bind_with(impostor, provider)
    assert codes == [ErrorCode.ATTESTATION_FAILED]
    # An operator's key named as the one attester of the provider: only that key will do.
    operator = HybridKeyPair.from_seed(b"operator")
    named = verifier(attesters={"acme-qpu": operator.public.fingerprint})
    named.register(attest(provider, operator, 0))
    assert bind_with(named, provider)[1] == []
    named.register(attest(provider, provider.identity, 0))
    assert bind_with(named, provider)[1] == [ErrorCode.ATTESTATION_FAILED]
    # A damaged attestation signature.
    damaged = attest(provider, provider.identity, 0)
    from dataclasses import replace

    broken = verifier()
    broken.register(replace(damaged, signature=damaged.signature[:-1] + b"\0"))
    _, codes = bind_with(broken, provider)
    assert codes == [ErrorCode.ATTESTATION_FAILED]


@pytest.mark.spec("XDV-015-4.2")
def test_a_provider_is_bound_to_its_pinned_identity_key() -> None:
    provider = Provider()
    other = ProviderIdentity("acme-qpu", HybridKeyPair.from_seed(b"another acme key"))
    # The live provider must hold the attested identity.
    swapped = verifier()
    swapped.register(attest(provider, provider.identity))
    result, codes = bind_with(swapped, Provider(identity=other))
    assert codes == [ErrorCode.ATTESTATION_FAILED]
    assert "no longer holds the attested identity" in verdict(result).metadata["error"]
    # First use pins the identity; a self-attested provider with another key for the same id is
    # refused afterwards, and the traced reason names no key.
    registry = ProviderRegistry()
    first = verifier(registry=registry)
    first.register(attest(provider, provider.identity))
    assert bind_with(first, provider)[1] == []
    assert registry.pinned("acme-qpu") == ACME_IDENTITY.public
    later = verifier(registry=registry)
    later.register(attest(Provider(identity=other), other))
    result, codes = bind_with(later, Provider(identity=other))
    assert codes == [ErrorCode.ATTESTATION_FAILED]
    reason = verdict(result).metadata["error"]
    assert "pinned" in reason
    assert other.fingerprint not in reason and ACME_IDENTITY.fingerprint not in reason


def test_the_runtime_kernel_holds_the_token_authority_and_tokens_are_signed_on_export() -> None:
    kernel = make_kernel()
    assert isinstance(kernel.authority, TokenAuthority)

    def noop():
        yield Sleep(1)

    pid = kernel.spawn(noop)
    capability = kernel.grant(pid, Operation.EXECUTE, "K", "Q", expires_at=FOREVER)
    token = kernel.authority.token(capability.id)
    kernel.authority.keys.public.verify(token.payload(), token.signature, context=b"xdv-capability")


class MeasuringQ(WatchedQ):
    """Declares that its operation reads results out of Q: it needs MEASURE(Q→K) too."""

    def rights(self, operation: str) -> frozenset[str]:
        return frozenset({"MEASURE"})


@pytest.mark.spec("XDV-002-8.1")
def test_operations_need_the_extra_rights_their_manager_declares() -> None:
    outcomes: list[Any] = []

    def job():
        yield Bind("Q")
        contract = yield Reserve("Q", "lane", 1)
        try:
            outcomes.append((yield Invoke(contract, "call", (abs, -3))))
        except XdvError as error:
            outcomes.append(error.code)

    for with_measure in (False, True):
        manager = MeasuringQ()
        kernel = make_kernel(domains=[KDomainManager(), manager])
        pid = kernel.spawn(job)
        for operation in (Operation.ALLOCATE, Operation.EXECUTE):
            kernel.grant(pid, operation, "K", "Q")
        if with_measure:
            kernel.grant(pid, Operation.MEASURE, "Q", "K")
        kernel.run()
        assert ("execute" in manager.seen) is with_measure
    assert outcomes == [ErrorCode.DOMAIN_UNAUTHORIZED, 3]


@pytest.mark.spec("XDV-015-9")
@pytest.mark.spec("XDV-030-7")
def test_security_decisions_are_deterministic_and_replay_identically() -> None:
    from xdv.runtime import replay, run_workload

    first = run_workload("tests.workloads.secure:main", seed=5)
    second = run_workload("tests.workloads.secure:main", seed=5)
    assert first.trace_bytes == second.trace_bytes
    kinds = {e.event_type for e in entries(first)}
    assert {
        EventType.CAPABILITY_GRANT,
        EventType.CAPABILITY_REVOKE,
        EventType.DOMAIN_FREEZE,
    } <= kinds
    statuses = {e.status for e in entries(first)}
    assert {
        ErrorCode.ATTENUATION_WIDENS,
        ErrorCode.CAPABILITY_REVOKED,
        ErrorCode.DOMAIN_FROZEN,
    } <= statuses
    assert first.trace_bytes is not None
    assert replay(first.trace_bytes).ok
    assert replay(first.trace_bytes, "inject").ok


def test_a_transition_into_a_domain_attests_its_providers_too() -> None:
    seen: list[Any] = []

    def mover():
        try:
            value = yield Transition("K", "Q", "call", (abs, -7))
            seen.append(value)
        except XdvError as error:
            seen.append(error.code)

    manager = ProvidedQ(Provider())
    kernel = make_kernel(domains=[KDomainManager(), manager], attestation=verifier())
    pid = kernel.spawn(mover)
    kernel.grant(pid, Operation.TRANSITION, "K", "Q")
    kernel.grant(pid, Operation.EXECUTE, "K", "Q")
    result = kernel.run()
    assert seen == [ErrorCode.ATTESTATION_FAILED]
    assert "execute" not in manager.seen and "init" not in manager.seen
    rollback = next(e for e in entries(result) if e.event_type is EventType.TRANSITION_ROLLBACK)
    assert rollback.metadata["phase"] == "binding"


def test_a_derivation_that_cannot_be_recorded_mints_nothing() -> None:
    outcomes: list[Any] = []

    def giver():
        me = yield Self()
        allocate = next(
            c.id for c in kernel.authority.held_by(me.pid) if c.operation is Operation.ALLOCATE
        )
        for scope, expires in (
            (None, 2**70),  # beyond the trace's integers
            ([{"op": "ALLOCATE", "from": "K", "to": "K", "resource": "r" * (1 << 20)}], None),
        ):
            try:
                yield Attenuate(allocate, scope, expires)
            except XdvError as error:
                outcomes.append(error.code)

    kernel = make_kernel()
    kernel.spawn(giver)
    before = set(kernel.authority._tokens)
    kernel.run()
    assert len(outcomes) == 2
    granted = {
        e.capability for e in entries_of(kernel) if e.event_type is EventType.CAPABILITY_GRANT
    }
    assert set(kernel.authority._tokens) == granted >= before
    fresh = make_kernel()
    pid = fresh.spawn(giver)
    with pytest.raises(XdvError, match="expiry"):
        fresh.grant(pid, Operation.EXECUTE, "K", "Q", expires_at=2**70)


def entries_of(kernel: Kernel) -> list[TraceEntry]:
    return read_trace(kernel.writer.getvalue()).entries


def test_a_provider_cannot_pass_for_an_embedded_one_by_its_module_name() -> None:
    class Rogue(Provider):
        pass

    Rogue.__module__ = "xdv.domains.q._aer"  # claims to be XDV's own
    _, codes = bind_with(verifier(), Rogue())
    assert codes == [ErrorCode.ATTESTATION_FAILED]
