"""The selector: the k best by score, optionally traded for variety (maximal marginal relevance),
each with the liked movie whose neighbour list credits it most."""

from __future__ import annotations

import numpy as np

from moviemind_core.ranking.run import Run


def select(run: Run, rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Positions into rows of the picks, best first (at most k)."""
    k = run.q.k
    pool = max(k * 4, k)
    if len(rows) > pool:
        top = np.argpartition(-score, pool - 1)[:pool]
        order = top[np.argsort(-score[top], kind="stable")]
    else:
        order = np.argsort(-score, kind="stable")
    if run.s.mmr_lambda >= 1.0 or len(order) <= 1:
        return order[:k]
    return order[_mmr(run.bundle.vectors[rows[order]], score[order], k, run.s.mmr_lambda)]


def _mmr(vectors: np.ndarray, score: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Greedy maximal marginal relevance: each next pick maximises lam * score - (1 - lam) *
    its highest similarity to a pick already made. Positions into the given order."""
    sim = vectors @ vectors.T
    chosen = [0]
    redundancy = sim[0].copy()
    free = np.ones(len(score), bool)
    free[0] = False
    while len(chosen) < min(k, len(score)):
        val = np.where(free, lam * score - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(val))
        chosen.append(best)
        free[best] = False
        np.maximum(redundancy, sim[best], out=redundancy)
    return np.asarray(chosen, np.int64)


def because(run: Run, picked: np.ndarray) -> list[int | None]:
    """For each picked row, the liked movie id whose neighbour list gives it the most weight."""
    b, liked = run.bundle, run.q.liked_rows
    if not len(liked) or b.neighbour_rows.shape[1] == 0 or not len(picked):
        return [None] * len(picked)
    lists = b.neighbour_rows[liked]  # (liked, N)
    hit = lists[None, :, :] == picked[:, None, None]  # (picks, liked, N)
    weights = np.where(hit, b.neighbour_weights[liked][None], 0.0).max(axis=2)  # (picks, liked)
    found = hit.any(axis=(1, 2))
    best = np.argmax(weights, axis=1)
    return [
        b.movies[int(liked[j])].id if ok else None
        for j, ok in zip(best.tolist(), found.tolist(), strict=True)
    ]
