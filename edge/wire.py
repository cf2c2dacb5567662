"""Request and response bodies of the edge HTTP API (the contract in DESIGN.md)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from moviemind_core.catalog import Movie
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


class MovieOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A catalog movie as every endpoint shows it. The optional fields are absent (never null or
    empty) where the catalog source has no value: MovieLens' sample has no posters."""

    id: int
    title: str
    year: int | None
    genres: list[str]
    # The film's own-language title ("La Haine" beside "Hate"), for a quiet subtitle.
    original_title: str | None = None
    # TMDB's path ("/abc.jpg"); the image is image_base + path (see CatalogInfo.image_base).
    poster_path: str | None = None
    tmdb_id: int | None = None
    imdb_id: str | None = None


def movie_extras(m: Movie) -> dict[str, str | int | None]:
    """The optional MovieOut fields of `m`, for any MovieOut subclass's constructor; empty
    strings count as missing (a source that writes "" for "none" must not show a broken link)."""
    return {
        "original_title": m.original_title or None,
        "poster_path": m.poster_path or None,
        "tmdb_id": m.tmdb_id or None,
        "imdb_id": m.imdb_id or None,
    }


def movie_out(m: Movie) -> MovieOut:
    """`m` as a search hit or title lookup result shows it."""
    return MovieOut(id=m.id, title=m.title, year=m.year, genres=list(m.genres), **movie_extras(m))


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
    # No defaults: MovieOut omits fields at their default, and these two are always sent.
    reason_source: str
    # The liked movie this pick is closest to: the one whose fans rated it (the ranker's
    # credit), else the nearest in meaning; null when the request named no liked movie.
    because: LikedRef | None


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
    # The match may not be the film meant (a completed or corrected title, or the only, little
    # known film of that name): the page shows the note beside it so it can be removed.
    weak: bool = False


class UnresolvedNote(msgspec.Struct, kw_only=True):
    """Why a liked title matched nothing, in words the page shows beside it."""

    input: str
    note: str


class CatalogInfo(msgspec.Struct, kw_only=True):
    """What the served catalog holds: an unresolved title may simply be newer than it."""

    # The bundle's source: "movielens", "tmdb-api", "tmdb-export".
    source: str
    # The same in words: "the MovieLens sample", "built from TMDB".
    description: str
    movies: int
    year_min: int | None
    year_max: int | None
    # Where poster images live: image_base + poster_path (MOVIEMIND_EDGE_IMAGE_BASE).
    image_base: str
    # The catalog holds TMDB data (ids, posters): pages showing it credit TMDB.
    tmdb_data: bool


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
    # One note per unresolved liked title (same order as unresolved_liked).
    unresolved_notes: list[UnresolvedNote] = msgspec.field(default_factory=list)
    catalog: CatalogInfo | None = None
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
