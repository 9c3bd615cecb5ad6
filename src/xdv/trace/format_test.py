from __future__ import annotations

import math

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.errors import ErrorCode, TraceError
from xdv.trace import TraceWriter, canonical_metadata, canonicalize, read_trace
from xdv.trace._format import HEADER, _canonicalize_at

pytestmark = pytest.mark.spec("XDV-071-3.2")

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), plain, max_size=5))
def test_canonical_encoding_is_independent_of_insertion_order(metadata) -> None:
    reordered = dict(reversed(list(metadata.items())))
    assert canonical_metadata(metadata) == canonical_metadata(reordered)
    decoded = cbor2.loads(canonical_metadata(metadata))
    assert canonical_metadata(decoded) == canonical_metadata(metadata)


def test_keys_sort_by_length_then_bytes_and_floats_are_binary64() -> None:
    encoded = canonical_metadata({"bb": 1, "a": 2, "c": 1.5})
    assert encoded == cbor2.dumps({"a": 2, "c": 1.5, "bb": 1})
    assert b"\xfb" in encoded  # 1.5 as a 64-bit float, never shortened


@pytest.mark.spec("XDV-071-3.3")
@pytest.mark.parametrize(
    "value",
    [object(), {1: "x"}, math.nan, math.inf, 2**64, -(2**64) - 1, {"s": {1, 2}}, complex(1, 2)],
)
def test_values_outside_the_profile_are_refused(value) -> None:
    with pytest.raises(TraceError) as raised:
        canonicalize({"v": value})
    assert raised.value.code is ErrorCode.TRACE_UNENCODABLE
    assert raised.value.where is not None and raised.value.where.startswith("metadata")


def test_tuples_and_enum_members_become_plain_values() -> None:
    assert canonicalize({"t": (1, "x"), "e": ErrorCode.OK}) == {"e": 0, "t": [1, "x"]}


@pytest.mark.spec("XDV-005-6.4")
def test_round_trip_keeps_every_header_field() -> None:
    writer = TraceWriter(None)
    writer.append(0, 1, 0, 0, 0, 0, 0, 0, 0, {"seed": 1})
    writer.append(3, 50, 2, 303, 9, 4, 5, 77, 88, {"k": "v"})
    writer.append(4, 2, 0, 0, 0, 0, 0, 0, 0, None)
    entry = read_trace(writer.getvalue()).entries[1]
    assert (entry.seq, entry.logical_time, int(entry.event_type), int(entry.domain)) == (
        1,
        3,
        50,
        2,
    )
    assert (int(entry.status), entry.process, entry.vhm, entry.node) == (303, 9, 4, 5)
    assert (entry.capability, entry.contract, entry.metadata) == (77, 88, {"k": "v"})
    assert len(entry.body) == HEADER.size + len(canonical_metadata({"k": "v"}))


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=4),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 3)), inner, max_size=4),
    ),
    max_leaves=12,
)


@given(_VALUES)
def test_the_fast_canonical_walk_agrees_with_the_path_tracking_one(value: object) -> None:
    """canonicalize walks without building paths and re-walks with paths only to report a
    refusal: both walks accept the same values, give the same result, and refuse alike."""
    try:
        expected = _canonicalize_at(value, "metadata")
    except TraceError as error:
        with pytest.raises(TraceError) as raised:
            canonicalize(value)
        assert (raised.value.code, raised.value.where) == (error.code, error.where)
        return
    result = canonicalize(value)
    assert result == expected  # (non-finite floats are refused, so no NaN compares here)
    assert cbor2.dumps(result) == cbor2.dumps(expected)
