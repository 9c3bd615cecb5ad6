"""Explicit-state model checking: every interleaving of a system's actions, up to a bound.

:func:`explore` runs a breadth-first search over the states of an :class:`ExplorableSystem`:
from the initial state it applies every enabled action, in the order the system lists them, to
every state reached, up to ``depth_max`` actions. States are deduplicated by the system's
*abstract state* (a hashable snapshot of what matters to its invariants, with ids and clocks
left out), so a state reached along several paths is expanded once. After each action the
system's invariants are checked on the step (the live system before, the action, the live
system after); the first violation stops the search with a :class:`Counterexample`: the
shortest action sequence (breadth first) that reaches it, and what was violated.

The system drives the real implementation where it can: a *live* value is whatever the system
needs to observe one state (a kernel run's observations, a capability authority), and
:meth:`ExplorableSystem.step` may mutate a copy or rebuild the implementation from the initial
state and replay the action path, whichever is cheaper; the explorer only keeps live values of
the frontier.

The search is deterministic: the same system and bound give the same counts and the same
counterexample.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from xdv.errors import ErrorCode, XdvError

__all__ = ["Counterexample", "ExplorableSystem", "Exploration", "explore"]

Live = TypeVar("Live")
Action = TypeVar("Action")


class ExplorableSystem(Protocol[Live, Action]):
    """What :func:`explore` needs of a system under check."""

    def start(self) -> Live:
        """The live system in its initial state."""
        ...

    def actions(self, live: Live) -> Sequence[Action]:
        """The actions enabled in ``live``'s state, in a fixed order."""
        ...

    def step(self, live: Live, action: Action) -> Live:
        """The live system after ``action``; ``live`` must stay as it was (copy it, or rebuild
        the implementation and replay the path), since every action is tried on it."""
        ...

    def state(self, live: Live) -> Hashable:
        """The abstract state of ``live``: equal for states the invariants cannot tell apart."""
        ...

    def violations(self, before: Live | None, action: Action | None, after: Live) -> list[str]:
        """What the step from ``before`` by ``action`` to ``after`` violates (state and step
        invariants); empty when everything holds. ``before`` and ``action`` are None for the
        initial state."""
        ...


@dataclass(frozen=True)
class Counterexample(Generic[Action]):
    """The shortest action sequence from the initial state that violates an invariant."""

    actions: tuple[Action, ...]
    violations: tuple[str, ...]

    def describe(self) -> str:
        """The trace and the violations, one per line."""
        steps = "\n".join(f"  {index}. {action}" for index, action in enumerate(self.actions, 1))
        return f"counterexample after {len(self.actions)} action(s):\n{steps}\n" + "\n".join(
            f"  violated: {text}" for text in self.violations
        )


@dataclass(frozen=True)
class Exploration(Generic[Action]):
    """What a search explored: distinct abstract states, transitions (actions applied), the
    depth reached, states found at each depth, and the counterexample if one was found."""

    states: int
    transitions: int
    depth: int
    states_by_depth: tuple[int, ...]
    counterexample: Counterexample[Action] | None = None
    exhausted: bool = False
    """True when no new state was left to expand before the depth bound."""

    @property
    def ok(self) -> bool:
        """Whether every reached state satisfied every invariant."""
        return self.counterexample is None

    def summary(self) -> str:
        """One line: states, transitions and depth."""
        verdict = "ok" if self.ok else "VIOLATED"
        bound = "exhausted" if self.exhausted else f"depth {self.depth}"
        return (
            f"{verdict}: {self.states} states, {self.transitions} transitions, {bound} "
            f"(new states by depth {list(self.states_by_depth)})"
        )


def explore(
    system: ExplorableSystem[Live, Action], *, depth_max: int, states_max: int = 1_000_000
) -> Exploration[Action]:
    """Explore every interleaving of ``system``'s actions up to ``depth_max`` actions (see the
    module docstring); LIMIT_EXCEEDED if more than ``states_max`` distinct states are found."""
    if type(depth_max) is not int or depth_max < 0:
        raise XdvError(
            f"depth_max must be an integer ≥ 0, got {depth_max!r}",
            code=ErrorCode.INVALID_ARGUMENT,
            where="explore",
        )
    start = system.start()
    problems = system.violations(None, None, start)
    if problems:
        return Exploration(1, 0, 0, (1,), Counterexample((), tuple(problems)))
    seen: set[Hashable] = {system.state(start)}
    frontier: list[tuple[Live, tuple[Action, ...]]] = [(start, ())]
    transitions = 0
    by_depth = [1]
    depth = 0
    while frontier and depth < depth_max:
        depth += 1
        reached: list[tuple[Live, tuple[Action, ...]]] = []
        for live, path in frontier:
            for action in system.actions(live):
                after = system.step(live, action)
                transitions += 1
                problems = system.violations(live, action, after)
                if problems:
                    return Exploration(
                        len(seen),
                        transitions,
                        depth,
                        (*by_depth, len(reached)),
                        Counterexample((*path, action), tuple(problems)),
                    )
                key = system.state(after)
                if key in seen:
                    continue
                seen.add(key)
                if len(seen) > states_max:
                    raise XdvError(
                        f"the exploration found more than {states_max} states",
                        code=ErrorCode.LIMIT_EXCEEDED,
                        where="explore",
                    )
                reached.append((after, (*path, action)))
        by_depth.append(len(reached))
        frontier = reached
    return Exploration(len(seen), transitions, depth, tuple(by_depth), None, exhausted=not frontier)
