"""Trace-derived metrics on the node's ``/metrics``: when a job finishes, its trace is measured
once (:func:`xdv.telemetry.metrics_from_trace`) and its snapshot added to per-tenant totals;
scrapes read the totals, never a trace."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from xdv.errors import XdvError

if TYPE_CHECKING:
    from xdv.service._store import NodeStore

__all__ = ["TraceTelemetry"]

_log = logging.getLogger(__name__)


class TraceTelemetry:
    """The per-tenant totals of the traces of finished jobs, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from xdv.telemetry import Aggregate

        self.aggregate = Aggregate(("tenant",))
        registry.register(self.aggregate)
        self.failures = Counter(
            "xdv_traced_failures",
            "Finished jobs whose trace could not be measured",
            registry=registry,
        )

    def job_finished(self, store: NodeStore, job: dict[str, Any] | None, job_id: str) -> None:
        """Measure the finished job's trace (once per job) and add it to its tenant's totals.
        A job without a trace adds nothing; a trace that cannot be read is counted as a
        failure and never fails the job."""
        from xdv.telemetry import metrics_from_trace

        row = store.trace_row(job_id)
        if job is None or row is None or not row.get("path"):
            return
        if self.aggregate.seen(job_id):
            return
        tenant = store.tenant_by_id(int(job["tenant"]))
        name = str(tenant["name"]) if tenant is not None else str(job["tenant"])
        try:
            snapshot = metrics_from_trace(Path(row["path"]), allow_open=True)
        except (XdvError, OSError) as error:
            _log.warning("telemetry of job %s: %s", job_id, error)
            self.failures.inc()
            return
        self.aggregate.add(snapshot, name, key=job_id)
