"""The HTTP API of the node (FastAPI, under ``/v1``; ``docs/service.md`` documents it).

Every route but ``/v1/health``, ``/metrics`` and the API documents takes a bearer token and
checks it on the capability authority's validation path (:class:`~xdv.service.Gatekeeper`).
A job belongs to the tenant that submitted it: another tenant's job is answered as unknown
(404), never as forbidden, so job ids reveal nothing. Every refusal is a typed error body
``{"error": {"code", "number", "message", "where"}}`` with a 4xx status.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

import xdv.runtime
from xdv.errors import ErrorCode, XdvError
from xdv.inputs import limit, load_json
from xdv.service._boot import boot_node, quote_route
from xdv.service._errors import ServiceError, error_body, status_for
from xdv.service._pool import RunnerPool
from xdv.service._store import FINISHED, JOB_KINDS, JOB_STATES, NodeStore
from xdv.service._telemetry import TraceTelemetry
from xdv.service._tenants import READ, SUBMIT, Gatekeeper, Principal
from xdv.service._view import mount_view

__all__ = ["API_VERSION", "NodeService", "create_app"]

API_VERSION = "v1"
SEED_MAX = 2**63 - 1
IDEMPOTENCY_KEY_CHARS_MAX = 128

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What each kind's params may hold: name → (accepted types, check, what it means).
_NUMBER = (int, float)
_PARAMS: dict[str, dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]]] = {
    "dpl": {"entry": ((str,), lambda v: 0 < len(v) <= 256, "the K process to run")},
    "qasm": {
        "shots": ((int,), lambda v: 1 <= v <= 1_000_000, "an integer in [1, 1000000]"),
        "provider": ((str,), lambda v: v in ("aer", "stim"), '"aer" or "stim"'),
        "method": ((str,), lambda v: 0 < len(v) <= 64, "a simulation method"),
        "calibration": ((str,), lambda v: 0 < len(v) <= 128, "a calibration profile"),
        "noise": ((bool,), lambda v: True, "true or false"),
    },
    "bqm": {
        "provider": ((str,), lambda v: v in ("phase", "exact"), '"phase" or "exact"'),
        "budget_ms": (_NUMBER, lambda v: 0.001 <= v <= 1e6, "a number in [0.001, 1e6]"),
        "work_limit": (_NUMBER, lambda v: 0.001 <= v <= 600, "a number in [0.001, 600]"),
    },
    "python": {
        "entry": ((str,), lambda v: 0 < len(v) <= 256, "the workload function"),
        "cpu_s": (_NUMBER, lambda v: 0 < v <= 3600, "CPU seconds in (0, 3600]"),
        "memory_mb": ((int,), lambda v: 64 <= v <= 65536, "an integer in [64, 65536]"),
        "wall_s": (_NUMBER, lambda v: 0 < v <= 3600, "seconds in (0, 3600]"),
    },
}
_PARAMS["gset"] = _PARAMS["bqm"]
_FIELDS = ("kind", "source", "params", "seed", "idempotency_key")

_SUBMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "source"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": list(JOB_KINDS)},
        "source": {"type": "string", "description": "the program, circuit or problem text"},
        "params": {"type": "object", "description": "options of the kind (docs/service.md)"},
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX, "default": 0},
        "idempotency_key": {"type": ["string", "null"], "maxLength": IDEMPOTENCY_KEY_CHARS_MAX},
    },
}


def _invalid(
    message: str, where: str, code: ErrorCode = ErrorCode.SERVICE_REQUEST_INVALID
) -> ServiceError:
    return ServiceError(message, code=code, where=where)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def isolation_available() -> bool:
    """Whether the runtime runs Python workloads in a separate, limited worker process."""
    return hasattr(xdv.runtime, "WorkerLimits")


def parse_submission(body: bytes) -> dict[str, Any]:
    """The checked fields of a ``POST /v1/jobs`` body; a typed 4xx error for anything else."""
    if not body:
        raise _invalid("the request has no body (a JSON object)", "body")
    document = load_json(body, "body")
    if not isinstance(document, dict):
        raise _invalid(f"the body must be a JSON object, got {_type_name(document)}", "body")
    unknown = sorted(str(key) for key in document if key not in _FIELDS)
    if unknown:
        raise _invalid(f"unknown fields {unknown} (fields: {', '.join(_FIELDS)})", unknown[0])
    kind = document.get("kind")
    if not isinstance(kind, str):
        raise _invalid(f"kind must be text, got {_type_name(kind)}", "kind")
    if kind not in JOB_KINDS:
        raise _invalid(
            f"unknown job kind {kind[:64]!r} (kinds: {', '.join(JOB_KINDS)})",
            "kind",
            ErrorCode.SERVICE_KIND_UNKNOWN,
        )
    source = document.get("source")
    if not isinstance(source, str):
        raise _invalid(f"source must be text, got {_type_name(source)}", "source")
    params = document.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _invalid(f"params must be an object, got {_type_name(params)}", "params")
    allowed = _PARAMS[kind]
    for name, value in params.items():
        if name not in allowed:
            raise _invalid(
                f"{kind} jobs take no parameter {name[:64]!r} (they take: {', '.join(allowed)})",
                f"params.{name[:64]}",
            )
        types, check, meaning = allowed[name]
        if (type(value) is bool and bool not in types) or not isinstance(value, types):
            raise _invalid(f"params.{name} must be {meaning}", f"params.{name}")
        if not check(value):
            raise _invalid(f"params.{name} must be {meaning}", f"params.{name}")
    seed = document.get("seed", 0)
    if type(seed) is not int or not 0 <= seed <= SEED_MAX:
        raise _invalid("seed must be an integer in [0, 2**63)", "seed")
    key = document.get("idempotency_key")
    if key is not None and (
        not isinstance(key, str) or not 0 < len(key) <= IDEMPOTENCY_KEY_CHARS_MAX
    ):
        raise _invalid(
            f"idempotency_key must be text of 1 to {IDEMPOTENCY_KEY_CHARS_MAX} characters",
            "idempotency_key",
        )
    if kind == "python" and not isolation_available():
        raise _invalid(
            "python jobs need the process-isolated worker, which this node's runtime does not "
            "have; they are refused rather than run inside the node",
            "kind",
            ErrorCode.SERVICE_ISOLATION_UNAVAILABLE,
        )
    return {"kind": kind, "source": source, "params": params, "seed": seed, "key": key}


class _RateLimit:
    """A token bucket per tenant: ``rate`` requests a second, bursts of up to ``burst``."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, principal: Principal, rate: float, burst: int) -> None:
        now = time.monotonic()
        level, last = self._buckets.get(principal.tenant, (float(burst), now))
        level = min(float(burst), level + (now - last) * rate)
        if level < 1.0:
            self._buckets[principal.tenant] = (level, now)
            raise ServiceError(
                f"tenant {principal.name} is over its rate limit ({rate:g} requests/s, "
                f"burst {burst})",
                code=ErrorCode.SERVICE_RATE_LIMITED,
                where="rate limit",
                retry_after=max(1, int((1.0 - level) / rate + 0.999)),
            )
        self._buckets[principal.tenant] = (level - 1.0, now)


