"""Request and response bodies of the edge HTTP API (the contract in DESIGN.md)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from moviemind_core.ranking import Filters

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class RecommendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    liked: Annotated[list[Title], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    liked_ids: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(max_length=50)] = (
        msgspec.field(default_factory=list)
    )
    query: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    k: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    # Factories, not literal defaults: Litestar's OpenAPI generator hashes defaults, and a
    # list (or a struct holding lists) is unhashable, which made /schema/openapi.json a 500.
    filters: Filters = msgspec.field(default_factory=Filters)
    explain: bool = True
    stream: bool = False
    # Also return the model's raw text (`raw_model_text`, and `token` events when streaming):
    # for debugging prompts; the raw text has not passed the reason gate.
    debug: bool = False


class MovieOut(msgspec.Struct, kw_only=True):
    id: int
    title: str
    year: int | None
    genres: list[str]


class MovieDetail(MovieOut, kw_only=True):
    overview: str
    keywords: list[str]
    director: str | None
    cast: list[str]
    rating: float
    votes: int


class SearchHit(MovieOut, kw_only=True):
    score: float


class LikedRef(msgspec.Struct, kw_only=True):
    """One of the request's liked movies, as a pick refers to it."""

    id: int
    title: str
    year: int | None


class Recommendation(MovieOut, kw_only=True):
    score: float
    reason: str
    # "model" when the reason is the model's (it passed the reason gate), else "catalog".
    reason_source: str = "catalog"
    # The liked movie this pick is closest to: the one whose fans rated it (the ranker's
    # credit), else the nearest in meaning; null when the request named no liked movie.
    because: LikedRef | None = None


class ReasonEvent(msgspec.Struct, kw_only=True):
    """A streamed `reason` event: pick `id` (1-based `rank`) gets a model-written reason."""

    id: int
    rank: int
    reason: str
    source: str = "model"


class ResolvedLiked(msgspec.Struct, kw_only=True):
    input: str
    id: int
    title: str
    year: int | None
    note: str | None = None


class Timings(msgspec.Struct, kw_only=True):
    embed: float | None = None
    search: float | None = None
    llm_first_token: float | None = None
    llm_total: float | None = None
    total: float | None = None


class RecommendResponse(msgspec.Struct, kw_only=True):
    recommendations: list[Recommendation]
    resolved_liked: list[ResolvedLiked]
    unresolved_liked: list[str]
    explanation: str | None
    degraded: bool
    model: str | None
    timings_ms: Timings
    degraded_reason: str | None = None
    dropped_titles: list[str] = msgspec.field(default_factory=list)
    index_version: str | None = None
    # Only with `debug: true` in the request.
    raw_model_text: str | None = None


class SearchResponse(msgspec.Struct, kw_only=True):
    results: list[SearchHit]
    timings_ms: Timings


class MoviesResponse(msgspec.Struct, kw_only=True):
    results: list[MovieOut]


class ErrorBody(msgspec.Struct):
    type: str
    message: str


class ErrorResponse(msgspec.Struct):
    error: ErrorBody
