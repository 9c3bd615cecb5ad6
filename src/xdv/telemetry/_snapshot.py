"""The snapshot: every metric, span and alert derived from one trace, as immutable data with
one canonical JSON form (sorted keys, no spaces, UTF-8), so equal traces give equal bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from xdv.errors import ErrorCode
from xdv.telemetry._schema import HISTOGRAM, SCHEMA_VERSION, MetricSpec, metric_spec
from xdv.telemetry._thresholds import TelemetryError, Thresholds

__all__ = [
    "Alert",
    "HistogramSeries",
    "MetricData",
    "RunInfo",
    "Series",
    "Snapshot",
    "Span",
]

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Series:
    """One counter or gauge series: its labels (name, value pairs in the schema's order)."""

    labels: Labels
    value: int | float

    def to_json(self) -> dict[str, Any]:
        return {"labels": dict(self.labels), "value": self.value}


@dataclass(frozen=True, slots=True)
class HistogramSeries:
    """One histogram series: ``bucket_counts[i]`` counts the values in bucket ``i`` (not
    cumulative; the last bucket is above the last bound)."""

    labels: Labels
    count: int
    sum: float
    bucket_counts: tuple[int, ...]
    min: float
    max: float

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": dict(self.labels),
            "count": self.count,
            "sum": self.sum,
            "buckets": list(self.bucket_counts),
            "min": self.min,
            "max": self.max,
        }


@dataclass(frozen=True, slots=True)
class MetricData:
    """A metric of the schema and its series, sorted by label values."""

    spec: MetricSpec
    series: tuple[Series | HistogramSeries, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.spec.name, "series": [item.to_json() for item in self.series]}


@dataclass(frozen=True, slots=True)
class Span:
    """A span in logical time: a process's life (``kind`` ``process``) or one domain
    invocation (``invocation``; ``job`` for a Q job). ``start`` and ``end`` are logical times
    L; the OTLP export writes them as nanoseconds (``docs/telemetry.md``). ``status`` is ``OK``,
    the failure code's name, or ``UNSET`` for a span the trace never closed."""

    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start: int
    end: int
    status: str
    attributes: tuple[tuple[str, str | int | float | bool], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold alert: the rule that fired, at which entry (``seq``) and logical time, for
    which VHM, process and contract, the value and the bound it crossed."""

    rule: str
    severity: str
    domain: str
    logical_time: int
    seq: int
    vhm: int
    process: int
    contract: int
    value: float
    threshold: float
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "domain": self.domain,
            "L": self.logical_time,
            "seq": self.seq,
            "vhm": self.vhm,
            "process": self.process,
            "contract": self.contract,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the snapshot is of: the trace's identity and how its run ended."""

    trace_id: str
    head_hash: str
    entries: int
    complete: bool
    status: str
    seed: int
    target: str
    policy: str
    node: int
    last_time: int

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "head_hash": self.head_hash,
            "entries": self.entries,
            "complete": self.complete,
            "status": self.status,
            "seed": self.seed,
            "target": self.target,
            "policy": self.policy,
            "node": self.node,
            "last_time": self.last_time,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything telemetry derives from one trace: a pure function of the trace's bytes and
    the thresholds. :meth:`to_bytes` is its canonical form."""

    run: RunInfo
    metrics: tuple[MetricData, ...]
    spans: tuple[Span, ...]
    alerts: tuple[Alert, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    spans_dropped: int = 0
    alerts_dropped: int = 0

    def metric(self, name: str) -> MetricData:
        """The metric ``name`` (KeyError if the schema has none)."""
        for data in self.metrics:
            if data.spec.name == name:
                return data
        raise KeyError(name)

    def value(self, name: str, **labels: str) -> int | float:
        """The sum of the values (counts, for a histogram) of the series of ``name`` whose
        labels include ``labels``; 0 when none does."""
        total: int | float = 0
        for item in self.metric(name).series:
            found = dict(item.labels)
            if all(found.get(key) == value for key, value in labels.items()):
                total += item.count if isinstance(item, HistogramSeries) else item.value
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run": self.run.to_json(),
            "thresholds": self.thresholds.to_json(),
            "metrics": [data.to_json() for data in self.metrics],
            "spans": [span.to_json() for span in self.spans],
            "spans_dropped": self.spans_dropped,
            "alerts": [alert.to_json() for alert in self.alerts],
            "alerts_dropped": self.alerts_dropped,
        }

    def to_bytes(self) -> bytes:
        """The canonical JSON form: sorted keys, no spaces, UTF-8, a final newline."""
        return canonical_json(self.to_json()) + b"\n"

    @classmethod
    def from_json(cls, document: Any) -> Snapshot:
        """Rebuild a snapshot from :meth:`to_json` output (TELEMETRY_SNAPSHOT_INVALID if it is
        not one)."""
        try:
            if document["schema_version"] != SCHEMA_VERSION:
                raise ValueError(f"schema version {document['schema_version']!r}")
            metrics = []
            for item in document["metrics"]:
                spec = metric_spec(item["name"])
                series: list[Series | HistogramSeries] = []
                for raw in item["series"]:
                    labels = tuple((name, str(raw["labels"][name])) for name in spec.labels)
                    if spec.kind == HISTOGRAM:
                        series.append(
                            HistogramSeries(
                                labels,
                                int(raw["count"]),
                                float(raw["sum"]),
                                tuple(int(count) for count in raw["buckets"]),
                                float(raw["min"]),
                                float(raw["max"]),
                            )
                        )
                    else:
                        series.append(Series(labels, raw["value"]))
                metrics.append(MetricData(spec, tuple(series)))
            spans = tuple(
                Span(
                    raw["span_id"],
                    raw["parent_id"],
                    raw["name"],
                    raw["kind"],
                    int(raw["start"]),
                    int(raw["end"]),
                    raw["status"],
                    tuple(sorted(raw["attributes"].items())),
                )
                for raw in document["spans"]
            )
            alerts = tuple(
                Alert(
                    raw["rule"],
                    raw["severity"],
                    raw["domain"],
                    int(raw["L"]),
                    int(raw["seq"]),
                    int(raw["vhm"]),
                    int(raw["process"]),
                    int(raw["contract"]),
                    raw["value"],
                    raw["threshold"],
                    raw["message"],
                )
                for raw in document["alerts"]
            )
            return cls(
                RunInfo(**document["run"]),
                tuple(metrics),
                spans,
                alerts,
                Thresholds(**document["thresholds"]),
                int(document["spans_dropped"]),
                int(document["alerts_dropped"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise TelemetryError(
                f"not a telemetry snapshot ({type(error).__name__}: {error})",
                code=ErrorCode.TELEMETRY_SNAPSHOT_INVALID,
                where="snapshot",
            ) from None


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no insignificant spaces, UTF-8 (``Φ`` as itself)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
