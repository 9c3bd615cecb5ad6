"""A client of the node's HTTP API (what ``xdv submit``, ``jobs``, ``job`` and ``cancel`` use).

The server's URL and the bearer token come from the arguments, else from ``XDV_SERVER`` and
``XDV_TOKEN`` (default server ``http://127.0.0.1:8470``). A refusal from the server is raised
as the typed :class:`~xdv.service.ServiceError` its body describes; a server that cannot be
reached is SERVICE_UNAVAILABLE.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from xdv.errors import ErrorCode
from xdv.service._errors import ServiceError
from xdv.service._store import FINISHED

__all__ = ["DEFAULT_SERVER", "ServiceClient", "kind_for"]

DEFAULT_SERVER = "http://127.0.0.1:8470"
_KIND_BY_SUFFIX = {".ds": "dpl", ".qasm": "qasm", ".json": "bqm", ".py": "python"}


def kind_for(path: Path) -> str:
    """The job kind a file's name suggests: ``.ds`` dpl, ``.qasm`` qasm, ``.json`` bqm,
    ``.py`` python, anything else a G-set graph (gset)."""
    return _KIND_BY_SUFFIX.get(path.suffix.lower(), "gset")


class ServiceClient:
    """Talk to one node as one tenant."""

    def __init__(
        self, server: str | None = None, token: str | None = None, *, timeout: float = 30.0
    ) -> None:
        self.server = (server or os.environ.get("XDV_SERVER") or DEFAULT_SERVER).rstrip("/")
        self.token = token if token is not None else os.environ.get("XDV_TOKEN")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise ServiceError(
                f"cannot reach the node at {self.server}: {error}",
                code=ErrorCode.SERVICE_UNAVAILABLE,
                where=self.server,
            ) from None
        if response.status_code >= 400:
            raise _refusal(response)
        return response

    def submit(
        self,
        kind: str,
        source: str,
        *,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Submit a job; ``{"id", "state", "created"}`` once the node has committed it."""
        body: dict[str, Any] = {"kind": kind, "source": source, "seed": seed}
        if params:
            body["params"] = params
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        result: dict[str, Any] = self._request("POST", "/v1/jobs", json=body).json()
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/jobs/{job_id}").json()
        return result

    def jobs(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"limit": limit}
        if state is not None:
            query["state"] = state
        result: list[dict[str, Any]] = self._request("GET", "/v1/jobs", params=query).json()["jobs"]
        return result

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("DELETE", f"/v1/jobs/{job_id}").json()
        return result

    def trace(self, job_id: str) -> bytes:
        """The job's trace file."""
        return self._request("GET", f"/v1/jobs/{job_id}/trace").content

    def audit(self, job_id: str) -> bytes:
        """The job's audit file (signed tree heads)."""
        return self._request("GET", f"/v1/jobs/{job_id}/audit").content

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/health").json()
        return result

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 0.05) -> dict[str, Any]:
        """Poll until the job has ended; return it (SERVICE_UNAVAILABLE after ``timeout``)."""
        deadline = time.monotonic() + timeout
        delay = poll
        while True:
            job = self.job(job_id)
            if job["state"] in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"job {job_id} did not end within {timeout:g} s (state {job['state']})",
                    code=ErrorCode.SERVICE_UNAVAILABLE,
                    where=job_id,
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)


def _refusal(response: httpx.Response) -> ServiceError:
    try:
        record = response.json()["error"]
        code = ErrorCode[record["code"]]
        return ServiceError(record["message"], code=code, where=record.get("where"))
    except (ValueError, KeyError, TypeError):
        return ServiceError(
            f"the node answered {response.status_code}: {response.text[:200]}",
            code=ErrorCode.SERVICE_UNAVAILABLE,
            where=str(response.url),
        )
