"""index_builder.feedback: visitors' votes as interactions, with a minimum support per film."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.collaborative import CollabSettings, neighbours_for
from index_builder.feedback import combined, read_feedback
from index_builder.interactions import Ratings
from moviemind_core.feedback import FeedbackEvent, open_store

CATALOG = np.arange(1, 21, dtype=np.int64)


def vote(
    visitor: str, movie: int, signal: str = "like", liked: tuple[int, ...] = ()
) -> FeedbackEvent:
    return FeedbackEvent(visitor=visitor, movie_id=movie, signal=signal, at=1000.0, liked_ids=liked)  # type: ignore[arg-type]


def stored(tmp_path: Path, votes: list[FeedbackEvent]) -> str:
    url = str(tmp_path / "feedback.sqlite3")
    store = open_store(url)
    store.write(votes)
    store.close()
    return url


def test_only_likes_and_choices_of_films_with_enough_visitors_count(tmp_path: Path) -> None:
    votes = []
    for v in range(3):  # three visitors like 1 and choose 2, having told the page they love 3
        votes += [vote(f"visitor-{v}", 1, liked=(3,)), vote(f"visitor-{v}", 2, "chose")]
    votes += [
        vote("visitor-0", 4),  # one visitor: below the support of 3
        vote("visitor-1", 5, "seen"),  # not a like
        vote("visitor-2", 6, "dislike"),
        vote("visitor-2", 999),  # not in the catalog
        vote("visitor-9", 4),  # left with no supported film: dropped
    ]
    ratings, use = read_feedback(stored(tmp_path, votes), CATALOG, min_support=3, log=print)
    assert (use.votes, use.positive, use.visitors, use.movies, use.below_support) == (
        11,
        8,
        3,
        3,
        1,
    )
    assert use.interactions == len(ratings) == 9
    assert sorted(set(ratings.movie.tolist())) == [1, 2, 3]
    assert set(ratings.user.tolist()) == {-1, -2, -3}  # never a source user id
    assert (ratings.stars == 5.0).all()
    _, strict = read_feedback(stored(tmp_path / "b", votes), CATALOG, min_support=4)
    assert strict.interactions == 0


def test_feedback_becomes_collaborative_neighbours(tmp_path: Path) -> None:
    """Films no rating connects become neighbours once enough visitors like them together."""
    base = Ratings(
        user=np.array([1, 1, 2, 2]),
        movie=np.array([10, 11, 10, 11]),
        stars=np.full(4, 4.0, np.float32),
        time=np.zeros(4, np.int64),
    )
    settings = CollabSettings(method="cosine", top_n=5)
    before, _ = neighbours_for(CATALOG, base, settings, log=lambda _m: None)
    assert before is not None and (before.rows[CATALOG.tolist().index(15)] < 0).all()
    votes = [vote(f"visitor-{v}", m) for v in range(4) for m in (15, 16)]
    extra, _ = read_feedback(stored(tmp_path, votes), CATALOG, min_support=3)
    after, _ = neighbours_for(CATALOG, combined(base, extra), settings, log=lambda _m: None)
    assert after is not None
    row = CATALOG.tolist().index(15)
    assert CATALOG[after.rows[row, 0]] == 16
