"""Collaborative neighbours at MovieLens-32M scale: build time, peak memory, bytes per movie.

MovieLens 32M itself cannot be downloaded here, so the ratings are synthetic with its shape:
200,948 users, 87,585 movies, 32,000,204 ratings, Zipf-like movie popularity (the most-rated
movie has ~100k ratings, half the movies have fewer than 10) and heavy-tailed user activity
(median ~70, mean ~160). Each learner runs in its own process so its peak RSS is its own.

    .venv/bin/python -m benchmarks.collab_bench [--ratings 32000000] [--out-dir docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

USERS, MOVIES, RATINGS = 200_948, 87_585, 32_000_204


def synthetic(n_ratings: int, seed: int = 0):
    """(user, movie, stars, time) arrays shaped like MovieLens 32M, with taste structure:
    users and movies belong to 40 latent groups; a user picks 70% of movies from its group."""
    from index_builder.interactions import Ratings

    rng = np.random.default_rng(seed)
    users = max(1, int(USERS * n_ratings / RATINGS))
    movies = max(10, int(MOVIES * min(1.0, (n_ratings / RATINGS) ** 0.5)))
    activity = rng.lognormal(mean=4.2, sigma=1.1, size=users)
    per_user = np.maximum(1, (activity / activity.sum() * n_ratings).astype(np.int64))
    popularity = 1.0 / np.arange(1, movies + 1) ** 1.1
    groups = 40
    movie_group = rng.integers(0, groups, movies)
    user_group = rng.integers(0, groups, users)
    user = np.repeat(np.arange(users, dtype=np.int64), per_user)
    in_group = rng.random(len(user)) < 0.7
    group_of_rating = user_group.astype(np.int8)[user]
    movie = np.empty(len(user), np.int64)
    p_all = popularity / popularity.sum()
    movie[~in_group] = rng.choice(movies, int((~in_group).sum()), p=p_all)
    for g in range(groups):
        members = np.flatnonzero(movie_group == g)
        p = popularity[members] / popularity[members].sum()
        slots = np.flatnonzero(in_group & (group_of_rating == g))
        movie[slots] = members[rng.choice(len(members), len(slots), p=p)]
    del group_of_rating, in_group
    stars = rng.choice(np.arange(1, 11) / 2, len(user)).astype(np.float32)
    when = rng.integers(1_000_000_000, 1_700_000_000, len(user))
    return Ratings(user.astype(np.int64), movie, stars, when), movies


def run_one(method: str, n_ratings: int, max_items: int) -> dict:
    """One learner in this process: returns its timings and this process's peak RSS."""
    from index_builder.collaborative import CollabSettings, learn_neighbours

    t0 = time.perf_counter()
    ratings, movies = synthetic(n_ratings)
    t1 = time.perf_counter()
    lines: list[str] = []
    n = learn_neighbours(
        ratings,
        np.arange(movies, dtype=np.int64),
        CollabSettings(method=method, max_items=max_items),  # type: ignore[arg-type]
        log=lines.append,
    )
    t2 = time.perf_counter()
    rows_bytes = n.rows.nbytes + n.weights.nbytes
    return {
        "method": method,
        "ratings": len(ratings),
        "movies": movies,
        "max_items": max_items,
        "generate_s": round(t1 - t0, 1),
        "learn_s": round(t2 - t1, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "covered": n.covered(),
        "bytes_per_1000_movies": round(rows_bytes / movies * 1000),
        "log": lines,
    }


def report_blocks(results: list[dict]) -> list:
    """The readable part of the report."""
    from devstack.report import Table, blocks

    head = [
        "learner",
        "ratings",
        "movies",
        "items learned",
        "learn s",
        "peak RSS GB",
        "movies with neighbours",
        "neighbour bytes per 1,000 movies",
    ]
    keys = [
        "method",
        "ratings",
        "movies",
        "max_items",
        "learn_s",
        "peak_rss_gb",
        "covered",
        "bytes_per_1000_movies",
    ]
    return blocks(
        "Synthetic ratings shaped like MovieLens 32M (the data set cannot be downloaded here; "
        "see the module docstring). Each learner runs in its own process; peak RSS is its own.",
        "",
        Table(head, [[r[k] for k in keys] for r in results]),
        "",
        "Neighbour lists are the top 50 per movie: int32 catalog rows + float16 weights, 300 "
        "bytes per movie (plus .npy headers), so ~300 KB per 1,000 movies whatever the learner.",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", type=int, default=RATINGS)
    p.add_argument("--max-items", type=int, default=20_000)
    p.add_argument("--methods", default="ease,cosine")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", default="docs/benchmarks")
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.ratings, args.max_items)))
        return
    from devstack.report import BenchReport, write_report

    report = BenchReport.begin(
        "collab",
        "Collaborative neighbours at MovieLens-32M scale",
        "python -m benchmarks.collab_bench",
    )
    results = []
    for method in args.methods.split(","):
        print(f"== {method}: {args.ratings:,} ratings (own process)", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.collab_bench", "--one", method]
            + ["--ratings", str(args.ratings), "--max-items", str(args.max_items)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print("\n".join(r["log"]))
        print(f"   learn {r['learn_s']} s, peak RSS {r['peak_rss_gb']} GB", flush=True)
        results.append(r)
    report.finish(results={"runs": results}, blocks=report_blocks(results))
    paths = write_report(report, Path(args.out_dir))
    print("wrote " + " and ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
