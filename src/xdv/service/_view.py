"""The node's ``/view``: XDV View over a tenant's own jobs, behind the tenant's token.

The view itself lives in :mod:`xdv.view` (imported here, when the application is built); this
module only connects it to the node: a token is checked on the gatekeeper's validation path
with the READ right (a read-only token is enough) and the tenant's rate limit, and a job of
another tenant is unknown (404), as in the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xdv.errors import ErrorCode
from xdv.service._errors import ServiceError
from xdv.service._tenants import READ

if TYPE_CHECKING:
    from fastapi import FastAPI

    from xdv.service._app import NodeService

__all__ = ["VIEW_JOBS_MAX", "mount_view"]

VIEW_JOBS_MAX = 200


def mount_view(app: FastAPI, service: NodeService) -> None:
    """Add ``/view`` to the node's application."""
    from xdv.view import mount_node_view

    def authenticate(token: str) -> tuple[int, str]:
        principal = service.gate.check(f"Bearer {token}", READ)
        service.rates.take(principal, principal.rate, principal.burst)
        return principal.tenant, principal.name

    def jobs_of(tenant: int) -> list[dict[str, Any]]:
        return service.store.jobs(tenant, None, VIEW_JOBS_MAX)

    def trace_of(tenant: int, job_id: str) -> tuple[Path, Path | None]:
        job = service.store.job(job_id, tenant) if len(job_id) <= 64 else None
        row = None if job is None else service.store.trace_row(job_id)
        if job is None:
            raise ServiceError(
                f"no job {job_id[:64]!r}", code=ErrorCode.SERVICE_JOB_UNKNOWN, where="job"
            )
        path = None if row is None else row.get("path")
        if path is None or not Path(path).is_file():
            raise ServiceError(
                f"job {job_id} has no trace (state {job['state']})",
                code=ErrorCode.SERVICE_TRACE_UNAVAILABLE,
                where=job_id,
            )
        audit = row.get("audit") if row is not None else None
        return Path(path), Path(audit) if audit and Path(audit).is_file() else None

    mount_node_view(app, authenticate=authenticate, jobs_of=jobs_of, trace_of=trace_of)
