"""`python -m benchmarks.bench_check`: does the edge keep its search lead? (`make bench-check`)

Starts the edge on var/index and the original design (sentence-transformers + FAISS, the
baseline server of benchmarks/edge_bench.py) side by side, sends the same distinct queries to
`/v1/search` of both over HTTP in alternating blocks (both see the same drift in machine
speed), and compares the p50 latencies within this one run. Exits 1 when the original's p50 is
less than --min-ratio (default 3) times the edge's: the check fails when the lead is lost, not
when the machine is slow. Prints the CPU and its flags, and each side's server-side parts.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.edge_bench import (
    EDGE_BENCH_ENV,
    INDEX_DIR,
    ROOT,
    SEARCH_BLOCK,
    TORCH_THREADS,
    http_client,
    search_queries,
    timed_search,
)
from devstack.machine import format_load, load_average, machine_info
from devstack.process import ServerProcess, child_env, free_port, python_module
from devstack.servers import start_edge
from devstack.stats import percentile

MIN_RATIO = 3.0


def compare(edge_url: str, base_url: str, queries: Sequence[str], warm: int) -> dict[str, float]:
    """p50s over HTTP (client-side) and of the servers' own embed/search parts, in ms."""
    edge_ms: list[float] = []
    base_ms: list[float] = []
    parts: dict[str, list[float]] = {"edge_embed": [], "edge_search": [], "base_embed": []}
    with http_client(edge_url) as ec, http_client(base_url) as bc:
        for q in queries[:warm]:
            timed_search(ec, "/v1/search", q)
            timed_search(bc, "/search", q)
        measured = queries[warm:]
        for start in range(0, len(measured), SEARCH_BLOCK):
            block = measured[start : start + SEARCH_BLOCK]
            first_edge = (start // SEARCH_BLOCK) % 2 == 0
            for side in ("e", "b") if first_edge else ("b", "e"):
                for q in block:
                    if side == "e":
                        t, body = timed_search(ec, "/v1/search", q)
                        edge_ms.append(t)
                        parts["edge_embed"].append(body["timings_ms"]["embed"])
                        parts["edge_search"].append(body["timings_ms"]["search"])
                    else:
                        t, body = timed_search(bc, "/search", q)
                        base_ms.append(t)
                        parts["base_embed"].append(body["timings_ms"]["embed"])
    out = {
        "edge_p50": percentile(edge_ms, 50, math.nan),
        "original_p50": percentile(base_ms, 50, math.nan),
        "edge_p99": percentile(edge_ms, 99, math.nan),
        "queries": float(len(edge_ms)),
    }
    out |= {f"{k}_p50": percentile(v, 50, math.nan) for k, v in parts.items()}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_check", description=__doc__)
    p.add_argument("--queries", type=int, default=200, help="measured queries per side")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--min-ratio", type=float, default=MIN_RATIO)
    args = p.parse_args(argv)
    os.chdir(ROOT)
    if not (ROOT / INDEX_DIR / "manifest.json").is_file():
        print(f"error: no index at {INDEX_DIR}; run `make index` first", file=sys.stderr)
        return 2
    info = machine_info()
    print(f"bench-check: {info.describe()}")
    print(f"load average at start: {format_load(load_average())}", flush=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-check-"))
    servers: list[ServerProcess] = []
    # No model server: /v1/search never asks one; an unused port stands in for the upstream.
    upstream = f"http://127.0.0.1:{free_port()}"
    try:
        port = free_port()
        base = ServerProcess(
            "baseline",
            python_module("benchmarks.edge_bench", "serve-baseline"),
            child_env(
                {
                    "BENCH_BASELINE_PORT": str(port),
                    "BENCH_BASELINE_INDEX": INDEX_DIR,
                    "BENCH_BASELINE_UPSTREAM": upstream,
                    "BENCH_TORCH_THREADS": str(TORCH_THREADS),
                }
            ),
            port,
            log_dir,
        ).start()
        servers.append(base)
        edge = start_edge(
            log_dir,
            [upstream],
            index=INDEX_DIR,
            wait=False,
            MOVIEMIND_EDGE_PRIME_PREFIX="false",
            **EDGE_BENCH_ENV,
        )
        servers.append(edge)
        for s in (edge, base):
            s.wait_ready(300)
        t0 = time.monotonic()
        r = compare(edge.url, base.url, search_queries(args.warmup + args.queries), args.warmup)
    finally:
        for s in reversed(servers):
            s.stop()
    ratio = r["original_p50"] / r["edge_p50"]
    print(
        f"/v1/search over HTTP, {int(r['queries'])} queries per side ({time.monotonic() - t0:.0f} s):"
        f" edge p50 {r['edge_p50']:.2f} ms (p99 {r['edge_p99']:.2f}; server embed "
        f"{r['edge_embed_p50']:.2f}, rank {r['edge_search_p50']:.3f}), original p50 "
        f"{r['original_p50']:.2f} ms (server embed {r['base_embed_p50']:.2f})"
    )
    print(f"load average at end: {format_load(load_average())}")
    ok = ratio >= args.min_ratio
    print(
        f"ratio original/edge: {ratio:.2f}x (fails below {args.min_ratio:g}x): "
        + ("ok" if ok else "FAILED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
