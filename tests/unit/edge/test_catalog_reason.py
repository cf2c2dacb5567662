"""The catalog's own reason, shown first and wherever no model reason passes the gate."""

from __future__ import annotations

from edge.service import closest_liked, metadata_reason
from moviemind_core.catalog import Movie

AMELIE = Movie(
    id=1,
    title="Amélie",
    original_title="Le fabuleux destin d'Amélie Poulain",
    alt_titles=("Le fabuleux destin d'Amélie Poulain",),
    genres=("Comedy",),
)
DARK_KNIGHT = Movie(id=2, title="Dark Knight, The", genres=("Action", "Crime", "IMAX"))
PICK = Movie(
    id=3,
    title="Batman Begins",
    genres=("Action", "Crime", "IMAX"),
    keywords=("superhero", "origin story", "gotham city", "bats"),
    vote_average=7.7,
    vote_count=105,
)


def test_names_the_liked_movie_the_ranker_credits_in_short_and_skips_imax() -> None:
    # `because` decides without vectors, so no snapshot is needed.
    best = closest_liked(PICK, [AMELIE, DARK_KNIGHT], None, because=2)  # type: ignore[arg-type]
    assert best is DARK_KNIGHT
    text = metadata_reason(PICK, best, "")
    assert text == (
        "Close to Dark Knight, The: also action, crime; superhero, origin story, gotham city; "
        "rated 7.7/10 by 105 viewers."
    )
    assert metadata_reason(PICK, AMELIE, "").startswith("Close to Amélie;")
    assert closest_liked(PICK, [], None) is None  # type: ignore[arg-type]


def test_without_liked_movies_it_quotes_the_mood() -> None:
    text = metadata_reason(PICK, None, "dark superheroes")
    assert text.startswith("Matches \u201cdark superheroes\u201d: action, crime;")
