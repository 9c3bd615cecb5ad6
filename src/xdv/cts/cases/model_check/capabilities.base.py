"""The capability lifecycle of the real capability authority as an explorable system.

Two subjects mint, attenuate and delegate (asking for narrower, equal and wider scopes) and
revoke up to four tokens on ``xdv.security.TokenAuthority``. A small reference model predicts
each action's outcome; in every reached state the authority must agree with it, a derived
token's scope must lie within its parent's, every token below a revoked one must be revoked,
and a refused action must change nothing. ``planted`` names a bug planted in the model (the
explorer must then find a counterexample): ``revoke-no-cascade`` forgets that a revocation
reaches the tokens derived below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdv.core import Operation
from xdv.errors import ErrorCode, XdvError
from xdv.security import HybridKeyPair, Right, Scope, TokenAuthority, contains, union
from xdv.trace import Domain

KEY = HybridKeyPair.from_seed(b"xdv-cts-model-check")
SUBJECTS = (1, 2)
RIGHTS = {
    "x": Right(Operation.EXECUTE, Domain.K, Domain.K),
    "r": Right(Operation.RECEIVE, Domain.K, Domain.K),
}
SCOPES = ("xr", "x", "r")
TOKENS_MAX = 4


def scope_of(letters):
    combined = Scope.of(RIGHTS[letters[0]], "jobs")
    for letter in letters[1:]:
        combined = union(combined, Scope.of(RIGHTS[letter], "jobs"))
    return combined


@dataclass(frozen=True)
class Act:
    kind: str  # mint, derive or revoke
    token: int = 0
    subject: int | None = None
    scope: str = ""

    def __str__(self):
        return f"{self.kind} #{self.token} {self.scope} to {self.subject}"


@dataclass
class Entry:
    subject: int
    rights: frozenset
    parent: int | None
    revoked: bool = False


@dataclass
class Live:
    path: tuple
    authority: TokenAuthority
    model: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)  # id -> the token the authority returned
    outcome: str = "start"
    predicted: str = "start"


class CapabilitySystem:
    def __init__(self, planted=None):
        self.planted = planted

    def _alive(self, model, token):
        if self.planted == "revoke-no-cascade":  # the planted bug: only the token's own flag
            return not model[token].revoked
        current = token
        while current is not None:
            if model[current].revoked:
                return False
            current = model[current].parent
        return True

    def _predict(self, model, act):
        if act.kind == "mint":
            return "ok"
        if act.token not in model:
            return ErrorCode.CAPABILITY_INVALID.name
        if act.kind == "revoke":
            return "ok" if not model[act.token].revoked else ErrorCode.CAPABILITY_INVALID.name
        if not self._alive(model, act.token):
            return ErrorCode.CAPABILITY_REVOKED.name
        if not frozenset(act.scope) <= model[act.token].rights:
            return ErrorCode.ATTENUATION_WIDENS.name
        return "ok"

    def _model(self, model, act, token_id):
        if act.kind == "mint" and token_id is not None:
            model[token_id] = Entry(act.subject, frozenset(act.scope), None)
        elif act.kind == "derive" and token_id is not None:
            parent = model[act.token]
            subject = parent.subject if act.subject is None else act.subject
            model[token_id] = Entry(subject, frozenset(act.scope), act.token)
        elif act.kind == "revoke":
            pending = [act.token]
            while pending:
                current = pending.pop()
                model[current].revoked = True
                if self.planted is None:
                    pending.extend(t for t, item in model.items() if item.parent == current)

    def _apply(self, live, act):
        try:
            if act.kind == "mint":
                token = live.authority.mint(act.subject, scope_of(act.scope), 0)
            elif act.kind == "derive":
                held = live.tokens.get(act.token)
                presenter = held.subject if held is not None else 1
                token = live.authority.derive(
                    act.token, presenter, 0, subject=act.subject, scope=scope_of(act.scope)
                )
            else:
                live.authority.revoke(act.token)
                return "ok", None
        except XdvError as error:
            return error.code.name, None
        live.tokens[token.id] = token
        return "ok", token.id

    def start(self):
        return Live((), TokenAuthority(KEY))

    def actions(self, live):
        acts = []
        if len(live.model) < TOKENS_MAX:
            acts.extend(Act("mint", subject=subject, scope="xr") for subject in SUBJECTS)
            for token in sorted(live.model):
                acts.extend(Act("derive", token, None, scope) for scope in SCOPES)
                other = 2 if live.model[token].subject == 1 else 1
                acts.append(Act("derive", token, other, "x"))
        acts.extend(Act("revoke", token) for token in sorted(live.model))
        return acts

    def step(self, live, action):
        replayed = Live((), TokenAuthority(KEY))
        for act in (*live.path, action):
            predicted = self._predict(replayed.model, act)
            outcome, token_id = self._apply(replayed, act)
            self._model(replayed.model, act, token_id if outcome == "ok" else None)
            replayed.outcome, replayed.predicted = outcome, predicted
        replayed.path = (*live.path, action)
        return replayed

    def state(self, live):
        return tuple(
            (tid, item.subject, "".join(sorted(item.rights)), item.parent, item.revoked)
            for tid, item in sorted(live.model.items())
        )

    def violations(self, before, action, after):
        problems = []
        if after.outcome != after.predicted:
            problems.append(f"outcome {after.outcome}, the model predicts {after.predicted}")
        if before is not None and after.outcome != "ok" and self.state(before) != self.state(after):
            problems.append("a refused action changed the state")
        for tid, item in sorted(after.model.items()):
            token = after.tokens[tid]
            if item.parent is not None:
                parent = after.tokens[item.parent]
                if not contains(token.scope, parent.scope):
                    problems.append(f"token #{tid} holds rights its parent lacks")
            if after.authority.is_revoked(tid) == self._alive(after.model, tid):
                problems.append(f"token #{tid}: the authority and the model disagree on revocation")
        return problems


def system(planted=None):
    """The system to explore, with the named bug planted in the reference model (or none)."""
    return CapabilitySystem(planted)
