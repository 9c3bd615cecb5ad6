"""The explorer itself (:func:`xdv.core.explore`) on a system small enough to count by hand:
two counters, each incremented up to a cap, with a bug planted at one state."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import pytest

from xdv.core import explore
from xdv.errors import ErrorCode, XdvError

pytestmark = pytest.mark.spec("XDV-053-9")


class Counters:
    """Two counters in [0, cap]; the action names the counter to increment. ``bad`` is a state
    that violates the invariant."""

    def __init__(self, cap: int, bad: tuple[int, int] | None = None) -> None:
        self.cap, self.bad = cap, bad

    def start(self) -> tuple[int, int]:
        return (0, 0)

    def actions(self, live: tuple[int, int]) -> Sequence[int]:
        return [index for index in (0, 1) if live[index] < self.cap]

    def step(self, live: tuple[int, int], action: int) -> tuple[int, int]:
        return (live[0] + 1, live[1]) if action == 0 else (live[0], live[1] + 1)

    def state(self, live: tuple[int, int]) -> Hashable:
        return live

    def violations(
        self, before: tuple[int, int] | None, action: int | None, after: tuple[int, int]
    ) -> list[str]:
        return [f"reached {after}"] if after == self.bad else []


def test_every_state_is_reached_once_and_every_transition_counted() -> None:
    result = explore(Counters(3), depth_max=10)
    assert result.ok and result.exhausted
    assert result.states == 16  # (cap + 1) ** 2
    assert result.transitions == 2 * 3 * 4  # each counter steps 3 times in each of 4 rows
    assert result.states_by_depth == (1, 2, 3, 4, 3, 2, 1, 0)
    assert explore(Counters(3), depth_max=10) == result  # deterministic


def test_the_bound_limits_the_search() -> None:
    result = explore(Counters(3), depth_max=2)
    assert (result.states, result.depth, result.exhausted) == (6, 2, False)
    assert explore(Counters(3), depth_max=0).states == 1


def test_a_violation_gives_the_shortest_counterexample() -> None:
    result = explore(Counters(3, bad=(2, 1)), depth_max=10)
    assert result.counterexample is not None
    assert sorted(result.counterexample.actions) == [0, 0, 1]
    assert "reached (2, 1)" in result.counterexample.describe()


def test_the_state_bound_is_enforced() -> None:
    with pytest.raises(XdvError) as caught:
        explore(Counters(3), depth_max=10, states_max=5)
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED
