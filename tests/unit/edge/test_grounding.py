"""edge.grounding: tying the model's lines to catalog movies."""

from __future__ import annotations

import pytest

from edge.grounding import ground
from tests.support.catalog import movie

GROUND_CANDIDATES = [
    movie(1, "Heat", 1995),
    movie(2, "Heat", 1986),
    movie(3, "Mission: Impossible", 1996),
    movie(4, "The Machinist", 2004),
    movie(5, "Collateral", 2004),
    movie(6, "Thief", 1981),
]


def test_ground_keeps_model_order_and_reasons_and_fills_from_retrieval() -> None:
    text = "[1] Collateral (2004) - a night in LA\n[2] Mission: Impossible (1996) - spies\n"
    g = ground(text, GROUND_CANDIDATES, 4)
    assert [p.movie.id for p in g.picks] == [5, 3, 1, 2]
    assert [p.from_model for p in g.picks] == [True, True, False, False]
    assert g.picks[0].reason == "a night in LA"
    assert g.picks[2].reason is None
    assert g.dropped == []


def test_ground_drops_titles_that_are_not_candidates_and_counts_them() -> None:
    text = "Star Wars (1977) - classic\nCollateral (2004) - night\nTitanic (1997) - boat\n"
    g = ground(text, GROUND_CANDIDATES, 3)
    assert [p.movie.id for p in g.picks] == [5, 1, 2]
    assert g.dropped == ["Star Wars", "Titanic"]
    assert {p.movie.id for p in g.picks} <= {m.id for m in GROUND_CANDIDATES}


@pytest.mark.parametrize(
    ("line", "movie_id"), [("Heat (1995) - the film", 1), ("Heat (1986) - the TV pilot", 2)]
)
def test_ground_uses_the_year_to_pick_between_same_titles(line: str, movie_id: int) -> None:
    assert ground(line, GROUND_CANDIDATES, 1).picks[0].movie.id == movie_id


def test_ground_tolerates_a_typo_in_a_title() -> None:
    assert ground("Colateral (2004) - night drive", GROUND_CANDIDATES, 1).picks[0].movie.id == 5


def test_ground_skips_liked_movies_duplicates_and_stops_at_k() -> None:
    text = (
        "Heat (1995) - liked already\nThief (1981) - yes\nThief (1981) - again\n"
        "Collateral (2004) - yes\nThe Machinist (2004) - over k"
    )
    g = ground(text, GROUND_CANDIDATES, 2, exclude={1})
    assert [p.movie.id for p in g.picks] == [6, 5]
    filled = ground("", GROUND_CANDIDATES, 10, exclude={1, 2})
    assert [p.movie.id for p in filled.picks] == [3, 4, 5, 6]


@pytest.mark.parametrize(
    ("line", "movie_id", "reason"),
    [
        ("[3] Mission: Impossible (1996) - spies on a train", 3, "spies on a train"),
        ("1. **Mission: Impossible** (1996) - spies", 3, "spies"),
        ("- Thief (1981): a safecracker", 6, "a safecracker"),
        ("Thief (1981) – a safecracker", 6, "a safecracker"),
        ("Mission: Impossible - spies", 3, "spies"),
        ("**The Machinist** - insomnia", 4, "insomnia"),
    ],
)
def test_ground_reads_the_usual_answer_shapes(line: str, movie_id: int, reason: str) -> None:
    g = ground(line, GROUND_CANDIDATES, 1)
    assert g.picks[0].movie.id == movie_id
    assert g.picks[0].from_model
    assert g.picks[0].reason == reason
    assert g.dropped == []


def test_ground_echoed_candidate_lines_and_long_reasons() -> None:
    # SmolLM2 often answers by echoing candidate lines ("[n] Title (Year) | genres"); they are
    # picks, not dropped titles.
    g = ground(
        "[1] The Machinist (2004) | Drama, Thriller\n[2] Thief (1981) | Crime", GROUND_CANDIDATES, 2
    )
    assert [p.movie.id for p in g.picks] == [4, 6]
    assert g.dropped == []
    g = ground("Collateral (2004) - " + "x" * 500, GROUND_CANDIDATES, 1)
    assert g.picks[0].movie.id == 5
    assert g.picks[0].reason is not None and len(g.picks[0].reason) <= 300


def test_ground_chatter_is_neither_a_pick_nor_a_dropped_title() -> None:
    g = ground("Here are my picks:\nEnjoy the movies!\n", GROUND_CANDIDATES, 2)
    assert g.dropped == []
    assert [p.from_model for p in g.picks] == [False, False]
