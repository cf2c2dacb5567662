"""The edge's HTTP API (Litestar): routes, errors, protection, streaming. Logic lives in service.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import File, Stream
from litestar.types import ASGIApp, Receive, Scope, Send

from edge.disconnect import unless_disconnected
from edge.index_store import IndexStore, Snapshot
from edge.metrics import EdgeMetrics
from edge.protection import ApiKeyGuard, RateLimiter
from edge.service import ApiError, Recommender, movie_out
from edge.settings import EdgeSettings
from edge.upstream import (
    UpstreamPool,
)
from edge.wire import (
    ErrorBody,
    ErrorResponse,
    MovieDetail,
    MoviesResponse,
    RecommendRequest,
    SearchResponse,
)

log = logging.getLogger("moviemind.edge")
STATIC = Path(__file__).parent / "static"


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        msgspec.json.encode(ErrorResponse(ErrorBody(type_, message))),
        status_code=status,
        media_type="application/json",
        headers=headers or {},
    )


def _on_api_error(_: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.type, exc.message, exc.headers)


_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _on_http_error(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        detail = str(exc.detail or "")
        extra = exc.extra
        if "JSON" in detail or "decode" in detail.lower() or "malformed" in detail.lower():
            return error_response(400, "malformed_json", f"the body is not valid JSON: {detail}")
        parts = []
        if isinstance(extra, list):
            for e in extra[:5]:
                if isinstance(e, dict):
                    where = e.get("key") or e.get("source") or ""
                    if where == "data" and e.get("message") == "'data'":
                        # Litestar's KeyError text when there is no body at all.
                        return error_response(400, "missing_body", "the request needs a JSON body")
                    if where == "data":
                        where = "body"  # the whole body, not a field called "data"
                    parts.append(f"{where}: {e.get('message', '')}".strip(": "))
        message = "; ".join(p for p in parts if p) or detail or "invalid request"
        return error_response(422 if status == 400 else status, "validation_error", message)
    if status == 400 and "malformed" in str(exc.detail).lower():
        return error_response(400, "malformed_json", str(exc.detail))
    if status >= 500:
        log.error("HTTP %s: %s", status, exc.detail)
        return error_response(status, "internal_error", "internal error")
    return error_response(
        status, _HTTP_TYPES.get(status, "http_error"), str(exc.detail), dict(exc.headers or {})
    )


def _on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "internal error")


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


class EdgeState:
    """What the handlers share: settings, the index store, the recommender, metrics."""

    def __init__(
        self,
        settings: EdgeSettings,
        store: IndexStore,
        recommender: Recommender,
        metrics: EdgeMetrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.recommender = recommender
        self.metrics = metrics

    def snapshot(self) -> Snapshot:
        snap = self.store.current
        if snap is None:
            raise ApiError(
                503, "not_ready", "no index loaded yet: " + (self.store.last_error or "loading")
            )
        return snap


def create_app(
    settings: EdgeSettings, *, store: IndexStore | None = None, upstream: UpstreamPool | None = None
) -> Litestar:
    """Build the Litestar app; the index loads in the background at start-up."""
    metrics = EdgeMetrics()
    store = store or IndexStore(
        settings.index,
        Path(settings.model_dir),
        cache_dir=Path(settings.index_cache_dir),
        s3=settings.s3,
        embed_threads=settings.embed_threads,
        query_variant=settings.query_variant,
        bayes_votes=settings.ranking.bayes_votes,
    )
    store.on_result = lambda result: (
        metrics.index_reloads.labels(result).inc(),
        store.current and metrics.index_movies.set(len(store.current.bundle)),
    )
    pool = upstream or UpstreamPool(settings.upstream, metrics)
    state = EdgeState(settings, store, Recommender(settings, pool, metrics), metrics)
    tasks: list[asyncio.Task] = []

    @post("/v1/recommend", summary="Recommend movies from liked movies and a mood", status_code=200)
    async def recommend(request: Request, data: JSONBody[RecommendRequest]) -> Response:
        snap = state.snapshot()
        prepared = state.recommender.prepare(snap, data)
        if not data.stream:
            # A client that hangs up must not keep a model server busy on its answer.
            result = await unless_disconnected(request, state.recommender.recommend(prepared))
            return Response(msgspec.json.encode(result), media_type="application/json")
        return Stream(
            _stream(prepared),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(p) -> AsyncIterator[bytes]:
        rec = state.recommender
        # The ranker's picks go out at once, with catalog reasons; model reasons follow.
        yield sse(
            "candidates",
            {
                "resolved_liked": p.resolved,
                "unresolved_liked": p.unresolved,
                "candidates": rec.shown_first(p),
                "timings_ms": p.timings,
            },
        )
        result = None
        async for kind, data in rec.answer(p):
            if kind in ("token", "reason"):
                yield sse(kind, {"text": data} if kind == "token" else data)
            elif kind == "error":
                yield sse("error", data)
            else:
                result = data
        yield sse("recommendations", result)
        yield sse("done", {"timings_ms": result.timings_ms, "degraded": result.degraded})

    @get("/v1/search", summary="Semantic search over the catalog")
    async def search(
        q: Annotated[str, Parameter(min_length=1, max_length=500)],
        k: Annotated[int, Parameter(ge=1, le=100)] = 10,
    ) -> SearchResponse:
        snap = state.snapshot()
        results, timings = state.recommender.search(snap, q, k)
        return SearchResponse(results=results, timings_ms=timings)

    @get("/v1/movies/{movie_id:int}", summary="One catalog movie")
    async def movie(movie_id: FromPath[int]) -> MovieDetail:
        snap = state.snapshot()
        m = snap.bundle.movie(movie_id)
        if m is None:
            raise ApiError(404, "not_found", f"no movie with id {movie_id} in the catalog")
        row = snap.bundle.row_of[movie_id]
        return MovieDetail(
            id=m.id,
            title=m.title,
            year=m.year,
            genres=list(m.genres),
            overview=m.overview,
            keywords=list(m.keywords),
            director=m.director,
            cast=list(m.cast),
            rating=round(float(snap.priors.bayes_rating[row]), 2),
            votes=m.vote_count,
        )

    @get("/v1/movies", summary="Title lookup (autocomplete)")
    async def movies(
        title: Annotated[str, Parameter(min_length=1, max_length=200)],
        limit: Annotated[int, Parameter(ge=1, le=50)] = 10,
    ) -> MoviesResponse:
        snap = state.snapshot()
        return MoviesResponse(results=[movie_out(m) for m in snap.titles.search(title, limit)])

    @get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        snap = state.store.current
        body = {
            "ready": snap is not None,
            "index_version": snap.version if snap else None,
            "movies": len(snap.bundle) if snap else 0,
            "index_error": state.store.last_error,
            "upstreams": state.recommender.upstream.status(),
        }
        return Response(
            msgspec.json.encode(body),
            status_code=200 if snap else 503,
            media_type="application/json",
        )

    @get("/metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @get("/", include_in_schema=False)
    async def index_page() -> File:
        return File(
            STATIC / "index.html", content_disposition_type="inline", media_type="text/html"
        )

    @get("/static/{name:str}", include_in_schema=False)
    async def static(name: FromPath[str]) -> File:
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            raise ApiError(404, "not_found", "no such file")
        return File(path, filename=path.name, content_disposition_type="inline")

    async def refresh_now() -> None:
        await asyncio.to_thread(state.store.refresh)

    async def poll() -> None:
        interval = settings.reload_interval_s
        while interval > 0:
            await asyncio.sleep(interval)
            await refresh_now()

    async def on_startup() -> None:
        tasks.append(asyncio.create_task(refresh_now()))
        tasks.append(asyncio.create_task(poll()))
        if settings.prime_prefix:
            tasks.append(asyncio.create_task(state.recommender.prime_prefix()))
        loop = asyncio.get_running_loop()
        # Not possible off the main thread (embedded in tests) or on platforms without SIGHUP.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(
                signal.SIGHUP, lambda: tasks.append(asyncio.create_task(refresh_now()))
            )

    async def on_shutdown() -> None:
        for t in tasks:
            t.cancel()
        await pool.aclose()

    app = Litestar(
        route_handlers=[
            recommend,
            search,
            movie,
            movies,
            healthz,
            readyz,
            metrics_route,
            index_page,
            static,
        ],
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        exception_handlers={
            ApiError: _on_api_error,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(title="moviemind edge", version="1", path="/schema"),
        middleware=[lambda app: protect(app, state)],
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    app.state.edge = state
    return app


async def _send_error(
    send: Send, status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """An error answered from raw ASGI middleware, where a Litestar Response is not callable."""
    body = msgspec.json.encode(ErrorResponse(ErrorBody(type_, message)))
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def protect(app: ASGIApp, state: EdgeState) -> ASGIApp:
    """API key, rate limit and per-route metrics, before any handler runs."""
    guard = ApiKeyGuard(state.settings.api_key)
    limiter = RateLimiter(state.settings.rate_limit_per_minute)
    open_paths = {"/", "/healthz", "/readyz", "/metrics"}

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope["path"]
        route = path if not path.startswith("/v1/movies/") else "/v1/movies/{id}"
        if path.startswith("/static/"):
            route = "/static"
        start = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            if path not in open_paths and not path.startswith(("/static/", "/schema")):
                headers = dict(scope.get("headers") or [])
                if not guard.allows(headers):
                    await _send_error(
                        send_wrapper,
                        401,
                        "unauthorized",
                        "missing or wrong API key (X-API-Key or Authorization: Bearer)",
                    )
                    return
                client = (scope.get("client") or ("?", 0))[0]
                retry = limiter.check(client)
                if retry is not None:
                    state.metrics.rate_limited.inc()
                    await _send_error(
                        send_wrapper,
                        429,
                        "rate_limited",
                        "too many requests from this client",
                        {"Retry-After": str(retry)},
                    )
                    return
            await app(scope, receive, send_wrapper)
        finally:
            known = route in {
                "/",
                "/healthz",
                "/readyz",
                "/metrics",
                "/static",
                "/v1/recommend",
                "/v1/search",
                "/v1/movies",
                "/v1/movies/{id}",
            } or route.startswith("/schema")
            label = route if known else "other"
            state.metrics.latency.labels(label).observe(time.perf_counter() - start)
            state.metrics.requests.labels(label, str(status_holder["status"])).inc()

    return middleware
