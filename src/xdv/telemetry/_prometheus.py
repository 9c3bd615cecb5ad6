"""Prometheus text exposition of a snapshot, through prometheus_client: a custom collector
that yields the snapshot's metric families in schema order, series sorted by labels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from xdv.telemetry._schema import COUNTER, HISTOGRAM
from xdv.telemetry._snapshot import HistogramSeries, MetricData, Series, Snapshot

__all__ = ["SnapshotCollector", "metric_families", "to_prometheus"]

# Prometheus's own spelling of a bucket bound (`0.1`, `1.0`, `1e+06`).
_go_float = cast(Callable[[float], str], floatToGoString)


def metric_families(
    metrics: Iterable[MetricData], extra_labels: tuple[tuple[str, str], ...] = ()
) -> Iterator[Metric]:
    """The Prometheus metric families of ``metrics`` (in the given order), with
    ``extra_labels`` put in front of every series' labels."""
    extra_names = [name for name, _ in extra_labels]
    extra_values = [value for _, value in extra_labels]
    for data in metrics:
        spec = data.spec
        names = extra_names + list(spec.labels)
        family: CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
        if spec.kind == HISTOGRAM:
            family = HistogramMetricFamily(spec.name, spec.description, labels=names)
            for item in data.series:
                assert isinstance(item, HistogramSeries)
                cumulative, buckets = 0, []
                for bound, count in zip(spec.buckets, item.bucket_counts, strict=False):
                    cumulative += count
                    buckets.append((_go_float(bound), float(cumulative)))
                buckets.append(("+Inf", float(item.count)))
                family.add_metric(
                    extra_values + [value for _, value in item.labels], buckets, item.sum
                )
        else:
            kind = CounterMetricFamily if spec.kind == COUNTER else GaugeMetricFamily
            family = kind(spec.name, spec.description, labels=names)
            for item in data.series:
                assert isinstance(item, Series)
                family.add_metric(extra_values + [value for _, value in item.labels], item.value)
        yield family


class SnapshotCollector(Collector):
    """A prometheus_client collector over one snapshot (register it in a
    :class:`~prometheus_client.CollectorRegistry`)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        return metric_families(self.snapshot.metrics)


def to_prometheus(snapshot: Snapshot) -> str:
    """The snapshot in the Prometheus text exposition format (version 0.0.4): every metric of
    the schema in schema order (HELP and TYPE even when it has no series), series sorted."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry).decode("utf-8")
