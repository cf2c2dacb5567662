"""Per-route request metrics, as ASGI middleware around every handler."""

from __future__ import annotations

import time
from collections.abc import Callable

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from edge.metrics import EdgeMetrics


def request_metrics(metrics: EdgeMetrics) -> Callable[[ASGIApp], ASGIApp]:
    """Count and time every request, labelled by the route template Litestar matched."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def observed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                # The template, never the raw path: a label per path would let anyone grow the
                # edge's memory and /metrics without limit (e.g. GET /schema/<anything>).
                route = scope.get("path_template") or "other"
                metrics.latency.labels(route).observe(time.perf_counter() - start)
                metrics.requests.labels(route, str(status)).inc()

        return observed

    return middleware
