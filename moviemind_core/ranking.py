"""Hybrid ranking: collaborative evidence + content similarity + quality and popularity priors.

Shared by the edge (every request) and `index_builder eval` (offline evaluation), so the numbers in
docs/benchmarks/eval.md are the edge's own ranking. Everything is vectorised over catalog rows:
no per-candidate Python on the request path.

score(c) = w_collab  * x / (x + 1)               (x: mean neighbour weight the liked movies give c,
                                                   in units of a typical best-neighbour weight,
                                                   divided by c's hubness ** hub_discount)
         + w_similarity * cos(profile, c) * t     (the liked movies' centroid)
         + w_mood * cos(mood, c) * t              (what the person asked for in words)
         + w_keywords * share of the mood's words c's keywords or genres name
         - w_negative * (cos(negative, c) above the candidates' median, plus 1 when the
                        catalog's keywords name what the mood excludes: "nothing too dark")
         + w_quality * bayesian rating (0..1) + w_popularity * log votes (0..1)
(t: 1, or 1 - thin_discount for a movie the catalog describes by its genres alone)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.catalog import Movie


class RankingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Weights of the blended score; each is an edge setting (MOVIEMIND_EDGE_RANK_*).

    Defaults were chosen on the validation users of `index_builder eval` (docs/benchmarks/eval.md).
    """

    w_collab: float = 1.0
    w_similarity: float = 1.0
    w_quality: float = 0.6
    w_popularity: float = 0.2
    w_negative: float = 1.0
    # A stated mood is an explicit request: it must visibly shape the list, so it weighs more
    # than the liked movies' content. Set by hand (MovieLens has no moods to tune it on).
    w_mood: float = 1.5
    # Bayesian average: a movie's rating is pulled toward the catalog mean by this many votes.
    bayes_votes: float = 20.0
    # Candidates fetched per wanted result from each source (liked movies' content, the mood,
    # the best-liked overall), before filters.
    oversample: int = 20
    # Lexical half of the mood: added in full for a movie whose keywords or genres name every
    # word of the mood ("heist", "twist"), in part for some. The embedding alone ranks a
    # synopsis that never says "heist" above a heist film's "Genres: Crime." for some words.
    w_keywords: float = 0.3
    # 1.0 = no diversity; lower trades score for variety (maximal marginal relevance).
    mmr_lambda: float = 1.0
    # Collaborative evidence for a hub (a movie in many times the median number of neighbour
    # lists: Fargo is in 283 of 6,000) is divided by hubness ** this. Item-item neighbours of a
    # small ratings set point everyone at the popular titles of its years; their popularity is
    # already counted by w_popularity. 0 = no discount.
    hub_discount: float = 1.0
    # Similarity to a movie whose document is its genres alone ("Genres: Musical.") is cut by
    # this share: thousands of such movies share one vector, which matches any request naming
    # the genre better than a described film does. 0 = no cut.
    thin_discount: float = 0.2


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
    """A ranked movie; `because` is the liked movie id that gave it the most collaborative weight."""

    movie: Movie
    similarity: float
    score: float
    because: int | None = None


