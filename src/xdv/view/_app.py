"""The view's HTTP routes (FastAPI): one trace for ``xdv view``, a tenant's jobs on a node.

A trace's pages live under a base URL:

- ``GET base?L=N``: the page at logical time ``N`` (default: the end of the run);
- ``GET base panels?L=N``: the panels alone (what the time slider swaps in);
- ``GET base state?L=N``: the same state as JSON;
- ``GET base timeline?low=A&high=B``: the timeline marks in ``[A, B]`` (JSON, paged);
- ``GET base proof?entry=I``: an inclusion proof of entry ``I``, computed and verified here;
- ``GET base diff``: the first divergence from the ``--diff`` trace (``xdv view`` only).

Every route only reads. The node's mount (:func:`mount_node_view`) adds a token gate: the
token is exchanged once for an HttpOnly, SameSite=Strict cookie scoped to the mount (a random
session id: see :class:`Sessions`), and each request checks the token again on the node's
validation path.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from xdv.errors import ErrorCode, XdvError
from xdv.view._index import TraceIndex, ViewError
from xdv.view._render import STATIC, Renderer, asset_manifest

__all__ = ["COOKIE", "IndexCache", "Sessions", "create_view_app", "mount_node_view"]

COOKIE = "xdv_view"
_LOGIN_BODY_MAX = 8192
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".json": "application/json"}

Resolve = Callable[[Request], TraceIndex]


def _int(request: Request, name: str, *, required: bool = False) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        if required:
            raise ViewError(f"{name} is required", code=ErrorCode.VIEW_REQUEST_INVALID, where=name)
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise ViewError(
            f"{name} must be a non-negative integer, got {text[:40]!r}",
            code=ErrorCode.VIEW_REQUEST_INVALID,
            where=name,
        )
    return int(text)


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_SECURITY_HEADERS)


def _error(error: XdvError) -> JSONResponse:
    status = {
        ErrorCode.VIEW_REQUEST_INVALID: 400,
        ErrorCode.VIEW_ENTRY_UNKNOWN: 404,
        ErrorCode.VIEW_TRACE_UNREADABLE: 422,
    }.get(error.code, 500)
    body = {
        "error": {
            "code": error.code.name,
            "number": int(error.code),
            "message": error.message,
            "where": error.where,
        }
    }
    return JSONResponse(body, status_code=status, headers=_SECURITY_HEADERS)


def add_static(app: FastAPI, prefix: str) -> None:
    """Serve the manifest's assets (and nothing else) under ``prefix``."""
    names = set(asset_manifest())

    @app.get(prefix + "static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in names:
            return Response("not found", status_code=404, media_type="text/plain")
        data = (STATIC / name).read_bytes()
        media = _MEDIA.get(Path(name).suffix, "application/octet-stream")
        return Response(
            data,
            media_type=media,
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )


def add_trace_routes(
    app: FastAPI,
    prefix: str,
    resolve: Resolve,
    renderer: Renderer,
    *,
    base_of: Callable[[Request], str],
    diff: Callable[[Request], TraceIndex] | None = None,
) -> None:
    """The read-only routes of one trace under ``prefix`` (which may hold path parameters);
    ``resolve`` finds the request's index (and refuses whoever may not see it)."""

    def diff_url(request: Request) -> str | None:
        return base_of(request) + "diff" if diff is not None else None

    @app.get(prefix, include_in_schema=False)
    def page(request: Request) -> Response:
        index = resolve(request)
        L = _int(request, "L")
        text = renderer.page(index, L, base=base_of(request), diff_url=diff_url(request))
        return _html(text)

    @app.get(prefix + "panels", include_in_schema=False)
    def panels(request: Request) -> Response:
        index = resolve(request)
        return _html(renderer.panels(index, _int(request, "L")))

    @app.get(prefix + "state", include_in_schema=False)
    def state(request: Request) -> Response:
        index = resolve(request)
        L = _int(request, "L")
        L = index.last_time if L is None else min(L, index.last_time)
        summary = index.state_at(L).summary()
        return JSONResponse({"L": L, "state": _jsonable(summary)}, headers=_SECURITY_HEADERS)

    @app.get(prefix + "timeline", include_in_schema=False)
    def timeline(request: Request) -> Response:
        index = resolve(request)
        low = _int(request, "low") or 0
        high = _int(request, "high")
        high = index.last_time if high is None else high
        return JSONResponse(index.timeline(low, high), headers=_SECURITY_HEADERS)

    @app.get(prefix + "proof", include_in_schema=False)
    def proof(request: Request) -> Response:
        index = resolve(request)
        entry = _int(request, "entry", required=True)
        assert entry is not None
        return _html(renderer.proof(index.inclusion(entry)))

    if diff is not None:
        other = diff

        @app.get(prefix + "diff", include_in_schema=False)
        def diff_page(request: Request) -> Response:
            index = resolve(request)
            return _html(renderer.diff(index, other(request), back=base_of(request)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def create_view_app(
    trace: str | Path,
    *,
    diff: str | Path | None = None,
    index: TraceIndex | None = None,
    other: TraceIndex | None = None,
) -> FastAPI:
    """The application of ``xdv view``: one trace (indexed now, once) at ``/``, and the
    first divergence from ``diff`` at ``/diff`` when given."""
    main = index if index is not None else TraceIndex.open(trace)
    second = other if other is not None else (TraceIndex.open(diff) if diff else None)
    app = FastAPI(title="XDV View", docs_url=None, redoc_url=None, openapi_url=None)
    renderer = Renderer("/")
    renderer.page(main, None, base="/")  # compiles the templates before the first request

    @app.exception_handler(XdvError)
    async def _typed(request: Request, error: XdvError) -> JSONResponse:
        return _error(error)

    add_static(app, "/")
    add_trace_routes(
        app,
        "/",
        lambda request: main,
        renderer,
        base_of=lambda request: "/",
        diff=None if second is None else (lambda request: second),
    )
    return app


class IndexCache:
    """The indexes of the most recently viewed traces (keyed by path, size and mtime)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, int], TraceIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, audit: Path | None, name: str) -> TraceIndex:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        index = TraceIndex.open(path, audit=audit, name=name)
        with self._lock:
            self._items[key] = index
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return index


class Sessions:
    """Signed-in browsers: a random session id (the cookie) → the token it was exchanged for.

    A tenant's token (a signed capability) is larger than a browser keeps in one cookie, so
    the cookie carries a 256-bit random id instead; the token is checked again on every
    request, so a revoked token ends its sessions. Sessions live in memory (a restarted node
    asks to sign in again), at most ``per_tenant`` of them for each tenant, its own oldest
    dropped first: one tenant signing in again and again never signs another tenant out.
    """

    def __init__(self, per_tenant: int = 32) -> None:
        self.per_tenant = per_tenant
        self._tokens: dict[str, tuple[int, str]] = {}
        self._of_tenant: dict[int, OrderedDict[str, None]] = {}
        self._lock = threading.Lock()

    def open(self, tenant: int, token: str) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[session] = (tenant, token)
            mine = self._of_tenant.setdefault(tenant, OrderedDict())
            mine[session] = None
            while len(mine) > self.per_tenant:
                oldest, _ = mine.popitem(last=False)
                self._tokens.pop(oldest, None)
        return session

    def token(self, session: str | None) -> str | None:
        if not session:
            return None
        with self._lock:
            found = self._tokens.get(session)
            return None if found is None else found[1]

    def close(self, session: str | None) -> None:
        with self._lock:
            found = self._tokens.pop(session or "", None)
            if found is not None:
                self._of_tenant.get(found[0], OrderedDict()).pop(session or "", None)


Authenticate = Callable[[str], tuple[int, str]]
JobsOf = Callable[[int], list[dict[str, Any]]]
TraceOf = Callable[[int, str], tuple[Path, Path | None]]


def mount_node_view(
    app: FastAPI,
    *,
    authenticate: Authenticate,
    jobs_of: JobsOf,
    trace_of: TraceOf,
    prefix: str = "/view/",
) -> None:
    """Add the view of a tenant's own jobs to a node's application under ``prefix``.

    ``authenticate(token)`` returns ``(tenant id, tenant name)`` or raises the node's typed
    refusal; ``jobs_of(tenant)`` lists the tenant's jobs; ``trace_of(tenant, job)`` gives the
    paths of the job's trace and audit file, or raises the node's "unknown job" (404) for a
    job of another tenant, as the API does.
    """
    renderer = Renderer(prefix)
    cache = IndexCache()
    sessions = Sessions()

    def cookie_response(
        request: Request, response: Response, tenant_id: int, token: str
    ) -> Response:
        sessions.close(request.cookies.get(COOKIE))  # a new sign-in ends the browser's old one
        response.set_cookie(
            COOKIE,
            sessions.open(tenant_id, token),
            path=prefix.rstrip("/") or "/",
            httponly=True,
            samesite="strict",
        )
        return response

    def tenant(request: Request) -> tuple[int, str] | None:
        token = sessions.token(request.cookies.get(COOKIE))
        if token is None:
            return None
        try:
            return authenticate(token)
        except XdvError:  # a revoked or expired token: sign in again
            return None

    def resolve(request: Request) -> TraceIndex:
        who = tenant(request)
        if who is None:
            raise _SignIn()
        job = request.path_params["job_id"]
        path, audit = trace_of(who[0], job)
        return cache.get(path, audit, name=f"job {job}")

    @app.exception_handler(_SignIn)
    async def _sign_in(request: Request, error: _SignIn) -> Response:
        return _html(renderer.login("sign in to see this page"), status=401)

    add_static(app, prefix)

    def cross_site(request: Request) -> bool:
        """A form posted from another site (login CSRF, forced sign-out). Browsers say where a
        request comes from in Sec-Fetch-Site; without it, an Origin naming another host gives
        it away (the view's pages send no referrer, so their own posts carry Origin "null")."""
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site not in ("same-origin", "none")
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return False
        return origin.split("://", 1)[-1] != request.headers.get("host", "")

    @app.get(prefix, include_in_schema=False)
    def home(request: Request) -> Response:
        who = tenant(request)
        if who is None:
            return _html(renderer.login(), status=401)
        jobs = [
            {"id": job["id"], "kind": job["kind"], "state": job["state"]} for job in jobs_of(who[0])
        ]
        return _html(renderer.jobs(who[1], jobs))

    @app.post(prefix + "login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if cross_site(request):
            return _html(renderer.login("refused: a sign-in posted from another site"), 403)
        body = await request.body()
        fields = parse_qs(body[:_LOGIN_BODY_MAX].decode("utf-8", errors="replace"))
        token = (fields.get("token") or [""])[0].strip()
        if not token:
            return _html(renderer.login("no token given"), status=400)
        try:
            who = await run_in_threadpool(authenticate, token)
        except XdvError as error:
            return _html(renderer.login(f"refused: {error.message}"), status=401)
        return cookie_response(request, RedirectResponse(prefix, status_code=303), who[0], token)

    @app.post(prefix + "logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        if cross_site(request):
            return _html(renderer.login("refused: a sign-out posted from another site"), 403)
        sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse(prefix, status_code=303)
        response.delete_cookie(COOKIE, path=prefix.rstrip("/") or "/")
        return response

    add_trace_routes(
        app,
        prefix + "jobs/{job_id}/",
        resolve,
        renderer,
        base_of=lambda request: f"{prefix}jobs/{request.path_params['job_id']}/",
    )


class _SignIn(Exception):
    """A view page was asked for without a (valid) cookie: answer with the sign-in form."""
