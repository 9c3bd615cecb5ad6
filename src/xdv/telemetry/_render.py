"""One entry point for every output format, and the schema as a document."""

from __future__ import annotations

from typing import Any

from xdv.errors import ErrorCode
from xdv.telemetry._otlp import to_otlp_json
from xdv.telemetry._prometheus import to_prometheus
from xdv.telemetry._schema import SCHEMA, SCHEMA_VERSION
from xdv.telemetry._snapshot import Alert, Snapshot, canonical_json
from xdv.telemetry._thresholds import TelemetryError, Thresholds

__all__ = ["FORMATS", "alerts", "alerts_jsonl", "check_format", "render", "schema_json"]

FORMATS = ("prometheus", "otlp-json", "snapshot")
"""The output formats of :func:`render` (and ``xdv telemetry --format``)."""


def check_format(format_name: str) -> str:
    """``format_name`` if it is one of :data:`FORMATS`, else TELEMETRY_FORMAT_UNKNOWN."""
    if format_name not in FORMATS:
        raise TelemetryError(
            f"unknown telemetry format {format_name!r}; known: {', '.join(FORMATS)}",
            code=ErrorCode.TELEMETRY_FORMAT_UNKNOWN,
            where="format",
        )
    return format_name


def render(snapshot: Snapshot, format_name: str) -> str:
    """The snapshot in ``format_name`` (one of :data:`FORMATS`); TELEMETRY_FORMAT_UNKNOWN for
    anything else."""
    check_format(format_name)
    if format_name == "prometheus":
        return to_prometheus(snapshot)
    if format_name == "otlp-json":
        return to_otlp_json(snapshot)
    return snapshot.to_bytes().decode("utf-8")


def alerts(source: Any, thresholds: Thresholds | None = None) -> tuple[Alert, ...]:
    """The threshold alerts of a snapshot, or of a trace (path or bytes) under ``thresholds``,
    in trace order (by the entry that fired them)."""
    if isinstance(source, Snapshot):
        return source.alerts
    from xdv.telemetry._derive import metrics_from_trace

    return metrics_from_trace(source, thresholds=thresholds).alerts


def alerts_jsonl(snapshot: Snapshot) -> str:
    """The snapshot's alerts as JSON lines (sorted keys), one alert a line."""
    return "".join(
        canonical_json(alert.to_json()).decode("utf-8") + "\n" for alert in snapshot.alerts
    )


def schema_json() -> dict[str, Any]:
    """The metric schema as a JSON document (pinned by a golden file)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "metrics": [spec.to_json() for spec in SCHEMA],
        "thresholds": Thresholds().to_json(),
    }
