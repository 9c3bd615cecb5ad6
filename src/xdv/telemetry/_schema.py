"""The metric schema: every metric XDV derives from a trace, with its kind, unit, labels and
the event types it is counted from. The schema is data (``SCHEMA``), documented in
``docs/telemetry.md`` and pinned by a golden file, so that a change to it is visible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SERIES_PER_METRIC_MAX",
    "MetricSpec",
    "metric_spec",
]

SCHEMA_VERSION = 1
"""Bumped whenever a metric is renamed, removed, or changes kind, unit or labels."""

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

SERIES_PER_METRIC_MAX = 256
"""The most label sets one metric keeps. Label sets first seen after the limit (in trace order)
are folded into one series whose label values are all ``_other``, so a trace with a million
processes or VHMs still gives a bounded snapshot."""

OTHER = "_other"

# Histogram bounds (upper bounds, inclusive; a last +Inf bucket is implied).
_TICKS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0)
_RATIO = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
_NANOSECONDS = (1e2, 1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 1e7)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of the schema.

    ``name`` is the exported name everywhere (Prometheus and OTLP); counters end in
    ``_total``. ``unit`` is a UCUM unit as OTLP carries it (``1``, ``ns``, ``{tick}``, ...).
    ``labels`` are the label names of every series, in order. ``domain`` is the domain the
    metric reports on (``K``, ``Q``, ``Φ``, ``O`` for the run and orchestration, ``S`` for
    security), ``category`` its category (performance, resource, stability, security, fault,
    scheduling), ``source`` the trace events it is derived from. ``buckets`` are a histogram's
    upper bounds.
    """

    name: str
    kind: str
    unit: str
    labels: tuple[str, ...]
    domain: str
    category: str
    description: str
    source: str
    buckets: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "labels": list(self.labels),
            "domain": self.domain,
            "category": self.category,
            "description": self.description,
            "source": self.source,
        }
        if self.buckets:
            record["buckets"] = list(self.buckets)
        return record


def _m(
    name: str,
    kind: str,
    unit: str,
    labels: tuple[str, ...],
    domain: str,
    category: str,
    description: str,
    source: str,
    buckets: tuple[float, ...] = (),
) -> MetricSpec:
    return MetricSpec(name, kind, unit, labels, domain, category, description, source, buckets)


C, G, H = COUNTER, GAUGE, HISTOGRAM

