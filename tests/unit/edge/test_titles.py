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
    movie(
        7,
        "Amélie",
        2001,
        votes=100,
        original_title="Le fabuleux destin d'Amélie Poulain",
        alt_titles=("Le fabuleux destin d'Amélie Poulain",),
    ),
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


# ---- alternate titles (issue 23): the record's names, split once at index build ----------------

ALT_MOVIES = [
    movie(21, "Se7en", 1995, votes=200, alt_titles=("Seven",)),
    movie(22, "Twelve Monkeys", 1995, votes=180, alt_titles=("12 Monkeys",)),
    movie(
        23, "Il Postino", 1994, votes=40, original_title="Il Postino", alt_titles=("The Postman",)
    ),
    movie(24, "La Haine", 1995, votes=30, original_title="La Haine", alt_titles=("Hate",)),
    movie(
        25,
        "Amélie",
        2001,
        votes=150,
        original_title="Le fabuleux destin d'Amélie Poulain",
        alt_titles=("Le fabuleux destin d'Amélie Poulain",),
    ),
    movie(
        26,
        "Léon: The Professional",
        1994,
        votes=120,
        original_title="Léon",
        alt_titles=("Léon", "The Professional"),
    ),
    movie(27, "The Postman", 1997, votes=10),  # Costner's: shown under that name
    movie(28, "Parasite", 1982, votes=1),
    movie(29, "Die Hard", 1988, votes=140),
    movie(30, "Heat", 1995, votes=110),
    movie(31, "Up", 2009, votes=3),
]


@pytest.fixture(scope="module")
def alt_titles() -> TitleIndex:
    return TitleIndex(ALT_MOVIES, build_title_table(ALT_MOVIES))


@pytest.mark.parametrize(
    ("typed", "movie_id"),
    [
        ("Se7en", 21),
        ("Seven", 21),
        ("12 Monkeys", 22),
        ("Il Postino", 23),
        ("postino", 23),  # articles optional
        ("La Haine", 24),
        ("haine", 24),
        ("Amélie", 25),
        ("amelie", 25),  # accents optional
        ("Le fabuleux destin d'Amélie Poulain", 25),
        ("fabuleux destin d amelie poulain", 25),
        ("Leon", 26),
        ("The Professional", 26),
        ("The Postman", 27),  # the film shown under the name comes before an alternate
    ],
)
def test_every_alternate_title_resolves_with_or_without_accents_and_articles(
    alt_titles: TitleIndex, typed: str, movie_id: int
) -> None:
    r = alt_titles.resolve(typed)
    assert r is not None and r.id == movie_id, (typed, r)
    # The display title is what comes back, whichever name was typed.
    assert r.title == alt_titles.by_id[movie_id].title


@pytest.mark.parametrize(
    ("typed", "movie_id"),
    [("Se7en", 21), ("12 Monkeys", 22), ("Il Postino", 23), ("haine", 24), ("Amélie", 25)],
)
def test_autocomplete_finds_alternate_titles(
    alt_titles: TitleIndex, typed: str, movie_id: int
) -> None:
    assert movie_id in [m.id for m in alt_titles.search(typed, 5)]


def test_another_languages_article_is_only_dropped_for_films_with_an_original_title(
    alt_titles: TitleIndex,
) -> None:
    """'Haine' finds 'La Haine' (a French film), but 'Hard' is not 'Die Hard'."""
    r = alt_titles.resolve("Hard")
    assert r is None or r.id != 29 or r.weak


def test_the_only_obscure_film_of_a_name_is_a_weak_match_with_a_note(
    alt_titles: TitleIndex,
) -> None:
    r = alt_titles.resolve("Parasite")
    assert r is not None and r.id == 28 and r.weak
    assert r.note == "the only \u2018Parasite\u2019 in this catalog: 1982"
    # A well-known film by its exact name is not weak and says nothing.
    heat = alt_titles.resolve("Heat")
    assert heat is not None and not heat.weak and heat.note is None
    # Naming the year says which film was meant: not weak either.
    dated = alt_titles.resolve("Parasite (1982)")
    assert dated is not None and not dated.weak


def test_completed_and_corrected_titles_are_weak_matches(alt_titles: TitleIndex) -> None:
    completed = alt_titles.resolve("twelve monk")
    assert completed is not None and completed.id == 22 and completed.weak
    corrected = alt_titles.resolve("Twelve Monkies")
    assert corrected is not None and corrected.id == 22 and corrected.weak
