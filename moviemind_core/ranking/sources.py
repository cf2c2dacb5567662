"""Candidate sources: each returns catalog rows worth scoring for a request (before filters).

A source only proposes; the scorers decide. Each is one function of the request's Run."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moviemind_core.ranking.run import Run

Source = Callable[[Run], np.ndarray]

_NONE = np.zeros(0, np.int64)


def collaborative_neighbours(run: Run) -> np.ndarray:
    """Every movie some liked movie lists as a collaborative neighbour."""
    return run.collab[0]


def content_scan(run: Run) -> np.ndarray:
    """The movies nearest the liked movies' profile and nearest the mood, each `pool_size`."""
    count = run.pool_size()
    n = len(run.bundle)
    found = []
    for name, direction in (("profile", run.profile), ("mood", run.q.mood)):
        if direction is None:
            continue
        if not run.full_scan and count < n // 2:
            # A catalog too large to scan per request: the bundle's ANN index.
            matches = run.bundle.index.search(direction, count)
            found.append(run.bundle.rows_of(np.asarray(matches.keys, dtype=np.int64)))
            continue
        sims = run.sims[name]
        found.append(np.argpartition(-sims, count - 1)[:count] if count < n else np.arange(n))
    return np.concatenate(found) if found else _NONE


def mood_keywords(run: Run) -> np.ndarray:
    """Movies the catalog tags with the mood's words: most words, then best-liked, first."""
    share = run.q.keyword_share
    if share is None or run.s.w_keywords <= 0:
        return _NONE
    named = np.flatnonzero(share)
    count = run.pool_size()
    if len(named) <= count:
        return named
    # Most words first, then best-liked: the share moves in steps of 1/(words of the mood),
    # far fewer than 1,000 words, so 1,000 x share takes steps of at least 1 and the quality
    # (0..1) only orders movies within a step.
    key = share[named] * np.float32(1000.0) + run.priors.quality[named]
    return named[np.argpartition(-key, count - 1)[:count]]


def well_liked(run: Run) -> np.ndarray:
    """The catalog's best-liked movies, so they compete when no vector or list reached them."""
    if run.s.w_popularity <= 0 and run.s.w_quality <= 0:
        return _NONE
    return run.priors.by_prior[: run.pool_size()]


DEFAULT_SOURCES: tuple[Source, ...] = (
    collaborative_neighbours,
    content_scan,
    mood_keywords,
    well_liked,
)
