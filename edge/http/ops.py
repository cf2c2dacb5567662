"""Open routes: health, readiness, Prometheus metrics, the web page and its static files."""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar import Controller, Response, get
from litestar.params import FromPath
from litestar.response import File

from edge.errors import NotFound
from edge.http.state import Edge

STATIC = Path(__file__).resolve().parents[1] / "static"


class OpsController(Controller):
    include_in_schema = False

    @get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, edge: Edge) -> Response:
        snap = edge.store.current
        body = {
            "ready": snap is not None,
            "index_version": snap.version if snap else None,
            "movies": len(snap.bundle) if snap else 0,
            "index_error": edge.store.last_error,
            "upstreams": edge.recommender.upstream.status(),
        }
        return Response(
            msgspec.json.encode(body),
            status_code=200 if snap else 503,
            media_type="application/json",
        )

    @get("/metrics")
    async def metrics(self, edge: Edge) -> Response:
        return Response(edge.metrics.render(), media_type="text/plain; version=0.0.4")


class PageController(Controller):
    include_in_schema = False

    @get("/")
    async def index_page(self) -> File:
        return File(
            STATIC / "index.html", content_disposition_type="inline", media_type="text/html"
        )

    @get("/static/{name:str}")
    async def static(self, name: FromPath[str]) -> File:
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise NotFound("no such file")
        return File(path, filename=path.name, content_disposition_type="inline")
