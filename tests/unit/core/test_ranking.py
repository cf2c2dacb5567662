"""moviemind_core.ranking: collaborative evidence, content, mood, negation, priors, filters, MMR."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

import moviemind_core.ranking as ranking
from moviemind_core.bundle import Bundle, IndexOptions, build_index, build_title_table
from moviemind_core.catalog import Movie
from moviemind_core.ranking import Filters, Priors, RankingSettings, rank, taste_profile


def movie(id: int, title: str, year: int | None = None, votes: int = 10, **kw) -> Movie:
    return Movie(id=id, title=title, year=year, vote_count=votes, **kw)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def make_bundle(
    movies: list[Movie],
    vectors: np.ndarray,
    neighbours: dict[int, list[tuple[int, float]]] | None = None,
    top_n: int = 4,
) -> Bundle:
    """A Bundle in memory (no files): real usearch index, real title table, neighbour lists
    given as {movie id: [(neighbour id, weight), ...]}."""
    vectors = np.asarray([unit(v) for v in vectors], dtype=np.float32)
    ids = np.asarray([m.id for m in movies], dtype=np.uint64)
    index = build_index(ids, vectors, IndexOptions(dtype="f32"))
    row = {m.id: i for i, m in enumerate(movies)}
    rows = np.full((len(movies), top_n if neighbours else 0), -1, np.int32)
    weights = np.zeros(rows.shape, np.float16)
    for mid, lst in (neighbours or {}).items():
        for j, (other, w) in enumerate(lst):
            rows[row[mid], j] = row[other]
            weights[row[mid], j] = w
    return Bundle(
        Path("."),
        None,  # type: ignore[arg-type]
        list(movies),
        [""] * len(movies),
        vectors,
        index,
        build_title_table(movies),
        rows,
        weights,
    )


# Movie i points along axis i of a 6-d space, with a small shared component so all are related.
AXIS_MOVIES = [
    movie(100, "Space One", 1980, votes=50, genres=("Sci-Fi",), vote_average=8.0),
    movie(101, "Space Two", 1995, votes=50, genres=("Sci-Fi", "Action"), vote_average=7.0),
    movie(102, "Romance One", 2001, votes=50, genres=("Romance",), vote_average=6.0),
    movie(103, "Horror One", 2010, votes=50, genres=("Horror",), vote_average=5.0),
    movie(104, "Comedy One", 2015, votes=50, genres=("Comedy",), vote_average=9.0),
    movie(105, "Drama One", None, votes=0, genres=("Drama",), vote_average=0.0),
]
AXIS_VECTORS = np.eye(6, dtype=np.float32) + 0.05
# Space Two is close to Space One.
AXIS_VECTORS[1] = AXIS_VECTORS[0] * 0.9 + AXIS_VECTORS[1] * 0.3
SIMILARITY_ONLY = RankingSettings(w_collab=0.0, w_quality=0.0, w_popularity=0.0)


@pytest.fixture(scope="module")
def axis_bundle() -> tuple[Bundle, Priors]:
    b = make_bundle(AXIS_MOVIES, AXIS_VECTORS)
    return b, Priors(b.movies, bayes_votes=20)


def test_taste_profile_is_the_unit_centroid_of_the_liked_movies() -> None:
    a = unit(np.array([1.0, 0.0, 0.0]))
    c = unit(np.array([0.0, 1.0, 0.0]))
    assert taste_profile([]) is None
    np.testing.assert_allclose(taste_profile([a]), a, atol=1e-6)
    p = taste_profile(np.stack([a, c]))
    assert p is not None
    np.testing.assert_allclose(p, unit(np.array([1.0, 1.0, 0.0])), atol=1e-6)


def test_priors_pull_few_votes_toward_the_mean(axis_bundle) -> None:
    b, priors = axis_bundle
    assert np.all((priors.quality >= 0) & (priors.quality <= 1))
    assert np.all((priors.popularity >= 0) & (priors.popularity <= 1))
    unrated = b.row_of[105]
    mean = float(np.average([m.vote_average for m in AXIS_MOVIES[:5]], weights=[50] * 5))
    assert abs(float(priors.bayes_rating[unrated]) - mean) < 1e-4
    best = b.row_of[104]
    assert mean < float(priors.bayes_rating[best]) < 9.0
    assert priors.popularity[unrated] == 0


def test_rank_orders_by_similarity_and_never_returns_excluded(axis_bundle) -> None:
    b, priors = axis_bundle
    profile = b.vector(100)
    ranked = rank(b, priors, profile, 3, settings=SIMILARITY_ONLY)
    assert [s.movie.id for s in ranked][:2] == [100, 101]
    ranked = rank(b, priors, profile, 3, exclude={100}, settings=SIMILARITY_ONLY)
    assert ranked[0].movie.id == 101
    assert 100 not in {s.movie.id for s in ranked}
    assert len(ranked) == 3
    assert all(a.score >= c.score for a, c in zip(ranked, ranked[1:], strict=False))


def test_rank_quality_prior_can_lift_a_better_movie(axis_bundle) -> None:
    b, priors = axis_bundle
    # Equidistant profile: only the prior tells the movies apart.
    profile = unit(np.ones(6, dtype=np.float32))
    ranked = rank(
        b,
        priors,
        profile,
        6,
        settings=RankingSettings(w_similarity=1e-6, w_quality=1.0, w_popularity=0.0),
    )
    assert ranked[0].movie.id == 104  # rated 9.0
    assert ranked[-1].movie.id in (103, 105)


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (Filters(year_min=1990, year_max=2010), {101, 102, 103}),
        (Filters(genres_any=["sci-fi"]), {100, 101}),
        (Filters(genres_none=["SCI-FI", "horror"]), {102, 104, 105}),
        # Bayesian ratings: 100 -> 7.71, 104 -> 8.43; 101 and the unrated 105 sit at the mean, 7.0.
        (Filters(min_rating=7.5), {100, 104}),
        # An unknown year fails any year filter; an unknown genre name matches nothing.
        (Filters(year_max=2100), {100, 101, 102, 103, 104}),
        (Filters(genres_any=["no such genre"]), set()),
    ],
)
def test_rank_filters(axis_bundle, filters: Filters, allowed: set[int]) -> None:
    b, priors = axis_bundle
    ranked = rank(b, priors, b.vector(100), 6, filters=filters)
    assert {s.movie.id for s in ranked} == allowed
    # Without a profile (nothing liked, no query) the same filters hold.
    assert {s.movie.id for s in rank(b, priors, None, 6, filters=filters)} == allowed


@pytest.mark.parametrize("exact_scan_max", [0, 20_000])
def test_rank_survives_strict_filters_and_exclusions_with_ann_and_exact_scan(
    monkeypatch: pytest.MonkeyPatch, exact_scan_max: int
) -> None:
    monkeypatch.setattr(ranking.run, "EXACT_SCAN_MAX", exact_scan_max)
    rng = np.random.default_rng(7)
    n, dim = 400, 16
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    # Only every 20th movie is a Western: a filter that passes 5% of the catalog.
    movies = [
        movie(
            1000 + i,
            f"Movie {i}",
            1950 + i % 70,
            votes=i % 50,
            genres=("Western",) if i % 20 == 0 else ("Drama",),
        )
        for i in range(n)
    ]
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    profile = b.vector(1001)
    exact = np.argsort(-(b.vectors @ profile))
    top = [b.movies[r].id for r in exact[:10]]
    ranked = rank(b, priors, profile, 10, settings=SIMILARITY_ONLY)
    assert len(set(top) & {s.movie.id for s in ranked}) >= 9  # HNSW may miss one at most
    westerns = rank(
        b, priors, profile, 8, exclude={1000, 1020}, filters=Filters(genres_any=["Western"])
    )
    assert len(westerns) == 8
    assert all(s.movie.genres == ("Western",) for s in westerns)
    assert not {1000, 1020} & {s.movie.id for s in westerns}


def test_exact_scan_finds_what_hnsw_misses_among_duplicate_vectors() -> None:
    """A catalog of mostly genre-only documents has thousands of identical vectors; the exact
    scan must still find the one movie that matches (HNSW was seen to return unrelated ones)."""
    rng = np.random.default_rng(1)
    clusters = unit_rows(rng.normal(size=(4, 32)))
    vectors = np.repeat(clusters, 500, axis=0)
    target = unit(rng.normal(size=32))
    vectors = np.vstack([vectors, target])
    movies = [movie(i, f"M{i}", 2000) for i in range(len(vectors))]
    b = make_bundle(movies, vectors)
    ranked = rank(b, Priors(b.movies, 20), None, 1, mood=target, settings=SIMILARITY_ONLY)
    assert ranked[0].movie.id == len(vectors) - 1


def unit_rows(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def test_mmr_trades_a_near_duplicate_for_variety() -> None:
    base = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    vectors = np.array(
        [base, base + [0, 0.01, 0, 0], [0.8, 0.6, 0, 0], [0.8, 0, 0.6, 0], [0, 0, 0, 1]],
        dtype=np.float32,
    )
    movies = [movie(i, f"M{i}", 2000) for i in range(5)]
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    plain = [s.movie.id for s in rank(b, priors, unit(base), 3, settings=SIMILARITY_ONLY)]
    assert plain[:2] == [0, 1]
    diverse = [
        s.movie.id
        for s in rank(
            b,
            priors,
            unit(base),
            3,
            settings=RankingSettings(w_collab=0, w_quality=0, w_popularity=0, mmr_lambda=0.3),
        )
    ]
    assert diverse[0] == 0
    assert 1 not in diverse[:2]


# ------------------------------------------------------------------ collaborative evidence

# Six movies, all with the same content vector: only the neighbour lists tell them apart.
SAME = np.ones((6, 4), dtype=np.float32)
COLLAB_MOVIES = [movie(i, f"M{i}", 2000, votes=100) for i in range(6)]
COLLAB_ONLY = RankingSettings(w_collab=1.0, w_similarity=0.0, w_quality=0.0, w_popularity=0.0)


def test_collaborative_evidence_ranks_what_the_liked_movies_point_to() -> None:
    b = make_bundle(
        COLLAB_MOVIES,
        SAME,
        {0: [(3, 0.5), (4, 0.2)], 1: [(3, 0.4), (5, 0.3)], 3: [(0, 0.5)]},
    )
    ranked = rank(b, Priors(b.movies, 20), None, 3, liked_rows=[0, 1], settings=COLLAB_ONLY)
    ids = [s.movie.id for s in ranked]
    assert ids == [3, 5, 4]  # 3 has evidence from both liked movies
    assert ranked[0].because == 0  # the larger of its two weights came from movie 0
    assert 0 not in ids and 1 not in ids  # liked rows are never their own recommendation


def test_weak_collaborative_evidence_counts_for_less_than_strong() -> None:
    """Weights are measured in units of a typical best neighbour, not relative to the request's
    strongest, so a rarely rated liked movie's noisy list does not look like strong evidence."""
    b = make_bundle(
        COLLAB_MOVIES,
        SAME,
        {0: [(3, 0.8)], 1: [(4, 0.8)], 2: [(5, 0.01)]},
    )
    priors = Priors(b.movies, 20)
    strong = rank(b, priors, None, 1, liked_rows=[0], settings=COLLAB_ONLY)[0]
    weak = rank(b, priors, None, 1, liked_rows=[2], settings=COLLAB_ONLY)[0]
    assert strong.movie.id == 3 and weak.movie.id == 5
    assert weak.score < strong.score / 10


