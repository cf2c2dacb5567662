"""POST /v1/feedback (a visitor's vote on a pick) and DELETE /v1/feedback/{visitor}.

A vote is checked against the served catalog, stamped with the edge's clock and queued; the
answer (202) never waits on the database. Nothing about the client is stored: no address, no
account, only the random visitor id the page made. An id that is not in the catalog is 422
(`validation_error`, like any other invalid body field): the body is wrong, not a resource
path, and a vote for a film no index knows could never be used.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Litestar, Request, delete, post
from litestar.params import JSONBody, Parameter

from edge.feedback.spool import SpoolFull
from edge.feedback.writer import FeedbackWriter
from edge.http.errors import error_response
from edge.http.guards import API_GUARDS
from edge.http.openapi import _Verbatim, error_specs
from edge.http.state import Edge
from moviemind_core.feedback import FeedbackEvent, Signal, Visitor

_ID = Annotated[int, msgspec.Meta(ge=0)]


class AnsweredRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The recommendation request the vote answered (what the visitor liked, their mood)."""

    liked_ids: Annotated[list[_ID], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )
    query: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class FeedbackRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    visitor: Visitor
    movie_id: _ID
    signal: Signal
    request: AnsweredRequest | None = None


class FeedbackAccepted(msgspec.Struct, kw_only=True):
    status: str = "accepted"


class FeedbackDeleted(msgspec.Struct, kw_only=True):
    visitor: str
    # Votes deleted so far; `complete` is false while the database is away (the deletion is
    # spooled and applied, after any earlier votes, when it is back).
    deleted: int
    complete: bool


def _writer(request: Request) -> FeedbackWriter:
    return request.app.state.feedback


class FeedbackController(Controller):
    path = "/v1/feedback"
    guards = API_GUARDS

    @post(
        summary="Record a visitor's vote on a movie (like, dislike, seen, chose)",
        status_code=202,
        responses=error_specs(400, 413, 422),
    )
    async def vote(
        self, request: Request, edge: Edge, data: JSONBody[FeedbackRequest]
    ) -> FeedbackAccepted:
        if edge.snapshot().bundle.movie(data.movie_id) is None:
            return error_response(  # type: ignore[return-value]
                422,
                "validation_error",
                f"movie_id: no movie with id {data.movie_id} in the catalog",
            )
        answered = data.request or AnsweredRequest()
        event = FeedbackEvent(
            visitor=data.visitor,
            movie_id=data.movie_id,
            signal=data.signal,
            at=time.time(),
            liked_ids=tuple(answered.liked_ids),
            query=answered.query,
        )
        if not _writer(request).offer(event):
            return error_response(  # type: ignore[return-value]
                429, "queue_full", "feedback queue is full; try again", {"Retry-After": "1"}
            )
        return FeedbackAccepted()

    @delete(
        "/{visitor:str}",
        summary="Delete everything stored about a visitor id",
        status_code=200,
        responses=error_specs(422),
    )
    async def forget(
        self,
        request: Request,
        visitor: Annotated[
            str, Parameter(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
        ],
    ) -> FeedbackDeleted:
        try:
            deleted, complete = await _writer(request).delete_visitor(visitor)
        except (SpoolFull, OSError):
            return error_response(  # type: ignore[return-value]
                503, "unavailable", "the feedback database is away and the spool cannot take more"
            )
        return FeedbackDeleted(visitor=visitor, deleted=deleted, complete=complete)


def describe_schema(app: Litestar) -> None:
    """Put msgspec's own schema of the vote body (its id pattern, lengths and closed fields)
    into the OpenAPI document, as edge/http/openapi.py does for the other bodies."""
    (_, components) = msgspec.json.schema_components(
        [FeedbackRequest], ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = app.openapi_schema.components.schemas  # type: ignore[assignment]
    for name, raw in components.items():
        schemas[name] = _Verbatim(raw=raw)
