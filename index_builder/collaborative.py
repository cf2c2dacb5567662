"""Item-to-item relations learned from interactions, stored as top-N neighbour lists per movie.

Two learners, chosen by `--collab`:
- `ease` (default): EASE (Steck, 2019), a closed-form linear item-item model. Its weight B[l, c]
  says how much liking l predicts liking c, with co-ratings of popular movies discounted by the
  regularised inverse. It won the offline evaluation (docs/benchmarks/eval.md). It inverts an
  items x items matrix, so it runs over the `max_items` most-rated movies (20,000 covers >99% of
  MovieLens 32M's ratings; ~3 GB of memory); rarer movies get their neighbours from content.
- `cosine`: item-item cosine over the same binary matrix; no size limit, weaker in evaluation.
TMDB's recommendation lists (`related_neighbours`) are a third way to the same format.

The edge scores a candidate by summing, over the liked movies, the weight each gives it; so only
the strongest `top_n` positive weights per movie are kept (int32 row + float16 weight).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import msgspec
import numpy as np

from index_builder.interactions import Ratings
from moviemind_core.bundle import CollabInfo

Method = Literal["ease", "cosine"]


class CollabSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How neighbours are learned; recorded in the bundle manifest."""

    method: Method = "ease"
    # Ratings below this many stars do not count as an interaction (0 = every rating counts).
    min_stars: float = 0.0
    # EASE's L2 regularisation: larger pulls weights of rarely co-rated pairs toward zero.
    ease_lambda: float = 500.0
    top_n: int = 50
    max_items: int = 20_000
    # Movies rated by fewer users have too little evidence to learn from.
    min_count: int = 2


class Neighbours(msgspec.Struct, frozen=True):
    """rows[i] = catalog rows of movie i's neighbours (-1 = none), weights[i] their weights."""

    rows: np.ndarray  # int32 (n, top_n)
    weights: np.ndarray  # float16 (n, top_n)

    @classmethod
    def empty(cls, n: int, top_n: int) -> Neighbours:
        return cls(np.full((n, top_n), -1, np.int32), np.zeros((n, top_n), np.float16))

    def covered(self) -> int:
        """How many movies have at least one neighbour."""
        return int((self.rows[:, 0] >= 0).sum())


def _interaction_matrix(ratings: Ratings, catalog_ids: np.ndarray, s: CollabSettings):
    """Binary users x items CSR over the most-rated catalog movies, and those items' rows."""
    from scipy import sparse

    keep = ratings.stars >= s.min_stars if s.min_stars > 0 else np.ones(len(ratings), bool)
    order = np.argsort(catalog_ids)
    sorted_ids = catalog_ids[order]
    pos = np.clip(np.searchsorted(sorted_ids, ratings.movie), 0, len(sorted_ids) - 1)
    keep &= sorted_ids[pos] == ratings.movie
    rows = order[pos[keep]]
    users = np.unique(ratings.user[keep], return_inverse=True)[1]
    counts = np.bincount(rows, minlength=len(catalog_ids))
    eligible = np.flatnonzero(counts >= s.min_count)
    items = eligible[np.argsort(-counts[eligible], kind="stable")][: s.max_items]
    col_of = np.full(len(catalog_ids), -1, np.int64)
    col_of[items] = np.arange(len(items))
    cols = col_of[rows]
    inside = cols >= 0
    x = sparse.csr_matrix(
        (np.ones(int(inside.sum()), np.float32), (users[inside], cols[inside])),
        shape=(int(users.max()) + 1 if len(users) else 0, len(items)),
    )
    x.sum_duplicates()
    x.data[:] = 1.0  # a movie rated twice by one user is still one interaction
    return x, items


def cooccurrence(x, block: int = 2048) -> np.ndarray:
    """X^T X as a dense float32 matrix, a block of columns at a time: the sparse product of a
    32M-rating matrix in one go holds hundreds of millions of non-zeros (several GB) at once."""
    n = x.shape[1]
    xt = x.T.tocsr()
    xc = x.tocsc()
    gram = np.empty((n, n), dtype=np.float32)
    for start in range(0, n, block):
        gram[:, start : start + block] = (xt @ xc[:, start : start + block]).toarray()
    return gram


