"""The XDV node service: ``xdv serve``, its HTTP API, tenants, durable jobs and the client.

A node keeps its state under ``$XDV_HOME``: ``node.db`` (SQLite in WAL mode: tenants, the
tokens it issued, revocations, jobs, the trace index) and ``traces/`` (one folder per job with
its trace, audit file and witnesses). Tenants are VHMs of the node, authenticated by capability
tokens of the node's capability authority. Each job is one deterministic run through
:func:`xdv.runtime.run`, made by a bounded pool of runner processes in the order of the core's
weighted fair-share policy. ``docs/service.md`` describes the API, the state, the trust model
and the limits.
"""

from xdv.service._app import API_VERSION, NodeService, create_app, job_view, parse_submission
from xdv.service._boot import BOOT_DIRECTORY, boot_node, boot_number, quote_route
from xdv.service._client import DEFAULT_SERVER, ServiceClient, kind_for
from xdv.service._errors import ServiceError, error_body, status_for
from xdv.service._pool import LANES, RunnerPool, lane_of
from xdv.service._runner import execute, job_workload
from xdv.service._serve import DEFAULT_HOST, DEFAULT_PORT, serve
from xdv.service._store import FINISHED, JOB_KINDS, JOB_STATES, NodeStore
from xdv.service._tenants import (
    JOBS_RESOURCE,
    READ,
    SUBMIT,
    Gatekeeper,
    Principal,
    create_tenant,
    decode_token,
    encode_token,
    node_store,
    revoke,
    tenant_token,
)
from xdv.service._workloads import DPL_TARGET, NESTED_TARGET, dpl_job, nested_job

__all__ = [
    "API_VERSION",
    "BOOT_DIRECTORY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_SERVER",
    "DPL_TARGET",
    "FINISHED",
    "JOBS_RESOURCE",
    "JOB_KINDS",
    "JOB_STATES",
    "LANES",
    "NESTED_TARGET",
    "READ",
    "SUBMIT",
    "Gatekeeper",
    "NodeService",
    "NodeStore",
    "Principal",
    "RunnerPool",
    "ServiceClient",
    "ServiceError",
    "boot_node",
    "boot_number",
    "create_app",
    "create_tenant",
    "decode_token",
    "dpl_job",
    "encode_token",
    "error_body",
    "execute",
    "job_view",
    "job_workload",
    "kind_for",
    "lane_of",
    "nested_job",
    "node_store",
    "parse_submission",
    "quote_route",
    "revoke",
    "serve",
    "status_for",
    "tenant_token",
]
