"""What every route of the model server uses: the bearer-token guard and request decoding."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from model_server.api_types import ChatCompletionRequest, CompletionRequest, TokenizeRequest
from model_server.errors import HttpErrorReply
from model_server.state import ServerState


def auth_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Require `Authorization: Bearer TOKEN` when a token is configured (constant-time check)."""
    token = connection.app.state.server.settings.token
    if not token:
        return
    header = connection.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    if not ok:
        raise HttpErrorReply(
            401,
            "authentication_error",
            "missing or wrong bearer token",
            {"WWW-Authenticate": "Bearer"},
        )


_DECODERS = {
    t: msgspec.json.Decoder(t) for t in (ChatCompletionRequest, CompletionRequest, TokenizeRequest)
}


async def decode(request: Request, type_: type) -> Any:
    """The JSON body as `type_`: 400 when empty or malformed, 422 when invalid."""
    body = await request.body()
    if not body.strip():
        raise HttpErrorReply(400, "invalid_request_error", "request body is empty; send JSON")
    try:
        return _DECODERS[type_].decode(body)
    except msgspec.ValidationError as exc:
        raise HttpErrorReply(422, "validation_error", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise HttpErrorReply(400, "invalid_request_error", f"malformed JSON: {exc}") from None


def server_state(request: Request) -> ServerState:
    """The shared state `create_app` was given."""
    return request.app.state.server