class _Metrics:
    def __init__(self, service: NodeService) -> None:
        self.registry = CollectorRegistry()
        self.submitted = Counter(
            "xdv_jobs_submitted", "Jobs acknowledged (committed)", ["kind"], registry=self.registry
        )
        self.finished = Counter(
            "xdv_jobs_finished",
            "Jobs that ended, by final state",
            ["state"],
            registry=self.registry,
        )
        self.refused = Counter(
            "xdv_requests_refused",
            "Requests refused, by error code",
            ["code"],
            registry=self.registry,
        )
        queued = Gauge("xdv_jobs_queued", "Jobs waiting for a runner", registry=self.registry)
        queued.set_function(service.pool.depth)
        running = Gauge("xdv_jobs_running", "Jobs being run", registry=self.registry)
        running.set_function(service.pool.running)
        restarts = Gauge("xdv_runner_restarts", "Runners replaced", registry=self.registry)
        restarts.set_function(lambda: service.pool.restarts)
        # Trace-derived totals per tenant (docs/telemetry.md, "/metrics").
        self.traced = TraceTelemetry(self.registry)


class NodeService:
    """The node: its database, the gatekeeper, the runner pool and the metrics."""

    def __init__(self, home: Path, *, runners: int = 2, durable: bool = False) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        (home / "traces").mkdir(exist_ok=True)
        self.store = NodeStore(home / "node.db", durable=durable)
        # Measured boot first: the capability authority exists only once the node's code,
        # configuration and providers are measured (docs/boot.md).
        self.boot = boot_node(home, options={"runners": runners, "durable": durable}, persist=True)
        self.gate = Gatekeeper(home, self.store, authority=self.boot.authority())
        self.pool = RunnerPool(self.store, home, runners, on_finish=self._finished)
        self.metrics = _Metrics(self)
        self.rates = _RateLimit()
        self._unfinished: dict[int, int] = {}
        self._lock = threading.Lock()
        self.recovered = 0

    def start(self) -> None:
        """Requeue what a previous server left unfinished, then start the runners."""
        self.recovered = self.store.recover()
        weights = {tenant["id"]: tenant["weight"] for tenant in self.store.tenants()}
        for job in self.store.unfinished_jobs():
            self._count(job["tenant"], 1)
            self.pool.enqueue(job, weights.get(job["tenant"], 1))
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def _count(self, tenant: int, delta: int) -> None:
        with self._lock:
            self._unfinished[tenant] = self._unfinished.get(tenant, 0) + delta

    def _finished(self, job_id: str, state: str, report: dict[str, Any]) -> None:
        job = self.store.job(job_id)
        if job is not None:
            self._count(job["tenant"], -1)
        self.metrics.finished.labels(state).inc()
        self.metrics.traced.job_finished(self.store, job, job_id)

    def authorize(self, request: Request, right: Any) -> Principal:
        principal = self.gate.check(request.headers.get("authorization"), right)
        self.rates.take(principal, principal.rate, principal.burst)
        return principal

    def submit(self, principal: Principal, body: bytes) -> tuple[dict[str, Any], bool]:
        fields = parse_submission(body)
        with self._lock:
            unfinished = self._unfinished.get(principal.tenant, 0)
        if unfinished >= limit("service_queued_jobs_max"):
            raise ServiceError(
                f"tenant {principal.name} has {unfinished} unfinished jobs, the most a tenant may "
                "have (service_queued_jobs_max)",
                code=ErrorCode.SERVICE_QUEUE_FULL,
                where="queue",
            )
        digest = hashlib.sha256(
            json.dumps(
                [fields["kind"], fields["source"], fields["params"], fields["seed"]],
                sort_keys=True,
            ).encode("utf-8")
        ).hexdigest()
        job = {
            "id": "j" + secrets.token_hex(8),
            "tenant": principal.tenant,
            "kind": fields["kind"],
            "source": fields["source"],
            "params": fields["params"],
            "seed": fields["seed"],
            "idempotency_key": fields["key"],
            "request_digest": digest,
            "submitted": time.time(),
        }
        stored, created = self.store.insert_job(job)
        if created:
            self._count(principal.tenant, 1)
            self.metrics.submitted.labels(job["kind"]).inc()
            self.pool.enqueue(stored, principal.weight)
        return stored, created

    def cancel(self, principal: Principal, job_id: str) -> dict[str, Any]:
        job = self._own(principal, job_id)
        if job["state"] in FINISHED:
            raise ServiceError(
                f"job {job_id} has already ended ({job['state']})",
                code=ErrorCode.SERVICE_JOB_FINISHED,
                where=job_id,
            )
        if self.store.cancel_queued(job_id):
            self.pool.withdraw(job_id)
            self._count(principal.tenant, -1)
            self.metrics.finished.labels("cancelled").inc()
            return {"id": job_id, "state": "cancelled"}
        self.store.request_cancel(job_id)
        self.pool.cancel_running(job_id)
        return {"id": job_id, "state": "running", "cancel_requested": True}

    def _own(self, principal: Principal, job_id: str) -> dict[str, Any]:
        job = self.store.job(job_id, principal.tenant) if len(job_id) <= 64 else None
        if job is None:
            raise ServiceError(
                f"no job {job_id[:64]!r}", code=ErrorCode.SERVICE_JOB_UNKNOWN, where="job"
            )
        return job


