"""Offline evaluation on MovieLens: hide each user's last liked movie, recommend from the rest.

Prints HR@10 and NDCG@10 for random, most-popular, similarity only, and the blended ranking the
edge uses. Popularity counts come from all ratings, the held-out ones included (a small leak in
favour of the popularity-based rows; the same for every method that uses popularity).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.ranking import Priors, RankingSettings, rank, taste_profile

K = 10


def user_histories(min_liked: int) -> list[tuple[list[int], int, set[int]]]:
    """(liked ids in time order minus the last, the held-out last liked id, every rated id)."""
    from index_builder.sources.movielens import load_ratings

    df = load_ratings().sort_values(["userId", "timestamp", "movieId"])
    out = []
    for _, g in df.groupby("userId", sort=True):
        liked = g.loc[g["rating"] >= 4.0, "movieId"].astype(int).tolist()
        if len(liked) < min_liked:
            continue
        out.append((liked[:-1], liked[-1], set(g["movieId"].astype(int).tolist())))
    return out


def _metrics(ranked: list[int], target: int) -> tuple[float, float]:
    if target in ranked[:K]:
        return 1.0, 1.0 / math.log2(ranked.index(target) + 2)
    return 0.0, 0.0


class EvalReport(msgspec.Struct):
    users: int
    catalog: int
    results: dict[str, tuple[float, float]]  # method -> (HR@10, NDCG@10)

    def markdown(self) -> str:
        """The results as a Markdown table, for docs/benchmarks/eval.md."""
        rows = [f"| {name} | {hr:.4f} | {ndcg:.4f} |" for name, (hr, ndcg) in self.results.items()]
        return "\n".join(
            [
                f"Leave-last-liked-out on MovieLens (dslabs/movielens): {self.users} users with >= 5 "
                f"liked movies (rating >= 4), catalog of {self.catalog} movies, top 10, the user's "
                "other rated movies excluded.",
                "",
                "| method | HR@10 | NDCG@10 |",
                "| --- | --- | --- |",
                *rows,
                "",
            ]
        )


def run_eval(
    index_dir: Path, *, min_liked: int = 5, max_users: int = 0, seed: int = 7, log=print
) -> EvalReport:
    """Evaluate every method on the same users."""
    bundle = Bundle.load(index_dir)
    users = user_histories(min_liked)
    rng = random.Random(seed)
    if max_users and len(users) > max_users:
        users = rng.sample(users, max_users)
    all_ids = [m.id for m in bundle.movies]
    by_popularity = [m.id for m in sorted(bundle.movies, key=lambda m: (-m.vote_count, m.id))]
    # Liked histories are long; the most recent ones say most about what comes next.
    recent = 10

    def random_method(hist: list[int], rated: set[int]) -> list[int]:
        out: list[int] = []
        while len(out) < K:
            c = rng.choice(all_ids)
            if c not in rated and c not in out:
                out.append(c)
        return out

    def popular(hist: list[int], rated: set[int]) -> list[int]:
        return [i for i in by_popularity if i not in rated][:K]

    def ranked_with(settings: RankingSettings) -> Callable[[list[int], set[int]], list[int]]:
        priors = Priors(bundle.movies, settings.bayes_votes)

        def method(hist: list[int], rated: set[int]) -> list[int]:
            vecs = [v for v in (bundle.vector(i) for i in hist[-recent:]) if v is not None]
            profile = taste_profile(vecs, None, settings.w_query)
            return [
                s.movie.id
                for s in rank(bundle, priors, profile, K, exclude=rated, settings=settings)
            ]

        return method

    methods: dict[str, Callable[[list[int], set[int]], list[int]]] = {
        "random": random_method,
        "most popular": popular,
        "similarity only": ranked_with(RankingSettings(w_quality=0.0, w_popularity=0.0)),
        "blended (edge default)": ranked_with(RankingSettings()),
        "blended, popularity 1.0": ranked_with(RankingSettings(w_popularity=1.0)),
    }
    results: dict[str, tuple[float, float]] = {}
    log(
        f"users with >= {min_liked} liked movies (rating >= 4): {len(users)}; catalog {len(bundle)}"
    )
    for name, method in methods.items():
        t0 = time.perf_counter()
        hr, ndcg = [], []
        for hist, target, rated in users:
            h, n = _metrics(method(hist, rated - {target}), target)
            hr.append(h)
            ndcg.append(n)
        results[name] = (float(np.mean(hr)), float(np.mean(ndcg)))
        log(
            f"  {name:<26} HR@10 {results[name][0]:.4f}  NDCG@10 {results[name][1]:.4f}  ({time.perf_counter() - t0:.1f}s)"
        )
    return EvalReport(users=len(users), catalog=len(bundle), results=results)
