"""`/v1/recommend` without the model, in-process: title resolution, mood parsing and embedding,
hybrid ranking over the sample bundle (target: <= 5 ms p50).

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", default="var/index")
    p.add_argument("--models", default="var/models/minilm")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--out-dir", default="docs/benchmarks")
    args = p.parse_args()

    import msgspec

    from edge.index_store import IndexStore
    from edge.metrics import EdgeMetrics
    from edge.service import Recommender
    from edge.settings import load_settings
    from edge.wire import RecommendRequest
    from moviemind_core.storage import S3Settings

    report = BenchReport.begin(
        "ranking", "Recommend without the model, in-process", "python -m benchmarks.ranking_bench"
    )
    settings = load_settings({})
    store = IndexStore(
        args.index,
        Path(args.models),
        cache_dir=Path("var/cache/bench"),
        s3=S3Settings.from_env({}),
        embed_threads=1,
        query_variant=settings.query_variant,
        bayes_votes=settings.ranking.bayes_votes,
    )
    store.refresh()
    snap = store.current
    assert snap is not None
    rec = Recommender(settings, None, EdgeMetrics())  # type: ignore[arg-type]
    requests = {
        name: msgspec.convert({**body, "k": 5, "explain": False}, RecommendRequest)
        for name, body in REQUESTS.items()
    }
    for req in requests.values():  # warm caches (ONNX Runtime, numpy)
        rec.prepare(snap, req)
    timings: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(args.rounds):
        for name, req in requests.items():  # interleaved, so drift hits every row alike
            t0 = time.perf_counter()
            rec.prepare(snap, req)
            timings[name].append((time.perf_counter() - t0) * 1000)
    everything = [t for ts in timings.values() for t in ts]
    rows = []
    for name, ts in [*timings.items(), ("all requests", everything)]:
        s = latency_summary(ts)
        rows.append([name, s["n"], s["p50"], s["p90"], s["p99"]])
        print(f"{name:<32} p50 {s['p50']:.2f} ms  p90 {s['p90']:.2f}  p99 {s['p99']:.2f}")
    report.finish(
        results={name: latency_summary(ts) for name, ts in timings.items()}
        | {"all": latency_summary(everything)},
        blocks=blocks(
            "Service layer only (no HTTP, no model): resolve titles (in context), parse and embed "
            "the mood (int8 MiniLM, one thread), hybrid ranking over the sample bundle "
            f"({len(snap.bundle):,} movies). Target: <= 5 ms p50.",
            "",
            Table(["request", "n", "p50 ms", "p90 ms", "p99 ms"], rows),
        ),
    )
    paths = write_report(report, Path(args.out_dir))
    print("wrote " + " and ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
