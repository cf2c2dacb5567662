"""Candidate retrieval and ranking: taste profile -> ANN search -> filters -> blended score -> MMR."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.catalog import Movie


class RankingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Weights of the blended score; each is an edge setting (MOVIEMIND_EDGE_RANK_*)."""

    w_similarity: float = 1.0
    w_quality: float = 0.2
    w_popularity: float = 0.3
    # Bayesian average: a movie's rating is pulled toward the catalog mean by this many votes.
    bayes_votes: float = 20.0
    # Weight of the free-text query against the liked movies in the taste profile.
    w_query: float = 0.6
    # Candidates fetched per wanted result before filters and exclusions.
    oversample: int = 6
    # 1.0 = no diversity; lower trades similarity for variety (maximal marginal relevance).
    mmr_lambda: float = 1.0


class Filters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Hard filters on candidates. min_rating is on the 0..10 scale of vote_average."""

    year_min: int | None = None
    year_max: int | None = None
    # default_factory: Litestar's OpenAPI generator cannot hash a literal [] default.
    genres_any: list[str] = msgspec.field(default_factory=list)
    genres_none: list[str] = msgspec.field(default_factory=list)
    min_rating: float | None = None

    def is_empty(self) -> bool:
        return self == _NO_FILTERS


_NO_FILTERS = Filters()
_DEFAULT_RANKING = RankingSettings()


class Scored(msgspec.Struct, frozen=True):
    movie: Movie
    similarity: float
    score: float


class Priors:
    """Per-row quality and popularity in 0..1, computed once per bundle."""

    def __init__(self, movies: Sequence[Movie], bayes_votes: float) -> None:
        votes = np.asarray([m.vote_count for m in movies], dtype=np.float64)
        avg = np.asarray([m.vote_average for m in movies], dtype=np.float64)
        mean = float((avg * votes).sum() / votes.sum()) if votes.sum() > 0 else 5.0
        bayes = (votes * avg + bayes_votes * mean) / (votes + bayes_votes)
        self.quality = (bayes / 10.0).astype(np.float32)
        top = math.log1p(votes.max()) if len(votes) and votes.max() > 0 else 1.0
        self.popularity = (np.log1p(votes) / top).astype(np.float32)
        self.bayes_rating = bayes.astype(np.float32)


def _norm(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def taste_profile(
    liked_vectors: Sequence[np.ndarray], query_vector: np.ndarray | None, w_query: float
) -> np.ndarray | None:
    """Unit vector of the liked movies' centroid blended with the free-text query."""
    parts = []
    if len(liked_vectors):
        parts.append(
            (1.0 - w_query if query_vector is not None else 1.0)
            * _norm(np.mean(liked_vectors, axis=0))
        )
    if query_vector is not None:
        parts.append((w_query if len(liked_vectors) else 1.0) * _norm(query_vector))
    if not parts:
        return None
    return _norm(np.sum(parts, axis=0)).astype(np.float32)


def passes(movie: Movie, f: Filters, bayes_rating: float) -> bool:
    if f.year_min is not None and (movie.year is None or movie.year < f.year_min):
        return False
    if f.year_max is not None and (movie.year is None or movie.year > f.year_max):
        return False
    genres = {g.lower() for g in movie.genres}
    if f.genres_any and not genres & {g.lower() for g in f.genres_any}:
        return False
    if f.genres_none and genres & {g.lower() for g in f.genres_none}:
        return False
    return not (f.min_rating is not None and bayes_rating < f.min_rating)


def _nearest(bundle: Bundle, profile: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, similarities): ANN while the count is small, exact once it covers the catalog."""
    n = len(bundle)
    if count >= n // 2:
        sims = bundle.vectors @ profile
        rows = np.argsort(-sims)[:count]
        return rows, sims[rows]
    matches = bundle.index.search(profile, count)
    rows = bundle.rows_of(np.asarray(matches.keys, dtype=np.int64))
    # usearch reports cosine distance; similarities from the stored f32 vectors are exact.
    return rows, bundle.vectors[rows] @ profile


def rank(
    bundle: Bundle,
    priors: Priors,
    profile: np.ndarray | None,
    k: int,
    *,
    exclude: Iterable[int] = (),
    filters: Filters = _NO_FILTERS,
    settings: RankingSettings = _DEFAULT_RANKING,
) -> list[Scored]:
    """The k best candidates for a profile (or, without one, the best-rated that pass filters)."""
    excluded = set(exclude)
    n = len(bundle)
    if profile is None:
        order = np.argsort(-(priors.quality + priors.popularity))
        out = []
        for row in order:
            m = bundle.movies[row]
            if m.id not in excluded and passes(m, filters, float(priors.bayes_rating[row])):
                out.append(Scored(m, 0.0, float(priors.quality[row])))
                if len(out) == k:
                    break
        return out

    count = min(n, max(k, 1) * settings.oversample + len(excluded))
    excluded_ids = np.fromiter(excluded, dtype=np.int64, count=len(excluded))
    unfiltered = filters.is_empty()
    while True:
        rows, sims = _nearest(bundle, profile, count)
        if excluded_ids.size:
            keep = ~np.isin(bundle.ids[rows], excluded_ids)
            rows, sims = rows[keep], sims[keep]
        if not unfiltered:
            keep = np.fromiter(
                (passes(bundle.movies[r], filters, float(priors.bayes_rating[r])) for r in rows),
                dtype=bool,
                count=len(rows),
            )
            rows, sims = rows[keep], sims[keep]
        if len(rows) >= k * 2 or count >= n:
            break
        count = min(n, count * 4)
    blended = (
        settings.w_similarity * sims
        + settings.w_quality * priors.quality[rows]
        + settings.w_popularity * priors.popularity[rows]
    )
    order = np.argsort(-blended, kind="stable")
    scored = [(int(rows[i]), float(sims[i]), float(blended[i])) for i in order]
    if settings.mmr_lambda < 1.0:
        scored = _mmr(bundle, scored, k, settings.mmr_lambda)
    return [Scored(bundle.movies[r], s, sc) for r, s, sc in scored[:k]]


def _mmr(
    bundle: Bundle, scored: list[tuple[int, float, float]], k: int, lam: float
) -> list[tuple[int, float, float]]:
    """Greedy maximal marginal relevance over the blended scores."""
    pool = scored[: max(k * 4, k)]
    chosen: list[tuple[int, float, float]] = []
    while pool and len(chosen) < k:
        if not chosen:
            best = 0
        else:
            chosen_vecs = bundle.vectors[[c[0] for c in chosen]]
            best, best_val = 0, -math.inf
            for i, (r, _s, sc) in enumerate(pool):
                redundancy = float((chosen_vecs @ bundle.vectors[r]).max())
                val = lam * sc - (1 - lam) * redundancy
                if val > best_val:
                    best, best_val = i, val
        chosen.append(pool.pop(best))
    return chosen