class Priors:
    """Per-row arrays computed once per bundle: quality, popularity, years, genre bits."""

    def __init__(self, movies: Sequence[Movie], bayes_votes: float) -> None:
        votes = np.asarray([m.vote_count for m in movies], dtype=np.float64)
        avg = np.asarray([m.vote_average for m in movies], dtype=np.float64)
        mean = float((avg * votes).sum() / votes.sum()) if votes.sum() > 0 else 5.0
        bayes = (votes * avg + bayes_votes * mean) / (votes + bayes_votes)
        self.quality = (bayes / 10.0).astype(np.float32)
        top = math.log1p(votes.max()) if len(votes) and votes.max() > 0 else 1.0
        self.popularity = (np.log1p(votes) / top).astype(np.float32)
        self.bayes_rating = bayes.astype(np.float32)
        # Movies the catalog describes beyond their genres (keywords or a synopsis).
        self.described = np.asarray([bool(m.keywords or m.overview) for m in movies], bool)
        # Filters run as array masks: the year (-1 = unknown) and one bit per genre.
        self.year = np.asarray([m.year if m.year is not None else -1 for m in movies], np.int32)
        self.genre_bit: dict[str, int] = {}
        bits = np.zeros(len(movies), np.uint64)
        for row, m in enumerate(movies):
            for g in m.genres:
                bit = self.genre_bit.setdefault(g.lower(), len(self.genre_bit))
                if bit < 64:
                    bits[row] |= np.uint64(1 << bit)
        self.genres = bits
        # Rows by the same prior the "no profile" fallback uses, best first: a retrieval source.
        self.by_prior = np.argsort(-(self.quality + self.popularity), kind="stable")
        # Words of each movie's keywords and genres -> rows, so a mood's exclusions ("without
        # gore") can find the movies the catalog itself describes that way.
        terms: dict[str, list[int]] = {}
        for row, m in enumerate(movies):
            for word in {
                w for text in (*m.keywords, *m.genres) for w in _WORD.findall(text.lower())
            }:
                terms.setdefault(word, []).append(row)
        self.terms = {w: np.asarray(r, dtype=np.int64) for w, r in terms.items()}

    def rows_described_as(self, words: Iterable[str]) -> np.ndarray:
        """Rows whose keywords or genres contain any of the words (lower case)."""
        found = [self.terms[w] for w in words if w in self.terms]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def keyword_share(self, groups: Sequence[Iterable[str]]) -> np.ndarray | None:
        """Per row, the share of `groups` (each: the catalog words for one word of a mood) that
        its keywords or genres name; None without groups."""
        if not groups:
            return None
        hits = np.zeros(len(self.quality), np.float32)
        for words in groups:
            hits[self.rows_described_as(words)] += 1.0
        return hits / len(groups)

    def genre_mask(self, names: Iterable[str]) -> np.uint64:
        """The bits of the named genres (unknown names match nothing)."""
        mask = 0
        for name in names:
            bit = self.genre_bit.get(name.lower())
            if bit is not None and bit < 64:
                mask |= 1 << bit
        return np.uint64(mask)

    def passing(self, rows: np.ndarray, f: Filters) -> np.ndarray:
        """Boolean mask over rows: which pass the filters."""
        keep = np.ones(len(rows), dtype=bool)
        if f.year_min is not None:
            keep &= self.year[rows] >= f.year_min
        if f.year_max is not None:
            year = self.year[rows]
            keep &= (year >= 0) & (year <= f.year_max)
        if f.genres_any:
            keep &= (self.genres[rows] & self.genre_mask(f.genres_any)) != 0
        if f.genres_none:
            keep &= (self.genres[rows] & self.genre_mask(f.genres_none)) == 0
        if f.min_rating is not None:
            keep &= self.bayes_rating[rows] >= f.min_rating
        return keep


_WORD = re.compile(r"[a-z0-9]+")


