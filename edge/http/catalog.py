"""The catalog API: semantic search, title lookup, one movie."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, Parameter

from edge.errors import NotFound
from edge.http.guards import API_GUARDS
from edge.http.openapi import error_specs
from edge.http.state import Edge
from edge.wire import MovieDetail, MoviesResponse, SearchResponse, movie_extras, movie_out


class CatalogController(Controller):
    path = "/v1"
    guards = API_GUARDS

    @get("/search", summary="Semantic search over the catalog", responses=error_specs(400, 422))
    async def search(
        self,
        edge: Edge,
        q: Annotated[str, Parameter(min_length=1, max_length=500)],
        k: Annotated[int, Parameter(ge=1, le=100)] = 10,
    ) -> SearchResponse:
        results, timings = edge.recommender.search(edge.snapshot(), q, k)
        return SearchResponse(results=results, timings_ms=timings)

    @get("/movies/{movie_id:int}", summary="One catalog movie", responses=error_specs(404, 422))
    async def movie(self, edge: Edge, movie_id: FromPath[int]) -> MovieDetail:
        snap = edge.snapshot()
        m = snap.bundle.movie(movie_id)
        if m is None:
            raise NotFound(f"no movie with id {movie_id} in the catalog")
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
            **movie_extras(m),
        )

    @get("/movies", summary="Title lookup (autocomplete)", responses=error_specs(400, 422))
    async def movies(
        self,
        edge: Edge,
        title: Annotated[str, Parameter(min_length=1, max_length=200)],
        limit: Annotated[int, Parameter(ge=1, le=50)] = 10,
    ) -> MoviesResponse:
        snap = edge.snapshot()
        return MoviesResponse(results=[movie_out(m) for m in snap.titles.search(title, limit)])
