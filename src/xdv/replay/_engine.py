"""The replay engine.

*Re-execute* mode runs the recorded workload again with the recorded seed and kernel
configuration, calling the domain managers; *inject* mode does the same but feeds every domain
outcome back from the recorded trace instead of calling the managers' ``execute`` (the mode for
runs made on real hardware). In both modes each new entry is compared, as it is produced, with
the recorded entry at the same position; the first difference stops the replay and is reported
field by field. A replay that completes has produced a byte-identical trace.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any

from xdv.core import FaultPlan, KernelLimits, RecordedOutcome
from xdv.core._events import EventType
from xdv.domains._registry import manager_from_description
from xdv.errors import ErrorCode, TraceError, XdvError
from xdv.runner import run_workload
from xdv.trace import Divergence, Trace, TraceWriter, read_trace
from xdv.trace._format import PREAMBLE, decode_body

__all__ = ["ReplayMode", "ReplayReport", "recorded_outcomes", "replay"]


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


def recorded_outcomes(trace: Trace) -> dict[int, RecordedOutcome]:
    """Every domain outcome in ``trace``, by invocation id."""
    outcomes: dict[int, RecordedOutcome] = {}
    for entry in trace.entries:
        if entry.event_type is EventType.DOMAIN_RESULT:
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
    recorded = read_trace(source)
    start = recorded.start
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
    expected = [entry.body for entry in recorded.entries]

    def observe(seq: int, body: bytes) -> None:
        if seq >= len(expected) or body != expected[seq]:
            raise _Diverged(seq, body)

    writer = TraceWriter(None, observer=observe)
    try:
        result = run_workload(
            target,
            seed=recorded.seed,
            trace=writer,
            quantum=int(kernel_config.get("quantum", 8)),
            domains=domains,
            faults=FaultPlan.from_record(start.get("faults")),
            limits=limits,
            replay_outcomes=recorded_outcomes(recorded) if mode is ReplayMode.INJECT else None,
            expected_digest=workload_record.get("digest"),
        )
    except _Diverged as diverged:
        actual = decode_body(diverged.body, index=diverged.index, offset=0)
        expected_entry = (
            recorded.entries[diverged.index] if diverged.index < len(recorded.entries) else None
        )
        from xdv.trace._diff import diff_entries

        differences = [] if expected_entry is None else diff_entries(expected_entry, actual)
        return ReplayReport(
            False,
            mode,
            diverged.index,
            Divergence(diverged.index, expected_entry, actual, differences),
        )
    if result.events < len(expected):
        return ReplayReport(
            False,
            mode,
            result.events,
            Divergence(result.events, recorded.entries[result.events], None),
        )
    replayed = result.trace_bytes or b""
    original = PREAMBLE + b"".join(_frames(recorded))
    if replayed != original:  # pair check: the streaming comparison must imply byte equality
        raise TraceError("replayed bytes differ although every entry matched")
    return ReplayReport(True, mode, result.events, None)


def _frames(trace: Trace) -> list[bytes]:
    import zlib

    from xdv.trace._format import FRAME_CRC, FRAME_LENGTH

    return [
        FRAME_LENGTH.pack(len(entry.body)) + entry.body + FRAME_CRC.pack(zlib.crc32(entry.body))
        for entry in trace.entries
    ]
