"""`python -m benchmarks.panel [--show] [--json OUT]`: run the film-lover panel through the edge's
preparation and ranking (no model) and print acceptance and hub share."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgspec

from benchmarks.panel import PANEL, TOP, judge, load_panel, most_rated, summarise


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", default="var/index")
    p.add_argument("--models", default="var/models/minilm")
    p.add_argument("--panel", type=Path, default=PANEL)
    p.add_argument("--show", action="store_true", help="print every request's top 10")
    p.add_argument("--json", type=Path, help="write the scores here")
    args = p.parse_args()

    from devstack.snapshot import load_snapshot
    from edge.preparation import Preparation
    from edge.settings import load_settings
    from edge.wire import RecommendRequest

    settings = load_settings()  # MOVIEMIND_EDGE_RANK_* variables try other weights
    snap = load_snapshot(settings, args.index, args.models, cache_dir="var/cache/bench")
    prep = Preparation(settings)
    hubs = most_rated(snap.bundle)
    scores = []
    for req in load_panel(args.panel):
        body = RecommendRequest(liked=req.liked, query=req.query, k=TOP, explain=False)
        picks = [s.movie.id for s in prep.prepare(snap, body).ranked]
        s = judge(snap.bundle, req, picks, hubs)
        scores.append(s)
        line = f"{s.id:<28} accepted {s.accepted:>2}/{len(s.picks)}"
        print(line + (f"  hubs: {'; '.join(s.hubs)}" if s.hubs else ""))
        if args.show:
            for i, name in enumerate(s.picks, 1):
                print(f"    {i:>2}. {name}")
    total = summarise(scores)
    print(
        f"\npanel: {total.requests} requests, acceptance {total.acceptance:.1%}, "
        f"hub share {total.hub_share:.1%} (catalog's 30 most-rated, not acceptable)"
    )
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(total)))


if __name__ == "__main__":
    main()
