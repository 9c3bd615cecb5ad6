"""Deriving a :class:`Snapshot` from a trace in one streaming pass.

The trace is walked frame by frame (each frame checked, decoded and chained as the reader
does), and every entry updates counters, gauges, histograms, open spans and the alert rules.
Nothing but the entries decides anything: the same bytes give the same snapshot.
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from xdv.errors import ErrorCode, TraceError
from xdv.telemetry._schema import (
    GAUGE,
    HISTOGRAM,
    OTHER,
    SCHEMA,
    SERIES_PER_METRIC_MAX,
)
from xdv.telemetry._snapshot import (
    Alert,
    HistogramSeries,
    Labels,
    MetricData,
    RunInfo,
    Series,
    Snapshot,
    Span,
)
from xdv.telemetry._thresholds import Thresholds
from xdv.trace import (
    FRAME_LENGTH,
    GENESIS_HASH,
    PREAMBLE,
    Domain,
    EventType,
    TraceEntry,
    decode_body,
    frame_hash,
    load_trace_bytes,
    scan_trace,
)

__all__ = ["SPANS_MAX", "iter_entries", "metrics_from_entries", "metrics_from_trace"]

SPANS_MAX = 10_000
"""The most spans a snapshot keeps; later ones are counted in ``spans_dropped``."""

_CHECK_BYTES = 4  # the frame check: the first 4 bytes of the entry hash (trace-format.md §3)

Source = str | os.PathLike[str] | bytes

# Gauges keep the lowest or the highest value seen (the rest are set).
_GAUGE_MIN = frozenset(
    {"xdv_q_fidelity_estimated_min", "xdv_q_decoherence_margin_min", "xdv_phi_stability_min"}
)
_GAUGE_MAX = frozenset({"xdv_q_readout_error_max", "xdv_phi_noise_index_max", "xdv_phi_drift_max"})

_SCHEDULER = {
    EventType.DISPATCH: "dispatch",
    EventType.SLEEP: "sleep",
    EventType.YIELD: "yield",
    EventType.PREEMPT: "preempt",
    EventType.WAIT: "wait",
    EventType.WAKE: "wake",
}
_ADMISSION = {
    EventType.ADMISSION_WAIT: "wait",
    EventType.ADMISSION_GRANT: "grant",
    EventType.ADMISSION_TIMEOUT: "timeout",
    EventType.ADMISSION_CANCEL: "cancel",
}
_RECOVERY = {
    EventType.RECOVERY_RETRY: "retry",
    EventType.RECOVERY_FALLBACK: "fallback",
    EventType.RECOVERY_RESTART: "restart",
    EventType.RECOVERY_FAILED: "failed",
}
# Event types under which a failed system call is recorded (trace-format.md §7.2).
_SYSCALL_EVENTS = frozenset(
    {
        EventType.EFFECT,
        EventType.SLEEP,
        EventType.PROCESS_CREATE,
        EventType.WAIT,
        EventType.DOMAIN_BIND,
        EventType.DOMAIN_UNBIND,
        EventType.RESOURCE_RESERVE,
        EventType.RESOURCE_RELEASE,
        EventType.DOMAIN_INVOKE,
        EventType.PROCESS_STATE,
        EventType.CAPABILITY_REVOKE,
        EventType.DOMAIN_FREEZE,
        EventType.RESOURCE_TRANSFER,
        EventType.STATE_SAVE,
        EventType.CHANNEL_CREATE,
        EventType.CHANNEL_SEND,
        EventType.CHANNEL_RECEIVE,
        EventType.CHANNEL_SELECT,
        EventType.CHANNEL_CLOSE,
        EventType.CHANNEL_SHARE,
    }
)
_PHI_VIOLATIONS = frozenset(
    {ErrorCode.PHI_ERR_COHERENCE_TIMEOUT, ErrorCode.PHI_ERR_STABILITY_BREACH}
)
_Q_REFUSALS = frozenset(
    {ErrorCode.DECOHERENCE_EXCEEDED, ErrorCode.CALIBRATION_EXPIRED, ErrorCode.CALIBRATION_INVALID}
)


def iter_entries(source: Source, *, allow_open: bool = False) -> Iterator[TraceEntry]:
    """The entries of a trace, one at a time, each checked as :func:`xdv.trace.read_trace`
    checks it (frame check, canonical metadata, sequence, hash chain, logical order).

    A large file is read through a window, never whole. On the first problem the trace reader's
    own :class:`~xdv.errors.TraceError` is raised (after the entries before it were yielded); an
    open trace (no run end) is accepted only with ``allow_open``.
    """
    data, _ = load_trace_bytes(source)
    if data[: len(PREAMBLE)] != PREAMBLE:
        _raise_scan_error(source)
    offset, size = len(PREAMBLE), len(data)
    previous_hash, previous_time, index, complete = GENESIS_HASH, 0, 0, False
    length_size = FRAME_LENGTH.size
    unpack = FRAME_LENGTH.unpack
    while offset < size:
        if complete or size - offset < length_size:
            _raise_scan_error(source)
        (length,) = unpack(data[offset : offset + length_size])
        end = offset + length_size + length
        # One read per frame: the length, the body and the check.
        framed = data[offset : end + _CHECK_BYTES]
        if len(framed) != length_size + length + _CHECK_BYTES:
            _raise_scan_error(source)
        frame = framed[:-_CHECK_BYTES]
        digest = frame_hash(frame)
        if digest[:_CHECK_BYTES] != framed[-_CHECK_BYTES:]:
            _raise_scan_error(source)
        try:
            entry = decode_body(frame[length_size:], index=index, offset=offset)
        except TraceError:
            _raise_scan_error(source)
        if (
            entry.seq != index
            or entry.prev_hash != previous_hash
            or entry.logical_time < previous_time
            or (index == 0) != (entry.event_type is EventType.RUN_START)
            or not isinstance(entry.event_type, EventType)
            or not isinstance(entry.domain, Domain)
            or not isinstance(entry.status, ErrorCode)
        ):
            _raise_scan_error(source)
        yield entry
        complete = entry.event_type is EventType.RUN_END
        previous_hash, previous_time = digest, entry.logical_time
        offset = end + _CHECK_BYTES
        index += 1
    if index == 0 or not (complete or allow_open):
        _raise_scan_error(source)


def _raise_scan_error(source: Source) -> Any:
    """Raise the trace reader's own error for a trace found bad (the slow path, taken once)."""
    scan = scan_trace(source)
    if scan.error is not None:
        raise scan.error
    raise TraceError("the trace could not be read", code=ErrorCode.TRACE_CORRUPT)


