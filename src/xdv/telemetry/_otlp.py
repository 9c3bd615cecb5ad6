"""OpenTelemetry export of a snapshot: the SDK's metric and span data objects with explicit
logical timestamps, encoded by the OTLP protobuf encoders, written as OTLP/JSON lines or sent
to an OTLP/HTTP endpoint.

Logical time maps to timestamps as ``time_unix_nano = L``: one logical tick is one nanosecond
after the Unix epoch. Wall time never enters. Cumulative sums and histograms start at 0 and are
stamped with the trace's last logical time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from xdv.errors import ErrorCode
from xdv.telemetry._schema import COUNTER, GAUGE, SCHEMA_VERSION
from xdv.telemetry._snapshot import HistogramSeries, Series, Snapshot, canonical_json
from xdv.telemetry._thresholds import TelemetryError

__all__ = [
    "SCOPE",
    "OtlpJsonLinesExporter",
    "export_otlp",
    "otlp_requests",
    "to_metrics_data",
    "to_otlp_json",
    "to_spans",
]

SCOPE = InstrumentationScope("xdv.telemetry", str(SCHEMA_VERSION))
"""The instrumentation scope of every exported metric and span."""


def _resource(snapshot: Snapshot) -> Resource:
    run = snapshot.run
    return Resource(
        {
            "service.name": "xdv",
            "xdv.trace_id": run.trace_id,
            "xdv.head_hash": run.head_hash,
            "xdv.seed": run.seed,
            "xdv.node": run.node,
            "xdv.workload": run.target,
            "xdv.run.status": run.status,
            "xdv.entries": run.entries,
        }
    )


def to_metrics_data(snapshot: Snapshot) -> MetricsData:
    """The snapshot's metrics as OpenTelemetry SDK data (metrics without series left out)."""
    time = snapshot.run.last_time
    metrics: list[Metric] = []
    for data in snapshot.metrics:
        spec = data.spec
        if not data.series:
            continue
        payload: Sum | Gauge | Histogram
        if spec.kind in (COUNTER, GAUGE):
            points = [
                NumberDataPoint(dict(item.labels), 0, time, item.value)
                for item in data.series
                if isinstance(item, Series)
            ]
            payload = (
                Sum(points, AggregationTemporality.CUMULATIVE, True)
                if spec.kind == COUNTER
                else Gauge(points)
            )
        else:
            payload = Histogram(
                [
                    HistogramDataPoint(
                        dict(item.labels),
                        0,
                        time,
                        item.count,
                        item.sum,
                        list(item.bucket_counts),
                        list(spec.buckets),
                        item.min,
                        item.max,
                    )
                    for item in data.series
                    if isinstance(item, HistogramSeries)
                ],
                AggregationTemporality.CUMULATIVE,
            )
        metrics.append(Metric(spec.name, spec.description, spec.unit, payload))
    scope = ScopeMetrics(SCOPE, metrics, "")
    return MetricsData([ResourceMetrics(_resource(snapshot), [scope], "")])


def to_spans(snapshot: Snapshot) -> list[ReadableSpan]:
    """The snapshot's spans as OpenTelemetry SDK spans, timed in logical time (ns = L)."""
    trace_id = int(snapshot.run.trace_id or "0", 16)
    resource = _resource(snapshot)
    spans: list[ReadableSpan] = []
    for span in snapshot.spans:
        context = SpanContext(
            trace_id, int(span.span_id, 16), False, TraceFlags(TraceFlags.SAMPLED)
        )
        parent = (
            None
            if span.parent_id is None
            else SpanContext(
                trace_id, int(span.parent_id, 16), False, TraceFlags(TraceFlags.SAMPLED)
            )
        )
        if span.status == "OK":
            status = Status(StatusCode.OK)
        elif span.status == "UNSET":
            status = Status(StatusCode.UNSET)
        else:
            status = Status(StatusCode.ERROR, span.status)
        attributes: dict[str, Any] = {"xdv.kind": span.kind, **dict(span.attributes)}
        spans.append(
            ReadableSpan(
                span.name,
                context=context,
                parent=parent,
                resource=resource,
                attributes=attributes,
                kind=SpanKind.INTERNAL,
                status=status,
                start_time=span.start,
                end_time=span.end,
                instrumentation_scope=SCOPE,
            )
        )
    return spans


