"""One request's working state: the query, the weights, and what several parts share (the
similarity scan, the collaborative evidence, coherence), each computed once and only if asked."""

from __future__ import annotations

import functools

import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.ranking.priors import Priors
from moviemind_core.ranking.query import RankQuery
from moviemind_core.ranking.settings import RankingSettings

# Up to this many movies an exact scan of every movie is as fast as the ANN index and cannot
# miss: HNSW degrades badly on clusters of identical vectors, which a catalog whose documents
# are mostly "Genres: Drama." has (measured: a heist query returned horror films). Beyond it,
# the ANN index proposes candidates and only their own vectors are compared.
EXACT_SCAN_MAX = 20_000


class Run:
    """The pipeline's context for one RankQuery."""

    def __init__(
        self, bundle: Bundle, priors: Priors, query: RankQuery, settings: RankingSettings
    ) -> None:
        self.bundle = bundle
        self.priors = priors
        self.q = query
        self.s = settings
        # The liked movies' content counts only with a positive weight.
        self.profile = query.profile if settings.w_similarity > 0 else None
        self.use_content = self.profile is not None or query.mood is not None
        self._coherence: tuple[np.ndarray, np.ndarray | None] | None = None
        self._mood: tuple[np.ndarray, np.ndarray | None] | None = None
        self._thin: tuple[np.ndarray, np.ndarray] | None = None
        self._row_sims: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @functools.cached_property
    def directions(self) -> dict[str, np.ndarray]:
        """The unit vectors candidates are compared with: the liked movies' profile, the mood,
        the excluded phrase (each only when the request has it and its weight counts)."""
        out = {n: v for n, v in (("profile", self.profile), ("mood", self.q.mood)) if v is not None}
        if self.q.negative is not None and self.s.w_negative > 0:
            out["negative"] = self.q.negative
        return out

    @property
    def full_scan(self) -> bool:
        """Whether the catalog is small enough to compare every movie with every direction."""
        return len(self.bundle) <= EXACT_SCAN_MAX

    @functools.cached_property
    def sims(self) -> dict[str, np.ndarray]:
        """Full-catalog cosine similarity to every direction: one pass over the content matrix."""
        named = list(self.directions.items())
        if not named:
            return {}
        out = self.priors.scan(self.bundle.vectors).sims([v for _, v in named])
        return {name: out[i] for i, (name, _) in enumerate(named)}

    def sim(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Similarity of the rows to a direction: from the full scan on a catalog small enough
        for one, else from the rows' own vectors (once per rows)."""
        if self.full_scan:
            return self.sims[name][rows]
        held = self._row_sims.get(name)
        if held is None or held[0] is not rows:
            held = (rows, self.bundle.vectors[rows] @ self.directions[name])
            self._row_sims[name] = held
        return held[1]

    @functools.cached_property
    def collab(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, summed weights) of every movie some liked movie lists as a neighbour."""
        b, liked = self.bundle, self.q.liked_rows
        if self.s.w_collab <= 0 or not len(liked) or b.neighbour_rows.shape[1] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows = b.neighbour_rows[liked].ravel()
        weights = b.neighbour_weights[liked].ravel()
        valid = rows >= 0
        uniq, inverse = np.unique(rows[valid], return_inverse=True)
        return uniq.astype(np.int64), np.bincount(inverse, weights=weights[valid]).astype(
            np.float32
        )

    @property
    def anything_to_go_on(self) -> bool:
        """Liked movies with content or neighbours, or a mood: else the best-liked fallback."""
        return self.use_content or len(self.collab[0]) > 0

    def pool_size(self) -> int:
        """Candidates each source contributes."""
        return min(len(self.bundle), max(self.q.k, 1) * self.s.oversample + len(self.q.exclude_ids))

    def thin(self, rows: np.ndarray) -> np.ndarray:
        """1 for a described movie, 1 - thin_discount for one described by its genres alone
        (once per rows: the content, mood and shown similarity all use it)."""
        if self._thin is not None and self._thin[0] is rows:
            return self._thin[1]
        d = self.priors.described[rows]
        value = np.where(d, np.float32(1.0), np.float32(1.0 - self.s.thin_discount))
        self._thin = (rows, value)
        return value

    def mood_term(self, rows: np.ndarray) -> np.ndarray | None:
        """The mood's part of the score (scorers.mood); None without a mood. Once per rows."""
        if self._mood is not None and self._mood[0] is rows:
            return self._mood[1]
        value = self._mood_term_of(rows)
        self._mood = (rows, value)
        return value

    def _mood_term_of(self, rows: np.ndarray) -> np.ndarray | None:
        q, s = self.q, self.s
        avoid = q.avoid_rows is not None and len(q.avoid_rows) > 0
        nothing = q.mood is None and q.keyword_share is None and not avoid
        if nothing and "negative" not in self.directions:
            return None
        out = np.zeros(len(rows), np.float32)
        if q.mood is not None:
            out += s.w_mood * self.sim("mood", rows) * self.thin(rows)
        if q.keyword_share is not None and s.w_keywords > 0:
            out += s.w_keywords * q.keyword_share[rows]
        if s.w_negative > 0:
            if "negative" in self.directions:
                # Relative to the typical candidate: a sentence embedding is a little similar
                # to any single word, so only what stands out as like the excluded phrase goes
                # down.
                neg = self.sim("negative", rows)
                out -= s.w_negative * np.maximum(neg - np.median(neg), 0.0)
            if q.avoid_rows is not None and len(q.avoid_rows):
                avoid = np.zeros(len(self.bundle), bool)
                avoid[q.avoid_rows] = True
                out -= s.w_negative * avoid[rows]
        return out

    def coherence(self, rows: np.ndarray) -> np.ndarray | None:
        """0..1 per candidate: the liked movies' distinctive genres it shares, scaled down the
        further its year is from the nearest of theirs; for a mood alone, how well it matches the
        mood (all its terms) compared with the other candidates. None with neither. Computed once per rows."""
        if self._coherence is not None and self._coherence[0] is rows:
            return self._coherence[1]
        value = self._coherence_of(rows)
        self._coherence = (rows, value)
        return value

    def _coherence_of(self, rows: np.ndarray) -> np.ndarray | None:
        liked, p = self.q.liked_rows, self.priors
        if len(liked):
            g = p.genre_weights[liked].sum(axis=0)
            n = float(np.linalg.norm(g))
            genre = p.genre_weights[rows] @ (g / n) if n > 0 else np.zeros(len(rows), np.float32)
            years = p.year[liked]
            years = years[years >= 0]
            if len(years):
                cand = p.year[rows]
                gap = np.abs(cand[:, None] - years[None, :]).min(axis=1).astype(np.float32)
                era = np.exp(-0.5 * (gap / np.float32(self.s.era_years)) ** 2)
                era[cand < 0] = 0.5
            else:
                era = np.full(len(rows), 0.5, np.float32)
            return (genre * (0.5 + 0.5 * era)).astype(np.float32)
        m = self.mood_term(rows) if self.q.mood is not None else None
        if m is not None:
            lo, hi = float(m.min()), float(m.max())
            return (m - lo) / (hi - lo) if hi > lo else np.ones(len(rows), np.float32)
        return None
