"""The edge's Litestar app: controllers, guards, error mapping and background work, assembled.

The routes live in edge/http/, the request logic in edge/service.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from edge.feedback.writer import FeedbackWriter
from edge.http.catalog import CatalogController
from edge.http.errors import EXCEPTION_HANDLERS
from edge.http.feedback import FeedbackController, describe_schema
from edge.http.observe import request_metrics
from edge.http.openapi import fix_schema
from edge.http.ops import OpsController, PageController
from edge.http.recommend import RecommendController
from edge.http.state import EdgeState
from edge.index_store import IndexStore
from edge.metrics import EdgeMetrics
from edge.service import Recommender
from edge.settings import EdgeSettings
from edge.upstream import UpstreamPool


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
    background = Background(state, pool)
    feedback = FeedbackWriter(settings.feedback, metrics.feedback)

    app = Litestar(
        route_handlers=[
            RecommendController,
            CatalogController,
            FeedbackController,
            OpsController,
            PageController,
        ],
        dependencies={"edge": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
        on_startup=[background.start, feedback.start],
        on_shutdown=[background.stop, feedback.stop],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(title="moviemind edge", version="1", path="/schema"),
        middleware=[request_metrics(metrics)],
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    app.state.edge = state
    app.state.feedback = feedback
    fix_schema(app)
    describe_schema(app)
    return app


class Background:
    """Index loading and polling, SIGHUP reloads and prefix priming, for the app's lifetime."""

    def __init__(self, state: EdgeState, pool: UpstreamPool) -> None:
        self.state = state
        self.pool = pool
        self.tasks: list[asyncio.Task] = []

    async def refresh_now(self) -> None:
        await asyncio.to_thread(self.state.store.refresh)

    async def poll(self) -> None:
        interval = self.state.settings.reload_interval_s
        while interval > 0:
            await asyncio.sleep(interval)
            await self.refresh_now()

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.refresh_now()))
        self.tasks.append(asyncio.create_task(self.poll()))
        if self.state.settings.prime_prefix:
            self.tasks.append(asyncio.create_task(self.state.recommender.prime_prefix()))
        loop = asyncio.get_running_loop()
        # Not possible off the main thread (embedded in tests) or on platforms without SIGHUP.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(
                signal.SIGHUP, lambda: self.tasks.append(asyncio.create_task(self.refresh_now()))
            )

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.pool.aclose()
