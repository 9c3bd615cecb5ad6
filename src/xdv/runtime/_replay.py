"""The replay engine.

*Re-execute* mode runs the recorded workload again with the recorded seed and kernel
configuration, calling the domain managers; *inject* mode does the same but feeds every domain
outcome back from the recorded trace instead of calling the managers' ``execute`` (the mode for
runs made on real hardware). In both modes each new entry is compared, as it is produced, with
the recorded entry at the same position; the first difference stops the replay and is reported
field by field. A replay that completes has produced a byte-identical trace: every body matched,
so every chain link and checksum matches too.

The recorded file is not parsed ahead: the comparing writer checks each frame the new run
produces against the file's bytes at the same position, and the recorded check against the hash
it computes anyway, so a replay costs about what the run costs. Only the run-start entry is
decoded up front (and, in inject mode, the domain-result entries); when something differs, the
reader's verdict on the recorded file decides whether it is damaged or the run diverged.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdv.core import AuditConfig, DomainManager, FaultPlan, KernelLimits, RecordedOutcome
from xdv.errors import ErrorCode, TraceError, XdvError, safe_repr
from xdv.runtime._domains import recorded_managers
from xdv.runtime._kernel import build_policy
from xdv.runtime._limits import WorkerLimits
from xdv.runtime._run import run_workload
from xdv.trace import (
    FRAME_EVENT_TYPE,
    FRAME_LENGTH,
    HEADER,
    PREAMBLE,
    Divergence,
    EntryMismatch,
    EventType,
    TraceEntry,
    TraceWriter,
    decode_body,
    diff_entries,
    load_trace_bytes,
    scan_trace,
    split_frames,
)

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


def _event_type(frame: bytes) -> int:
    return int.from_bytes(frame[FRAME_EVENT_TYPE], "little")


def _decode(frame: bytes, index: int) -> TraceEntry:
    return decode_body(frame[FRAME_LENGTH.size :], index=index, offset=0)


def recorded_outcomes(frames: list[bytes]) -> dict[int, RecordedOutcome]:
    """Every domain outcome in a trace (given as its frames), by invocation id."""
    outcomes: dict[int, RecordedOutcome] = {}
    for index, frame in enumerate(frames):
        if _event_type(frame) == EventType.DOMAIN_RESULT:
            entry = _decode(frame, index)
            status = entry.status if isinstance(entry.status, ErrorCode) else ErrorCode.DOMAIN_FAULT
            invocation = entry.metadata.get("inv")
            if type(invocation) is not int:
                raise TraceError(
                    f"DOMAIN_RESULT entry {index} has no invocation id",
                    code=ErrorCode.REPLAY_INPUT_CHANGED,
                    entry_index=index,
                )
            outcomes[invocation] = RecordedOutcome(
                status, entry.metadata.get("value"), entry.metadata.get("error")
            )
    return outcomes


@dataclass(frozen=True)
class _ReplayPlan:
    """Everything a replay rebuilds from the run-start entry."""

    target: str
    digest: str | None
    params: dict[str, Any] | None
    seed: int
    quantum: int
    policy: str
    vhm: int
    node: int
    limits: KernelLimits
    domains: list[DomainManager]
    faults: FaultPlan
    audit: AuditConfig | None
    vhms: list[Any] | None = None

    @classmethod
    def from_run_start(cls, start: dict[str, Any]) -> _ReplayPlan:
        workload = start.get("workload") or {}
        target = workload.get("target")
        if not isinstance(target, str) or not target:
            raise XdvError(
                "the trace records no workload target; pass one explicitly",
                code=ErrorCode.REPLAY_INPUT_CHANGED,
                where="RUN_START",
            )
        kernel = start.get("kernel") or {}
        policy = kernel.get("policy", "round-robin")
        if not isinstance(policy, str):
            raise TypeError(f"the scheduler policy is {safe_repr(policy)}, not a spec string")
        try:
            build_policy(policy)  # refuse an unknown or malformed policy before running
        except XdvError as error:
            raise XdvError(
                f"the trace uses scheduler policy {safe_repr(policy)}, which this XDV cannot "
                f"rebuild: {error.message}",
                code=ErrorCode.REPLAY_INPUT_CHANGED,
                where="RUN_START",
            ) from None
        seed = start["seed"]
        if type(seed) is not int:
            raise TypeError(f"the seed is {safe_repr(seed)}")
        limits = KernelLimits(
            **{name: _integer(value, name) for name, value in (kernel.get("limits") or {}).items()}
        )
        digest = workload.get("digest")
        params = workload.get("params")
        if "params" in workload and not isinstance(params, dict):
            raise TypeError(f"the workload parameters are {safe_repr(params)}, not a map")
        return cls(
            target=target,
            digest=digest if isinstance(digest, str) else None,
            params=params,
            seed=seed,
            quantum=_integer(kernel.get("quantum", 8), "quantum"),
            policy=policy,
            vhm=_integer(kernel.get("vhm", 0), "vhm"),
            node=_integer(kernel.get("node", 0), "node"),
            limits=limits,
            domains=recorded_managers(start.get("domains") or {}),
            faults=_fault_plan(start.get("faults")),
            audit=_audit_config(start.get("audit")),
            vhms=_recorded_vhms(workload.get("vhms")),
        )


def _fault_plan(record: Any) -> FaultPlan:
    """The recorded fault plan; one this XDV cannot read makes the run-start entry malformed."""
    try:
        return FaultPlan.from_record(record)
    except XdvError as error:
        raise ValueError(f"the fault plan is malformed: {error.message}") from None


def _recorded_vhms(record: Any) -> list[Any] | None:
    """The VHMs the workload declared (rebuilt before its setup runs), or None."""
    if record is None:
        return None
    if not isinstance(record, list):
        raise TypeError(f"the VHM declaration is {safe_repr(record)}, not a list")
    return record


def _audit_config(record: Any) -> AuditConfig | None:
    """The recorded audit configuration, without a signer: a replay re-creates the checkpoint
    entries (they are reproducible) but signs nothing."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise TypeError(f"the audit record is {safe_repr(record)}")
    return AuditConfig(
        interval=_integer(record.get("interval"), "audit interval"),
        signed=record.get("signed") is True,
    )


