"""The replay engine.

*Re-execute* mode runs the recorded workload again with the recorded seed and kernel
configuration, calling the domain managers; *inject* mode does the same but feeds every domain
outcome back from the recorded trace instead of calling the managers' ``execute`` (the mode for
runs made on real hardware). In both modes each new entry is compared, as it is produced, with
the recorded entry at the same position; the first difference stops the replay and is reported
field by field. A replay that completes has produced a byte-identical trace: every body matched,
so every chain link and checksum matches too.

The recorded trace is read through its framing and checksums only (:func:`split_frames`); the
entries are not decoded one by one, because comparing each with the freshly produced entry is a
stronger check than decoding it. Only the run-start entry, the run-end entry and, in inject
mode, the domain-result entries are decoded.
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from xdv.core import FaultPlan, KernelLimits, RecordedOutcome
from xdv.core._events import EventType
from xdv.domains._registry import manager_from_description
from xdv.errors import ErrorCode, InvariantViolation, TraceError, XdvError
from xdv.runner import run_workload
from xdv.trace import Divergence, TraceWriter
from xdv.trace._diff import diff_entries
from xdv.trace._format import HEADER, TraceEntry, decode_body
from xdv.trace._reader import split_frames
from xdv.trace._writer import EntryMismatch

__all__ = ["ReplayMode", "ReplayReport", "recorded_outcomes", "replay"]

_EVENT_TYPE_OFFSET = 16  # after seq (u64) and logical time (u64) in the entry header


class ReplayMode(enum.Enum):
    """How domain outcomes are obtained during a replay."""

    REEXECUTE = "reexecute"
    INJECT = "inject"


@dataclass
class ReplayReport:
    """What a replay found."""

    ok: bool
    mode: ReplayMode
    entries: int
    divergence: Divergence | None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode.value,
            "entries_compared": self.entries,
            "divergence": None if self.divergence is None else self.divergence.to_json(),
        }


class _Diverged(BaseException):
    """Raised from the trace observer at the first differing entry (not an XdvError)."""

    def __init__(self, index: int, body: bytes) -> None:
        super().__init__(index)
        self.index = index
        self.body = body


def _event_type(body: bytes) -> int:
    return int.from_bytes(body[_EVENT_TYPE_OFFSET : _EVENT_TYPE_OFFSET + 2], "little")


def recorded_outcomes(bodies: list[bytes]) -> dict[int, RecordedOutcome]:
    """Every domain outcome in a trace (given as entry bodies), by invocation id."""
    outcomes: dict[int, RecordedOutcome] = {}
    for index, body in enumerate(bodies):
        if _event_type(body) == EventType.DOMAIN_RESULT:
            entry = decode_body(body, index=index, offset=0)
            status = entry.status if isinstance(entry.status, ErrorCode) else ErrorCode.DOMAIN_FAULT
            outcomes[int(entry.metadata["inv"])] = RecordedOutcome(
                status, entry.metadata.get("value"), entry.metadata.get("error")
            )
    return outcomes


def replay(
    source: str | os.PathLike[str] | bytes,
    mode: ReplayMode | str = ReplayMode.REEXECUTE,
    *,
    workload: str | None = None,
) -> ReplayReport:
    """Replay a recorded trace; ``workload`` overrides the recorded target's location."""
    mode = ReplayMode(mode)
    expected = split_frames(source)
    if not expected or len(expected[0]) < HEADER.size:
        raise TraceError("the trace holds no run-start entry", code=ErrorCode.TRACE_INCOMPLETE)
    first = decode_body(expected[0], index=0, offset=0)
    if first.event_type is not EventType.RUN_START:
        raise TraceError("the trace does not start with RUN_START", entry_index=0)
    if _event_type(expected[-1]) != EventType.RUN_END:
        raise TraceError(
            "the trace has no run-end entry: only a finished run can be replayed",
            code=ErrorCode.TRACE_INCOMPLETE,
            entry_index=len(expected),
        )
    start = first.metadata
    workload_record = start.get("workload") or {}
    target = workload or workload_record.get("target")
    if not isinstance(target, str) or not target:
        raise XdvError(
            "the trace records no workload target; pass one explicitly",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            where="RUN_START",
        )
    kernel_config = start.get("kernel") or {}
    if kernel_config.get("policy") != "round-robin":
        raise XdvError(
            f"the trace uses scheduler policy {kernel_config.get('policy')!r}, "
            "which this XDV cannot rebuild",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            where="RUN_START",
        )
    limits_record = kernel_config.get("limits") or {}
    defaults = KernelLimits()
    limits = KernelLimits(
        processes_max=int(limits_record.get("processes_max", defaults.processes_max)),
        steps_max=int(limits_record.get("steps_max", defaults.steps_max)),
        contracts_per_process_max=int(
            limits_record.get("contracts_per_process_max", defaults.contracts_per_process_max)
        ),
    )
    domains = [
        manager_from_description(label, description)
        for label, description in (start.get("domains") or {}).items()
    ]
    seed = start.get("seed")
    if not isinstance(seed, int):
        raise TraceError("the run-start entry has no integer seed", entry_index=0)

    writer = TraceWriter(None, expected=expected, retain=False)
    try:
        result = run_workload(
            target,
            seed=seed,
            trace=writer,
            quantum=int(kernel_config.get("quantum", 8)),
            domains=domains,
            faults=FaultPlan.from_record(start.get("faults")),
            limits=limits,
            replay_outcomes=recorded_outcomes(expected) if mode is ReplayMode.INJECT else None,
            expected_digest=workload_record.get("digest"),
            recorded_target=workload_record.get("target"),
            vhm=int(kernel_config.get("vhm", 0)),
            node=int(kernel_config.get("node", 0)),
        )
    except EntryMismatch as diverged:
        actual = decode_body(diverged.body, index=diverged.index, offset=0)
        expected_entry: TraceEntry | None = None
        differences: list[tuple[str, Any, Any]] = []
        if diverged.index < len(expected):
            expected_entry = decode_body(expected[diverged.index], index=diverged.index, offset=0)
            differences = diff_entries(expected_entry, actual)
        return ReplayReport(
            False,
            mode,
            diverged.index,
            Divergence(diverged.index, expected_entry, actual, differences),
        )
    if result.events < len(expected):
        missing = decode_body(expected[result.events], index=result.events, offset=0)
        return ReplayReport(False, mode, result.events, Divergence(result.events, missing, None))
    # Pair check: matching bodies imply the same chain head.
    if writer.last_hash != hashlib.sha256(expected[-1]).digest():
        raise InvariantViolation("replayed chain head differs although every entry matched")
    return ReplayReport(True, mode, result.events, None)
