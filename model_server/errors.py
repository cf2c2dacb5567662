"""Errors as JSON `{"error": {"type", "message"}}` with the right status; never a stack trace."""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

log = logging.getLogger("model_server.errors")

# status -> error type for errors raised by the framework itself (routing, body limit, ...)
_FRAMEWORK_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "validation_error",
    429: "queue_full",
    503: "not_ready",
}


class HttpErrorReply(Exception):
    """An error reply: HTTP status, a stable `type` string, a message for a person."""

    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}


def error_body(type_: str, message: str) -> bytes:
    """The JSON error document."""
    return msgspec.json.encode({"error": {"type": type_, "message": message}})


def error_response(exc: HttpErrorReply) -> Response[bytes]:
    """A Litestar response for an HttpErrorReply."""
    return Response(
        content=error_body(exc.type, exc.message),
        status_code=exc.status,
        media_type="application/json",
        headers=exc.headers,
    )


def _count(request: Request, type_: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(type=type_).inc()


def handle_error_reply(request: Request, exc: HttpErrorReply) -> Response[bytes]:
    """Exception handler for HttpErrorReply."""
    _count(request, exc.type)
    return error_response(exc)


def handle_http_exception(request: Request, exc: HTTPException) -> Response[bytes]:
    """Exception handler for the framework's own HTTP errors (404, 405, 413 ...)."""
    status = exc.status_code
    type_ = _FRAMEWORK_TYPES.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )
    if status == 413:
        limit = request.app.state.settings.max_body_bytes
        message = f"request body is larger than the limit of {limit} bytes"
    else:
        message = str(exc.detail) if exc.detail else type_
    _count(request, type_)
    headers = dict(exc.headers or {})
    return error_response(HttpErrorReply(status, type_, message, headers))


def handle_unexpected(request: Request, exc: Exception) -> Response[bytes]:
    """Last resort: log the traceback, tell the client only that something failed."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    _count(request, "server_error")
    return error_response(HttpErrorReply(500, "server_error", "internal error; see the server log"))