def job_view(job: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
    """A job as the API shows it to its tenant."""
    started, finished = job.get("started"), job.get("finished")
    view: dict[str, Any] = {
        "id": job["id"],
        "kind": job["kind"],
        "state": job["state"],
        "seed": job["seed"],
        "attempts": job["attempts"],
        "exit_code": job.get("exit_code"),
        "submitted": job["submitted"],
        "started": started,
        "finished": finished,
        "timings": {
            "queued_s": None if started is None else started - job["submitted"],
            "run_s": None if started is None or finished is None else finished - started,
        },
    }
    if full:
        view.update(
            {
                "params": job["params"],
                "idempotency_key": job["idempotency_key"],
                "outputs": job.get("outputs"),
                "result": job.get("result"),
                "error": job.get("error"),
                "cancel_requested": job.get("cancel_requested", False),
            }
        )
    return view


class _BodyLimit:
    """Refuse a request body over ``service_body_bytes_max`` (413) without reading the rest:
    by its Content-Length when it has one, else as it arrives."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.bound = limit("service_body_bytes_max")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.bound:
                    await self._drain(receive, 0)
                    await self._refuse(send, declared)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.bound:
                    raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge as error:
            await self._drain(receive, seen)
            await self._refuse(send, error.size)

    async def _drain(self, receive: Receive, seen: int) -> None:
        """Read what the client still sends (up to eight times the bound, then give up) before
        answering, so that the client reads the refusal instead of a reset connection."""
        more = True
        while more and seen <= 8 * self.bound:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            more = bool(message.get("more_body"))

    async def _refuse(self, send: Send, size: int) -> None:
        error = ServiceError(
            f"the request body is over service_body_bytes_max = {self.bound} bytes"
            + (f" ({size} bytes)" if size >= 0 else " (or its Content-Length is invalid)"),
            code=ErrorCode.SERVICE_BODY_TOO_LARGE,
            where="body",
        )
        payload = json.dumps(error_body(error)).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def create_app(home: Path, *, runners: int = 2, durable: bool = False) -> FastAPI:
    """The node's ASGI application, keeping its state under ``home``."""
    service = NodeService(home, runners=runners, durable=durable)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="XDV node",
        version=API_VERSION,
        description="Submit K, Q, Φ and Python jobs to an XDV node; read their results and "
        "signed traces. Authenticate with a tenant's bearer token (`xdv tenant create`).",
        lifespan=lifespan,
        openapi_url=f"/{API_VERSION}/openapi.json",
        docs_url=f"/{API_VERSION}/docs",
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(_BodyLimit)

    def refused(error: XdvError) -> JSONResponse:
        service.metrics.refused.labels(error.code.name).inc()
        headers = {}
        retry = error.details.get("retry_after")
        if retry is not None:
            headers["Retry-After"] = str(retry)
        return JSONResponse(error_body(error), status_code=status_for(error), headers=headers)

    @app.exception_handler(XdvError)
    async def _typed(request: Request, error: XdvError) -> JSONResponse:
        return refused(error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return refused(
            ServiceError(
                str(first.get("msg", "invalid request")),
                code=ErrorCode.SERVICE_REQUEST_INVALID,
                where=where or "request",
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = (
            ErrorCode.SERVICE_NOT_FOUND
            if error.status_code == 404
            else ErrorCode.SERVICE_REQUEST_INVALID
        )
        typed = ServiceError(str(error.detail), code=code, where=request.url.path[:128])
        service.metrics.refused.labels(code.name).inc()
        return JSONResponse(error_body(typed), status_code=error.status_code)

    @app.post(
        f"/{API_VERSION}/jobs",
        status_code=202,
        summary="Submit a job",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _SUBMISSION_SCHEMA}},
            }
        },
    )
    async def submit(request: Request) -> JSONResponse:
        """Queue a job; answered once the job is committed to the node database. A repeated
        idempotency key answers with the job it first created."""
        principal = service.authorize(request, SUBMIT)
        body = await request.body()
        job, created = service.submit(principal, body)
        return JSONResponse(
            {"id": job["id"], "state": job["state"], "created": created}, status_code=202
        )

    @app.get(f"/{API_VERSION}/jobs", summary="List your jobs")
    async def list_jobs(
        request: Request, state: str | None = None, limit_: int = Query(100, alias="limit")
    ) -> Any:
        """The tenant's most recent jobs, newest first (``?state=`` filters)."""
        principal = service.authorize(request, READ)
        if state is not None and state not in JOB_STATES:
            raise _invalid(
                f"unknown state {state[:32]!r} (states: {', '.join(JOB_STATES)})", "state"
            )
        count = min(max(1, limit_), limit("service_jobs_listed_max"))
        jobs = service.store.jobs(principal.tenant, state, count)
        return {"jobs": [job_view(job, full=False) for job in jobs]}

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}", summary="A job's state, outputs and result")
    async def get_job(request: Request, job_id: str) -> Any:
        principal = service.authorize(request, READ)
        return job_view(service._own(principal, job_id))

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}/trace", summary="A job's trace file")
    async def get_trace(request: Request, job_id: str) -> Response:
        """The job's hash-chained trace (binary; ``xdv verify`` checks it)."""
        return _trace_file(request, job_id, "path")

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}/audit", summary="A job's audit file")
    async def get_audit(request: Request, job_id: str) -> Response:
        """The signed tree heads of the job's trace (the audit file beside it)."""
        return _trace_file(request, job_id, "audit")

    def _trace_file(request: Request, job_id: str, which: str) -> Response:
        principal = service.authorize(request, READ)
        job = service._own(principal, job_id)
        row = service.store.trace_row(job_id)
        path = None if row is None else row.get(which)
        if path is None or not Path(path).is_file():
            raise ServiceError(
                f"job {job_id} has no {'trace' if which == 'path' else 'audit file'} "
                f"(state {job['state']})",
                code=ErrorCode.SERVICE_TRACE_UNAVAILABLE,
                where=job_id,
            )
        media = "application/octet-stream" if which == "path" else "text/plain"
        return FileResponse(path, media_type=media)

    @app.delete(f"/{API_VERSION}/jobs/{{job_id}}", status_code=202, summary="Cancel a job")
    async def cancel(request: Request, job_id: str) -> Any:
        """Cancel a queued job at once, or interrupt a running one (it ends as cancelled)."""
        principal = service.authorize(request, SUBMIT)
        return JSONResponse(service.cancel(principal, job_id), status_code=202)

    @app.get(f"/{API_VERSION}/health", summary="Liveness and queue figures")
    async def health() -> Any:
        return {
            "ok": True,
            "api": API_VERSION,
            "runners": len(service.pool.runners),
            "queued": service.pool.depth(),
            "running": service.pool.running(),
            "recovered": service.recovered,
            "python_isolation": isolation_available(),
        }

    quote_route(app, service.boot)

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # XDV View over the tenant's own jobs (docs/view.md), behind its token.
    mount_view(app, service)

    return app
