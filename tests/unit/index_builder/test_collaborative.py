"""index_builder.collaborative and .interactions: learned and listed neighbours, time cuts."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from index_builder.collaborative import (
    CollabSettings,
    learn_neighbours,
    neighbours_for,
    related_neighbours,
)
from index_builder.interactions import Ratings, movie_stats, parse_cutoff


def two_taste_groups(users: int = 60) -> Ratings:
    """Half the users watch movies 1-4 (war epics), half 5-8 (cartoons); everyone rates 9."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(users):
        group = (1, 2, 3, 4) if u % 2 == 0 else (5, 6, 7, 8)
        seen = [m for m in group if rng.random() < 0.8] + [9]
        rows += [(u, m, 4.0, 1_000 + u * 10 + i) for i, m in enumerate(seen)]
    a = np.asarray(rows)
    return Ratings(
        a[:, 0].astype(np.int64),
        a[:, 1].astype(np.int64),
        a[:, 2].astype(np.float32),
        a[:, 3].astype(np.int64),
    )


CATALOG = np.arange(1, 11, dtype=np.int64)  # movie 10 nobody rated
# Lambda scales with the data: 500 suits 100k ratings; 60 users need a light touch.
SMALL = CollabSettings(top_n=3, ease_lambda=5.0)


@pytest.mark.parametrize("method", ["ease", "cosine"])
def test_learned_neighbours_stay_within_a_taste_group(method: str) -> None:
    n = learn_neighbours(
        two_taste_groups(),
        CATALOG,
        msgspec.structs.replace(SMALL, method=method),
        log=lambda _: None,
    )
    assert n.rows.shape == (10, 3) and n.rows.dtype == np.int32
    war, cartoons = {0, 1, 2, 3}, {4, 5, 6, 7}  # catalog rows of movies 1-4 and 5-8
    for row in war:
        top = [r for r in n.rows[row] if r >= 0]
        assert len(top) == 3 and not set(top) & cartoons and row not in top, (row, top)
        assert len(set(top) & war) >= 2
        assert np.all(np.diff(n.weights[row][: len(top)].astype(np.float32)) <= 0)
    assert n.rows[9, 0] == -1  # unrated: no neighbours, content will have to do


def test_related_lists_become_ranked_neighbours_and_unknown_ids_are_dropped() -> None:
    n = related_neighbours({1: [3, 99, 1, 2, 3], 5: [6]}, CATALOG, top_n=3)
    assert n.rows[0].tolist() == [2, 1, -1]  # movie 3, then 2; 99 unknown, self and repeat gone
    assert n.weights[0, 0] > n.weights[0, 1] > 0
    assert n.rows[4].tolist() == [5, -1, -1]
    assert n.covered() == 2


def test_neighbours_for_fills_movies_ratings_miss_from_source_lists() -> None:
    n, info = neighbours_for(CATALOG, two_taste_groups(), SMALL, {10: [1, 2]}, log=lambda _: None)
    assert n is not None and info.method == "ease+tmdb-lists"
    assert n.rows[9].tolist()[:2] == [0, 1]
    assert info.params["ratings"] == len(two_taste_groups())
    none, empty = neighbours_for(CATALOG, None, CollabSettings(), None, log=lambda _: None)
    assert none is None and empty.method == "none"


def test_ratings_until_cuts_every_rating_derived_number() -> None:
    r = two_taste_groups()
    cut = r.until(1_200)
    assert len(cut) < len(r) and int(cut.time.max()) < 1_200
    assert sum(movie_stats(cut).count.values()) == len(cut)
    stats = movie_stats(r)
    assert stats.average[9] == 8.0  # 4 stars on TMDB's 0..10 scale


def test_map_movies_translates_ids_and_drops_unmapped() -> None:
    r = two_taste_groups()
    mapped = r.map_movies({1: 101, 9: 109})
    assert set(mapped.movie.tolist()) == {101, 109}
    assert len(mapped) == int(np.isin(r.movie, [1, 9]).sum())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2015-01-01", 1_420_070_400),
        ("1420070400", 1_420_070_400),
        ("2015-01-01T01:00:00+01:00", 1_420_070_400),
    ],
)
def test_parse_cutoff(text: str, seconds: int) -> None:
    assert parse_cutoff(text) == seconds


def test_parse_cutoff_rejects_nonsense_with_the_option_name() -> None:
    with pytest.raises(ValueError, match="--ratings-until"):
        parse_cutoff("last tuesday")
