"""edge.titles: resolving what a person typed, and autocomplete."""

from __future__ import annotations

import pytest

from edge.titles import TitleIndex
from moviemind_core.bundle import build_title_table
from tests.support.catalog import movie

TITLE_MOVIES = [
    movie(1, "Troy", 2004, votes=80),
    movie(2, "Troy", 1987, votes=2),
    movie(3, "The Matrix", 1999, votes=250),
    movie(4, "The Matrix Reloaded", 2003, votes=90),
    movie(5, "The Godfather", 1972, votes=200),
    movie(6, "The Godfather: Part II", 1974, votes=130),
    movie(7, "Amelie (Fabuleux destin d'Amélie Poulain, Le)", 2001, votes=100),
    movie(8, "The Shawshank Redemption", 1994, votes=300),
    movie(9, "Up", 2009, votes=60),
    movie(10, "X-Men", 2000, votes=70),
    movie(11, "Heat", 1995, votes=110),
]


@pytest.fixture(scope="module")
def titles() -> TitleIndex:
    return TitleIndex(TITLE_MOVIES, build_title_table(TITLE_MOVIES))


@pytest.mark.parametrize(
    ("typed", "movie_id"),
    [
        ("Troy", 1),
        ("troy (2004)", 1),
        ("TROY", 1),
        ("Troy (1987)", 2),
        ("Matrix, The", 3),
        ("the matrix (1999)", 3),
        ("godfather", 5),
        ("Godfather: Part II, The", 6),
        ("Amelie", 7),
        ("Fabuleux destin d'Amélie Poulain, Le", 7),
        ("Up", 9),
    ],
)
def test_resolve_exact_titles_in_every_spelling(
    titles: TitleIndex, typed: str, movie_id: int
) -> None:
    r = titles.resolve(typed)
    assert r is not None and r.id == movie_id
    assert r.input == typed


def test_resolve_ambiguous_title_takes_the_most_popular_and_says_so(titles: TitleIndex) -> None:
    r = titles.resolve("Troy")
    assert r is not None and (r.id, r.year) == (1, 2004)
    assert r.note and "most popular" in r.note


def test_resolve_with_a_year_not_in_the_catalog_says_which_year_it_took(titles: TitleIndex) -> None:
    r = titles.resolve("The Matrix (2021)")
    assert r is not None and r.id == 3
    assert r.note and "2021" in r.note and "1999" in r.note


@pytest.mark.parametrize(
    ("typed", "movie_id"), [("godfahter", 5), ("the matirx", 3), ("shawshank redemtion", 8)]
)
def test_resolve_small_typos(titles: TitleIndex, typed: str, movie_id: int) -> None:
    r = titles.resolve(typed)
    assert r is not None and r.id == movie_id
    assert r.note == "closest title match"


@pytest.mark.parametrize(("typed", "movie_id"), [("shawshank", 8), ("matrix relo", 4)])
def test_resolve_completes_a_partial_title(titles: TitleIndex, typed: str, movie_id: int) -> None:
    r = titles.resolve(typed)
    assert r is not None and r.id == movie_id
    assert r.note == "completed a partial title"


@pytest.mark.parametrize("typed", ["zzqqxx unknown", "", "   ", "!!!", "(1999)", "x", "the", "a"])
def test_resolve_refuses_to_guess(titles: TitleIndex, typed: str) -> None:
    assert titles.resolve(typed) is None


def test_search_autocomplete_prefix_then_words_then_typos(titles: TitleIndex) -> None:
    assert [m.id for m in titles.search("the matri", 5)] == [3, 4]
    # A word inside the title: "matri" is not a prefix of "the matrix", the word search finds it.
    assert [m.id for m in titles.search("matri", 5)][:2] == [3, 4]
    assert [m.id for m in titles.search("godfather", 5)] == [5, 6]
    assert [m.id for m in titles.search("Troy (1987)", 5)] == [2]
    assert 5 in [m.id for m in titles.search("godfahter", 5)]
    # A typo in a title still being typed: compared with the start of each title.
    assert [m.id for m in titles.search("godfahter pa", 5)][0] == 6
    assert [m.id for m in titles.search("shawshnk", 5)] == [8]
    assert titles.search("!!!", 5) == []
    assert len(titles.search("t", 2)) <= 2
