"""The node service's typed errors: an :class:`~xdv.errors.XdvError` with the HTTP status it
answers with."""

from __future__ import annotations

from typing import Any

from xdv.errors import ErrorCode, XdvError

__all__ = ["HTTP_STATUS", "ServiceError", "error_body", "status_for"]

# The HTTP status of each code a route can answer with; any other typed error is a 400.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.SERVICE_UNAUTHENTICATED: 401,
    ErrorCode.SIGNATURE_INVALID: 401,
    ErrorCode.CAPABILITY_INVALID: 401,
    ErrorCode.CAPABILITY_REVOKED: 401,
    ErrorCode.CAPABILITY_EXPIRED: 401,
    ErrorCode.ATTENUATION_WIDENS: 401,
    ErrorCode.SERVICE_TENANT_UNKNOWN: 401,
    ErrorCode.SERVICE_FORBIDDEN: 403,
    ErrorCode.DOMAIN_UNAUTHORIZED: 403,
    ErrorCode.SERVICE_JOB_UNKNOWN: 404,
    ErrorCode.SERVICE_NOT_FOUND: 404,
    ErrorCode.SERVICE_TRACE_UNAVAILABLE: 409,
    ErrorCode.SERVICE_IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.SERVICE_JOB_FINISHED: 409,
    ErrorCode.SERVICE_BODY_TOO_LARGE: 413,
    ErrorCode.INPUT_LIMIT_EXCEEDED: 413,
    ErrorCode.SERVICE_REQUEST_INVALID: 422,
    ErrorCode.SERVICE_KIND_UNKNOWN: 422,
    ErrorCode.SERVICE_ISOLATION_UNAVAILABLE: 422,
    ErrorCode.INPUT_DECODE_FAILED: 400,
    ErrorCode.SERVICE_RATE_LIMITED: 429,
    ErrorCode.SERVICE_QUEUE_FULL: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.VIEW_ENTRY_UNKNOWN: 404,
    ErrorCode.VIEW_TRACE_UNREADABLE: 409,
}


class ServiceError(XdvError):
    """An operating error of the node service or its client (codes 11xx, or a token
    refusal passed on from the capability authority)."""

    default_code = ErrorCode.SERVICE_REQUEST_INVALID


def status_for(error: XdvError) -> int:
    """The HTTP status a route answers ``error`` with (4xx; never 5xx for a typed error)."""
    return HTTP_STATUS.get(error.code, 400)


def error_body(error: XdvError) -> dict[str, Any]:
    """The JSON body of an error reply: ``{"error": {"code", "number", "message", "where"?}}``."""
    return {"error": {**error.to_record(), "number": int(error.code)}}
