"""POST /v1/recommend: a JSON answer, or server-sent events with `"stream": true`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import JSONBody
from litestar.response import Stream

from edge.events import Failure, Reason, Result, Token
from edge.http.errors import error_response
from edge.http.guards import API_GUARDS
from edge.http.openapi import error_specs
from edge.http.state import Edge, EdgeState
from edge.service import Prepared
from edge.wire import RecommendRequest, RecommendResponse
from moviemind_core.disconnect import ClientGone, cancel_on_disconnect


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


async def sse_events(edge: EdgeState, p: Prepared) -> AsyncIterator[bytes]:
    """candidates, (reason | token)*, error?, recommendations, done; tokens only with debug."""
    rec = edge.recommender
    # The ranker's picks go out at once, with catalog reasons; model reasons follow.
    yield sse(
        "candidates",
        {
            "resolved_liked": p.resolved,
            "unresolved_liked": p.unresolved,
            "candidates": rec.shown_first(p),
            "timings_ms": p.timings,
            **rec.catalog_notes(p),
        },
    )
    result: RecommendResponse | None = None
    async for ev in rec.answer(p):
        match ev:
            case Token(text=text):
                yield sse("token", {"text": text})
            case Reason(event=reason):
                yield sse("reason", reason)
            case Failure(type=kind, message=message):
                yield sse("error", {"type": kind, "message": message})
            case Result(response=response):
                result = response
    assert result is not None, "answer() always ends with a Result"
    yield sse("recommendations", result)
    yield sse("done", {"timings_ms": result.timings_ms, "degraded": result.degraded})


class RecommendController(Controller):
    path = "/v1/recommend"
    guards = API_GUARDS

    @post(
        summary="Recommend movies from liked movies and a mood",
        status_code=200,
        responses=error_specs(400, 404, 413, 422),
    )
    async def recommend(
        self, request: Request, edge: Edge, data: JSONBody[RecommendRequest]
    ) -> Response:
        prepared = edge.recommender.prepare(edge.snapshot(), data)
        if data.stream:
            return Stream(
                sse_events(edge, prepared),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            # Closing the upstream stream on a hang-up tells the model server to stop.
            async with cancel_on_disconnect(request.receive):
                result = await edge.recommender.recommend(prepared)
        except ClientGone:
            edge.metrics.client_gone.inc()
            return error_response(400, "client_disconnected", "the client hung up")
        return Response(msgspec.json.encode(result), media_type="application/json")
