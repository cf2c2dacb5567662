"""Per-bundle arrays the ranking reads, computed once when a bundle is loaded: quality and
popularity priors, years and genre bits for filters, genre weights for coherence, the words of
each movie's keywords, and the content matrix the similarity scan runs over."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from moviemind_core.catalog import Movie

_WORD = re.compile(r"[a-z0-9]+")


class ContentScan:
    """Exact similarity of every catalog row to a few directions, in one matrix product.

    Thousands of sample movies are described by their genres alone and share one vector; the
    scan multiplies only the distinct rows (3,313 of 9,061 in the sample) and spreads the result
    back with one gather. Both matrices are float32 and C-contiguous, made once per bundle."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.source = vectors
        distinct, inverse = np.unique(vectors, axis=0, return_inverse=True)
        self.distinct = np.ascontiguousarray(distinct, dtype=np.float32)
        self.inverse = np.ascontiguousarray(inverse.reshape(-1), dtype=np.intp)

    def sims(self, directions: Sequence[np.ndarray]) -> np.ndarray:
        """(len(directions), n) cosine similarities (vectors and directions are unit length)."""
        out = np.empty((len(directions), len(self.inverse)), np.float32)
        for i, d in enumerate(directions):
            # One matrix-vector product per direction: OpenBLAS' sgemm for a handful of
            # columns was measured far slower than this many sgemv calls.
            np.take(self.distinct @ d, self.inverse, out=out[i])
        return out


class Priors:
    """Per-row arrays computed once per bundle: quality, popularity, years, genres, keywords."""

    def __init__(
        self, movies: Sequence[Movie], bayes_votes: float, vectors: np.ndarray | None = None
    ) -> None:
        votes = np.asarray([m.vote_count for m in movies], dtype=np.float64)
        avg = np.asarray([m.vote_average for m in movies], dtype=np.float64)
        mean = float((avg * votes).sum() / votes.sum()) if votes.sum() > 0 else 5.0
        bayes = (votes * avg + bayes_votes * mean) / (votes + bayes_votes)
        self.quality = (bayes / 10.0).astype(np.float32)
        top = math.log1p(votes.max()) if len(votes) and votes.max() > 0 else 1.0
        self.popularity = (np.log1p(votes) / top).astype(np.float32)
        # A movie's generic pull: near 1 for the catalog's most-rated, near 0 for the bulk. The
        # 10th power keeps it on the true hubs (popularity 0.95 -> 0.60, 0.9 -> 0.35, 0.7 ->
        # 0.03): on the MovieLens sample 0.36 or more for the 30 most-rated, 0.004 on average
        # for the rest. A 4th power (0.7 -> 0.24) would mark down hundreds of merely known films.
        self.hub_pull = (self.popularity**10).astype(np.float32)
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
        self.genre_weights = _genre_weights(movies, self.genre_bit)
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
        self._scan = ContentScan(vectors) if vectors is not None else None

    def scan(self, vectors: np.ndarray) -> ContentScan:
        """The content scan over these vectors (made here on first use when the bundle's loader
        did not pass them in)."""
        if self._scan is None or self._scan.source is not vectors:
            self._scan = ContentScan(vectors)
        return self._scan

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


def _genre_weights(movies: Sequence[Movie], genre_bit: dict[str, int]) -> np.ndarray:
    """(n, genres) float32: each row its genres weighted by rarity (log inverse frequency), unit
    length, so the dot product of two rows says how much of what is distinctive they share."""
    n, g = len(movies), max(1, len(genre_bit))
    m = np.zeros((n, g), np.float32)
    for row, movie in enumerate(movies):
        for name in movie.genres:
            m[row, genre_bit[name.lower()]] = 1.0
    df = m.sum(axis=0)
    idf = np.log((n + 1) / (df + 1)).astype(np.float32)
    m *= idf
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    return np.ascontiguousarray(np.divide(m, norm, out=np.zeros_like(m), where=norm > 0))