def metrics_from_trace(
    source: Source, *, thresholds: Thresholds | None = None, allow_open: bool = False
) -> Snapshot:
    """The telemetry snapshot of a trace file (or its bytes), derived in one streaming pass.

    A pure function of the trace's bytes and ``thresholds``: the same trace always gives the
    same :meth:`Snapshot.to_bytes`. A damaged trace raises its :class:`~xdv.errors.TraceError`;
    an open one (a run still being written, or killed) is accepted with ``allow_open``.
    """
    return metrics_from_entries(iter_entries(source, allow_open=allow_open), thresholds=thresholds)


def metrics_from_entries(
    entries: Iterable[TraceEntry], *, thresholds: Thresholds | None = None
) -> Snapshot:
    """The snapshot of entries already decoded (for instance :attr:`xdv.trace.Trace.entries`),
    in trace order. Used by :func:`metrics_from_trace`."""
    builder = _Builder(thresholds or Thresholds())
    for entry in entries:
        builder.add(entry)
    return builder.snapshot()


def _code_name(status: ErrorCode | int) -> str:
    return status.name if isinstance(status, ErrorCode) else str(status)


def _label(domain: Domain | int) -> str:
    return domain.label if isinstance(domain, Domain) else str(domain)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _label_order(labels: Labels) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(value), "") if value.isdigit() else (1, 0, value) for _, value in labels)