def _norm(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def taste_profile(liked_vectors: Sequence[np.ndarray] | np.ndarray) -> np.ndarray | None:
    """Unit vector of the liked movies' centroid (None without liked movies)."""
    if not len(liked_vectors):
        return None
    return _norm(np.mean(liked_vectors, axis=0)).astype(np.float32)


def collab_scores(bundle: Bundle, liked_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, summed weights) of every movie some liked movie lists as a neighbour."""
    if not len(liked_rows) or bundle.neighbour_rows.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows = bundle.neighbour_rows[liked_rows].ravel()
    weights = bundle.neighbour_weights[liked_rows].ravel()
    valid = rows >= 0
    rows, weights = rows[valid], weights[valid]
    uniq, inverse = np.unique(rows, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=weights).astype(np.float32)


# Up to this many movies an exact scan is as fast as the ANN index (~0.5 ms for 9k x 384 here)
# and cannot miss: HNSW degrades badly on clusters of identical vectors, which a catalog whose
# documents are mostly "Genres: Drama." has (measured: a heist query returned horror films).
EXACT_SCAN_MAX = 20_000


def _nearest(bundle: Bundle, profile: np.ndarray, count: int) -> np.ndarray:
    """Rows nearest the profile: exact for small catalogs or large counts, ANN otherwise."""
    n = len(bundle)
    if n <= EXACT_SCAN_MAX or count >= n // 2:
        sims = bundle.vectors @ profile
        if count >= n:
            return np.argsort(-sims)
        top = np.argpartition(-sims, count - 1)[:count]
        return top[np.argsort(-sims[top])]
    matches = bundle.index.search(profile, count)
    return bundle.rows_of(np.asarray(matches.keys, dtype=np.int64))


def _because(bundle: Bundle, liked_rows: np.ndarray, row: int) -> int | None:
    """The liked movie whose neighbour list gives `row` the largest weight."""
    if not len(liked_rows) or bundle.neighbour_rows.shape[1] == 0:
        return None
    lists = bundle.neighbour_rows[liked_rows]
    hit = lists == row
    if not hit.any():
        return None
    weights = np.where(hit, bundle.neighbour_weights[liked_rows], 0.0).max(axis=1)
    return bundle.movies[int(liked_rows[int(np.argmax(weights))])].id


def rank(
    bundle: Bundle,
    priors: Priors,
    profile: np.ndarray | None,
    k: int,
    *,
    liked_rows: Sequence[int] | np.ndarray = (),
    mood: np.ndarray | None = None,
    negative: np.ndarray | None = None,
    avoid_rows: np.ndarray | None = None,
    keyword_share: np.ndarray | None = None,
    exclude: Iterable[int] = (),
    filters: Filters = _NO_FILTERS,
    settings: RankingSettings = _DEFAULT_RANKING,
) -> list[Scored]:
    """The k best movies for liked rows, their content profile and/or a mood vector (without any,
    the best-rated that pass the filters). Movies whose ids are in `exclude` are never returned."""
    n = len(bundle)
    liked = np.asarray(liked_rows, dtype=np.int64)
    excluded = np.fromiter(set(exclude), dtype=np.int64)
    s = settings
    c_rows, c_weights = (
        collab_scores(bundle, liked) if s.w_collab > 0 else (np.zeros(0, np.int64),) * 2
    )
    if profile is not None and s.w_similarity <= 0:
        profile = None
    use_content = profile is not None or mood is not None
    if not use_content and not len(c_rows):
        rows = np.arange(n)
    else:
        pool = [c_rows]
        count = min(n, max(k, 1) * s.oversample + len(excluded))
        for direction in (profile, mood):
            if direction is not None:
                pool.append(_nearest(bundle, direction, count))
        if s.w_popularity > 0 or s.w_quality > 0:
            # Well-liked movies compete even when no vector or neighbour list reached them.
            pool.append(priors.by_prior[:count])
        if keyword_share is not None and s.w_keywords > 0:
            # Movies the catalog describes in the mood's words, most words and best-liked first.
            named = np.flatnonzero(keyword_share)
            best = np.lexsort((-priors.quality[named], -keyword_share[named]))
            pool.append(named[best[:count]])
        rows = np.unique(np.concatenate(pool))
    rows = _admissible(bundle, priors, rows, excluded, filters)
    if len(rows) < k and (use_content or len(c_rows)) and len(rows) < n:
        # Strict filters left too few: score every movie that passes them (vectorised, O(n)).
        rows = _admissible(bundle, priors, np.arange(n), excluded, filters)
    if not len(rows):
        return []
    if not use_content and not len(c_rows):
        # Nothing liked and no mood to go on: the best-liked movies, as the fallback order ranks.
        score = priors.quality[rows] + priors.popularity[rows]
    else:
        score = s.w_quality * priors.quality[rows] + s.w_popularity * priors.popularity[rows]
    sims = np.zeros(len(rows), np.float32)
    thin = np.where(priors.described[rows], 1.0, 1.0 - s.thin_discount).astype(np.float32)
    if profile is not None:
        sims = bundle.vectors[rows] @ profile * thin
        score = score + s.w_similarity * sims
    if mood is not None:
        mood_sims = bundle.vectors[rows] @ mood * thin
        sims = mood_sims if profile is None else (sims + mood_sims) / 2
        score = score + s.w_mood * mood_sims
    if negative is not None and s.w_negative > 0:
        # Relative to the typical candidate: a sentence embedding is a little similar to any
        # single word, so only what stands out as like the excluded phrase is pushed down.
        neg = bundle.vectors[rows] @ negative
        score = score - s.w_negative * np.maximum(neg - np.median(neg), 0.0)
    if keyword_share is not None and s.w_keywords > 0:
        score = score + s.w_keywords * keyword_share[rows]
    if avoid_rows is not None and len(avoid_rows) and s.w_negative > 0:
        # Movies the catalog itself describes with an excluded word ("gory", "dark").
        score = score - s.w_negative * np.isin(rows, avoid_rows)
    if len(c_rows) and s.w_collab > 0:
        cf = np.zeros(len(rows), np.float32)
        pos = np.searchsorted(c_rows, rows)
        pos = np.clip(pos, 0, len(c_rows) - 1)
        hit = c_rows[pos] == rows
        cf[hit] = c_weights[pos[hit]]
        if s.hub_discount > 0:
            cf = cf / bundle.hubness[rows] ** s.hub_discount
        # Absolute, not relative to this request's best, so weak evidence stays weak; saturating,
        # so a blockbuster's huge co-rating counts cannot drown a stated mood.
        x = cf / (bundle.collab_unit * len(liked))
        score = score + s.w_collab * x / (x + 1.0)
    order = np.argsort(-score, kind="stable")
    scored = [(int(rows[i]), float(sims[i]), float(score[i])) for i in order[: max(k * 4, k)]]
    if s.mmr_lambda < 1.0:
        scored = _mmr(bundle, scored, k, s.mmr_lambda)
    return [
        Scored(bundle.movies[r], sim, sc, _because(bundle, liked, r)) for r, sim, sc in scored[:k]
    ]


def _admissible(
    bundle: Bundle, priors: Priors, rows: np.ndarray, excluded: np.ndarray, filters: Filters
) -> np.ndarray:
    """Rows not excluded and passing the filters."""
    if excluded.size:
        rows = rows[~np.isin(bundle.ids[rows], excluded)]
    if not filters.is_empty():
        rows = rows[priors.passing(rows, filters)]
    return rows


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
