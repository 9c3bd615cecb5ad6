"""The capability algebra: scopes as exact sets of (right, resource, logical time).

A :class:`Right` is an operation between two domains (``EXECUTE(K→Q)``, ``MEASURE(Q→K)``,
``TRANSITION(K→Φ)``, ``ALLOCATE(K→Q)`` ...). A :class:`Scope` is the set of requests it permits:
triples (right, resource, logical time), where a resource is a name such as ``qubits`` or
``lane`` and the special name ``*`` stands for every resource. A scope is stored canonically:

* per right, a *wildcard* time set (any resource) and, per named resource, the times allowed for
  that resource *beyond* the wildcard (never overlapping it, never empty);
* a time set is a sorted tuple of disjoint, non-adjacent closed integer intervals.

With that canonical form two scopes are equal exactly when they permit the same requests, so the
algebra is exact: :func:`union` permits what either permits, :func:`intersection` what both
permit, and :func:`contains` is set inclusion (``a ⊆ b`` iff ``a ∩ b == a``). Attenuation is
intersection, so a derived scope can never exceed its parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from xdv.core import Operation
from xdv.errors import ErrorCode, XdvError
from xdv.trace import Domain

__all__ = [
    "ANY_RESOURCE",
    "FOREVER",
    "Right",
    "Scope",
    "TimeSet",
    "contains",
    "intersection",
    "union",
]

ANY_RESOURCE = "*"
FOREVER = (1 << 63) - 1
"""The last logical time: an interval ending here never expires."""

Interval = tuple[int, int]
TimeSet = tuple[Interval, ...]


def _invalid(message: str) -> XdvError:
    return XdvError(message, code=ErrorCode.CAPABILITY_INVALID, where="capability scope")


class Right(NamedTuple):
    """An operation from one domain to another."""

    operation: Operation
    origin: Domain
    target: Domain

    def label(self) -> str:
        return f"{self.operation.name}({self.origin.label}→{self.target.label})"


# ---------------------------------------------------------------- time sets


def times(*intervals: tuple[int, int]) -> TimeSet:
    """A canonical time set from closed intervals (any order, may overlap)."""
    return _normalize(intervals)


def _normalize(intervals: Iterable[Interval]) -> TimeSet:
    ordered = sorted((lo, hi) for lo, hi in intervals if lo <= hi)
    merged: list[Interval] = []
    for lo, hi in ordered:
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def time_union(a: TimeSet, b: TimeSet) -> TimeSet:
    return _normalize((*a, *b))


def time_intersection(a: TimeSet, b: TimeSet) -> TimeSet:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def time_difference(a: TimeSet, b: TimeSet) -> TimeSet:
    out: list[Interval] = []
    for lo, hi in a:
        start = lo
        for blo, bhi in b:
            if bhi < start or blo > hi:
                continue
            if blo > start:
                out.append((start, blo - 1))
            start = max(start, bhi + 1)
            if start > hi:
                break
        if start <= hi:
            out.append((start, hi))
    return tuple(out)


def time_contains(a: TimeSet, point: int) -> bool:
    return any(lo <= point <= hi for lo, hi in a)


# ---------------------------------------------------------------- scopes


@dataclass(frozen=True, slots=True)
class Scope:
    """A canonical set of permitted (right, resource, time) requests; see the module docstring.

    ``grants`` maps each right to ``(wildcard times, ((resource, extra times), ...))`` with
    resources sorted. Build scopes with :meth:`of` or :meth:`from_record`, not by hand.
    """

    grants: tuple[tuple[Right, TimeSet, tuple[tuple[str, TimeSet], ...]], ...] = ()

    @classmethod
    def of(
        cls,
        right: Right,
        resource: str = ANY_RESOURCE,
        start: int = 0,
        end: int = FOREVER,
    ) -> Scope:
        """The scope permitting ``right`` on ``resource`` from ``start`` to ``end`` (inclusive)."""
        return cls._build({(right, resource): times((start, end))})

    @classmethod
    def _build(cls, table: Mapping[tuple[Right, str], TimeSet]) -> Scope:
        per_right: dict[Right, dict[str, TimeSet]] = {}
        for (right, resource), allowed in table.items():
            if allowed:
                per_right.setdefault(right, {})[resource] = allowed
        grants = []
        for right in sorted(per_right, key=_right_key):
            entries = per_right[right]
            wildcard = entries.get(ANY_RESOURCE, ())
            named = []
            for resource in sorted(name for name in entries if name != ANY_RESOURCE):
                extra = time_difference(entries[resource], wildcard)
                if extra:
                    named.append((resource, extra))
            if wildcard or named:
                grants.append((right, wildcard, tuple(named)))
        return cls(tuple(grants))

    def _table(self) -> dict[tuple[Right, str], TimeSet]:
        table: dict[tuple[Right, str], TimeSet] = {}
        for right, wildcard, named in self.grants:
            if wildcard:
                table[(right, ANY_RESOURCE)] = wildcard
            for resource, extra in named:
                table[(right, resource)] = extra
        return table

    def _lookup(self, right: Right) -> tuple[TimeSet, dict[str, TimeSet]] | None:
        for candidate, wildcard, named in self.grants:
            if candidate == right:
                return wildcard, dict(named)
        return None

    def allows(self, right: Right, resource: str | None, time: int) -> bool:
        """Whether the scope permits ``right`` on ``resource`` at logical ``time``.

        ``resource=None`` asks for the right on *every* resource (only a wildcard grants it).
        """
        found = self._lookup(right)
        if found is None:
            return False
        wildcard, named = found
        if time_contains(wildcard, time):
            return True
        if resource is None or resource == ANY_RESOURCE:
            return False
        return time_contains(named.get(resource, ()), time)

    def rights(self) -> list[Right]:
        return [right for right, _, _ in self.grants]

    def is_empty(self) -> bool:
        return not self.grants

    def last_time(self) -> int:
        """The last logical time anything is permitted (-1 for the empty scope)."""
        ends = [
            interval[1]
            for _, wildcard, named in self.grants
            for interval in (*wildcard, *(item for _, extra in named for item in extra))
        ]
        return max(ends, default=-1)

    def until(self, last: int) -> Scope:
        """This scope cut off after logical time ``last``."""
        return intersection(self, _everything_until(self, last))

    def to_record(self) -> list[dict[str, Any]]:
        """A trace-encodable, canonical list form (the inverse of :meth:`from_record`)."""
        record = []
        for (right, resource), allowed in self._table().items():
            record.append(
                {
                    "op": right.operation.name,
                    "from": right.origin.label,
                    "to": right.target.label,
                    "resource": resource,
                    "times": [[lo, hi] for lo, hi in allowed],
                }
            )
        return record

    @classmethod
    def from_record(cls, record: Any) -> Scope:
        """Parse :meth:`to_record` output (or hand-written equivalents); typed error if bad."""
        if not isinstance(record, list | tuple):
            raise _invalid(f"a scope is a list of grants, got {type(record).__name__}")
        table: dict[tuple[Right, str], TimeSet] = {}
        for index, item in enumerate(record):
            if not isinstance(item, Mapping):
                raise _invalid(f"grant {index} is not a mapping")
            unknown = set(item) - _GRANT_KEYS
            if unknown:
                raise _invalid(f"grant {index} has unknown fields {sorted(map(str, unknown))}")
            try:
                operation = Operation[item["op"]]
                right = Right(operation, Domain.parse(item["from"]), Domain.parse(item["to"]))
            except (KeyError, TypeError, XdvError) as error:
                raise _invalid(f"grant {index} names no valid right: {error}") from None
            resource = item.get("resource", ANY_RESOURCE)
            if not isinstance(resource, str) or not resource:
                raise _invalid(f"grant {index} has an invalid resource {resource!r}")
            intervals = []
            for pair in item.get("times", [[0, FOREVER]]):
                if (
                    not isinstance(pair, list | tuple)
                    or len(pair) != 2
                    or not all(type(value) is int and 0 <= value <= FOREVER for value in pair)
                ):
                    raise _invalid(f"grant {index} has a malformed time interval {pair!r}")
                intervals.append((pair[0], pair[1]))
            key = (right, resource)
            table[key] = time_union(table.get(key, ()), _normalize(intervals))
        return cls._build(table)

    def describe(self) -> str:
        parts = []
        for (right, resource), allowed in self._table().items():
            window = ",".join(f"{lo}..{'∞' if hi == FOREVER else hi}" for lo, hi in allowed)
            parts.append(f"{right.label()}[{resource}]@{window}")
        return "; ".join(parts) or "(nothing)"

    def __iter__(self) -> Iterator[tuple[Right, TimeSet, tuple[tuple[str, TimeSet], ...]]]:
        return iter(self.grants)


_GRANT_KEYS = {"op", "from", "to", "resource", "times"}


def _right_key(right: Right) -> tuple[int, int, int]:
    return (int(right.operation), int(right.origin), int(right.target))


def _everything_until(scope: Scope, last: int) -> Scope:
    window = times((0, last)) if last >= 0 else ()
    table: dict[tuple[Right, str], TimeSet] = {}
    for right in scope.rights():
        table[(right, ANY_RESOURCE)] = window
    return Scope._build(table)


def union(a: Scope, b: Scope) -> Scope:
    """The scope permitting what ``a`` or ``b`` permits."""
    table = a._table()
    for key, allowed in b._table().items():
        table[key] = time_union(table.get(key, ()), allowed)
    return Scope._build(table)


def intersection(a: Scope, b: Scope) -> Scope:
    """The scope permitting what both ``a`` and ``b`` permit."""
    table: dict[tuple[Right, str], TimeSet] = {}
    b_rights = {right: (wildcard, dict(named)) for right, wildcard, named in b.grants}
    for right, a_wildcard, a_named_items in a.grants:
        if right not in b_rights:
            continue
        b_wildcard, b_named = b_rights[right]
        a_named = dict(a_named_items)
        table[(right, ANY_RESOURCE)] = time_intersection(a_wildcard, b_wildcard)
        for resource in set(a_named) | set(b_named):
            mine = time_union(a_named.get(resource, ()), a_wildcard)
            theirs = time_union(b_named.get(resource, ()), b_wildcard)
            table[(right, resource)] = time_intersection(mine, theirs)
    return Scope._build(table)


def contains(inner: Scope, outer: Scope) -> bool:
    """Whether every request ``inner`` permits is permitted by ``outer`` (inner ⊆ outer)."""
    return intersection(inner, outer) == inner