class _Histogram:
    __slots__ = ("buckets", "count", "max", "min", "sum")

    def __init__(self, bounds: int) -> None:
        self.buckets = [0] * (bounds + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")


class _Process:
    __slots__ = ("attributes", "name", "parent", "seq", "span", "start", "vhm")

    def __init__(self, entry: TraceEntry, span: str | None, parent: str | None) -> None:
        self.seq = entry.seq
        self.start = entry.logical_time
        self.vhm = entry.vhm
        self.span = span
        self.parent = parent
        self.name = str(entry.metadata.get("name", f"process {entry.process}"))
        domains = entry.metadata.get("domains", [])
        self.attributes: dict[str, str | int | float | bool] = {
            "xdv.process": entry.process,
            "xdv.vhm": entry.vhm,
            "xdv.node": entry.node,
            "xdv.parent": int(entry.metadata.get("parent", 0) or 0),
            "xdv.domains": ",".join(str(label) for label in domains)
            if isinstance(domains, list)
            else "",
        }


class _Invocation:
    __slots__ = (
        "attributes",
        "contract",
        "domain",
        "op",
        "parent",
        "process",
        "seq",
        "span",
        "start",
        "vhm",
    )

    def __init__(self, entry: TraceEntry, span: str | None, parent: str | None) -> None:
        self.seq = entry.seq
        self.start = entry.logical_time
        self.domain = _label(entry.domain)
        self.op = str(entry.metadata.get("op", "?"))
        self.contract = entry.contract
        self.process = entry.process
        self.vhm = entry.vhm
        self.span = span
        self.parent = parent
        self.attributes: dict[str, str | int | float | bool] = {
            "xdv.domain": self.domain,
            "xdv.op": self.op,
            "xdv.process": entry.process,
            "xdv.vhm": entry.vhm,
            "xdv.contract": entry.contract,
            "xdv.invocation": int(entry.metadata.get("inv", 0) or 0),
        }


class _Builder:
    """The state of one pass: aggregates, open spans, contracts, alert rules."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        # Tables keyed by label values (in the schema's label order).
        self.values: dict[str, dict[tuple[str, ...], int | float]] = {}
        self.histograms: dict[str, dict[tuple[str, ...], _Histogram]] = {}
        self.bounds: dict[str, tuple[float, ...]] = {}
        self.label_names: dict[str, tuple[str, ...]] = {}
        for spec in SCHEMA:
            self.label_names[spec.name] = spec.labels
            if spec.kind == HISTOGRAM:
                self.histograms[spec.name] = {}
                self.bounds[spec.name] = spec.buckets
            else:
                self.values[spec.name] = {}
        self.gauge_names = {spec.name for spec in SCHEMA if spec.kind == GAUGE}
        self.spans: list[Span] = []
        self.spans_dropped = 0
        self.alerts: list[Alert] = []
        self.alerts_dropped = 0
        self.trace_id = ""
        self.trace_key = b""
        self.seed = 0
        self.target = ""
        self.policy = ""
        self.node = 0
        self.entries = 0
        self.last_time = 0
        self.last: TraceEntry | None = None
        self.end_status: str | None = None
        self.end_steps = 0
        self.running = -1
        self.denials = 0
        self.processes: dict[int, _Process] = {}
        self.invocations: dict[tuple[str, int], _Invocation] = {}
        # Contract id → (domain label, calibration or provider, fidelity floor, tolerance).
        self.contracts: dict[int, tuple[str, str, float]] = {}
        self.q_diagnostics: dict[int, dict[str, Any]] = {}
        self.handlers: dict[EventType | int, Callable[[TraceEntry], None]] = {
            EventType.RUN_START: self._run_start,
            EventType.RUN_END: self._run_end,
            EventType.PROCESS_CREATE: self._process_create,
            EventType.PROCESS_STATE: self._process_state,
            EventType.PROCESS_EXIT: self._process_exit,
            EventType.ADMISSION_WAIT: self._admission,
            EventType.ADMISSION_GRANT: self._admission,
            EventType.ADMISSION_TIMEOUT: self._admission,
            EventType.ADMISSION_CANCEL: self._admission,
            EventType.EFFECT: self._effect,
            EventType.CHANNEL_SEND: self._channel_send,
            EventType.VHM_DENY: self._vhm_deny,
            EventType.RESOURCE_RESERVE: self._reserve,
            EventType.RESOURCE_RELEASE: self._release,
            EventType.DOMAIN_INVOKE: self._invoke,
            EventType.DOMAIN_RESULT: self._result,
            EventType.TRANSITION_COMMIT: self._transition,
            EventType.TRANSITION_ROLLBACK: self._transition,
            EventType.CAPABILITY_GRANT: self._grant,
            EventType.CAPABILITY_REVOKE: self._revoke,
            EventType.CAPABILITY_DENY: self._deny,
            EventType.ATTESTATION: self._attestation,
            EventType.DOMAIN_FREEZE: self._freeze,
            EventType.FAULT: self._fault,
            EventType.FAULT_DETECTED: self._fault_detected,
            EventType.FAULT_CONTAINED: self._fault_contained,
            EventType.FAULT_ESCALATED: self._fault_escalated,
            EventType.NODE_PANIC: self._panic,
        }
        for event in _SCHEDULER:
            self.handlers[event] = self._scheduler
        for event in _RECOVERY:
            self.handlers[event] = self._recovery

    # -- aggregation --------------------------------------------------------------------------

    def _labels(
        self, name: str, values: tuple[str, ...], table: dict[tuple[str, ...], Any]
    ) -> tuple[str, ...]:
        if values not in table and len(table) >= SERIES_PER_METRIC_MAX:
            return (OTHER,) * len(values)
        return values

    def inc(self, name: str, *values: str, amount: int | float = 1) -> None:
        table = self.values[name]
        labels = self._labels(name, values, table)
        table[labels] = table.get(labels, 0) + amount

    def gauge(self, name: str, value: float, *values: str) -> None:
        table = self.values[name]
        labels = self._labels(name, values, table)
        old = table.get(labels)
        if (
            old is None
            or ((name in _GAUGE_MIN and value < old) or (name in _GAUGE_MAX and value > old))
            or (name not in _GAUGE_MIN and name not in _GAUGE_MAX)
        ):
            table[labels] = value

    def observe(self, name: str, value: float, *values: str) -> None:
        table = self.histograms[name]
        labels = self._labels(name, values, table)
        histogram = table.get(labels)
        if histogram is None:
            histogram = table[labels] = _Histogram(len(self.bounds[name]))
        histogram.buckets[bisect_left(self.bounds[name], value)] += 1
        histogram.count += 1
        histogram.sum += value
        histogram.min = min(histogram.min, value)
        histogram.max = max(histogram.max, value)

    def alert(
        self,
        entry: TraceEntry,
        rule: str,
        severity: str,
        value: float,
        threshold: float,
        message: str,
        domain: str | None = None,
    ) -> None:
        self.inc("xdv_alerts_total", rule, severity)
        if len(self.alerts) >= self.thresholds.alerts_max:
            self.alerts_dropped += 1
            return
        self.alerts.append(
            Alert(
                rule,
                severity,
                domain if domain is not None else _label(entry.domain),
                entry.logical_time,
                entry.seq,
                entry.vhm,
                entry.process,
                entry.contract,
                value,
                threshold,
                message,
            )
        )

    def span_id(self, seq: int) -> str | None:
        """A span's id: derived from the trace id and the seq of the entry that opened it."""
        if len(self.spans) + len(self.processes) + len(self.invocations) >= SPANS_MAX:
            self.spans_dropped += 1
            return None
        digest = hashlib.sha256(self.trace_key + seq.to_bytes(8, "little")).digest()
        return digest[:8].hex()

    # -- the pass -----------------------------------------------------------------------------

    def add(self, entry: TraceEntry) -> None:
        self.entries += 1
        self.last_time = entry.logical_time
        self.last = entry
        event = entry.event_type
        handler = self.handlers.get(event)
        if handler is not None:
            handler(entry)
        if entry.status and event in _SYSCALL_EVENTS:
            self.inc("xdv_security_refusals_total", _label(entry.domain), _code_name(entry.status))
            self._count_denial(entry)

    def _count_denial(self, entry: TraceEntry) -> None:
        self.denials += 1
        if self.denials == self.thresholds.denials_max:
            self.alert(
                entry,
                "security.denials",
                "warning",
                float(self.denials),
                float(self.thresholds.denials_max),
                f"{self.denials} denials and refused calls",
                domain="S",
            )

    def _run_start(self, entry: TraceEntry) -> None:
        meta = entry.metadata
        self.trace_key = hashlib.sha256(b"xdv-telemetry/1" + entry.hash).digest()
        self.trace_id = self.trace_key[:16].hex()
        seed = meta.get("seed", 0)
        self.seed = seed if isinstance(seed, int) else 0
        workload = meta.get("workload")
        self.target = str(workload.get("target", "")) if isinstance(workload, dict) else ""
        kernel = meta.get("kernel")
        if isinstance(kernel, dict):
            self.policy = str(kernel.get("policy", ""))
            node = kernel.get("node", 0)
            self.node = node if isinstance(node, int) else 0

    def _run_end(self, entry: TraceEntry) -> None:
        self.end_status = str(entry.metadata.get("status", "ok"))
        steps = entry.metadata.get("steps", 0)
        self.end_steps = steps if isinstance(steps, int) else 0

    def _process_create(self, entry: TraceEntry) -> None:
        if entry.status:
            return
        vhm = str(entry.vhm)
        self.inc("xdv_k_processes_created_total", vhm)
        parent_pid = entry.metadata.get("parent", 0)
        parent = self.processes.get(parent_pid) if isinstance(parent_pid, int) else None
        self.processes[entry.process] = _Process(
            entry, self.span_id(entry.seq), parent.span if parent is not None else None
        )

    def _process_state(self, entry: TraceEntry) -> None:
        if not entry.status:
            state = str(entry.metadata.get("state", "?"))
            self.inc("xdv_k_lifecycle_transitions_total", str(entry.vhm), state)

    def _process_exit(self, entry: TraceEntry) -> None:
        status = _code_name(entry.status)
        self.inc("xdv_k_process_exits_total", str(entry.vhm), status)
        process = self.processes.pop(entry.process, None)
        if process is not None and process.span is not None:
            self.spans.append(
                Span(
                    process.span,
                    process.parent,
                    process.name,
                    "process",
                    process.start,
                    entry.logical_time,
                    status,
                    tuple(sorted(process.attributes.items())),
                )
            )

    def _scheduler(self, entry: TraceEntry) -> None:
        event = entry.event_type
        vhm = str(entry.vhm)
        self.inc("xdv_k_scheduler_decisions_total", vhm, _SCHEDULER[event])  # type: ignore[index]
        switched = event is EventType.DISPATCH or (
            event is EventType.SLEEP and entry.process != self.running and not entry.status
        )
        if switched:
            self.running = entry.process
            self.inc("xdv_k_context_switches_total", vhm)
            self.inc("xdv_k_steps_total", vhm, str(entry.process))

    def _admission(self, entry: TraceEntry) -> None:
        outcome = _ADMISSION[entry.event_type]  # type: ignore[index]
        vhm, domain = str(entry.vhm), _label(entry.domain)
        self.inc("xdv_k_admissions_total", vhm, domain, outcome)
        waited = _number(entry.metadata.get("waited"))
        if outcome != "wait" and waited is not None:
            self.observe("xdv_k_queue_wait", waited, vhm, domain)

    def _effect(self, entry: TraceEntry) -> None:
        if not entry.status:
            self.inc("xdv_k_effects_total", str(entry.vhm))

    def _channel_send(self, entry: TraceEntry) -> None:
        if entry.status:
            return
        vhm = str(entry.vhm)
        self.inc("xdv_k_channel_messages_total", vhm)
        size = entry.metadata.get("bytes")
        if isinstance(size, int) and not isinstance(size, bool):
            self.inc("xdv_k_channel_bytes_total", vhm, amount=size)

    def _vhm_deny(self, entry: TraceEntry) -> None:
        vhm = entry.metadata.get("vhm", entry.vhm)
        self.inc("xdv_vhm_quota_denials_total", str(vhm), str(entry.metadata.get("quota", "?")))
        self._count_denial(entry)

    def _reserve(self, entry: TraceEntry) -> None:
        if entry.status:
            return
        vhm, domain = str(entry.vhm), _label(entry.domain)
        self.inc("xdv_contracts_reserved_total", vhm, domain)
        terms = entry.metadata.get("terms")
        terms = terms if isinstance(terms, dict) else {}
        if entry.domain is Domain.Q:
            calibration = terms.get("calibration")
            profile, digest = "none", ""
            if isinstance(calibration, dict):
                profile = str(calibration.get("profile", "none"))
                digest = str(calibration.get("digest", ""))
            budget = terms.get("budget")
            floor = _number(budget.get("fidelity_min")) if isinstance(budget, dict) else None
            self.contracts[entry.contract] = ("Q", profile, floor or 0.0)
            self.inc("xdv_q_containers_total", vhm, profile)
            self.gauge("xdv_q_calibration_info", 1, profile, digest)
        elif entry.domain is Domain.PHI:
            provider = str(terms.get("provider", "?"))
            self.contracts[entry.contract] = ("Φ", provider, 0.0)
            self.inc("xdv_phi_windows_total", vhm, provider)
            window = terms.get("window")
            duration = _number(window.get("duration")) if isinstance(window, dict) else None
            if duration is not None:
                self.observe("xdv_phi_window_duration", duration, provider)

    def _release(self, entry: TraceEntry) -> None:
        if not entry.status:
            reason = str(entry.metadata.get("reason", "released"))
            self.inc("xdv_contracts_released_total", str(entry.vhm), _label(entry.domain), reason)

    def _invoke(self, entry: TraceEntry) -> None:
        domain = _label(entry.domain)
        if entry.status:
            self.inc("xdv_invocations_total", str(entry.vhm), domain, _code_name(entry.status))
            return
        inv = entry.metadata.get("inv")
        if not isinstance(inv, int):
            return
        process = self.processes.get(entry.process)
        self.invocations[(domain, inv)] = _Invocation(
            entry, self.span_id(entry.seq), process.span if process is not None else None
        )

    def _result(self, entry: TraceEntry) -> None:
        domain = _label(entry.domain)
        status = _code_name(entry.status)
        vhm = str(entry.vhm)
        self.inc("xdv_invocations_total", vhm, domain, status)
        inv = entry.metadata.get("inv")
        invocation = self.invocations.pop((domain, inv), None) if isinstance(inv, int) else None
        value = entry.metadata.get("value")
        value = value if isinstance(value, dict) else {}
        op = invocation.op if invocation is not None else "?"
        attributes: dict[str, str | int | float | bool] = {}
        if invocation is not None:
            self.observe(
                "xdv_invocation_latency", float(entry.logical_time - invocation.start), domain
            )
        if entry.domain is Domain.Q and op == "run":
            attributes = self._q_job(entry, vhm, status, value)
        elif entry.domain is Domain.PHI:
            attributes = self._phi_transform(entry, vhm, status, value, op)
        if invocation is not None and invocation.span is not None:
            attributes.update(invocation.attributes)
            q_job = entry.domain is Domain.Q and op == "run"
            self.spans.append(
                Span(
                    invocation.span,
                    invocation.parent,
                    f"{domain} {op}",
                    "job" if q_job else "invocation",
                    invocation.start,
                    entry.logical_time,
                    status,
                    tuple(sorted(attributes.items())),
                )
            )

    def _q_job(
        self, entry: TraceEntry, vhm: str, status: str, value: dict[str, Any]
    ) -> dict[str, str | int | float | bool]:
        _, calibration, floor = self.contracts.get(entry.contract, ("Q", "none", 0.0))
        self.inc("xdv_q_jobs_total", vhm, calibration, status)
        attributes: dict[str, str | int | float | bool] = {"xdv.q.calibration": calibration}
        if entry.status in _Q_REFUSALS:
            self.alert(
                entry,
                "q.refused",
                "critical",
                float(entry.status),
                0.0,
                f"Q job refused: {status}",
            )
        if entry.status:
            return attributes
        shots = value.get("shots")
        if isinstance(shots, int) and not isinstance(shots, bool):
            self.inc("xdv_q_shots_total", vhm, calibration, amount=shots)
            attributes["xdv.q.shots"] = shots
        job = value.get("job")
        if isinstance(job, int):
            attributes["xdv.q.job"] = job
        diagnostics = value.get("diagnostics")
        if isinstance(diagnostics, dict) and "same_as" in diagnostics:
            diagnostics = self.q_diagnostics.get(diagnostics["same_as"])
        if not isinstance(diagnostics, dict):
            return attributes
        if isinstance(job, int):
            self.q_diagnostics[job] = diagnostics
        limits = self.thresholds
        fidelity = _number(diagnostics.get("fidelity"))
        if fidelity is not None:
            attributes["xdv.q.fidelity"] = fidelity
            self.observe("xdv_q_fidelity_estimated", fidelity, calibration)
            self.gauge("xdv_q_fidelity_estimated_min", fidelity, calibration)
            bound = floor if floor > 0 else limits.q_fidelity_min
            if fidelity < bound:
                self.alert(
                    entry,
                    "q.fidelity",
                    "warning",
                    fidelity,
                    bound,
                    f"estimated fidelity {fidelity} below {bound}",
                )
        for kind in ("t1", "t2"):
            margin = _number(diagnostics.get(f"{kind}_margin_ns"))
            if margin is None:
                continue
            attributes[f"xdv.q.{kind}_margin_ns"] = margin
            self.observe(f"xdv_q_{kind}_margin", margin, calibration)
            self.gauge("xdv_q_decoherence_margin_min", margin, calibration, kind)
            if margin < limits.q_margin_min_ns:
                self.alert(
                    entry,
                    "q.decoherence_margin",
                    "warning",
                    margin,
                    limits.q_margin_min_ns,
                    f"{kind.upper()} margin {margin} ns below {limits.q_margin_min_ns} ns",
                )
        duration = _number(diagnostics.get("duration_ns"))
        budget = _number(diagnostics.get("duration_ns_budget"))
        if duration is not None and budget:
            used = duration / budget
            self.observe("xdv_q_decoherence_budget_used", used, calibration)
            if used > limits.q_budget_used_max:
                self.alert(
                    entry,
                    "q.decoherence_budget",
                    "warning",
                    used,
                    limits.q_budget_used_max,
                    f"job uses {used:.3f} of its decoherence budget",
                )
        readout = _number(diagnostics.get("readout_error"))
        if readout is not None:
            self.gauge("xdv_q_readout_error_max", readout, calibration)
            if readout > limits.q_readout_error_max:
                self.alert(
                    entry,
                    "q.readout_error",
                    "warning",
                    readout,
                    limits.q_readout_error_max,
                    f"readout error {readout} above {limits.q_readout_error_max}",
                )
        return attributes

    def _phi_transform(
        self, entry: TraceEntry, vhm: str, status: str, value: dict[str, Any], op: str
    ) -> dict[str, str | int | float | bool]:
        _, provider, _ = self.contracts.get(entry.contract, ("Φ", "?", 0.0))
        self.inc("xdv_phi_transforms_total", vhm, op, status)
        attributes: dict[str, str | int | float | bool] = {"xdv.phi.provider": provider}
        if entry.status in _PHI_VIOLATIONS:
            self.inc("xdv_phi_coherence_violations_total", vhm, status)
            self.alert(
                entry,
                "phi.coherence_violation",
                "critical",
                float(entry.status),
                0.0,
                f"Φ {op}: {status}",
            )
        report = value.get("stability")
        if entry.status or not isinstance(report, dict):
            return attributes
        limits = self.thresholds
        checks = (
            ("stability", "xdv_phi_stability_min", "phi.stability", limits.phi_stability_min, -1),
            ("noise_index", "xdv_phi_noise_index_max", "phi.noise", limits.phi_noise_index_max, 1),
            ("drift", "xdv_phi_drift_max", "phi.drift", limits.phi_drift_max, 1),
        )
        for key, gauge, rule, bound, direction in checks:
            figure = _number(report.get(key))
            if figure is None:
                continue
            attributes[f"xdv.phi.{key}"] = figure
            self.gauge(gauge, figure, provider)
            if key == "stability":
                self.observe("xdv_phi_stability", figure, provider)
            if (figure - bound) * direction > 0:
                self.alert(
                    entry,
                    rule,
                    "warning",
                    figure,
                    bound,
                    f"Φ {op}: {key} {figure} {'below' if direction < 0 else 'above'} {bound}",
                )
        return attributes

    def _transition(self, entry: TraceEntry) -> None:
        outcome = "commit" if entry.event_type is EventType.TRANSITION_COMMIT else "rollback"
        self.inc("xdv_transitions_total", _label(entry.domain), outcome)

    def _grant(self, entry: TraceEntry) -> None:
        if not entry.status:
            self.inc("xdv_security_grants_total", _label(entry.domain))

    def _revoke(self, entry: TraceEntry) -> None:
        if entry.status:
            return
        reason = entry.metadata.get("reason")
        reason = reason if reason in ("exit", "dropped") else "operator"
        ids = entry.metadata.get("ids")
        self.inc(
            "xdv_security_revocations_total",
            str(reason),
            amount=len(ids) if isinstance(ids, list) else 1,
        )

    def _deny(self, entry: TraceEntry) -> None:
        self.inc("xdv_security_denials_total", _label(entry.domain), _code_name(entry.status))
        self._count_denial(entry)

    def _attestation(self, entry: TraceEntry) -> None:
        self.inc("xdv_security_attestations_total", _label(entry.domain), _code_name(entry.status))

    def _freeze(self, entry: TraceEntry) -> None:
        if not entry.status:
            self.inc("xdv_security_freezes_total", _label(entry.domain))

    def _fault_class(self, entry: TraceEntry) -> tuple[str, str]:
        meta = entry.metadata
        return str(meta.get("domain", _label(entry.domain))), str(meta.get("class", "?"))

    def _fault(self, entry: TraceEntry) -> None:
        self.inc("xdv_faults_total", *self._fault_class(entry))

    def _fault_detected(self, entry: TraceEntry) -> None:
        source = str(entry.metadata.get("source", "?"))
        self.inc("xdv_faults_detected_total", *self._fault_class(entry), source)

    def _fault_contained(self, entry: TraceEntry) -> None:
        self.inc("xdv_faults_contained_total", *self._fault_class(entry))

    def _fault_escalated(self, entry: TraceEntry) -> None:
        domain, fault_class = self._fault_class(entry)
        target = str(entry.metadata.get("to", "?"))
        self.inc("xdv_faults_escalated_total", domain, fault_class, target)
        level = _number(entry.metadata.get("level")) or 0.0
        self.alert(
            entry,
            "fault.escalated",
            "critical" if target in ("vhm", "node") else "warning",
            level,
            0.0,
            f"{fault_class} escalated to the {target} level: {entry.metadata.get('action', '?')}",
            domain=domain,
        )

    def _recovery(self, entry: TraceEntry) -> None:
        kind = _RECOVERY[entry.event_type]  # type: ignore[index]
        self.inc("xdv_recoveries_total", kind)
        if kind == "failed":
            self.alert(
                entry,
                "fault.recovery_failed",
                "critical",
                _number(entry.metadata.get("attempts")) or 0.0,
                0.0,
                f"recovery of {entry.metadata.get('class', '?')} spent",
            )

    def _panic(self, entry: TraceEntry) -> None:
        self.inc("xdv_node_panics_total")
        self.alert(
            entry,
            "node.panic",
            "critical",
            1.0,
            0.0,
            f"node panic: {entry.metadata.get('reason', '?')}",
        )

    # -- the result ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        self.values["xdv_trace_entries_total"][()] = self.entries
        self.values["xdv_run_logical_time"][()] = self.last_time
        self.values["xdv_run_steps_total"][()] = self.end_steps
        status = self.end_status if self.end_status is not None else "open"
        self.values["xdv_run_info"][(status, self.policy)] = 1
        spans = list(self.spans)
        # Spans the trace never closed (an open trace) end at its last logical time.
        for process in self.processes.values():
            if process.span is not None:
                spans.append(
                    Span(
                        process.span,
                        process.parent,
                        process.name,
                        "process",
                        process.start,
                        self.last_time,
                        "UNSET",
                        tuple(sorted(process.attributes.items())),
                    )
                )
        for invocation in self.invocations.values():
            if invocation.span is not None:
                spans.append(
                    Span(
                        invocation.span,
                        invocation.parent,
                        f"{invocation.domain} {invocation.op}",
                        "invocation",
                        invocation.start,
                        self.last_time,
                        "UNSET",
                        tuple(sorted(invocation.attributes.items())),
                    )
                )
        spans.sort(key=lambda span: (span.start, span.end, span.span_id))
        metrics: list[MetricData] = []
        for spec in SCHEMA:
            series: list[Series | HistogramSeries]
            if spec.kind == HISTOGRAM:
                series = [
                    HistogramSeries(
                        tuple(zip(spec.labels, values, strict=True)),
                        item.count,
                        item.sum,
                        tuple(item.buckets),
                        item.min,
                        item.max,
                    )
                    for values, item in self.histograms[spec.name].items()
                ]
            else:
                series = [
                    Series(tuple(zip(spec.labels, values, strict=True)), value)
                    for values, value in self.values[spec.name].items()
                ]
            series.sort(key=lambda item: _label_order(item.labels))
            metrics.append(MetricData(spec, tuple(series)))
        run = RunInfo(
            trace_id=self.trace_id,
            head_hash=(self.last.hash if self.last is not None else GENESIS_HASH).hex(),
            entries=self.entries,
            complete=self.end_status is not None,
            status=status,
            seed=self.seed,
            target=self.target,
            policy=self.policy,
            node=self.node,
            last_time=self.last_time,
        )
        return Snapshot(
            run,
            tuple(metrics),
            tuple(spans),
            tuple(self.alerts),
            self.thresholds,
            self.spans_dropped,
            self.alerts_dropped,
        )
