"""`/v1/recommend` without the model, in-process: title resolution, mood parsing and embedding,
hybrid ranking over the sample bundle (target: <= 5 ms p50), and the ranking pipeline alone
(the RankQuery through sources, filters, scorers and selector; target: <= 0.3 ms p50 on the
9,000-movie sample), for recommend requests and for `/v1/search` queries.

    .venv/bin/python -m benchmarks.ranking_bench [--rounds 30] [--out-dir docs/benchmarks]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# As `python -m edge` does (edge/__main__.py): one BLAS thread, set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from devstack.report import BenchReport, Table, blocks, write_report
from devstack.stats import latency_summary

REQUESTS = {
    "liked only (3 titles)": dict(liked=["Kingdom of Heaven", "Robin Hood", "Troy"]),
    "liked (10 titles)": dict(
        liked=[
            "The Matrix",
            "Heat",
            "Alien",
            "Fargo",
            "Se7en",
            "Toy Story",
            "Casablanca",
            "Jaws",
            "Gladiator",
            "Memento",
        ]
    ),
    "liked + mood with a negation": dict(
        liked=["Die Hard", "Lethal Weapon"], query="witty action, nothing too dark"
    ),
    "mood only": dict(query="slow-burn sci-fi, nothing gory"),
    "liked + strict filters": dict(
        liked=["Toy Story"], filters={"year_min": 2000, "genres_any": ["Western"]}
    ),
    "liked ids only": dict(liked_ids=[1, 2, 3, 4, 5]),
}


# /v1/search queries (a mood alone, the words as typed): the ranking part of each is timed.
SEARCHES = [
    "a tense thriller that keeps me guessing",
    "feel-good and funny",
    "space opera",
    "a heist that goes wrong",
    "quiet and melancholic",
]
SEARCH_ROW = "/v1/search queries"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", default="var/index")
    p.add_argument("--models", default="var/models/minilm")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--out-dir", default="docs/benchmarks")
    args = p.parse_args()

    import msgspec

    from devstack.snapshot import load_snapshot
    from edge.metrics import EdgeMetrics
    from edge.service import Recommender
    from edge.settings import load_settings
    from edge.wire import RecommendRequest

    report = BenchReport.begin(
        "ranking", "Recommend without the model, in-process", "python -m benchmarks.ranking_bench"
    )
    settings = load_settings({})
    snap = load_snapshot(settings, args.index, args.models, cache_dir="var/cache/bench")
    rec = Recommender(settings, None, EdgeMetrics())  # type: ignore[arg-type]
    requests = {
        name: msgspec.convert({**body, "k": 5, "explain": False}, RecommendRequest)
        for name, body in REQUESTS.items()
    }
    print(f"ranking bench: {report.machine.describe()}", flush=True)
    for req in requests.values():  # warm caches (ONNX Runtime, numpy)
        rec.prepare(snap, req)
    for q in SEARCHES:
        rec.search(snap, q, 10)
    timings: dict[str, list[float]] = {name: [] for name in requests}
    ranking: dict[str, list[float]] = {name: [] for name in [*requests, SEARCH_ROW]}
    for _ in range(args.rounds):
        for name, req in requests.items():  # interleaved, so drift hits every row alike
            t0 = time.perf_counter()
            p = rec.prepare(snap, req)
            timings[name].append((time.perf_counter() - t0) * 1000)
            ranking[name].append(p.timings.search)
        for q in SEARCHES:
            ranking[SEARCH_ROW].append(rec.search(snap, q, 10)[1].search)
    everything = [t for ts in timings.values() for t in ts]
    rows = []
    for name, ts in [*timings.items(), ("all requests", everything)]:
        s = latency_summary(ts)
        r = latency_summary(ranking.get(name) or [t for v in ranking.values() for t in v])
        rows.append([name, s["n"], s["p50"], s["p90"], s["p99"], r["p50"]])
        print(
            f"{name:<32} p50 {s['p50']:.2f} ms  p90 {s['p90']:.2f}  p99 {s['p99']:.2f}"
            f"  ranking alone p50 {r['p50']:.3f} ms"
        )
    r = latency_summary(ranking[SEARCH_ROW])
    rows.append([SEARCH_ROW, r["n"], "", "", "", r["p50"]])
    print(f"{SEARCH_ROW:<32} ranking alone p50 {r['p50']:.3f} ms (target <= 0.3 ms)")
    report.finish(
        results={name: latency_summary(ts) for name, ts in timings.items()}
        | {"all": latency_summary(everything)}
        | {f"ranking: {name}": latency_summary(ts) for name, ts in ranking.items()},
        blocks=blocks(
            "Service layer only (no HTTP, no model): resolve titles (in context), parse and embed "
            "the mood (int8 MiniLM, one thread), hybrid ranking over the sample bundle "
            f'({len(snap.bundle):,} movies). Target: <= 5 ms p50. "ranking alone" is the'
            " pipeline over the RankQuery (no title resolution, no embedding); target <= 0.3 ms"
            " p50.",
            "",
            Table(["request", "n", "p50 ms", "p90 ms", "p99 ms", "ranking alone p50 ms"], rows),
        ),
    )
    paths = write_report(report, Path(args.out_dir))
    print("wrote " + " and ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
