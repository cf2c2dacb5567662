"""edge.mood: what a person wants, and what they exclude, from one free-text mood."""

from __future__ import annotations

import pytest

from edge.mood import Mood, parse_mood, word_forms, word_groups

GENRES = ["horror", "animation", "children", "sci-fi", "comedy", "romance", "drama", "film-noir"]


@pytest.mark.parametrize(
    ("text", "mood"),
    [
        ("slow-burn sci-fi, nothing gory", Mood("slow-burn sci-fi", ("gory",))),
        ("nothing too dark", Mood("", ("dark",))),
        ("no horror", Mood("", (), ("Horror",))),
        ("not animated", Mood("", (), ("Animation",))),
        ("without gore", Mood("", ("gore",))),
        ("funny but not childish", Mood("funny", ("childish",))),
        ("heist with a twist and no romance", Mood("heist with a twist", (), ("Romance",))),
        ("epic battles, no cartoons please", Mood("epic battles", (), ("Animation",))),
        ("no horror movies", Mood("", (), ("Horror",))),
        ("no a-list actors", Mood("", ("a-list actors",))),
        ("space opera", Mood("space opera")),
        # "noir" and "nothing" contain "no" but are not negations.
        ("noir with nothing supernatural", Mood("noir with", ("supernatural",))),
        ("", Mood("")),
    ],
)
def test_parse_mood(text: str, mood: Mood) -> None:
    assert parse_mood(text, GENRES) == mood


def test_a_genre_word_the_catalog_lacks_stays_an_excluded_phrase() -> None:
    assert parse_mood("no westerns", GENRES) == Mood("", ("westerns",))
    assert parse_mood("no westerns", [*GENRES, "western"]) == Mood("", (), ("Western",))


def test_word_forms_cover_the_catalogs_vocabulary() -> None:
    assert {"gore", "gory", "bloody"} <= word_forms("gore")
    assert {"dark", "bleak", "grim"} <= word_forms("too dark")
    assert {"violence", "violent", "brutal"} <= word_forms("violence")
    assert "zombie" in word_forms("zombies")  # plural -> singular
    assert word_forms("the movies") == set()


def test_word_groups_keep_one_group_per_word_that_says_something() -> None:
    assert word_groups("a heist with a twist") == [{"heist"}, {"twist"}]
    groups = word_groups("something gory for Friday night")
    assert len(groups) == 1 and {"gore", "gory", "bloody"} <= groups[0]
    assert word_groups("zombies") == [{"zombies", "zombie", "zombi"}]
    assert word_groups("a good movie for the night") == []


def test_genre_exclusions_use_canonical_ids_or_the_catalogs_own_spelling() -> None:
    # Without a catalog (and with a canonical one) every spelling of a genre names one id.
    assert parse_mood("no family films") == Mood("", (), ("Children",))
    assert parse_mood("not science fiction") == Mood("", (), ("Sci-Fi",))
    # An index built before genre ids were canonical (TMDB's "Family") keeps working.
    assert parse_mood("no kids stuff", ["family", "drama"]) == Mood("", (), ("Family",))
    assert parse_mood("no musicals", ["musical", "music"]) == Mood("", (), ("Musical", "Music"))


def test_negation_cues_of_more_than_one_word() -> None:
    assert parse_mood("I don't want horror", GENRES) == Mood("I", (), ("Horror",))
    assert parse_mood("rather not too scary") == Mood("", (), ("Horror",))
    assert parse_mood("war films but no more war") == Mood("war films", (), ("War",))
