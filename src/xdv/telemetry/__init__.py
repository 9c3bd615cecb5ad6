"""Telemetry derived from traces (XDV-070, XDV-072): a documented metric schema per domain,
threshold alerts, spans in logical time, and their export as Prometheus text, OTLP/JSON and
OTLP/HTTP.

Everything here is a pure function of a trace's bytes: :func:`metrics_from_trace` walks a trace
once and returns a :class:`Snapshot` (metrics, spans, alerts) whose canonical bytes are the
same for the same trace; the exporters only format a snapshot. ``docs/telemetry.md`` documents
the schema, the alert rules, the formats and the mapping of logical time to timestamps.
"""

from xdv.telemetry._aggregate import AGGREGATES, Aggregate
from xdv.telemetry._derive import SPANS_MAX, iter_entries, metrics_from_entries, metrics_from_trace
from xdv.telemetry._otlp import (
    SCOPE,
    OtlpJsonLinesExporter,
    export_otlp,
    otlp_requests,
    to_metrics_data,
    to_otlp_json,
    to_spans,
)
from xdv.telemetry._prometheus import SnapshotCollector, metric_families, to_prometheus
from xdv.telemetry._render import (
    FORMATS,
    alerts,
    alerts_jsonl,
    check_format,
    render,
    schema_json,
)
from xdv.telemetry._schema import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    SCHEMA,
    SCHEMA_VERSION,
    SERIES_PER_METRIC_MAX,
    MetricSpec,
    metric_spec,
)
from xdv.telemetry._snapshot import (
    Alert,
    HistogramSeries,
    MetricData,
    RunInfo,
    Series,
    Snapshot,
    Span,
)
from xdv.telemetry._thresholds import TelemetryError, Thresholds, load_thresholds

__all__ = [
    "AGGREGATES",
    "COUNTER",
    "FORMATS",
    "GAUGE",
    "HISTOGRAM",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SCOPE",
    "SERIES_PER_METRIC_MAX",
    "SPANS_MAX",
    "Aggregate",
    "Alert",
    "HistogramSeries",
    "MetricData",
    "MetricSpec",
    "OtlpJsonLinesExporter",
    "RunInfo",
    "Series",
    "Snapshot",
    "SnapshotCollector",
    "Span",
    "TelemetryError",
    "Thresholds",
    "alerts",
    "alerts_jsonl",
    "check_format",
    "export_otlp",
    "iter_entries",
    "load_thresholds",
    "metric_families",
    "metric_spec",
    "metrics_from_entries",
    "metrics_from_trace",
    "otlp_requests",
    "render",
    "schema_json",
    "to_metrics_data",
    "to_otlp_json",
    "to_prometheus",
    "to_spans",
]
