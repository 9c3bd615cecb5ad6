"""Model checking the capability lifecycle on the real capability authority.

Every interleaving of minting, attenuating, delegating (including attempts to widen) and
revoking tokens among two subjects is explored on :class:`xdv.security.TokenAuthority` itself,
up to a bound, by :func:`xdv.core.explore`. A small reference model predicts each action's
outcome and which requests each subject may make; the authority must agree on every explored
step (model/implementation correspondence), and in every reached state: a derived token's scope
lies within its parent's (no rights gained), every token below a revoked one is revoked and
refused, the valid tokens are exactly the issued ones minus the revoked ones, and a refused
action changes nothing. ``--long`` explores deeper.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import pytest

from xdv.core import Operation, explore
from xdv.errors import ErrorCode, XdvError
from xdv.security import (
    CapabilityToken,
    HybridKeyPair,
    Right,
    Scope,
    TokenAuthority,
    contains,
    union,
)
from xdv.trace import Domain

pytestmark = [pytest.mark.spec("XDV-053-5.4")]

KEY = HybridKeyPair.from_seed(b"xdv-model-check")
SUBJECTS = (1, 2)
RIGHTS = {
    "x": Right(Operation.EXECUTE, Domain.K, Domain.K),
    "r": Right(Operation.RECEIVE, Domain.K, Domain.K),
}
SCOPES = ("xr", "x", "r")
TOKENS_MAX = 4


def scope_of(letters: str) -> Scope:
    scopes = [Scope.of(RIGHTS[letter], "jobs") for letter in letters]
    combined = scopes[0]
    for other in scopes[1:]:
        combined = union(combined, other)
    return combined


@dataclass(frozen=True)
class Act:
    """One action: ``mint`` (subject, scope), ``derive`` (parent, subject or None, scope) or
    ``revoke`` (token)."""

    kind: str
    token: int = 0
    subject: int | None = None
    scope: str = ""

    def __str__(self) -> str:
        if self.kind == "mint":
            return f"mint {self.scope} to {self.subject}"
        if self.kind == "derive":
            to = "" if self.subject is None else f" to {self.subject}"
            return f"derive #{self.token} as {self.scope}{to}"
        return f"revoke #{self.token}"


@dataclass
class ModelToken:
    subject: int
    rights: frozenset[str]
    parent: int | None
    revoked: bool = False


@dataclass
class Live:
    """The authority after a path, the reference model beside it, and the last outcome."""

    path: tuple[Act, ...]
    authority: TokenAuthority
    model: dict[int, ModelToken] = field(default_factory=dict)
    outcome: str = "start"
    predicted: str = "start"


def _model_live(model: dict[int, ModelToken], token: int) -> bool:
    current: int | None = token
    while current is not None:
        if model[current].revoked:
            return False
        current = model[current].parent
    return True


def _predict(model: dict[int, ModelToken], act: Act) -> str:
    if act.kind == "mint":
        return "ok"
    if act.token not in model:
        return ErrorCode.CAPABILITY_INVALID.name
    if act.kind == "revoke":
        return "ok" if not model[act.token].revoked else ErrorCode.CAPABILITY_INVALID.name
    parent = model[act.token]
    if not _model_live(model, act.token):
        return ErrorCode.CAPABILITY_REVOKED.name
    if not frozenset(act.scope) <= parent.rights:
        return ErrorCode.ATTENUATION_WIDENS.name
    return "ok"


def _apply_model(model: dict[int, ModelToken], act: Act, token_id: int | None) -> None:
    if act.kind == "mint" and token_id is not None:
        model[token_id] = ModelToken(act.subject or 1, frozenset(act.scope), None)
    elif act.kind == "derive" and token_id is not None:
        parent = model[act.token]
        subject = parent.subject if act.subject is None else act.subject
        model[token_id] = ModelToken(subject, frozenset(act.scope), act.token)
    elif act.kind == "revoke":
        pending = [act.token]
        while pending:  # a revocation reaches every token derived below
            current = pending.pop()
            model[current].revoked = True
            pending.extend(tid for tid, item in model.items() if item.parent == current)


def _table(authority: TokenAuthority) -> dict[int, CapabilityToken]:
    """The authority's token table, read without signing (``token()`` signs on first use)."""
    return authority._tokens


def _apply(authority: TokenAuthority, act: Act) -> tuple[str, int | None]:
    try:
        if act.kind == "mint":
            token = authority.mint(act.subject or 1, scope_of(act.scope), 0)
            return "ok", token.id
        if act.kind == "derive":
            held = _table(authority).get(act.token)
            presenter = held.subject if held is not None else 1
            token = authority.derive(
                act.token, presenter, 0, subject=act.subject, scope=scope_of(act.scope)
            )
            return "ok", token.id
        authority.revoke(act.token)
        return "ok", None
    except XdvError as error:
        return error.code.name, None