def test_a_movie_described_only_by_its_genres_needs_a_closer_match_than_a_described_one() -> None:
    """ "Genres: Musical." matches "a feel-good musical" a little better than Singin' in the
    Rain's whole synopsis does; the thin document's similarity is cut by thin_discount."""
    movies = [
        movie(1, "Gypsy", 1962, genres=("Musical",)),
        movie(2, "Singin' in the Rain", 1952, genres=("Musical",), keywords=("hollywood",)),
        movie(3, "Heat", 1995, genres=("Crime",), overview="A heist goes wrong."),
    ]
    vectors = np.asarray([[1.0, 0.1, 0.0], [1.0, 0.3, 0.0], [0.0, 0.0, 1.0]], np.float32)
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    assert priors.described.tolist() == [False, True, True]
    mood = unit(np.asarray([1.0, 0.0, 0.0]))
    plain = msgspec.structs.replace(SIMILARITY_ONLY, thin_discount=0.0)
    assert rank(b, priors, None, 1, mood=mood, settings=plain)[0].movie.id == 1
    cut = msgspec.structs.replace(SIMILARITY_ONLY, thin_discount=0.2)
    assert rank(b, priors, None, 1, mood=mood, settings=cut)[0].movie.id == 2


def test_a_hub_in_many_neighbour_lists_needs_more_evidence_than_a_specific_neighbour() -> None:
    """Movie 3 is in every list (a hub: co-rated with everything); movie 4 only in movie 0's.
    Movie 0 gives 3 a little more weight, but that says less about movie 0 than 4's does."""
    b = make_bundle(
        COLLAB_MOVIES,
        SAME,
        {0: [(3, 0.5), (4, 0.45)], 1: [(3, 0.5)], 2: [(3, 0.5)], 5: [(3, 0.5)]},
    )
    assert b.hubness[b.row_of[3]] > 1.5 and b.hubness[b.row_of[4]] == 1.0
    priors = Priors(b.movies, 20)
    plain = msgspec.structs.replace(COLLAB_ONLY, hub_discount=0.0)
    assert [s.movie.id for s in rank(b, priors, None, 2, liked_rows=[0], settings=plain)] == [3, 4]
    discounted = rank(b, priors, None, 2, liked_rows=[0], settings=COLLAB_ONLY)
    assert COLLAB_ONLY.hub_discount == 1.0
    assert [s.movie.id for s in discounted] == [4, 3]