SCHEMA: tuple[MetricSpec, ...] = (
    # The run.
    _m(
        "xdv_trace_entries_total",
        C,
        "{entry}",
        (),
        "O",
        "performance",
        "Entries in the trace",
        "every entry",
    ),
    _m(
        "xdv_run_logical_time",
        G,
        "{tick}",
        (),
        "O",
        "performance",
        "Logical time L of the last entry",
        "every entry",
    ),
    _m(
        "xdv_run_steps_total",
        C,
        "{step}",
        (),
        "O",
        "performance",
        "Steps the kernel dispatched (the run end's count)",
        "RUN_END",
    ),
    _m(
        "xdv_run_info",
        G,
        "1",
        ("status", "policy"),
        "O",
        "performance",
        "1, labelled with how the run ended (open: no run end) and its scheduler policy",
        "RUN_START, RUN_END",
    ),
    # K: processes, lifecycle and the scheduler.
    _m(
        "xdv_k_processes_created_total",
        C,
        "{process}",
        ("vhm",),
        "K",
        "resource",
        "Processes created",
        "PROCESS_CREATE (OK)",
    ),
    _m(
        "xdv_k_process_exits_total",
        C,
        "{process}",
        ("vhm", "status"),
        "K",
        "fault",
        "Processes ended, by exit status (OK or the failure code)",
        "PROCESS_EXIT",
    ),
    _m(
        "xdv_k_lifecycle_transitions_total",
        C,
        "{transition}",
        ("vhm", "state"),
        "K",
        "scheduling",
        "Process lifecycle moves, by the state entered",
        "PROCESS_STATE (OK)",
    ),
    _m(
        "xdv_k_scheduler_decisions_total",
        C,
        "{decision}",
        ("vhm", "decision"),
        "K",
        "scheduling",
        "Scheduler decisions: dispatch, sleep, yield, preempt, wait, wake",
        "DISPATCH, SLEEP, YIELD, PREEMPT, WAIT, WAKE",
    ),
    _m(
        "xdv_k_context_switches_total",
        C,
        "{switch}",
        ("vhm",),
        "K",
        "scheduling",
        "Context switches (DISPATCH, and a SLEEP of a process that was not running)",
        "DISPATCH, SLEEP",
    ),
    _m(
        "xdv_k_steps_total",
        C,
        "{step}",
        ("vhm", "process"),
        "K",
        "performance",
        "Slices started per process (context switches onto it)",
        "DISPATCH, SLEEP",
    ),
    _m(
        "xdv_k_admissions_total",
        C,
        "{request}",
        ("vhm", "domain", "outcome"),
        "K",
        "scheduling",
        "Admission queue events: wait, grant, timeout, cancel",
        "ADMISSION_WAIT/GRANT/TIMEOUT/CANCEL",
    ),
    _m(
        "xdv_k_queue_wait",
        H,
        "{tick}",
        ("vhm", "domain"),
        "K",
        "scheduling",
        "Logical steps a reservation waited in the admission queue",
        "ADMISSION_GRANT/TIMEOUT/CANCEL `waited`",
        _TICKS,
    ),
    _m(
        "xdv_k_effects_total",
        C,
        "{effect}",
        ("vhm",),
        "K",
        "performance",
        "Values emitted (Emit)",
        "EFFECT (OK)",
    ),
    _m(
        "xdv_k_channel_messages_total",
        C,
        "{message}",
        ("vhm",),
        "K",
        "performance",
        "Messages sent on channels",
        "CHANNEL_SEND (OK)",
    ),
    _m(
        "xdv_k_channel_bytes_total",
        C,
        "By",
        ("vhm",),
        "K",
        "performance",
        "Payload bytes sent on channels",
        "CHANNEL_SEND `bytes`",
    ),
    _m(
        "xdv_vhm_quota_denials_total",
        C,
        "{denial}",
        ("vhm", "quota"),
        "O",
        "resource",
        "Quota refusals, by the VHM whose quota was full",
        "VHM_DENY",
    ),
    # Every domain: contracts and invocations.
    _m(
        "xdv_contracts_reserved_total",
        C,
        "{contract}",
        ("vhm", "domain"),
        "O",
        "resource",
        "Resource contracts granted",
        "RESOURCE_RESERVE (OK)",
    ),
    _m(
        "xdv_contracts_released_total",
        C,
        "{contract}",
        ("vhm", "domain", "reason"),
        "O",
        "resource",
        "Resource contracts released",
        "RESOURCE_RELEASE (OK)",
    ),
    _m(
        "xdv_invocations_total",
        C,
        "{invocation}",
        ("vhm", "domain", "status"),
        "O",
        "performance",
        "Domain invocations, by outcome (OK or the failure code)",
        "DOMAIN_RESULT; DOMAIN_INVOKE that failed",
    ),
    _m(
        "xdv_invocation_latency",
        H,
        "{tick}",
        ("domain",),
        "O",
        "performance",
        "Logical steps from a domain invocation to its result",
        "DOMAIN_INVOKE → DOMAIN_RESULT",
        _TICKS,
    ),
    _m(
        "xdv_transitions_total",
        C,
        "{transition}",
        ("domain", "outcome"),
        "O",
        "scheduling",
        "Domain transitions, committed or rolled back",
        "TRANSITION_COMMIT/ROLLBACK",
    ),
    # Q.
    _m(
        "xdv_q_jobs_total",
        C,
        "{job}",
        ("vhm", "calibration", "status"),
        "Q",
        "performance",
        "Q jobs, by calibration profile and outcome",
        "DOMAIN_RESULT (Q, op run)",
    ),
    _m(
        "xdv_q_shots_total",
        C,
        "{shot}",
        ("vhm", "calibration"),
        "Q",
        "performance",
        "Shots of the Q jobs that ran",
        "DOMAIN_RESULT `shots`",
    ),
    _m(
        "xdv_q_containers_total",
        C,
        "{container}",
        ("vhm", "calibration"),
        "Q",
        "resource",
        "Q containers (qubit reservations) granted",
        "RESOURCE_RESERVE (Q)",
    ),
    _m(
        "xdv_q_fidelity_estimated",
        H,
        "1",
        ("calibration",),
        "Q",
        "stability",
        "Estimated success probability of each job",
        "DOMAIN_RESULT `diagnostics.fidelity`",
        _RATIO,
    ),
    _m(
        "xdv_q_fidelity_estimated_min",
        G,
        "1",
        ("calibration",),
        "Q",
        "stability",
        "Lowest estimated fidelity of a job",
        "DOMAIN_RESULT `diagnostics.fidelity`",
    ),
    _m(
        "xdv_q_decoherence_margin_min",
        G,
        "ns",
        ("calibration", "kind"),
        "Q",
        "stability",
        "Smallest T1 (kind t1) or T2 (kind t2) margin of a job",
        "DOMAIN_RESULT `diagnostics.t1_margin_ns`, `t2_margin_ns`",
    ),
    _m(
        "xdv_q_t1_margin",
        H,
        "ns",
        ("calibration",),
        "Q",
        "stability",
        "T1 margin of each job",
        "DOMAIN_RESULT `diagnostics.t1_margin_ns`",
        _NANOSECONDS,
    ),
    _m(
        "xdv_q_t2_margin",
        H,
        "ns",
        ("calibration",),
        "Q",
        "stability",
        "T2 margin of each job",
        "DOMAIN_RESULT `diagnostics.t2_margin_ns`",
        _NANOSECONDS,
    ),
    _m(
        "xdv_q_decoherence_budget_used",
        H,
        "1",
        ("calibration",),
        "Q",
        "stability",
        "Estimated duration over budgeted duration, per job",
        "DOMAIN_RESULT `diagnostics.duration_ns / duration_ns_budget`",
        _RATIO,
    ),
    _m(
        "xdv_q_readout_error_max",
        G,
        "1",
        ("calibration",),
        "Q",
        "stability",
        "Worst readout error of a job's measured qubits",
        "DOMAIN_RESULT `diagnostics`",
    ),
    _m(
        "xdv_q_calibration_info",
        G,
        "1",
        ("calibration", "digest"),
        "Q",
        "resource",
        "1 per calibration contract profile used, with its digest",
        "RESOURCE_RESERVE (Q)",
    ),
    # Φ.
    _m(
        "xdv_phi_windows_total",
        C,
        "{window}",
        ("vhm", "provider"),
        "Φ",
        "resource",
        "Coherence windows (envelope contracts) granted",
        "RESOURCE_RESERVE (Φ)",
    ),
    _m(
        "xdv_phi_window_duration",
        H,
        "{tick}",
        ("provider",),
        "Φ",
        "resource",
        "Length of each coherence window",
        "RESOURCE_RESERVE `terms.window.duration`",
        _TICKS,
    ),
    _m(
        "xdv_phi_transforms_total",
        C,
        "{transform}",
        ("vhm", "op", "status"),
        "Φ",
        "performance",
        "Φ transforms, by operation and outcome",
        "DOMAIN_RESULT (Φ)",
    ),
    _m(
        "xdv_phi_stability",
        H,
        "1",
        ("provider",),
        "Φ",
        "stability",
        "Stability level after each transform",
        "DOMAIN_RESULT `stability.stability`",
        _RATIO,
    ),
    _m(
        "xdv_phi_stability_min",
        G,
        "1",
        ("provider",),
        "Φ",
        "stability",
        "Lowest stability level after a transform",
        "DOMAIN_RESULT `stability.stability`",
    ),
    _m(
        "xdv_phi_noise_index_max",
        G,
        "1",
        ("provider",),
        "Φ",
        "stability",
        "Highest noise index after a transform",
        "DOMAIN_RESULT `stability.noise_index`",
    ),
    _m(
        "xdv_phi_drift_max",
        G,
        "rad",
        ("provider",),
        "Φ",
        "stability",
        "Largest drift after a transform",
        "DOMAIN_RESULT `stability.drift`",
    ),
    _m(
        "xdv_phi_coherence_violations_total",
        C,
        "{violation}",
        ("vhm", "code"),
        "Φ",
        "stability",
        "Coherence timeouts and stability breaches",
        "DOMAIN_RESULT (Φ) with status PHI_ERR_COHERENCE_TIMEOUT or PHI_ERR_STABILITY_BREACH",
    ),
    # Security.
    _m(
        "xdv_security_grants_total",
        C,
        "{capability}",
        ("domain",),
        "S",
        "security",
        "Capabilities granted",
        "CAPABILITY_GRANT",
    ),
    _m(
        "xdv_security_revocations_total",
        C,
        "{capability}",
        ("reason",),
        "S",
        "security",
        "Capabilities revoked (each revoked id counts), by reason: exit, dropped, operator",
        "CAPABILITY_REVOKE `ids`",
    ),
    _m(
        "xdv_security_denials_total",
        C,
        "{denial}",
        ("domain", "code"),
        "S",
        "security",
        "Refused derivations and operator actions",
        "CAPABILITY_DENY",
    ),
    _m(
        "xdv_security_refusals_total",
        C,
        "{refusal}",
        ("domain", "code"),
        "S",
        "security",
        "Failed system calls and refused requests, by error code",
        "a failed system call: a non-OK status under the call's event type (trace-format §7.2)",
    ),
    _m(
        "xdv_security_attestations_total",
        C,
        "{attestation}",
        ("domain", "status"),
        "S",
        "security",
        "Provider attestation verdicts",
        "ATTESTATION",
    ),
    _m(
        "xdv_security_freezes_total",
        C,
        "{freeze}",
        ("domain",),
        "S",
        "security",
        "Domains frozen",
        "DOMAIN_FREEZE (OK)",
    ),
    # Faults and escalations.
    _m(
        "xdv_faults_total",
        C,
        "{fault}",
        ("domain", "class"),
        "O",
        "fault",
        "Process and setup faults, by fault class",
        "FAULT",
    ),
    _m(
        "xdv_faults_detected_total",
        C,
        "{fault}",
        ("domain", "class", "source"),
        "O",
        "fault",
        "Faults detected in domain outcomes or injected by a plan",
        "FAULT_DETECTED",
    ),
    _m(
        "xdv_faults_contained_total",
        C,
        "{fault}",
        ("domain", "class"),
        "O",
        "fault",
        "Faults contained",
        "FAULT_CONTAINED",
    ),
    _m(
        "xdv_faults_escalated_total",
        C,
        "{escalation}",
        ("domain", "class", "level"),
        "O",
        "fault",
        "Fault escalations, by level (domain, vhm, node)",
        "FAULT_ESCALATED",
    ),
    _m(
        "xdv_recoveries_total",
        C,
        "{recovery}",
        ("kind",),
        "O",
        "fault",
        "Recovery actions: retry, fallback, restart, failed",
        "RECOVERY_RETRY/FALLBACK/RESTART/FAILED",
    ),
    _m("xdv_node_panics_total", C, "{panic}", (), "O", "fault", "Node panics", "NODE_PANIC"),
    # Alerts.
    _m(
        "xdv_alerts_total",
        C,
        "{alert}",
        ("rule", "severity"),
        "O",
        "stability",
        "Threshold alerts fired (docs/telemetry.md, alerts)",
        "the alert rules",
    ),
)

_BY_NAME = {spec.name: spec for spec in SCHEMA}
assert len(_BY_NAME) == len(SCHEMA), "metric names are unique"


def metric_spec(name: str) -> MetricSpec:
    """The schema entry of the metric ``name`` (KeyError if there is none)."""
    return _BY_NAME[name]