class CapabilitySystem:
    """The capability lifecycle as an explorable system (replaying each path from scratch)."""

    def start(self) -> Live:
        return Live((), TokenAuthority(KEY))

    def actions(self, live: Live) -> Sequence[Act]:
        acts: list[Act] = []
        count = len(live.model)
        if count < TOKENS_MAX:
            acts.extend(Act("mint", subject=subject, scope="xr") for subject in SUBJECTS)
            for token in sorted(live.model):
                for scope in SCOPES:
                    acts.append(Act("derive", token, None, scope))
                other = 2 if live.model[token].subject == 1 else 1
                acts.append(Act("derive", token, other, "x"))
        acts.extend(Act("revoke", token) for token in sorted(live.model))
        return acts

    def step(self, live: Live, action: Act) -> Live:
        replayed = Live((), TokenAuthority(KEY))
        for act in (*live.path, action):
            predicted = _predict(replayed.model, act)
            outcome, token_id = _apply(replayed.authority, act)
            _apply_model(replayed.model, act, token_id if outcome == "ok" else None)
            replayed.outcome, replayed.predicted = outcome, predicted
        replayed.path = (*live.path, action)
        return replayed

    def state(self, live: Live) -> Hashable:
        return tuple(
            (tid, token.subject, "".join(sorted(token.rights)), token.parent, token.revoked)
            for tid, token in sorted(live.model.items())
        )

    def violations(self, before: Live | None, action: Act | None, after: Live) -> list[str]:
        problems: list[str] = []
        authority, model = after.authority, after.model
        if after.outcome != after.predicted:
            problems.append(f"outcome {after.outcome}, the model predicts {after.predicted}")
        if before is not None and after.outcome != "ok" and self.state(before) != self.state(after):
            problems.append("a refused action changed the state")
        valid = 0
        for tid in sorted(model):
            table = _table(authority)
            token = table[tid]
            if token.parent is not None and not contains(token.scope, table[token.parent].scope):
                problems.append(f"token #{tid} holds rights its parent #{token.parent} lacks")
            live_in_model = _model_live(model, tid)
            if authority.is_revoked(tid) == live_in_model:
                problems.append(
                    f"token #{tid} is {'revoked' if live_in_model else 'live'} in the authority, "
                    f"{'live' if live_in_model else 'revoked'} in the model"
                )
            valid += live_in_model
        held = sum(len(authority.held_by(subject)) for subject in SUBJECTS)
        if held != valid:
            problems.append(f"{held} valid tokens held, issued minus revoked is {valid}")
        for subject in SUBJECTS:
            for letter, right in RIGHTS.items():
                allowed = any(
                    item.subject == subject and letter in item.rights and _model_live(model, tid)
                    for tid, item in model.items()
                )
                try:
                    authority.check(subject, right.operation, Domain.K, Domain.K, 0, "jobs")
                    granted = True
                except XdvError as error:
                    granted = False
                    revoked_only = any(
                        item.subject == subject and letter in item.rights for item in model.values()
                    )
                    if (
                        not allowed
                        and revoked_only
                        and error.code not in (ErrorCode.CAPABILITY_REVOKED,)
                    ):
                        problems.append(
                            f"subject {subject}'s revoked right {letter} refused with "
                            f"{error.code.name}, not CAPABILITY_REVOKED"
                        )
                if granted != allowed:
                    problems.append(
                        f"subject {subject} {'may' if granted else 'may not'} {letter}; the "
                        f"model says {'may' if allowed else 'may not'}"
                    )
        return problems


def _check(depth: int, states_min: int, transitions_min: int) -> None:
    result = explore(CapabilitySystem(), depth_max=depth)
    print(f"\ncapability lifecycle, depth {depth}: {result.summary()}")
    assert result.ok, result.counterexample and result.counterexample.describe()
    assert result.states >= states_min and result.transitions >= transitions_min


def test_the_capability_lifecycle_holds_in_every_reached_state() -> None:
    _check(3, states_min=140, transitions_min=170)


@pytest.mark.slow
def test_the_capability_lifecycle_holds_deeper() -> None:
    _check(5, states_min=6500, transitions_min=12000)


@pytest.mark.spec("XDV-053-9")
def test_a_planted_widening_bug_is_found_with_a_counterexample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import xdv.security._tokens as tokens

    monkeypatch.setattr(tokens, "contains", lambda inner, outer: True)
    result = explore(CapabilitySystem(), depth_max=3)
    assert result.counterexample is not None
    text = result.counterexample.describe()
    print("\n" + text)
    assert "holds rights its parent" in text or "the model predicts" in text
    assert any(act.kind == "derive" for act in result.counterexample.actions)


@pytest.mark.spec("XDV-053-9")
def test_a_planted_shallow_revocation_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    original = TokenAuthority.revoke

    def shallow(self: TokenAuthority, capability_id: int) -> list[object]:
        children = self._children.pop(capability_id, [])  # forget the tokens derived below
        try:
            return original(self, capability_id)  # type: ignore[return-value]
        finally:
            self._children[capability_id] = children

    monkeypatch.setattr(TokenAuthority, "revoke", shallow)
    result = explore(CapabilitySystem(), depth_max=3)
    assert result.counterexample is not None
    kinds = [act.kind for act in result.counterexample.actions]
    assert kinds[-1] == "revoke" and "derive" in kinds
