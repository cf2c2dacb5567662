"""Filters: drop candidates the request rules out (excluded ids, year, genre, rating)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moviemind_core.ranking.priors import Priors
from moviemind_core.ranking.query import Filters
from moviemind_core.ranking.run import Run

Filter = Callable[[Run, np.ndarray], np.ndarray]


def not_excluded(run: Run, rows: np.ndarray) -> np.ndarray:
    """Rows whose movie id is not excluded (the liked movies, movies already seen)."""
    if not run.q.exclude_ids:
        return rows
    row_of = run.bundle.row_of
    out = np.zeros(len(run.bundle), bool)  # a mask over the catalog: no sorting, no hashing
    out[[row_of[i] for i in run.q.exclude_ids if i in row_of]] = True
    return rows[~out[rows]]


def request_filters(run: Run, rows: np.ndarray) -> np.ndarray:
    """Rows passing the request's year, genre and rating filters."""
    f = run.q.filters
    return rows if f.is_empty() else rows[passing(run.priors, rows, f)]


def passing(priors: Priors, rows: np.ndarray, f: Filters) -> np.ndarray:
    """Boolean mask over rows: which pass the filters (an unknown year fails any year bound)."""
    keep = np.ones(len(rows), dtype=bool)
    if f.year_min is not None:
        keep &= priors.year[rows] >= f.year_min
    if f.year_max is not None:
        year = priors.year[rows]
        keep &= (year >= 0) & (year <= f.year_max)
    if f.genres_any:
        keep &= (priors.genres[rows] & priors.genre_mask(f.genres_any)) != 0
    if f.genres_none:
        keep &= (priors.genres[rows] & priors.genre_mask(f.genres_none)) == 0
    if f.min_rating is not None:
        keep &= priors.bayes_rating[rows] >= f.min_rating
    return keep


DEFAULT_FILTERS: tuple[Filter, ...] = (not_excluded, request_filters)
