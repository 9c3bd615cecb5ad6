from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.core import Operation
from xdv.errors import XdvError
from xdv.security._scope import (
    ANY_RESOURCE,
    FOREVER,
    Right,
    Scope,
    contains,
    intersection,
    union,
)
from xdv.trace import Domain

RIGHTS = [
    Right(Operation.EXECUTE, Domain.K, Domain.Q),
    Right(Operation.MEASURE, Domain.Q, Domain.K),
    Right(Operation.TRANSITION, Domain.K, Domain.PHI),
]
TIMES = [*range(0, 14), FOREVER - 1, FOREVER]
QUERIES = [
    (right, resource, time)
    for right in RIGHTS
    for resource in ("a", "b", "c", ANY_RESOURCE, None)
    for time in TIMES
]

grants = st.tuples(
    st.sampled_from(RIGHTS),
    st.sampled_from(["a", "b", ANY_RESOURCE]),
    st.integers(0, 12),
    st.one_of(st.integers(0, 12), st.just(FOREVER)),
)
scopes = st.lists(grants, max_size=6).map(
    lambda items: Scope.from_record(
        [
            {
                "op": right.operation.name,
                "from": right.origin.label,
                "to": right.target.label,
                "resource": resource,
                "times": [[lo, hi]] if lo <= hi else [],
            }
            for right, resource, lo, hi in items
        ]
    )
)


def model(items: list[tuple[Right, str, int, int]], query: tuple[Right, str | None, int]) -> bool:
    right, resource, time = query
    return any(
        r == right
        and lo <= time <= hi
        and (res == ANY_RESOURCE or (resource is not None and resource == res))
        for r, res, lo, hi in items
    )


@pytest.mark.spec("XDV-002-8.3")
@given(st.lists(grants, max_size=6))
def test_a_scope_permits_exactly_what_its_grants_say(
    items: list[tuple[Right, str, int, int]],
) -> None:
    scope = Scope.from_record(
        [
            {
                "op": r.operation.name,
                "from": r.origin.label,
                "to": r.target.label,
                "resource": res,
                "times": [[lo, hi]] if lo <= hi else [],
            }
            for r, res, lo, hi in items
        ]
    )
    for query in QUERIES:
        if query[1] == ANY_RESOURCE:
            continue
        assert scope.allows(*query) == model(items, query), query
    assert Scope.from_record(scope.to_record()) == scope


@pytest.mark.spec("XDV-002-8.3")
@given(scopes, scopes, scopes)
def test_union_intersection_and_containment_are_the_set_operations(
    a: Scope, b: Scope, c: Scope
) -> None:
    both, either = intersection(a, b), union(a, b)
    for query in QUERIES:
        assert both.allows(*query) == (a.allows(*query) and b.allows(*query))
        assert either.allows(*query) == (a.allows(*query) or b.allows(*query))
    # Lattice laws (equality is semantic because the form is canonical).
    assert union(a, b) == union(b, a) and intersection(a, b) == intersection(b, a)
    assert union(a, union(b, c)) == union(union(a, b), c)
    assert intersection(a, intersection(b, c)) == intersection(intersection(a, b), c)
    assert union(a, intersection(a, b)) == a == intersection(a, union(a, b))
    assert contains(both, a) and contains(both, b) and contains(a, either)
    assert contains(a, b) == (union(a, b) == b) == (intersection(a, b) == a)
    if contains(a, b) and contains(b, a):
        assert a == b
    semantic = all(not a.allows(*q) or b.allows(*q) for q in QUERIES)
    assert contains(a, b) == semantic


@given(scopes, st.integers(0, 14))
def test_until_cuts_everything_after_the_last_time(scope: Scope, last: int) -> None:
    cut = scope.until(last)
    assert contains(cut, scope)
    for right, resource, time in QUERIES:
        assert cut.allows(right, resource, time) == (
            scope.allows(right, resource, time) and time <= last
        )


def test_malformed_scope_records_are_typed_errors() -> None:
    for record in (
        "everything",
        [{"op": "FLY", "from": "K", "to": "Q"}],
        [{"op": "EXECUTE", "from": "K", "to": "Q", "times": [[3]]}],
        [{"op": "EXECUTE", "from": "K", "to": "Q", "times": [[-1, 4]]}],
        [{"op": "EXECUTE", "from": "K", "to": "Q", "resource": ""}],
        [{"op": "EXECUTE", "from": "K", "to": "Q", "resou2ce": "qubits"}],
        [7],
    ):
        with pytest.raises(XdvError):
            Scope.from_record(record)
    assert Scope.from_record([]).is_empty()
    assert "EXECUTE(K→Q)[*]@0..∞" in Scope.of(RIGHTS[0]).describe()