def otlp_requests(
    snapshot: Snapshot,
) -> tuple[ExportMetricsServiceRequest, ExportTraceServiceRequest]:
    """The OTLP export requests (protobuf) of the snapshot's metrics and spans."""
    return encode_metrics(to_metrics_data(snapshot)), encode_spans(to_spans(snapshot))


def to_otlp_json(snapshot: Snapshot) -> str:
    """The snapshot as OTLP/JSON lines: the metrics request, then the traces request, each one
    line of JSON with sorted keys (protobuf's JSON mapping: lowerCamelCase names, 64-bit
    integers as strings, ids in base64)."""
    return "".join(_json_line(request) for request in otlp_requests(snapshot))


def _check_endpoint(endpoint: str) -> str:
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise TelemetryError(
            f"the OTLP endpoint must be an http:// or https:// URL, got {endpoint!r}",
            code=ErrorCode.TELEMETRY_ENDPOINT_INVALID,
            where="endpoint",
        )
    return endpoint.rstrip("/")


def export_otlp(snapshot: Snapshot, endpoint: str, *, timeout: float = 10.0) -> dict[str, int]:
    """Send the snapshot's metrics and spans to an OTLP/HTTP receiver at ``endpoint`` (its base
    URL: ``/v1/metrics`` and ``/v1/traces`` are appended) with the SDK's OTLP/HTTP exporters.

    Returns how many metrics and spans were sent; TELEMETRY_EXPORT_FAILED when the receiver
    cannot be reached or refuses them.
    """
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    base = _check_endpoint(endpoint)
    metrics = to_metrics_data(snapshot)
    spans = to_spans(snapshot)
    metric_exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=timeout)
    span_exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout)
    # The exporters log and retry on their own; their result is what counts here.
    logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        sent_metrics = metric_exporter.export(metrics, timeout_millis=timeout * 1000)
        sent_spans = span_exporter.export(spans) if spans else SpanExportResult.SUCCESS
    finally:
        logger.setLevel(level)
        metric_exporter.shutdown()
        span_exporter.shutdown()  # type: ignore[no-untyped-call]
    if sent_metrics is not MetricExportResult.SUCCESS or sent_spans is not SpanExportResult.SUCCESS:
        failed = "metrics" if sent_metrics is not MetricExportResult.SUCCESS else "spans"
        raise TelemetryError(
            f"the OTLP receiver at {base} did not accept the {failed}",
            code=ErrorCode.TELEMETRY_EXPORT_FAILED,
            where=base,
        )
    count = sum(
        len(scope.metrics) for item in metrics.resource_metrics for scope in item.scope_metrics
    )
    return {"metrics": count, "spans": len(spans)}


def _json_line(request: ExportMetricsServiceRequest | ExportTraceServiceRequest) -> str:
    return canonical_json(MessageToDict(request)).decode("utf-8") + "\n"


class OtlpJsonLinesExporter(SpanExporter):
    """A file exporter: each export appends one OTLP/JSON line (an export request, keys
    sorted) to ``path``. It is an SDK span exporter (``export(spans)``) and exports metrics
    data too (:meth:`export_metrics`); :meth:`write` appends a whole snapshot (its metrics
    line, then its spans line), which is what ``to_otlp_json`` returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._append(_json_line(encode_spans(spans)))
        return SpanExportResult.SUCCESS

    def export_metrics(self, metrics_data: MetricsData) -> None:
        """Append the metrics export request of ``metrics_data``."""
        self._append(_json_line(encode_metrics(metrics_data)))

    def write(self, snapshot: Snapshot) -> None:
        """Append the snapshot: its metrics request line, then its spans request line."""
        self._append(to_otlp_json(snapshot))

    def shutdown(self) -> None:
        """Nothing to release: every export opens and closes the file."""
