"""Merging the snapshots of many traces into a few labelled totals (the node's ``/metrics``):
each trace is counted once, by its head hash, and only its snapshot is kept in the totals, so a
scrape never reads a trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from xdv.telemetry._snapshot import HistogramSeries, Snapshot

__all__ = ["AGGREGATES", "Aggregate"]

AGGREGATES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("xdv_traced_jobs_total", "xdv_run_info", (), "Finished jobs whose traces were measured"),
    ("xdv_traced_entries_total", "xdv_trace_entries_total", (), "Trace entries of those jobs"),
    ("xdv_traced_steps_total", "xdv_run_steps_total", (), "Kernel steps of those jobs"),
    (
        "xdv_traced_invocations_total",
        "xdv_invocations_total",
        ("domain", "status"),
        "Domain invocations, by domain and outcome",
    ),
    ("xdv_traced_q_jobs_total", "xdv_q_jobs_total", ("status",), "Q jobs, by outcome"),
    ("xdv_traced_q_shots_total", "xdv_q_shots_total", (), "Shots of the Q jobs that ran"),
    (
        "xdv_traced_phi_transforms_total",
        "xdv_phi_transforms_total",
        ("status",),
        "Φ transforms, by outcome",
    ),
    ("xdv_traced_faults_total", "xdv_faults_total", ("domain",), "Faults, by domain"),
    (
        "xdv_traced_escalations_total",
        "xdv_faults_escalated_total",
        ("domain", "level"),
        "Fault escalations, by domain and level",
    ),
    (
        "xdv_traced_denials_total",
        "xdv_security_denials_total",
        ("domain",),
        "Refused derivations and operator actions",
    ),
    (
        "xdv_traced_refusals_total",
        "xdv_security_refusals_total",
        ("domain",),
        "Failed system calls, by domain",
    ),
    ("xdv_traced_alerts_total", "xdv_alerts_total", ("rule",), "Threshold alerts, by rule"),
)
"""The totals: (exported name, snapshot metric summed, its labels kept, description). Every
total also carries the aggregate's own labels (the node uses ``tenant``) in front."""


class Aggregate(Collector):
    """Totals over many snapshots, labelled by ``labels`` (for instance ``("tenant",)``), as
    a prometheus_client collector. Thread-safe; each trace counts once, by the key it is
    added under (its head hash by default; a node uses the job id, so two jobs that ran the
    same work, and so wrote identical traces, both count)."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._totals: dict[str, dict[tuple[str, ...], float]] = {
            name: {} for name, *_ in AGGREGATES
        }

    def add(self, snapshot: Snapshot, *values: str, key: str | None = None) -> bool:
        """Count ``snapshot`` under the label ``values``; False if ``key`` (by default the
        trace's head hash) was counted already."""
        if len(values) != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} label values, got {len(values)}")
        key = snapshot.run.head_hash if key is None else key
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            for name, source, kept, _ in AGGREGATES:
                table = self._totals[name]
                for item in snapshot.metric(source).series:
                    labels = dict(item.labels)
                    group = (*values, *(labels[label] for label in kept))
                    amount = item.count if isinstance(item, HistogramSeries) else item.value
                    table[group] = table.get(group, 0) + amount
        return True

    def seen(self, key: str) -> bool:
        """Whether a trace was counted under ``key``."""
        with self._lock:
            return key in self._seen

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            totals = {name: dict(table) for name, table in self._totals.items()}
            traces = len(self._seen)
        yield GaugeMetricFamily(
            "xdv_traced_traces", "Traces measured since the server started (one per job)", traces
        )
        for name, _, kept, description in AGGREGATES:
            family = CounterMetricFamily(name, description, labels=[*self.labels, *kept])
            for group in sorted(totals[name]):
                family.add_metric(list(group), totals[name][group])
            yield family
