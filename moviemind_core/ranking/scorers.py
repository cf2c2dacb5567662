"""Scorers: each adds one term to the candidates' blended score (vectorised over rows).

score = priors + content + mood + collaborative + coherence - popularity calibration; the
formula and the reason for each term are in each scorer's docstring."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moviemind_core.ranking.run import Run

Scorer = Callable[[Run, np.ndarray], np.ndarray | None]


def priors(run: Run, rows: np.ndarray) -> np.ndarray:
    """w_quality * bayesian rating (0..1) + w_popularity * log votes (0..1). With nothing to go
    on (no liked movies, no mood) the unweighted sum: the best-liked movies."""
    p, s = run.priors, run.s
    if not run.anything_to_go_on:
        return p.quality[rows] + p.popularity[rows]
    return s.w_quality * p.quality[rows] + s.w_popularity * p.popularity[rows]


def content(run: Run, rows: np.ndarray) -> np.ndarray | None:
    """w_similarity * cos(liked movies' centroid, c) * t (t: the thin-document factor)."""
    if run.profile is None:
        return None
    return run.s.w_similarity * run.sim("profile", rows) * run.thin(rows)


def mood(run: Run, rows: np.ndarray) -> np.ndarray | None:
    """The mood (Run.mood_term): w_mood * cos(mood, c) * t, + w_keywords * the share of the
    mood's words c's keywords or genres name, - w_negative * (cos(excluded phrase, c) above the
    candidates' median, + 1 when the catalog's own keywords name an excluded theme)."""
    return run.mood_term(rows)


def collaborative(run: Run, rows: np.ndarray) -> np.ndarray | None:
    """w_collab * x / (x + 1), x: the neighbour weight the liked movies give c, in units of a
    typical best-neighbour weight per liked movie, divided by c's hubness ** hub_discount.
    Absolute, not relative to this request's best, so weak evidence stays weak; saturating, so
    a blockbuster's huge co-rating counts cannot drown a stated mood."""
    c_rows, c_weights = run.collab
    if not len(c_rows):
        return None
    b, s = run.bundle, run.s
    pos = np.clip(np.searchsorted(c_rows, rows), 0, len(c_rows) - 1)
    hit = c_rows[pos] == rows
    cf = np.where(hit, c_weights[pos], np.float32(0.0))
    if s.hub_discount > 0:
        cf = cf / b.hubness[rows] ** s.hub_discount
    x = cf / (b.collab_unit * len(run.q.liked_rows))
    return s.w_collab * x / (x + 1.0)


def coherence(run: Run, rows: np.ndarray) -> np.ndarray | None:
    """w_coherence * coherence: the liked movies' distinctive genres c shares, scaled by how
    near its year is to one of theirs (Run.coherence). Only with liked movies: for a mood alone
    the mood's own terms already say what fits."""
    if not len(run.q.liked_rows) or run.s.w_coherence <= 0:
        return None
    coh = run.coherence(rows)
    return None if coh is None else run.s.w_coherence * coh


def popularity_calibration(run: Run, rows: np.ndarray) -> np.ndarray | None:
    """- w_calibration * hub pull(c) * (1 - coherence(c)). A hub is generically popular: the
    priors and the co-ratings lift it for every request. Calibrated against that pull, a hub
    must fit the request (genres and era of the liked movies, or the mood) to keep its place;
    a film that is merely famous drops below the ones that were asked for."""
    if run.s.w_calibration <= 0:
        return None
    coh = run.coherence(rows)
    if coh is None:
        return None
    return -run.s.w_calibration * run.priors.hub_pull[rows] * (1.0 - coh)


DEFAULT_SCORERS: tuple[Scorer, ...] = (
    priors,
    content,
    mood,
    collaborative,
    coherence,
    popularity_calibration,
)
