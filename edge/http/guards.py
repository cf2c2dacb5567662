"""Guards of the /v1 API: the API key, then the per-client rate limit (the page, health,
metrics and the OpenAPI document stay open).

Both are coroutines although they never await: Litestar runs a plain-function guard in its thread
pool, which made two thread hand-offs per API request for a few dictionary lookups.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

from edge.http.state import EdgeState


def _state(connection: ASGIConnection) -> EdgeState:
    return connection.app.state.edge


async def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """`X-API-Key: KEY` or `Authorization: Bearer KEY`, when a key is configured."""
    if not _state(connection).api_key.allows(dict(connection.scope.get("headers") or [])):
        raise NotAuthorizedException(
            "missing or wrong API key (X-API-Key or Authorization: Bearer)"
        )


async def rate_limit(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Per client address (X-Forwarded-For from a trusted proxy, as uvicorn resolved it)."""
    state = _state(connection)
    client = connection.client.host if connection.client else "?"
    retry = state.limiter.check(client)
    if retry is not None:
        state.metrics.rate_limited.inc()
        raise TooManyRequestsException(
            "too many requests from this client", headers={"Retry-After": str(retry)}
        )


API_GUARDS = [require_api_key, rate_limit]
