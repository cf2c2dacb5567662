"""Catalog records for unit tests."""

from __future__ import annotations

from moviemind_core.catalog import Movie


def movie(id: int, title: str, year: int | None = None, votes: int = 10, **kw) -> Movie:
    """A Movie with only what a test names; `votes` is its vote count."""
    return Movie(id=id, title=title, year=year, vote_count=votes, **kw)
