"""A trace, indexed once for the view: entries, state checkpoints, timeline rows, audit.

Opening a trace reads and checks it once (:func:`xdv.trace.scan_trace`), folds it once keeping
a copy of the state every ``interval`` entries, and verifies its audit record once. A request
for the state at logical time ``L`` then starts from the nearest checkpoint at or before the
entries up to ``L`` and folds at most ``interval - 1`` more entries; the timeline is answered
from compact per-entry arrays, a window at a time.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdv.errors import ErrorCode, XdvError
from xdv.security import AuditFile, audit_path_for, verify_audit
from xdv.trace import (
    Divergence,
    EventType,
    Trace,
    TraceEntry,
    first_divergence,
    inclusion_proof,
    scan_trace,
    tree_root,
    verify_inclusion,
)
from xdv.view._state import ViewState, apply

__all__ = [
    "CATEGORIES",
    "CHECKPOINT_INTERVAL",
    "TIMELINE_POINTS_MAX",
    "AuditStatus",
    "InclusionCheck",
    "TraceIndex",
    "ViewError",
]

CHECKPOINT_INTERVAL = 1024
TIMELINE_POINTS_MAX = 4000

# Timeline categories: the mark each entry gets (index = the code in the timeline arrays).
CATEGORIES = ("scheduler", "lifecycle", "K", "Q", "Φ", "transition", "effect", "fault", "other")
_TRANSITIONS = {
    EventType.TRANSITION_BEGIN,
    EventType.TRANSITION_PHASE,
    EventType.TRANSITION_COMMIT,
    EventType.TRANSITION_ROLLBACK,
}
_SCHEDULING = {
    EventType.DISPATCH,
    EventType.SLEEP,
    EventType.YIELD,
    EventType.PREEMPT,
    EventType.WAIT,
    EventType.WAKE,
}
_LIFECYCLE = {EventType.PROCESS_CREATE, EventType.PROCESS_STATE, EventType.PROCESS_EXIT}
_INVOCATION = {EventType.DOMAIN_INVOKE, EventType.DOMAIN_RESULT}
_FAULTS = {EventType.FAULT, EventType.FAULT_DETECTED, EventType.FAULT_ESCALATED}


class ViewError(XdvError):
    """A view request or trace the view cannot serve (codes VIEW_*)."""


def _category(entry: TraceEntry) -> int:
    kind = entry.event_type
    if kind in _SCHEDULING:
        return 0
    if kind in _LIFECYCLE:
        return 1
    if kind in _INVOCATION:
        label = entry.domain_label
        return {"K": 2, "Q": 3, "Φ": 4}.get(label, 8)
    if kind in _TRANSITIONS:
        return 5
    if kind == EventType.EFFECT:
        return 6
    if kind in _FAULTS or entry.status != 0:
        return 7
    return 8


@dataclass(frozen=True)
class AuditStatus:
    """What the view established about a trace's chain, checkpoints and signed heads."""

    chain: str
    complete: bool
    error: str | None
    checkpoints: int
    root: str
    signed: bool
    heads: list[dict[str, Any]]
    signer: str | None
    audit_error: str | None


@dataclass(frozen=True)
class InclusionCheck:
    """A server-computed inclusion proof of one entry, and whether it verified."""

    entry: int
    size: int
    leaf: str
    root: str
    root_source: str
    proof: list[str]
    ok: bool
    error: str | None