def test_a_stated_mood_outweighs_a_blockbusters_collaborative_pull() -> None:
    vectors = np.eye(6, dtype=np.float32) + 0.01
    b = make_bundle(COLLAB_MOVIES, vectors, {0: [(1, 4.0), (2, 0.2)]})
    mood = unit(vectors[2])
    ranked = rank(b, Priors(b.movies, 20), b.vector(0), 1, liked_rows=[0], mood=mood)
    assert ranked[0].movie.id == 2


def test_a_negative_direction_pushes_matching_movies_down() -> None:
    vectors = np.eye(6, dtype=np.float32) + 0.2
    b = make_bundle(COLLAB_MOVIES, vectors)
    priors = Priors(b.movies, 20)
    mood = unit(vectors[1] + vectors[2])
    plain = [s.movie.id for s in rank(b, priors, None, 2, mood=mood)]
    assert set(plain) == {1, 2}
    pushed = [s.movie.id for s in rank(b, priors, None, 2, mood=mood, negative=unit(vectors[1]))]
    assert pushed[0] == 2 and 1 not in pushed


def test_movies_the_catalog_describes_with_an_excluded_word_are_pushed_down() -> None:
    movies = [
        movie(0, "Liked", 2000, votes=100),
        movie(1, "Splatter Fest", 2000, votes=100, keywords=("gory", "zombies")),
        movie(2, "Quiet Night", 2000, votes=100, keywords=("romance",)),
        movie(3, "Bloody Sunday", 2000, votes=100, keywords=("bloody", "war"), genres=("Drama",)),
    ]
    b = make_bundle(movies, SAME[:4], {0: [(1, 0.9), (3, 0.8), (2, 0.2)]})
    priors = Priors(b.movies, 20)
    assert priors.rows_described_as({"gory", "bloody", "nope"}).tolist() == [1, 3]
    assert priors.rows_described_as({"drama"}).tolist() == [3]  # genres count too
    plain = [s.movie.id for s in rank(b, priors, None, 3, liked_rows=[0], settings=COLLAB_ONLY)]
    assert plain == [1, 3, 2]
    avoid = priors.rows_described_as({"gory", "bloody"})
    pushed = rank(
        b,
        priors,
        None,
        3,
        liked_rows=[0],
        avoid_rows=avoid,
        settings=RankingSettings(w_collab=1.0, w_similarity=0, w_quality=0, w_popularity=0),
    )
    assert [s.movie.id for s in pushed][0] == 2


