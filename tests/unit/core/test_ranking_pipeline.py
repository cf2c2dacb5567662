"""The ranking pipeline's newer parts: the distinct-row content scan, coherence with the liked
movies, popularity calibration against a hub's generic pull, and the pipeline's pluggable parts."""

from __future__ import annotations

import msgspec
import numpy as np

from moviemind_core.catalog import Movie
from moviemind_core.ranking import (
    ContentScan,
    Pipeline,
    Priors,
    RankingSettings,
    build_query,
    rank,
)
from moviemind_core.ranking.scorers import DEFAULT_SCORERS
from tests.unit.core.test_ranking import make_bundle, unit

NO_NEW_TERMS = RankingSettings(w_coherence=0.0, w_calibration=0.0)


def test_the_content_scan_multiplies_distinct_rows_once_and_matches_the_full_product() -> None:
    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(5, 8)).astype(np.float32)
    vectors = distinct[rng.integers(0, 5, size=40)]
    scan = ContentScan(vectors)
    assert scan.distinct.shape[0] <= 5 and scan.distinct.flags["C_CONTIGUOUS"]
    assert scan.distinct.dtype == np.float32
    d = [unit(rng.normal(size=8)), unit(rng.normal(size=8))]
    np.testing.assert_allclose(scan.sims(d), np.stack([vectors @ x for x in d]), rtol=1e-5)


def era_catalog() -> tuple[list[Movie], np.ndarray]:
    """A liked 1950s romance; candidates with identical content and priors that differ only in
    genres and year, and one most-rated hub."""
    movies = [
        Movie(id=1, title="Liked", year=1953, genres=("Romance", "Comedy"), vote_count=50),
        # Catalog order puts the worse fits first: ties would keep this order.
        Movie(id=3, title="Modern romance", year=1999, genres=("Romance",), vote_count=50),
        Movie(id=4, title="Same era war", year=1954, genres=("War",), vote_count=50),
        Movie(id=2, title="Same era romance", year=1955, genres=("Romance",), vote_count=50),
        Movie(id=5, title="Hub", year=1994, genres=("Crime", "Drama"), vote_count=5000),
        Movie(id=6, title="Filler", year=1980, genres=("Drama",), vote_count=10),
    ]
    return movies, np.ones((len(movies), 4), np.float32)


def ids(ranked) -> list[int]:
    return [s.movie.id for s in ranked]


def test_coherence_prefers_the_liked_movies_genres_and_era() -> None:
    movies, vectors = era_catalog()
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    s = RankingSettings(w_quality=0.0, w_popularity=0.0, w_calibration=0.0)
    got = ids(rank(b, priors, b.vector(1), 5, liked_rows=[0], exclude={1}, settings=s))
    assert got[:2] == [2, 3]  # the liked genre first, in the nearer era first
    off = msgspec.structs.replace(s, w_coherence=0.0)
    flat = ids(rank(b, priors, b.vector(1), 5, liked_rows=[0], exclude={1}, settings=off))
    assert flat[:3] == [3, 4, 2]  # without coherence: ties, in catalog order


def test_popularity_calibration_drops_an_incoherent_hub_but_keeps_a_fitting_one() -> None:
    movies, vectors = era_catalog()
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    assert priors.hub_pull[4] > 0.9 and priors.hub_pull[1] < 0.05
    plain = ids(rank(b, priors, b.vector(1), 2, liked_rows=[0], exclude={1}, settings=NO_NEW_TERMS))
    assert plain[0] == 5  # the most-rated wins on popularity alone
    calibrated = msgspec.structs.replace(NO_NEW_TERMS, w_calibration=1.0)
    got = ids(rank(b, priors, b.vector(1), 2, liked_rows=[0], exclude={1}, settings=calibrated))
    assert 5 not in got
    # The same hub liked by genre and era: coherence keeps it.
    fitting = [msgspec.structs.replace(m, genres=("Romance", "Comedy"), year=1953) if m.id == 5
               else m for m in movies]  # fmt: skip
    b2 = make_bundle(fitting, vectors)
    p2 = Priors(b2.movies, 20)
    kept = ids(rank(b2, p2, b2.vector(1), 2, liked_rows=[0], exclude={1}, settings=calibrated))
    assert kept[0] == 5


def test_a_pipeline_runs_the_parts_it_is_given() -> None:
    movies, vectors = era_catalog()
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    q = build_query(b, priors, 3, liked_ids=[1])
    full = Pipeline(RankingSettings()).run(b, priors, q)
    assert 1 not in ids(full) and len(full) == 3
    no_priors = Pipeline(RankingSettings(), scorers=DEFAULT_SCORERS[1:]).run(b, priors, q)
    assert [s.score for s in no_priors] != [s.score for s in full]
    # A pipeline whose only source proposes the filler ranks the filler alone.
    only = Pipeline(RankingSettings(), sources=(lambda run: np.asarray([5]),))
    assert ids(only.run(b, priors, build_query(b, priors, 1, liked_ids=[1]))) == [6]