def _integer(value: Any, name: str) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} is {safe_repr(value)}, not an integer")
    return value


def _locate(target: str, source: str | os.PathLike[str] | bytes) -> str:
    """Find a recorded file target: as recorded (from the current directory), else beside the
    trace file. Module targets and unfound files are returned unchanged (the loader explains)."""
    location, _, entry = target.rpartition(":") if ":" in target else (target, "", "")
    if not location.endswith(".py") or Path(location).is_file() or isinstance(source, bytes):
        return target
    beside = Path(source).parent / location
    if beside.is_file():
        return f"{beside}:{entry}" if entry else str(beside)
    return target


def _first_entry(data: Any) -> TraceEntry:
    """The run-start entry, read from the front of the file (the rest is compared as it is
    re-created); a file whose first entry cannot be read is reported as the reader reports it."""
    start = len(PREAMBLE)
    if data[:start] == PREAMBLE and len(data) >= start + FRAME_LENGTH.size:
        (length,) = FRAME_LENGTH.unpack(data[start : start + FRAME_LENGTH.size])
        frame = data[start : start + FRAME_LENGTH.size + length]
        if len(frame) == FRAME_LENGTH.size + length and length >= HEADER.size:
            entry = _decode(frame, 0)
            if entry.event_type is EventType.RUN_START:
                return entry
    error = scan_trace(data).error
    raise error if error is not None else TraceError("the trace has no run-start entry")


def _raise_if_damaged(data: Any, index: int, *, check_failed: bool) -> None:
    """Raise the reader's error if the recorded trace is damaged, open or torn at or before
    ``index``: that is not a divergence of the run."""
    if check_failed:
        raise TraceError(f"entry {index} fails its check (corrupted bytes)", entry_index=index)
    error = scan_trace(data).error
    if error is None:
        return
    if error.code is ErrorCode.TRACE_INCOMPLETE:
        raise TraceError(
            "the trace has no run-end entry: only a finished run can be replayed",
            code=ErrorCode.TRACE_INCOMPLETE,
            entry_index=error.entry_index,
        )
    if error.entry_index is None or error.entry_index <= index:
        raise error


def replay(
    source: str | os.PathLike[str] | bytes,
    mode: ReplayMode | str = ReplayMode.REEXECUTE,
    *,
    workload: str | None = None,
    isolation: str = "inprocess",
    limits: WorkerLimits | None = None,
) -> ReplayReport:
    """Replay a recorded trace; ``workload`` overrides the recorded target's location.
    ``isolation="process"`` runs a Python workload's code in a worker process under
    ``limits`` (as :class:`~xdv.runtime.RunRequest` does); the trace is the same either way."""
    mode = ReplayMode(mode)
    data, _ = load_trace_bytes(source)
    first = _first_entry(data)
    try:
        plan = _ReplayPlan.from_run_start(first.metadata)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise TraceError(
            f"the run-start entry is malformed: {type(error).__name__}: {error}",
            code=ErrorCode.REPLAY_INPUT_CHANGED,
            entry_index=0,
        ) from None
    target = workload or _locate(plan.target, source)
    outcomes = recorded_outcomes(split_frames(data)) if mode is ReplayMode.INJECT else None
    writer = TraceWriter(None, expected=data, retain=False)
    try:
        result = run_workload(
            target,
            seed=plan.seed,
            trace=writer,
            quantum=plan.quantum,
            policy=plan.policy,
            domains=plan.domains,
            faults=plan.faults,
            limits=plan.limits,
            replay_outcomes=outcomes,
            expected_digest=plan.digest,
            recorded_target=plan.target,
            params=plan.params,
            vhm=plan.vhm,
            node=plan.node,
            audit=plan.audit,
            vhms=plan.vhms,
            isolation=isolation,
            worker_limits=limits,
        )
    except EntryMismatch as diverged:
        _raise_if_damaged(data, diverged.index, check_failed=diverged.check_failed)
        actual = _decode(diverged.frame, diverged.index)
        frames = split_frames(data)
        expected_entry: TraceEntry | None = None
        differences: list[tuple[str, Any, Any]] = []
        if diverged.index < len(frames):
            expected_entry = _decode(frames[diverged.index], diverged.index)
            differences = diff_entries(expected_entry, actual)
        return ReplayReport(
            False,
            mode,
            diverged.index,
            Divergence(diverged.index, expected_entry, actual, differences),
        )
    if writer.expected_offset != len(data):
        # The new run ended (with its RUN_END matching) but the recorded file goes on.
        _raise_if_damaged(data, result.events, check_failed=False)
        frames = split_frames(data)
        missing = _decode(frames[result.events], result.events)
        return ReplayReport(False, mode, result.events, Divergence(result.events, missing, None))
    return ReplayReport(True, mode, result.events, None)