@dataclass
class TraceIndex:
    """One trace, indexed for the view (see the module docstring)."""

    name: str
    entries: list[TraceEntry]
    complete: bool
    error: str | None
    interval: int
    times: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    checkpoints: list[ViewState] = field(default_factory=list)
    process_names: dict[int, str] = field(default_factory=dict)
    fidelity: list[tuple[int, float]] = field(default_factory=list)
    stability: list[tuple[int, float]] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    audit: AuditStatus | None = None
    row_pids: list[int] = field(default_factory=list)
    _timelines: dict[tuple[int, int, int], dict[str, Any]] = field(default_factory=dict)
    _timelines_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        audit: str | os.PathLike[str] | None = None,
        interval: int = CHECKPOINT_INTERVAL,
        name: str | None = None,
    ) -> TraceIndex:
        """Read, check and index the trace at ``path`` (its audit file defaults to the one
        beside it). A torn or corrupt trace is indexed up to its first problem, which the
        audit panel reports; a file with no intact entry is refused (VIEW_TRACE_UNREADABLE)."""
        source = Path(path)
        try:
            scan = scan_trace(source)
        except XdvError as error:
            raise ViewError(
                f"cannot read the trace: {error.message}",
                code=ErrorCode.VIEW_TRACE_UNREADABLE,
                where=str(name or source.name),
            ) from None
        if not scan.entries:
            reason = scan.error.message if scan.error is not None else "it has no entries"
            raise ViewError(
                f"not a viewable trace: {reason}",
                code=ErrorCode.VIEW_TRACE_UNREADABLE,
                where=str(name or source.name),
            )
        index = cls(
            name=name or source.name,
            entries=scan.entries,
            complete=scan.complete,
            error=None if scan.error is None else scan.error.message,
            interval=max(1, interval),
        )
        index._build()
        beside = audit_path_for(source) if audit is None else Path(audit)
        index.audit = index._audit(beside if beside.is_file() else None)
        index.timeline(0, index.last_time)  # what every first view asks for
        return index

    def _build(self) -> None:
        state = ViewState()
        rows: dict[int, int] = {0: 0}
        self.process_names[0] = "kernel"
        for position, entry in enumerate(self.entries):
            if position % self.interval == 0:
                self.checkpoints.append(state.copy())
            apply(state, entry)
            pid = entry.process
            if pid not in rows:
                rows[pid] = len(rows)
            if entry.event_type == EventType.PROCESS_CREATE and pid not in self.process_names:
                self.process_names[pid] = str(entry.metadata.get("name", ""))
            self.times.append(entry.logical_time)
            self.rows.append(rows[pid])
            self.categories.append(_category(entry))
            if entry.event_type == EventType.DOMAIN_RESULT:
                self._plots(entry)
        self.row_pids = sorted(rows, key=rows.__getitem__)
        self.hashes = [entry.prev_hash for entry in self.entries[1:]]
        self.hashes.append(self.entries[-1].hash)

    def _plots(self, entry: TraceEntry) -> None:
        value = entry.metadata.get("value")
        if not isinstance(value, dict):
            return
        diagnostics = value.get("diagnostics")
        if isinstance(diagnostics, dict) and isinstance(diagnostics.get("fidelity"), float):
            self.fidelity.append((entry.logical_time, diagnostics["fidelity"]))
        stability = value.get("stability")
        if isinstance(stability, dict) and isinstance(stability.get("stability"), int | float):
            self.stability.append((entry.logical_time, float(stability["stability"])))

    def _audit(self, audit_path: Path | None) -> AuditStatus:
        checkpoints = sum(1 for e in self.entries if e.event_type == EventType.CHECKPOINT)
        chain = "intact" if self.error is None else "damaged"
        if self.error is None and not self.complete:
            chain = "open"
        heads: list[dict[str, Any]] = []
        signer: str | None = None
        audit_error: str | None = None
        signed = False
        root = tree_root(self.hashes).hex()
        if self.error is None:
            trace = Trace(self.entries, self.complete)
            try:
                report = verify_audit(trace, audit_path, allow_open=not self.complete)
                signed, signer, root = report.signed, report.signer, report.root
            except XdvError as error:
                audit_error = error.message
            if audit_path is not None:
                heads = _heads(audit_path)
        else:
            audit_error = "not checked: the trace is damaged"
        return AuditStatus(
            chain=chain,
            complete=self.complete,
            error=self.error,
            checkpoints=checkpoints,
            root=root,
            signed=signed and audit_error is None,
            heads=heads,
            signer=signer,
            audit_error=audit_error,
        )

    # -- queries -------------------------------------------------------------------------

    @property
    def last_time(self) -> int:
        return self.times[-1]

    def count_at(self, logical_time: int) -> int:
        """How many entries have a logical time of at most ``logical_time``."""
        return bisect_right(self.times, logical_time)

    def state_at(self, logical_time: int) -> ViewState:
        """The state after every entry whose logical time is at most ``logical_time``."""
        count = self.count_at(logical_time)
        base = min(count // self.interval, len(self.checkpoints) - 1)
        state = self.checkpoints[base].copy()
        for entry in self.entries[base * self.interval : count]:
            apply(state, entry)
        return state

    def step(self, logical_time: int, direction: int) -> int:
        """The next (``direction`` 1) or previous (-1) logical time at which an entry was
        recorded, from ``logical_time``; the same time at either end."""
        if direction > 0:
            position = bisect_right(self.times, logical_time)
            return self.times[position] if position < len(self.times) else logical_time
        position = bisect_left(self.times, logical_time)
        return self.times[position - 1] if position > 0 else logical_time

    def recent(self, logical_time: int, count: int = 20) -> list[TraceEntry]:
        """The last ``count`` entries at or before ``logical_time``."""
        end = self.count_at(logical_time)
        return self.entries[max(0, end - count) : end]

    def timeline(self, low: int, high: int, limit: int = TIMELINE_POINTS_MAX) -> dict[str, Any]:
        """The timeline marks with ``low <= L <= high``: every entry when there are at most
        ``limit``, else one mark per (process row, category, L bucket) with its count. The
        last few answers are kept (the whole run's, asked by every first view, among them)."""
        key = (low, high, limit)
        with self._timelines_lock:  # pages are served from several threads
            found = self._timelines.get(key)
        if found is None:
            found = self._timeline(low, high, limit)
            with self._timelines_lock:
                self._timelines[key] = found
                while len(self._timelines) > 8:
                    del self._timelines[next(iter(self._timelines))]
        return found

    def _timeline(self, low: int, high: int, limit: int) -> dict[str, Any]:
        if high < low:
            raise ViewError(
                f"the timeline range ends ({high}) before it starts ({low})",
                code=ErrorCode.VIEW_REQUEST_INVALID,
                where="timeline",
            )
        first = bisect_left(self.times, low)
        last = bisect_right(self.times, high)
        points: list[list[int]] = []
        bucket = 1
        if last - first <= limit:
            for position in range(first, last):
                points.append(
                    [self.times[position], self.rows[position], self.categories[position], 1]
                )
        else:
            span = high - low + 1
            # Most (row, kind) pairs are empty: start finer than the worst case, and merge
            # twice as coarsely until the marks fit the limit (or one bucket spans the window:
            # then there is one mark per process and kind).
            bucket = max(1, -(-span * len(self.row_pids) * len(CATEGORIES) // (limit * 4)))
            times, rows, categories = self.times, self.rows, self.categories
            while True:
                merged: dict[tuple[int, int, int], int] = {}
                for position in range(first, last):
                    key = ((times[position] - low) // bucket, rows[position], categories[position])
                    merged[key] = merged.get(key, 0) + 1
                if len(merged) <= limit or bucket >= span:
                    break
                bucket *= 2
            points = [
                [low + slot * bucket, row, category, count]
                for (slot, row, category), count in sorted(merged.items())
            ]
        return {
            "low": low,
            "high": high,
            "entries": last - first,
            "bucket": bucket,
            "points": points,
            "rows": [self._row_label(pid) for pid in self.row_pids],
            "categories": list(CATEGORIES),
        }

    def _row_label(self, pid: int) -> str:
        name = self.process_names.get(pid, "")
        return f"{pid} {name}".strip()

    def inclusion(self, entry: int) -> InclusionCheck:
        """Prove entry ``entry`` into the tree of the whole trace with the Merkle functions
        of :mod:`xdv.trace`, and verify the proof against the final signed head's root when
        the audit file verified, else against the root computed from the entries."""
        size = len(self.hashes)
        if not 0 <= entry < size:
            raise ViewError(
                f"no entry {entry}: the trace has entries 0 to {size - 1}",
                code=ErrorCode.VIEW_ENTRY_UNKNOWN,
                where="entry",
            )
        root_source = "computed from the entries"
        root = tree_root(self.hashes)
        if self.audit is not None and self.audit.signed and self.audit.heads:
            final = self.audit.heads[-1]
            if final["size"] == size:
                root = bytes.fromhex(final["root"])
                root_source = "the final signed tree head"
        proof = inclusion_proof(self.hashes, entry, size)
        error: str | None = None
        try:
            verify_inclusion(entry, size, self.hashes[entry], proof, root)
        except XdvError as failure:
            error = failure.message
        return InclusionCheck(
            entry=entry,
            size=size,
            leaf=self.hashes[entry].hex(),
            root=root.hex(),
            root_source=root_source,
            proof=[step.hex() for step in proof],
            ok=error is None,
            error=error,
        )

    def divergence(self, other: TraceIndex) -> Divergence | None:
        """The first entry at which ``other`` differs from this trace (None: equal)."""
        return first_divergence(self.entries, other.entries)


def _heads(path: Path) -> list[dict[str, Any]]:
    try:
        parsed = AuditFile.parse(path.read_bytes())
    except (OSError, XdvError):
        return []
    return [
        {"size": head.size, "root": head.root.hex(), "final": head.final, "line": head.line}
        for head in parsed.heads
    ]
