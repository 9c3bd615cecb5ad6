"""The SDBM's tokens under a long random sequence of mint / attenuate / delegate / revoke / use
and forgery attempts, checked against an independent model: zero escalations."""

from __future__ import annotations

import os
from dataclasses import replace

import cbor2
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from xdv.core import Operation
from xdv.errors import ErrorCode, UnauthorizedError, XdvError
from xdv.security import (
    FOREVER,
    CapabilityToken,
    HybridKeyPair,
    Right,
    Scope,
    TokenAuthority,
    contains,
    intersection,
)
from xdv.trace import Domain

KEYS = HybridKeyPair.from_seed(b"sdbm under test")
FOREIGN = HybridKeyPair.from_seed(b"foreign issuer")
RIGHTS = [
    Right(Operation.EXECUTE, Domain.K, Domain.Q),
    Right(Operation.MEASURE, Domain.Q, Domain.K),
    Right(Operation.ALLOCATE, Domain.K, Domain.PHI),
    Right(Operation.TRANSITION, Domain.K, Domain.Q),
]
RESOURCES = ["qubits", "envelope", "*"]
PROCESSES = [1, 2, 3, 4]
LONG = os.environ.get("XDV_LONG") == "1"
OPERATIONS = {"count": 0, "ran": False}

scopes = st.lists(
    st.tuples(
        st.sampled_from(RIGHTS),
        st.sampled_from(RESOURCES),
        st.integers(0, 40),
        st.one_of(st.integers(0, 30), st.just(FOREVER)),
    ),
    min_size=1,
    max_size=3,
).map(
    lambda items: Scope.from_record(
        [
            {
                "op": r.operation.name,
                "from": r.origin.label,
                "to": r.target.label,
                "resource": res,
                "times": [[lo, min(lo + length, FOREVER)]],
            }
            for r, res, lo, length in items
        ]
    )
)
FORGERIES = ["bitflip", "truncate", "splice", "foreign", "expired", "strip", "widen", "subject"]


class TokenLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.authority = TokenAuthority(KEYS)
        self.now = 0
        # The model: every token's holder, scope, expiry and parent, and what is revoked.
        self.model: dict[int, tuple[int, Scope, int | None, int | None]] = {}
        self.revoked: set[int] = set()
        self.exported: dict[int, bytes] = {}
        self.operations = 0

    def descendants(self, token_id: int) -> set[int]:
        found = {token_id}
        changed = True
        while changed:
            changed = False
            for other, (_, _, _, parent) in self.model.items():
                if parent in found and other not in found:
                    found.add(other)
                    changed = True
        return found

    def teardown(self) -> None:
        OPERATIONS["count"] += self.operations
        OPERATIONS["ran"] = True

    def live(self, token_id: int) -> bool:
        return token_id not in self.revoked

    @initialize()
    def start(self) -> None:
        token = self.authority.mint(1, Scope.of(RIGHTS[0]), 0)
        self.model[token.id] = (1, token.scope, None, None)

    @rule(
        holder=st.sampled_from(PROCESSES),
        scope=scopes,
        expires=st.one_of(st.none(), st.integers(0, 80)),
    )
    def mint(self, holder: int, scope: Scope, expires: int | None) -> None:
        self.operations += 1
        token = self.authority.mint(holder, scope, self.now, expires)
        self.model[token.id] = (holder, scope, expires, None)

    @rule(
        data=st.data(),
        restrict=st.one_of(st.none(), scopes),
        to=st.one_of(st.none(), st.sampled_from(PROCESSES)),
        expires=st.one_of(st.none(), st.integers(0, 80)),
    )
    def derive(
        self, data: st.DataObject, restrict: Scope | None, to: int | None, expires: int | None
    ) -> None:
        self.operations += 1
        parent_id = data.draw(st.sampled_from(sorted(self.model)))
        holder, parent_scope, parent_expires, _ = self.model[parent_id]
        presenter = data.draw(st.sampled_from([holder, *PROCESSES]))
        before = (self.authority._next_id, len(self.authority._tokens))
        wanted = parent_scope if restrict is None else restrict
        expected_ok = (
            self.live(parent_id)
            and presenter == holder
            and (parent_expires is None or self.now <= parent_expires)
            and contains(wanted, parent_scope)
            and not (
                parent_expires is not None and expires is not None and expires > parent_expires
            )
            and self.depth(parent_id) < 16
        )
        try:
            token = self.authority.derive(
                parent_id, presenter, self.now, subject=to, scope=restrict, expires_at=expires
            )
        except UnauthorizedError as error:
            assert not expected_ok, error
            assert (self.authority._next_id, len(self.authority._tokens)) == before
            if (
                self.live(parent_id)
                and presenter == holder
                and (parent_expires is None or self.now <= parent_expires)
                and not contains(wanted, parent_scope)
            ):
                assert error.code is ErrorCode.ATTENUATION_WIDENS
            return
        assert expected_ok
        # Never wider than the parent, never longer-lived.
        assert contains(token.scope, parent_scope)
        assert token.scope == intersection(wanted, parent_scope)
        if parent_expires is not None:
            assert token.expires_at is not None and token.expires_at <= parent_expires
        self.model[token.id] = (
            to if to is not None else holder,
            token.scope,
            token.expires_at,
            parent_id,
        )

    def depth(self, token_id: int) -> int:
        depth = 0
        parent = self.model[token_id][3]
        while parent is not None:
            depth += 1
            parent = self.model[parent][3]
        return depth

    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        self.operations += 1
        token_id = data.draw(st.sampled_from(sorted(self.model)))
        if not self.live(token_id):
            with pytest.raises(UnauthorizedError):
                self.authority.revoke(token_id)
            return
        revoked = {capability.id for capability in self.authority.revoke(token_id)}
        expected = {t for t in self.descendants(token_id) if self.live(t)}
        assert revoked == expected
        self.revoked |= expected

    @rule(ticks=st.integers(1, 5))
    def tick(self, ticks: int) -> None:
        self.now += ticks

    @rule(
        requests=st.lists(
            st.tuples(
                st.sampled_from(PROCESSES),
                st.sampled_from(RIGHTS),
                st.sampled_from(["qubits", "envelope", "other", None]),
            ),
            min_size=1,
            max_size=16,
        )
    )
    def use(self, requests: list[tuple[int, Right, str | None]]) -> None:
        for holder, right, resource in requests:
            self.use_one(holder, right, resource)

    def use_one(self, holder: int, right: Right, resource: str | None) -> None:
        self.operations += 1
        allowed_by_model = any(
            subject == holder
            and self.live(token_id)
            and (expires is None or self.now <= expires)
            and scope.allows(right, resource, self.now)
            for token_id, (subject, scope, expires, _) in self.model.items()
        )
        try:
            capability = self.authority.check(
                holder, right.operation, right.origin, right.target, self.now, resource
            )
        except UnauthorizedError:
            assert not allowed_by_model
            return
        assert allowed_by_model, "escalation: the authority allowed what no live token permits"
        subject, scope, _, _ = self.model[capability.id]
        assert subject == holder and self.live(capability.id)
        assert scope.allows(right, resource, self.now)

    @rule(data=st.data(), kind=st.sampled_from(FORGERIES))
    def forge(self, data: st.DataObject, kind: str) -> None:
        self.operations += 1
        token_id = data.draw(st.sampled_from(sorted(self.model)))
        if token_id not in self.exported:
            if len(self.exported) >= 3:  # signing is slow: forge from a few exported tokens
                token_id = data.draw(st.sampled_from(sorted(self.exported)))
            else:
                self.exported[token_id] = self.authority.export(token_id)
        genuine = self.exported[token_id]
        token = CapabilityToken.from_bytes(genuine)
        holder = token.subject
        if kind == "bitflip":
            damaged = bytearray(genuine)
            position = data.draw(st.integers(0, len(damaged) - 1))
            damaged[position] ^= 1 << data.draw(st.integers(0, 7))
            forged = bytes(damaged)
        elif kind == "truncate":
            forged = genuine[: data.draw(st.integers(0, len(genuine) - 1))]
        elif kind == "splice":  # another token's signature on this payload
            other = next(iter(v for k, v in self.exported.items() if k != token_id), None)
            if other is None:
                return
            forged = replace(
                token, signature=CapabilityToken.from_bytes(other).signature
            ).to_bytes()
        elif kind == "foreign":  # same payload, re-signed by a key the authority does not trust
            forged = replace(
                token, signature=FOREIGN.sign(token.payload(), context=b"xdv-capability")
            ).to_bytes()
        elif kind == "expired":  # push the expiry forward without re-signing
            forged = replace(token, expires_at=(token.expires_at or 0) + 1000).to_bytes()
        elif kind == "strip":
            forged = replace(token, signature=b"").to_bytes()
        elif kind == "widen":
            wider = Scope.of(RIGHTS[3])
            forged = replace(token, scope=wider).to_bytes()
        else:  # "subject": claim the token for another process
            forged = replace(token, subject=holder % 4 + 1).to_bytes()
        before = (self.authority._next_id, dict(self.authority._live))
        with pytest.raises(XdvError) as raised:
            self.authority.present(forged, holder, self.now)
        assert raised.value.code in (ErrorCode.SIGNATURE_INVALID, ErrorCode.CAPABILITY_INVALID)
        assert (self.authority._next_id, dict(self.authority._live)) == before
        # The genuine token still validates signature-first (or is refused for a real reason).
        try:
            self.authority.present(genuine, holder, self.now)
        except UnauthorizedError as error:
            assert error.code in (ErrorCode.CAPABILITY_REVOKED, ErrorCode.CAPABILITY_EXPIRED)

    @invariant()
    def held_tokens_are_exactly_the_live_ones(self) -> None:
        for holder in PROCESSES:
            held = {capability.id for capability in self.authority.held_by(holder)}
            expected = {t for t, (s, _, _, _) in self.model.items() if s == holder and self.live(t)}
            assert held == expected