def _top_n(weights: np.ndarray, item_rows: np.ndarray, n_catalog: int, top_n: int) -> Neighbours:
    """Keep each item's strongest positive weights, mapped back to catalog rows."""
    out = Neighbours.empty(n_catalog, top_n)
    m = weights.shape[0]
    k = min(top_n, max(m - 1, 0))
    if k == 0:
        return out
    for start in range(0, m, 1024):
        block = weights[start : start + 1024]
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-vals, axis=1)
        part = np.take_along_axis(part, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        rows = np.where(vals > 0, item_rows[part], -1).astype(np.int32)
        out.rows[item_rows[start : start + len(block)], :k] = rows
        out.weights[item_rows[start : start + len(block)], :k] = np.where(vals > 0, vals, 0)
    return out


def item_weights(
    ratings: Ratings,
    catalog_ids: np.ndarray,
    settings: CollabSettings,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The learner's dense item x item weights (diagonal zero) and the catalog rows of its items;
    None when fewer than two movies have enough ratings."""
    t0 = time.perf_counter()
    x, items = _interaction_matrix(ratings, np.asarray(catalog_ids, np.int64), settings)
    log(
        f"  collaborative ({settings.method}): {x.nnz:,} interactions, {x.shape[0]:,} users, "
        f"{len(items):,} movies with >= {settings.min_count} ratings"
    )
    if len(items) < 2:
        return None
    gram = cooccurrence(x)
    del x
    t1 = time.perf_counter()
    if settings.method == "ease":
        gram[np.diag_indices_from(gram)] += settings.ease_lambda
        p = np.linalg.inv(gram)
        del gram
        weights = p / (-np.diag(p))[None, :]
        del p
    else:
        norms = np.sqrt(np.maximum(np.diag(gram), 1e-9))
        weights = gram / norms[:, None] / norms[None, :]
        del gram
    np.fill_diagonal(weights, 0.0)
    log(
        f"  collaborative: co-occurrence {t1 - t0:.1f}s, {settings.method} {time.perf_counter() - t1:.1f}s"
    )
    return weights, items


def learn_neighbours(
    ratings: Ratings,
    catalog_ids: np.ndarray,
    settings: CollabSettings | None = None,
    log: Callable[[str], None] = print,
) -> Neighbours:
    """Top-N item-item neighbours for every catalog movie (row order of catalog_ids)."""
    settings = settings or CollabSettings()
    learned = item_weights(ratings, catalog_ids, settings, log)
    if learned is None:
        return Neighbours.empty(len(catalog_ids), settings.top_n)
    weights, items = learned
    t0 = time.perf_counter()
    out = _top_n(weights, items, len(catalog_ids), settings.top_n)
    log(
        f"  collaborative: top-{settings.top_n} {time.perf_counter() - t0:.1f}s; "
        f"{out.covered():,} of {len(catalog_ids):,} movies have neighbours"
    )
    return out


def related_neighbours(
    related: Mapping[int, Sequence[int]], catalog_ids: np.ndarray, top_n: int
) -> Neighbours:
    """Neighbours from ranked lists such as TMDB's recommendations: earlier = stronger."""
    row_of = {int(i): r for r, i in enumerate(catalog_ids)}
    out = Neighbours.empty(len(catalog_ids), top_n)
    for movie_id, others in related.items():
        row = row_of.get(int(movie_id))
        if row is None:
            continue
        kept = [row_of[o] for o in dict.fromkeys(others) if o in row_of and o != movie_id]
        kept = kept[:top_n]
        out.rows[row, : len(kept)] = kept
        # A list gives order, not strength: weight by rank, the first at 1.0.
        out.weights[row, : len(kept)] = 1.0 / (1.0 + 0.1 * np.arange(len(kept)))
    return out


def neighbours_for(
    catalog_ids: np.ndarray,
    ratings: Ratings | None,
    settings: CollabSettings,
    related: Mapping[int, Sequence[int]] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Neighbours | None, CollabInfo]:
    """The bundle's neighbour lists: learned from ratings; movies the ratings leave without
    neighbours take them from source lists (TMDB recommendations) when there are any."""
    learned = learn_neighbours(ratings, catalog_ids, settings, log) if ratings is not None else None
    listed = related_neighbours(related, catalog_ids, settings.top_n) if related else None
    if learned is None and listed is None:
        log("  collaborative: no interaction data; the edge ranks by content and priors only")
        return None, CollabInfo()
    if learned is None:
        assert listed is not None
        return listed, CollabInfo(method="tmdb-lists", covered=listed.covered())
    params: dict[str, float | int | str] = {
        "min_stars": settings.min_stars,
        "top_n": settings.top_n,
        "max_items": settings.max_items,
        "min_count": settings.min_count,
        "ratings": len(ratings) if ratings is not None else 0,
    }
    if settings.method == "ease":
        params["lambda"] = settings.ease_lambda
    method: str = settings.method
    if listed is not None:
        empty = learned.rows[:, 0] < 0
        learned.rows[empty] = listed.rows[empty]
        learned.weights[empty] = listed.weights[empty]
        method += "+tmdb-lists"
    return learned, CollabInfo(method=method, params=params, covered=learned.covered())
