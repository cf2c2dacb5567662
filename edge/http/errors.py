"""Every error the edge answers, as JSON `{"error": {"type", "message"}}` with its status:
domain errors from the service layer, Litestar's own (validation, routing, body size, guards),
and anything unexpected (logged, never shown)."""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from edge.errors import (
    EdgeError,
    NoCandidates,
    NotFound,
    NothingToGoOn,
    NotReady,
    UnresolvedTitles,
)
from edge.wire import ErrorBody, ErrorResponse

log = logging.getLogger("moviemind.edge")

# The one mapping from domain errors to HTTP: (status, error type).
DOMAIN_ERRORS: dict[type[EdgeError], tuple[int, str]] = {
    NotReady: (503, "not_ready"),
    NotFound: (404, "not_found"),
    NoCandidates: (404, "no_candidates"),
    UnresolvedTitles: (422, "unresolved_titles"),
    NothingToGoOn: (422, "validation_error"),
}

_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        msgspec.json.encode(ErrorResponse(ErrorBody(type_, message))),
        status_code=status,
        media_type="application/json",
        headers=headers or {},
    )


def on_edge_error(_: Request, exc: EdgeError) -> Response:
    status, type_ = next(
        (v for cls, v in DOMAIN_ERRORS.items() if isinstance(exc, cls)), (500, "internal_error")
    )
    return error_response(status, type_, exc.message)


def on_http_error(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    if status == 400 and "malformed" in str(exc.detail).lower():
        return error_response(400, "malformed_json", str(exc.detail))
    if status >= 500:
        log.error("HTTP %s: %s", status, exc.detail)
        return error_response(status, "internal_error", "internal error")
    return error_response(
        status, _HTTP_TYPES.get(status, "http_error"), str(exc.detail), dict(exc.headers or {})
    )


def _validation_error(exc: ValidationException) -> Response:
    detail = str(exc.detail or "")
    if "JSON" in detail or "decode" in detail.lower() or "malformed" in detail.lower():
        return error_response(400, "malformed_json", f"the body is not valid JSON: {detail}")
    parts = []
    if isinstance(exc.extra, list):
        for e in exc.extra[:5]:
            if isinstance(e, dict):
                where = e.get("key") or e.get("source") or ""
                if where == "data" and e.get("message") == "'data'":
                    # Litestar's KeyError text when there is no body at all.
                    return error_response(400, "missing_body", "the request needs a JSON body")
                if where == "data":
                    where = "body"  # the whole body, not a field called "data"
                parts.append(f"{where}: {e.get('message', '')}".strip(": "))
    message = "; ".join(p for p in parts if p) or detail or "invalid request"
    status = 422 if exc.status_code == 400 else exc.status_code
    return error_response(status, "validation_error", message)


def on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "internal error")


EXCEPTION_HANDLERS = {
    EdgeError: on_edge_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
