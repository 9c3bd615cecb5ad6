"""Model checking the transition protocol and the contract lifecycle on the real kernel.

Each explored path is a sequence of steps, each one system call made by one of the processes
(``Reserve``, ``Release``, ``Invoke``, ``Transfer``, ``Transition``, with a fault injected at
any one of the seven transition phases, and ``Release`` and ``Invoke`` on stale handles of
contracts already released). :func:`xdv.core.explore` applies every enabled step to
every reached state up to a bound; a state is observed by running a fresh
:class:`xdv.core.Kernel` whose processes take their turns in exactly the path's order and
snapshot the orchestration state around each call, and faults enter through the kernel's own
fault plan (a rule per faulty step, at the phase visit that step makes).

A reference model predicts each step's outcome (success, or the refusal and the phase a
transition rolls back at); the kernel must agree on every explored step, and in every reached
state: a refused call or a rolled-back transition leaves the orchestration state exactly as it
was (rollback restores the pre-state), a committed transition keeps nothing of its
reservation, a rollback names the completed phases in protocol order and undoes exactly the
reservation, no transition both commits and rolls back, lanes in use equal the lanes of live
contracts, a transfer moves exactly one contract from the sender to the receiver, and a released
contract is never usable again. ``--long`` explores
two processes deeper.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from xdv.core import TRANSITION_PHASES, explore

# The explorable system is the one the conformance suite ships (its model-check cases run it
# too): one definition, loaded from the case folder.
_BASE = Path(__file__).resolve().parents[1] / "src/xdv/cts/cases/model_check/kernel.base.py"
_spec = importlib.util.spec_from_file_location("xdv_cts_kernel_base", _BASE)
assert _spec is not None and _spec.loader is not None
_base: Any = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _base  # dataclasses look their module up
_spec.loader.exec_module(_base)

KernelSystem = _base.KernelSystem
TRANSITION_KINDS: tuple[str, ...] = _base.TRANSITION_KINDS
CONTRACT_KINDS: tuple[str, ...] = _base.CONTRACT_KINDS


def _check(
    processes: int,
    kinds: Sequence[str],
    depth: int,
    states_min: int,
    transitions_min: int,
    label: str,
) -> bool:
    result = explore(KernelSystem(processes, kinds), depth_max=depth)
    print(f"\n{label}, {processes} process(es), depth {depth}: {result.summary()}")
    assert result.ok, result.counterexample and result.counterexample.describe()
    assert result.states >= states_min and result.transitions >= transitions_min
    return result.exhausted


@pytest.mark.spec("XDV-053-6.2")
def test_the_transition_protocol_is_atomic_under_every_fault() -> None:
    _check(1, ("reserve", "release", *TRANSITION_KINDS), 4, 7, 57, "transition protocol")
    # Two processes contending for the lanes, every interleaving of two calls.
    _check(2, ("reserve", *TRANSITION_KINDS), 2, 6, 60, "transition protocol")


@pytest.mark.spec("XDV-053-5.3")
def test_the_contract_lifecycle_holds_in_every_interleaving() -> None:
    _check(2, CONTRACT_KINDS, 4, 19, 66, "contract lifecycle")


@pytest.mark.slow
@pytest.mark.spec("XDV-053-6.2", "XDV-053-5.3")
def test_transitions_and_contracts_of_two_processes_deeper() -> None:
    # The whole state space of two processes sharing two lanes: nothing is left unexplored.
    kinds = (*CONTRACT_KINDS, *TRANSITION_KINDS)
    assert _check(2, kinds, 10, 25, 570, "transitions and contracts")


@pytest.mark.spec("XDV-053-6.2")
@pytest.mark.spec("XDV-053-9")
def test_a_planted_skipped_rollback_is_found_with_a_counterexample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xdv.core._contracts import ContractBook

    monkeypatch.setattr(ContractBook, "withdraw", lambda self, process, contract: None)
    result = explore(KernelSystem(1, ("reserve", *TRANSITION_KINDS)), depth_max=2)
    assert result.counterexample is not None
    text = result.counterexample.describe()
    print("\n" + text)
    assert "changed the state" in text
    last = result.counterexample.actions[-1]
    assert last.kind == "transition" and last.phase in TRANSITION_PHASES[2:]