# The default run is bounded (about five thousand operations, seconds); the soak (`--long`, over
# a million operations) runs the same machine for much longer.
EXAMPLES = 4300 if LONG else 12
OPERATIONS_MIN = 1_000_000 if LONG else 5_000
TokenLifecycle.TestCase.settings = settings(
    max_examples=int(os.environ.get("XDV_TOKEN_EXAMPLES", EXAMPLES)),
    stateful_step_count=1000,
    database=None,
    derandomize=True,  # the same operations every run, so the count is stable
    # A failure here is a security bug: report it at once rather than spend minutes shrinking.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.spec("XDV-015-3.4")
@pytest.mark.spec("XDV-002-8.2")
class TestTokenLifecycle(TokenLifecycle.TestCase):  # type: ignore[misc,valid-type]
    pass


@pytest.fixture(scope="module", autouse=True)
def _count_operations() -> object:
    yield None
    # The stateful run happened in this process at its standard size: check that size.
    if OPERATIONS["ran"] and "XDV_TOKEN_EXAMPLES" not in os.environ:
        print(f"token lifecycle: {OPERATIONS['count']} operations")
        assert OPERATIONS["count"] >= OPERATIONS_MIN, OPERATIONS


def test_a_presented_token_is_validated_in_the_documented_order() -> None:
    authority = TokenAuthority(KEYS)
    parent = authority.mint(1, Scope.of(RIGHTS[0], "qubits", 0, 50), now=0, expires_at=30)
    child = authority.derive(parent.id, 1, 5, subject=2, scope=Scope.of(RIGHTS[0], "qubits", 0, 20))
    exported = authority.export(child.id)
    other = TokenAuthority(KEYS)  # another authority that trusts the same issuer
    other.present(authority.export(parent.id), 1, 5)
    assert other.present(exported, 2, 5).scope == child.scope
    request = (RIGHTS[0], "qubits")
    # 1. signature first, even for a token that would also fail later checks
    stripped = replace(CapabilityToken.from_bytes(exported), signature=b"").to_bytes()
    with pytest.raises(UnauthorizedError) as raised:
        TokenAuthority(KEYS).present(stripped, 9, 99, request)
    assert raised.value.code is ErrorCode.SIGNATURE_INVALID
    # 2. scope: a derived token whose parent the authority does not know is invalid
    with pytest.raises(UnauthorizedError) as raised:
        TokenAuthority(KEYS).present(exported, 2, 5, request)
    assert raised.value.code is ErrorCode.CAPABILITY_INVALID
    # 3. expiry
    with pytest.raises(UnauthorizedError) as raised:
        other.present(exported, 2, 31)
    assert raised.value.code is ErrorCode.CAPABILITY_EXPIRED
    # 4. policy: presented by someone else
    with pytest.raises(UnauthorizedError) as raised:
        other.present(exported, 3, 5)
    assert raised.value.code is ErrorCode.DOMAIN_UNAUTHORIZED
    # 5. revocation through the lineage
    other.revoke(parent.id)
    with pytest.raises(UnauthorizedError) as raised:
        other.present(exported, 2, 5)
    assert raised.value.code is ErrorCode.CAPABILITY_REVOKED
    # Malformed bytes are typed errors, not crashes.
    for junk in (b"", b"\xa0", cbor2.dumps({"v": 2}), exported[:-3]):
        with pytest.raises(UnauthorizedError):
            other.present(junk, 2, 5)


def test_policy_bounds_every_scope_and_frozen_domains_refuse() -> None:
    policy = Scope.of(RIGHTS[0])
    authority = TokenAuthority(KEYS, policy=policy)
    authority.mint(1, Scope.of(RIGHTS[0], "qubits"), 0)
    with pytest.raises(UnauthorizedError, match="policy"):
        authority.mint(1, Scope.of(RIGHTS[1]), 0)
    revoked = authority.freeze(Domain.Q)
    assert [capability.id for capability in revoked] == [1]
    with pytest.raises(UnauthorizedError) as raised:
        authority.check(1, Operation.EXECUTE, Domain.K, Domain.Q, 1, "qubits")
    assert raised.value.code in (ErrorCode.DOMAIN_FROZEN, ErrorCode.CAPABILITY_REVOKED)
    with pytest.raises(UnauthorizedError) as raised:
        authority.mint(1, Scope.of(RIGHTS[0]), 1)
    assert raised.value.code is ErrorCode.DOMAIN_FROZEN


def test_a_token_has_exactly_one_accepted_encoding() -> None:
    authority = TokenAuthority(KEYS)
    token = authority.mint(1, Scope.of(RIGHTS[0], "qubits", 0, 50), 0)
    exported = authority.export(token.id)
    fields = cbor2.loads(exported)
    variants = [
        {**fields, "sig": 2**63},  # not bytes at all
        {**fields, "sig": 10**7},  # would allocate megabytes if converted
        {**fields, "sig": list(fields["sig"][:8])},
        {**fields, "caveats": {}},
        {**fields, "scope": [{**fields["scope"][0], "times": [[0, 20], [21, 50]]}]},
    ]
    for variant in variants:
        from xdv.trace._format import canonical_metadata

        try:
            data = canonical_metadata(variant)
        except XdvError:
            data = cbor2.dumps(variant)
        with pytest.raises(UnauthorizedError) as raised:
            TokenAuthority(KEYS).present(data, 1, 5)
        assert raised.value.code in (ErrorCode.CAPABILITY_INVALID, ErrorCode.SIGNATURE_INVALID)
    assert TokenAuthority(KEYS).present(exported, 1, 5).id == token.id
