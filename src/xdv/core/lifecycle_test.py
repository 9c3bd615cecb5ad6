from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdv.core import LEGAL_TRANSITIONS, ProcessState, check_transition
from xdv.errors import ErrorCode, LifecycleError

pytestmark = [pytest.mark.spec("XDV-020-6"), pytest.mark.spec("XDV-011-6.1")]


def test_the_documented_happy_path_is_legal() -> None:
    path = [
        ProcessState.CREATED,
        ProcessState.BOUND,
        ProcessState.INITIALIZED,
        ProcessState.ACTIVE,
        ProcessState.SUSPENDED,
        ProcessState.ACTIVE,
        ProcessState.TERMINATED,
        ProcessState.RELEASED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(1, current, target)


def test_released_is_final() -> None:
    for target in ProcessState:
        with pytest.raises(LifecycleError):
            check_transition(1, ProcessState.RELEASED, target)


def test_no_execution_before_initialization() -> None:
    with pytest.raises(LifecycleError) as raised:
        check_transition(7, ProcessState.BOUND, ProcessState.ACTIVE)
    assert raised.value.code is ErrorCode.LIFECYCLE_VIOLATION
    assert "process 7" in str(raised.value) and "BOUND" in str(raised.value)


@given(st.lists(st.sampled_from(list(ProcessState)), max_size=30))
def test_walks_accept_exactly_the_legal_moves(moves: list[ProcessState]) -> None:
    state = ProcessState.CREATED
    for target in moves:
        legal = target in LEGAL_TRANSITIONS[state]
        try:
            check_transition(1, state, target)
        except LifecycleError:
            assert not legal
        else:
            assert legal
            state = target
