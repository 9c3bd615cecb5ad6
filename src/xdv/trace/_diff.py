"""Finding and explaining the first difference between two traces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xdv.trace._format import TraceEntry

__all__ = ["Divergence", "diff_entries", "diff_traces", "first_divergence"]

_FIELDS = (
    "logical_time",
    "event_name",
    "domain_label",
    "status_name",
    "process",
    "vhm",
    "node",
    "capability",
    "contract",
)


@dataclass
class Divergence:
    """The first point where two traces differ."""

    index: int
    expected: TraceEntry | None
    actual: TraceEntry | None
    differences: list[tuple[str, Any, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """A readable, multi-line explanation."""
        lines = [f"first divergence at entry {self.index}:"]
        if self.expected is None:
            lines.append("  the recorded trace ends here; the new run has more entries")
        if self.actual is None:
            lines.append("  the new run ended here; the recorded trace has more entries")
        if self.expected is not None:
            lines.append(f"  recorded: {summarize(self.expected)}")
        if self.actual is not None:
            lines.append(f"  replayed: {summarize(self.actual)}")
        for name, expected, actual in self.differences:
            lines.append(f"    {name}: {expected!r} -> {actual!r}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "expected": None if self.expected is None else self.expected.to_json(),
            "actual": None if self.actual is None else self.actual.to_json(),
            "differences": [
                {"field": name, "expected": repr(expected), "actual": repr(actual)}
                for name, expected, actual in self.differences
            ],
        }


def summarize(entry: TraceEntry) -> str:
    """One line: ``#seq L=… EVENT domain pid status {metadata}``."""
    refs = ""
    if entry.capability:
        refs += f" cap={entry.capability}"
    if entry.contract:
        refs += f" contract={entry.contract}"
    return (
        f"#{entry.seq} L={entry.logical_time} {entry.event_name} {entry.domain_label} "
        f"pid={entry.process}{refs} {entry.status_name} {entry.metadata}"
    )


def diff_entries(
    expected: TraceEntry, actual: TraceEntry, *, ignore: Sequence[str] = ()
) -> list[tuple[str, Any, Any]]:
    """Field-by-field differences (metadata keys are compared one by one)."""
    differences: list[tuple[str, Any, Any]] = []
    for name in _FIELDS:
        if name in ignore:
            continue
        left, right = getattr(expected, name), getattr(actual, name)
        if left != right:
            differences.append((name, left, right))
    for key in sorted(set(expected.metadata) | set(actual.metadata)):
        path = f"metadata.{key}"
        if path in ignore:
            continue
        left, right = expected.metadata.get(key), actual.metadata.get(key)
        if left != right:
            differences.append((path, left, right))
    if "prev_hash" not in ignore and expected.prev_hash != actual.prev_hash and not differences:
        differences.append(("prev_hash", expected.prev_hash.hex(), actual.prev_hash.hex()))
    return differences


def first_divergence(
    expected: Sequence[TraceEntry], actual: Sequence[TraceEntry], *, ignore: Sequence[str] = ()
) -> Divergence | None:
    """The first index at which the traces differ, or None if they are equal."""
    for index in range(max(len(expected), len(actual))):
        left = expected[index] if index < len(expected) else None
        right = actual[index] if index < len(actual) else None
        if left is None or right is None:
            return Divergence(index, left, right)
        if left.body == right.body:
            continue
        differences = diff_entries(left, right, ignore=ignore)
        if differences:
            return Divergence(index, left, right, differences)
    return None


def diff_traces(
    expected: Sequence[TraceEntry], actual: Sequence[TraceEntry], *, ignore: Sequence[str] = ()
) -> list[Divergence]:
    """Every differing entry (aligned by index), for ``xdv trace diff``."""
    result = []
    for index in range(max(len(expected), len(actual))):
        left = expected[index] if index < len(expected) else None
        right = actual[index] if index < len(actual) else None
        if left is None or right is None:
            result.append(Divergence(index, left, right))
            continue
        if left.body != right.body:
            differences = diff_entries(left, right, ignore=ignore)
            if differences:
                result.append(Divergence(index, left, right, differences))
    return result