def test_movies_whose_keywords_name_the_moods_words_are_lifted_and_found() -> None:
    """ "a heist with a twist": a movie tagged both gains w_keywords in full, one tagged "heist"
    half; a tagged movie no other source reached still becomes a candidate."""
    movies = [
        movie(0, "Liked", 2000, votes=100),
        movie(1, "Tagged Both", 2000, votes=100, keywords=("heist", "twist ending")),
        movie(2, "Tagged Heist", 2000, votes=100, keywords=("heist",)),
        movie(3, "Near", 2000, votes=100, keywords=("romance",)),
    ]
    vectors = np.asarray([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0.9, 0.1, 0]], np.float32)
    b = make_bundle(movies, vectors)
    priors = Priors(b.movies, 20)
    share = priors.keyword_share([{"heist"}, {"twist"}])
    assert share is not None and share.tolist() == [0.0, 1.0, 0.5, 0.0]
    assert priors.keyword_share([]) is None
    mood = unit(np.asarray([1.0, 0.0, 0.0]))
    s = RankingSettings(w_collab=0, w_quality=0, w_popularity=0, oversample=1, w_keywords=0.0)
    assert [x.movie.id for x in rank(b, priors, None, 1, mood=mood, exclude={0}, settings=s)] == [3]
    lifted = msgspec.structs.replace(s, w_keywords=4.0)
    ranked = rank(b, priors, None, 3, mood=mood, keyword_share=share, exclude={0}, settings=lifted)
    assert [x.movie.id for x in ranked] == [1, 2, 3]


def test_with_nothing_to_go_on_an_exclusion_still_pushes_movies_down() -> None:
    """A mood that only excludes ("nothing too dark") and no liked movies: the best-liked
    fallback must still honour the exclusion."""
    movies = [
        movie(0, "Bleak Classic", 2000, votes=500, vote_average=9.0, keywords=("bleak",)),
        movie(1, "Light Classic", 2000, votes=400, vote_average=8.5, keywords=("feel-good",)),
    ]
    b = make_bundle(movies, SAME[:2])
    priors = Priors(b.movies, 20)
    assert [s.movie.id for s in rank(b, priors, None, 2)] == [0, 1]
    avoid = priors.rows_described_as({"bleak"})
    assert [s.movie.id for s in rank(b, priors, None, 2, avoid_rows=avoid)] == [1, 0]
