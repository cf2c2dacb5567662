"""edge.catalog_notes: what the catalog holds, and why a liked title matched nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.catalog_notes import _describe, unresolved_note, unresolved_notes
from edge.wire import CatalogInfo

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def info(year_max: int, source: str = "movielens", movies: int = 9061) -> CatalogInfo:
    return CatalogInfo(
        source=source,
        description=_describe(source, movies),
        movies=movies,
        year_min=1902,
        year_max=year_max,
        image_base="https://image.tmdb.org/t/p/w185",
        tmdb_data=source.startswith("tmdb"),
    )


def test_a_dated_catalog_says_the_title_may_be_newer_and_how_to_get_a_current_one() -> None:
    note = unresolved_note("Oppenheimer", info(2016), NOW)
    assert note == (
        "not in the catalog, perhaps newer than it: this catalog is the MovieLens sample, films "
        "up to 2016; build a current one from TMDB: see the README"
    )


def test_a_year_after_the_catalogs_last_one_is_certainly_newer() -> None:
    note = unresolved_note("Dune (2021)", info(2016), NOW)
    assert note.startswith(
        "not in the catalog: this catalog is the MovieLens sample, films up to 2016"
    )
    assert note.endswith("see the README")
    assert "films from 1902" in unresolved_note("Old One (1890)", info(2016), NOW)


def test_a_current_catalog_does_not_blame_the_year() -> None:
    note = unresolved_note("Qqzz", info(2026, "tmdb-api", 250_000), NOW)
    assert (
        note
        == "no title like this among the catalog's 250,000 films (built from TMDB, 1902\u20132026)"
    )
    assert "newer" not in note and "README" not in note


@pytest.mark.parametrize(
    ("source", "movies", "words"),
    [
        ("movielens", 9061, "the MovieLens sample"),
        ("movielens", 87_585, "built from MovieLens"),
        ("tmdb-export", 100, "built from TMDB"),
        ("custom", 5, "built from custom"),
    ],
)
def test_sources_in_words(source: str, movies: int, words: str) -> None:
    assert _describe(source, movies) == words


def test_ids_the_catalog_lacks_are_named_as_ids() -> None:
    notes = unresolved_notes(["999999", "Oppenheimer"], [999999], info(2016))
    assert notes[0].note == "no movie with id 999999 in this catalog"
    assert "films up to 2016" in notes[1].note and notes[1].input == "Oppenheimer"
