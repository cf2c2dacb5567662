"""Index-side benchmarks: the embedder, the sample index build, and a synthetic 1M-vector index.

`python -m benchmarks.index_bench` prints tables and writes docs/benchmarks/index.json, rendering
index.md from it (over 400 lines on purpose: four experiments and their report's prose; the shared
machinery is in devstack):

* embedding throughput (docs/s) on real document texts of the sample catalog, fp32 vs int8,
  1 and 2 threads, batch 32 and 64; query embedding latency p50/p99 for short queries;
* the wall time of `python -m index_builder build --full` on the sample catalog;
* a synthetic index of 1,000,000 seeded unit vectors (dim 384) in usearch HNSW with the bundle's
  settings: build time, bytes per vector on disk and in memory for f32/f16/i8, single-query
  search p50/p99 and recall@10 against exact search;
* recall@10 of the real sample index (var/index) for comparison.

Wall times on a shared 2-core machine are noisy; CPU seconds are reported beside them because
they move less when other processes compete for the cores.
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devstack.machine import package_versions
from devstack.report import BenchReport, Block, Table, blocks, write_report
from devstack.stats import latency_summary, percentile

# Before usearch: moviemind_core.bundle imports onnxruntime (through moviemind_core.embedder), and
# importing onnxruntime after usearch segfaults (onnxruntime 1.31 + usearch 2.26).
from moviemind_core.bundle import IndexOptions
from moviemind_core.embedder import Embedder

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "docs" / "benchmarks"
VERSIONED = ("onnxruntime", "tokenizers", "usearch", "numpy")
MODELS = ROOT / "var" / "models" / "minilm"
SAMPLE_INDEX = ROOT / "var" / "index"
DIM = 384
K = 10
CHUNK = 100_000
TARGET_INT8_DOCS_S = 400.0

SHORT_QUERIES = [
    "heist",
    "space opera",
    "slow-burn horror",
    "a quiet film about grief",
    "funny heist movie with a great cast",
    "movies like Alien",
    "romantic comedy set in Paris",
    "courtroom drama",
    "animated film for kids about friendship",
    "dark thriller with a twist ending",
    "war movie based on a true story",
    "coming of age in the 1980s",
    "feel-good sports underdog story",
    "dystopian future with robots",
    "Japanese animation, Studio Ghibli",
    "a detective in Los Angeles",
    "musical with great songs",
    "zombie apocalypse",
    "biography of a musician",
    "mind-bending science fiction like Inception",
]


# ---------------------------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class Timer:
    """Wall and process-CPU seconds of a block (CPU counts every thread of this process)."""

    wall: float = 0.0
    cpu: float = 0.0
    _t: float = field(default=0.0, repr=False)
    _c: float = field(default=0.0, repr=False)

    def __enter__(self) -> Timer:
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        self.cpu = time.process_time() - self._c


def latencies_ms(fn: Callable[[int], Any], n: int, warm: int) -> list[float]:
    """Call fn(i) warm times untimed, then n times timed; milliseconds per call."""
    for i in range(warm):
        fn(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


# ---------------------------------------------------------------------------------------------
# Embedder
# ---------------------------------------------------------------------------------------------


def catalog_documents(n: int, seed: int = 11) -> list[str]:
    """n document texts of the sample catalog (seeded sample), as the index build composes them."""
    from index_builder.documents import document_text
    from moviemind_core.bundle import Bundle

    movies = Bundle.load(SAMPLE_INDEX, verify=False).movies
    rows = np.random.default_rng(seed).choice(len(movies), min(n, len(movies)), replace=False)
    return [document_text(movies[i]) for i in rows]


@dataclass
class EmbedRow:
    variant: str
    threads: int
    batch: int
    docs: int
    wall: float
    cpu: float

    @property
    def docs_s(self) -> float:
        return self.docs / self.wall


@dataclass
class QueryRow:
    variant: str
    threads: int
    ms: list[float]


def bench_embedder(
    docs: Sequence[str], threads: Sequence[int], batches: Sequence[int], queries: int
) -> tuple[list[EmbedRow], list[QueryRow], dict[str, float]]:
    """Document throughput and short-query latency for every variant x threads (x batch)."""
    rows: list[EmbedRow] = []
    qrows: list[QueryRow] = []
    probe = Embedder(MODELS, variant="fp32", threads=1)
    tokens = [probe.count_tokens(d) for d in docs]
    token_stats = {
        "mean": float(np.mean(tokens)),
        "p50": percentile(tokens, 50, math.nan),
        "max": float(max(tokens)),
    }
    qs = [SHORT_QUERIES[i % len(SHORT_QUERIES)] for i in range(queries)]
    for variant in ("fp32", "int8"):
        for n_threads in threads:
            emb = Embedder(MODELS, variant=variant, threads=n_threads)
            emb.embed(docs[:64], batch_size=32)  # warm-up: first runs allocate
            for bs in batches:
                with Timer() as t:
                    emb.embed(docs, batch_size=bs)
                row = EmbedRow(variant, n_threads, bs, len(docs), t.wall, t.cpu)
                rows.append(row)
                print(
                    f"  embed {variant} threads={n_threads} batch={bs}: {row.docs_s:.0f} docs/s "
                    f"({t.wall:.1f}s wall, {t.cpu:.1f}s cpu)",
                    flush=True,
                )
            ms = latencies_ms(lambda i, e=emb: e.embed_one(qs[i]), len(qs), warm=20)
            qrows.append(QueryRow(variant, n_threads, ms))
            print(
                f"  query {variant} threads={n_threads}: p50 {percentile(ms, 50, math.nan):.2f} ms, p99 {percentile(ms, 99, math.nan):.2f} ms",
                flush=True,
            )
            del emb
    return rows, qrows, token_stats


# ---------------------------------------------------------------------------------------------
# Sample index build
# ---------------------------------------------------------------------------------------------


@dataclass
class BuildRun:
    ok: bool
    wall: float
    cpu: float
    movies: int = 0
    embed_rate: str = ""
    index_s: str = ""
    size_mb: str = ""
    tail: str = ""


def bench_sample_build(timeout_s: float) -> BuildRun:
    """Time `python -m index_builder build --out TMP --full` (the real CLI, fresh process)."""
    with tempfile.TemporaryDirectory(prefix="moviemind-bench-") as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "index_builder", "build", "--out", f"{tmp}/index", "--full"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return BuildRun(
                False, time.perf_counter() - t0, 0.0, tail=f"timed out after {timeout_s:.0f}s"
            )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = proc.stdout + proc.stderr
    run = BuildRun(
        proc.returncode == 0, wall, cpu, tail=out.strip().splitlines()[-1] if out.strip() else ""
    )
    m = re.search(
        r"(\d+) movies, embedded \d+ \(([^)]*)\), index \w+ in ([\d.]+)s, ([\d.]+) MB", proc.stdout
    )
    if m:
        run.movies, run.embed_rate, run.index_s, run.size_mb = int(m[1]), m[2], m[3], m[4]
    return run


# ---------------------------------------------------------------------------------------------
# Synthetic index
# ---------------------------------------------------------------------------------------------


class Synthetic:
    """Seeded unit vectors of dim 384, generated chunk by chunk (never all in memory at once).

    `lowrank`: a random Gaussian in a 32-dimensional subspace plus isotropic noise, normalised.
    Sentence embeddings have a low intrinsic dimension, so their nearest neighbours are clearly
    nearer than the rest; this keeps that property. Rank and noise were chosen so that, at the
    sample catalog's size, HNSW recall on this data is what it is on the real document vectors
    (`bench_real_index` prints both). `uniform`: uniform on the sphere, the worst
    case for any ANN index (every point is almost equally far from a query, so "nearest" is
    nearly arbitrary and recall says little about real use).
    """

    def __init__(self, kind: str, seed: int = 42, rank: int = 32, noise: float = 0.3) -> None:
        self.kind, self.seed, self.rank, self.noise = kind, seed, rank, noise
        self.basis = (
            np.random.default_rng([seed, 1 << 20]).standard_normal((rank, DIM)).astype(np.float32)
        )

    def block(self, stream: int, index: int, count: int) -> np.ndarray:
        """Chunk `index` of a stream (0 = the indexed vectors, 1 = queries): same seed, same data."""
        rng = np.random.default_rng([self.seed, stream, index])
        if self.kind == "uniform":
            x = rng.standard_normal((count, DIM), dtype=np.float32)
        else:
            z = rng.standard_normal((count, self.rank), dtype=np.float32)
            x = z @ self.basis
            x += (self.noise * np.sqrt(self.rank)) * rng.standard_normal(
                (count, DIM), dtype=np.float32
            )
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def chunks(self, n: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first key, vectors) for the n indexed vectors, CHUNK at a time."""
        for i, start in enumerate(range(0, n, CHUNK)):
            yield start, self.block(0, i, min(CHUNK, n - start))

    def queries(self, n: int) -> np.ndarray:
        return self.block(1, 0, n)


def exact_top_k(data: Synthetic, n: int, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k keys by cosine over the fp32 vectors (chunked brute force)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_k = np.zeros((len(queries), k), dtype=np.int64)
    for start, x in data.chunks(n):
        s = queries @ x.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, axis=1)], axis=1)
        cand_k = np.concatenate([best_k, top + start], axis=1)
        keep = np.argsort(-cand_s, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, keep, axis=1)
        best_k = np.take_along_axis(cand_k, keep, axis=1)
    return best_k


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-k found, over queries."""
    return float(
        np.mean(
            [
                len(set(f.tolist()) & set(t.tolist())) / truth.shape[1]
                for f, t in zip(found, truth, strict=True)
            ]
        )
    )


@dataclass
class SynthRow:
    data: str
    dtype: str
    n: int
    build_wall: float
    build_cpu: float
    file_bytes: int
    memory_bytes: int
    memory_built: int
    load_s: float
    p50: float
    p99: float
    recall: float
    ef_sweep: list[tuple[int, float, float, float]] = field(default_factory=list)

    @property
    def per_vec_disk(self) -> float:
        return self.file_bytes / self.n

    @property
    def per_vec_mem(self) -> float:
        return self.memory_bytes / self.n


def bench_synthetic(
    data: Synthetic,
    n: int,
    dtype: str,
    *,
    threads: int,
    truth: np.ndarray,
    recall_queries: np.ndarray,
    latency_queries: np.ndarray,
    ef_sweep: Sequence[int] = (),
) -> SynthRow:
    """Build, save, reload and search one synthetic index with the bundle's HNSW settings."""
    from usearch.index import Index

    opts = IndexOptions(dtype=dtype)  # type: ignore[arg-type]
    built = Index(
        ndim=DIM,
        metric=opts.metric,
        dtype=dtype,
        connectivity=opts.connectivity,
        expansion_add=opts.expansion_add,
        expansion_search=opts.expansion_search,
    )
    print(f"  building {data.kind} n={n:,} {dtype} ...", flush=True)
    with Timer() as build:
        for start, x in data.chunks(n):
            built.add(np.arange(start, start + len(x), dtype=np.uint64), x, threads=threads)
            if n > CHUNK:
                done = start + len(x)
                print(f"    {done:,} added, {time.perf_counter() - build._t:.0f}s", flush=True)
    memory_built = int(built.memory_usage)
    with tempfile.TemporaryDirectory(prefix="moviemind-bench-") as tmp:
        path = Path(tmp) / f"synthetic-{dtype}.usearch"
        built.save(str(path))
        file_bytes = path.stat().st_size
        del built  # free it before loading the copy: two 1M-vector indexes at once are not needed
        gc.collect()
        t0 = time.perf_counter()
        index = Index.restore(str(path), view=False)
        load_s = time.perf_counter() - t0
    assert index is not None and len(index) == n
    # After a build the index holds spare capacity; a restored one is what an edge keeps in memory.
    memory = int(index.memory_usage)

    def one(i: int) -> None:
        index.search(latency_queries[i % len(latency_queries)], K, threads=1)

    ms = latencies_ms(one, len(latency_queries), warm=50)
    rec = recall(index.search(recall_queries, K, threads=threads).keys, truth)
    row = SynthRow(
        data.kind,
        dtype,
        n,
        build.wall,
        build.cpu,
        file_bytes,
        memory,
        memory_built,
        load_s,
        percentile(ms, 50, math.nan),
        percentile(ms, 99, math.nan),
        rec,
    )
    for ef in ef_sweep:
        index.expansion_search = ef
        ms_ef = latencies_ms(one, len(latency_queries), warm=20)
        rec_ef = recall(index.search(recall_queries, K, threads=threads).keys, truth)
        row.ef_sweep.append(
            (ef, percentile(ms_ef, 50, math.nan), percentile(ms_ef, 99, math.nan), rec_ef)
        )
    print(
        f"  {data.kind} n={n:,} {dtype}: build {build.wall:.0f}s wall ({build.cpu:.0f}s cpu), "
        f"{row.per_vec_disk:.0f} B/vec on disk, {row.per_vec_mem:.0f} B/vec in memory, "
        f"search p50 {row.p50:.3f} ms p99 {row.p99:.3f} ms, recall@{K} {rec:.3f}",
        flush=True,
    )
    return row  # the index (hundreds of MB at 1M) goes with this frame; run() collects


def _hnsw_recall(x: np.ndarray, q: np.ndarray, dtype: str = "f16") -> float:
    """Recall@10 of an HNSW index over x (bundle settings, keys = rows) for queries q."""
    from moviemind_core.bundle import build_index

    index = build_index(np.arange(len(x)), x, IndexOptions(dtype=dtype), threads=2)  # type: ignore[arg-type]
    truth = np.argsort(-(q @ x.T), axis=1)[:, :K]
    return recall(index.search(q, K, threads=2).keys, truth)


def bench_real_index(data: Synthetic, held_out: int = 300, seed: int = 3) -> dict[str, Any] | None:
    """The real catalog vectors beside the synthetic data, at the catalog's size.

    Recall: an index of the catalog without `held_out` documents, queried with those documents
    (unseen points from the same distribution, as the synthetic queries are), and the same for
    synthetic data of the same size. Latency: the bundle's own index, single queries.
    """
    from moviemind_core.bundle import Bundle

    if not (SAMPLE_INDEX / "manifest.json").is_file():
        return None
    b = Bundle.load(SAMPLE_INDEX, verify=False)
    v = b.vectors.astype(np.float32)
    perm = np.random.default_rng(seed).permutation(len(v))
    q, x = v[perm[:held_out]], v[perm[held_out:]]
    real = _hnsw_recall(x, q)
    synth = _hnsw_recall(data.block(2, 0, len(x)), data.block(3, 0, held_out))
    ms = latencies_ms(lambda i: b.index.search(q[i % held_out], K, threads=1), 1000, warm=50)
    return {
        "n": len(v),
        "n_indexed": len(x),
        "held_out": held_out,
        "dtype": b.manifest.index.dtype,
        "recall": real,
        "synthetic_recall": synth,
        "synthetic_kind": data.kind,
        "p50": percentile(ms, 50, math.nan),
        "p99": percentile(ms, 99, math.nan),
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


@dataclass
class Results:
    report: BenchReport  # machine, date, load average
    args: argparse.Namespace
    embed: list[EmbedRow] = field(default_factory=list)
    queries: list[QueryRow] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    build: BuildRun | None = None
    synth: list[SynthRow] = field(default_factory=list)
    synth_note: str = ""
    real: dict[str, Any] | None = None


def embed_tables(res: Results) -> tuple[Table, Table, str]:
    t1 = Table(
        ["variant", "threads", "batch", "docs/s", "wall s", "cpu s", "docs per cpu s"],
        [
            (
                r.variant,
                r.threads,
                r.batch,
                f"{r.docs_s:.0f}",
                f"{r.wall:.1f}",
                f"{r.cpu:.1f}",
                f"{r.docs / r.cpu:.0f}" if r.cpu else "-",
            )
            for r in res.embed
        ],
    )
    t2 = Table(
        ["variant", "threads", "p50 ms", "p99 ms", "mean ms"],
        [
            (
                q.variant,
                q.threads,
                percentile(q.ms, 50, math.nan),
                percentile(q.ms, 99, math.nan),
                float(np.mean(q.ms)),
            )
            for q in res.queries
        ],
    )
    int8_2 = [r for r in res.embed if r.variant == "int8" and r.threads == 2]
    best = max((r.docs_s for r in int8_2), default=0.0)
    # On a busy machine wall time mostly measures waiting. One thread's docs per CPU-second, x2,
    # is a rough idea of two idle cores (2-thread CPU time is no help: ONNX Runtime's pool spins).
    est = 2 * max(
        (r.docs / r.cpu for r in res.embed if r.variant == "int8" and r.threads == 1 and r.cpu),
        default=0.0,
    )
    verdict = (
        f"int8 on 2 threads: best {best:.0f} docs/s measured; target >= {TARGET_INT8_DOCS_S:.0f} docs/s: "
        + ("**met**" if best >= TARGET_INT8_DOCS_S else "**not met**")
    )
    load, cores = res.report.load_start[0], res.report.machine.cores
    busy = load > cores
    if busy:
        verdict += (
            f" (measured with load average {load:.2f} on {cores} cores; "
            f"a rough, optimistic estimate for two idle cores from 1-thread CPU time: {est:.0f} docs/s; "
            "rerun on a quiet machine to decide)"
        )
    return t1, t2, verdict


def synth_table(rows: Sequence[SynthRow]) -> Table:
    return Table(
        [
            "data",
            "dtype",
            "vectors",
            "build s (wall)",
            "build s (cpu)",
            "B/vec disk",
            "B/vec memory (loaded)",
            "B/vec memory (after build)",
            "load s",
            "search p50 ms",
            "search p99 ms",
            f"recall@{K}",
        ],
        [
            (
                r.data,
                r.dtype,
                f"{r.n:,}",
                f"{r.build_wall:.0f}",
                f"{r.build_cpu:.0f}",
                f"{r.per_vec_disk:.0f}",
                f"{r.per_vec_mem:.0f}",
                f"{r.memory_built / r.n:.0f}",
                f"{r.load_s:.2f}",
                f"{r.p50:.3f}",
                f"{r.p99:.3f}",
                f"{r.recall:.3f}",
            )
            for r in rows
        ],
    )


def render(res: Results) -> list[Block]:
    """The report's blocks (the header with machine, date and load is the renderer's)."""
    a = res.args
    v = package_versions(VERSIONED)
    out: list[str | Block] = [
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- The cores are shared: wall times are noisy, CPU seconds less so.",
        "",
    ]
    if res.embed:
        t1, t2, verdict = embed_tables(res)
        tk = res.tokens
        out += [
            "## Embedding (MiniLM-L6 on ONNX Runtime, `moviemind_core.embedder.Embedder`)",
            "",
            f"Throughput on {res.embed[0].docs:,} real document texts of the sample catalog "
            f"(as `index_builder build` composes them: {tk['mean']:.1f} tokens on average, median "
            f"{tk['p50']:.0f}, longest {tk['max']:.0f}); `embed()` sorts by length and pads per batch.",
            "",
            t1,
            "",
            verdict + ".",
            "",
            f"Query embedding latency, `embed_one()` on short queries (1-8 words), {len(res.queries[0].ms)} calls each:",
            "",
            t2,
            "",
            "int8 accuracy against the reference pipeline is asserted by `tests/unit/core/test_embedder.py` "
            "(`pytest -s` prints mean cosine and top-10 neighbour overlap on the catalog).",
            "",
        ]
    if res.build:
        b = res.build
        out += [
            "## Sample index build",
            "",
            "`python -m index_builder build --out TMP --full` (MovieLens sample catalog, fp32 embedder, "
            "every document re-embedded, f16 HNSW), timed as a fresh process:",
            "",
        ]
        if b.ok:
            out += [
                Table(
                    ["movies", "wall s", "cpu s", "embedding rate", "index build s", "bundle MB"],
                    [
                        (
                            f"{b.movies:,}",
                            f"{b.wall:.1f}",
                            f"{b.cpu:.1f}",
                            b.embed_rate,
                            b.index_s,
                            b.size_mb,
                        )
                    ],
                ),
                "",
            ]
        else:
            out += [f"**failed** after {b.wall:.0f}s: `{b.tail}`", ""]
    if res.synth:
        opts = IndexOptions()
        out += [
            f"## Synthetic index ({a.n:,} vectors, dim {DIM})",
            "",
            f"usearch HNSW with the bundle's settings (metric {opts.metric}, connectivity {opts.connectivity}, "
            f"expansion_add {opts.expansion_add}, expansion_search {opts.expansion_search}), vectors added "
            f"in chunks of {CHUNK:,} with {a.threads} threads. Search: one query at a time, k={K}, "
            f"{a.latency_queries:,} queries, 1 thread. Recall@{K}: {a.recall_queries} queries against exact "
            "search over the float32 vectors. B/vec: the saved file size and `Index.memory_usage` "
            "(of the index restored from that file, and of the freshly built one, which keeps spare capacity) "
            "divided by the number of vectors (the raw vector is 1536 B in f32, 768 B in f16, 384 B in i8; "
            "the rest is the graph and key lookups). Load: `Index.restore` of the saved file.",
            "",
            f"Data: `{a.data}` ({'seeded random unit vectors from a 32-dimensional Gaussian plus noise, normalised: random, but with the near/far structure of real embeddings; calibrated on the real catalog, see the last section' if a.data == 'lowrank' else 'seeded random unit vectors, uniform on the sphere'}).",
            "",
            synth_table(res.synth),
            "",
        ]
        if res.synth_note:
            out += [res.synth_note, ""]
        sweep = [(r, e) for r in res.synth for e in r.ef_sweep]
        if sweep:
            out += [
                "Recall and latency by `expansion_search` (a search-time knob: the same index, searched wider):",
                "",
                Table(
                    [
                        "data",
                        "dtype",
                        "vectors",
                        "expansion_search",
                        "p50 ms",
                        "p99 ms",
                        f"recall@{K}",
                    ],
                    [
                        (r.data, r.dtype, f"{r.n:,}", ef, f"{p50:.3f}", f"{p99:.3f}", f"{rc:.3f}")
                        for r, (ef, p50, p99, rc) in sweep
                    ],
                ),
                "",
            ]
    if res.real:
        r = res.real
        out += [
            "## The real sample index, and the synthetic data beside it",
            "",
            f"var/index: {r['n']:,} movies, {r['dtype']}. Single-query search p50 {r['p50']:.3f} ms, "
            f"p99 {r['p99']:.3f} ms. Recall@{K} of an index of {r['n_indexed']:,} catalog vectors "
            f"(bundle settings) queried with the {r['held_out']} held-out documents: "
            f"**{r['recall']:.3f}**; the same on {r['n_indexed']:,} `{r['synthetic_kind']}` synthetic "
            f"vectors: **{r['synthetic_recall']:.3f}**. The synthetic data is about as hard for HNSW "
            "as the real vectors at this size, so its recall at larger sizes is a plausible stand-in for a real catalog of that size (which cannot be checked here).",
            "",
        ]
    return blocks(*out)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Results:
    t_start = time.perf_counter()
    report = BenchReport.begin("index", "Index-side benchmarks", "python -m benchmarks.index_bench")
    res = Results(report=report, args=args)
    print(f"machine: {report.machine.describe()}; load {report.load_start}", flush=True)

    if args.docs:
        print(f"\n== embedding: {args.docs} catalog documents", flush=True)
        docs = catalog_documents(args.docs)
        res.embed, res.queries, res.tokens = bench_embedder(docs, (1, 2), (32, 64), args.query_n)
        t1, t2, verdict = embed_tables(res)
        print(f"\n{t1.markdown()}\n\n{verdict}\n\n{t2.markdown()}", flush=True)

    if not args.skip_build:
        print("\n== sample index build (python -m index_builder build --full)", flush=True)
        res.build = bench_sample_build(timeout_s=args.build_timeout)
        b = res.build
        print(
            f"  {'ok' if b.ok else 'FAILED'}: {b.wall:.1f}s wall, {b.cpu:.1f}s cpu; {b.tail}",
            flush=True,
        )

    if args.n:
        print(f"\n== synthetic index: {args.n:,} {args.data} vectors", flush=True)
        data = Synthetic(args.data)
        latency_q = data.queries(args.latency_queries)
        recall_q = latency_q[: args.recall_queries]
        truth = exact_top_k(data, args.n, recall_q)
        common = dict(threads=args.threads, recall_queries=recall_q, latency_queries=latency_q)
        t_f16 = time.perf_counter()
        res.synth.append(
            bench_synthetic(data, args.n, "f16", truth=truth, ef_sweep=(128, 256), **common)
        )
        f16_s = time.perf_counter() - t_f16
        others = ("f32", "i8")
        remaining = args.budget_s - (time.perf_counter() - t_start)
        # f32 builds a little slower than f16, i8 a little faster: two more builds cost ~2x f16.
        full = args.all_full or remaining > 2.2 * f16_s
        small_n = min(args.small_n, args.n)
        n_others = args.n if full else small_n
        if not full:
            res.synth_note = (
                f"f32 and i8 were measured at {small_n:,} vectors, not {args.n:,}: the f16 part "
                f"took {f16_s:.0f}s, and {max(remaining, 0):.0f}s of the run's {args.budget_s:.0f}s "
                f"budget (`--budget-s`) were left for two more such builds (`--all-full` builds all "
                f"three at {args.n:,}). The f16 row at {small_n:,} is there to compare like with like."
            )
            print(f"  {res.synth_note}", flush=True)
            others = ("f16", "f32", "i8")
        truth_o = truth if n_others == args.n else exact_top_k(data, n_others, recall_q)
        for dt in others:
            gc.collect()
            res.synth.append(bench_synthetic(data, n_others, dt, truth=truth_o, **common))
        if args.uniform_n:
            u = Synthetic("uniform")
            uq = u.queries(args.latency_queries)
            ut = exact_top_k(u, args.uniform_n, uq[: args.recall_queries])
            res.synth.append(
                bench_synthetic(
                    u,
                    args.uniform_n,
                    "f16",
                    threads=args.threads,
                    truth=ut,
                    recall_queries=uq[: args.recall_queries],
                    latency_queries=uq,
                    ef_sweep=(256,),
                )
            )
        print("\n" + synth_table(res.synth).markdown(), flush=True)

    res.real = bench_real_index(Synthetic(args.data))
    if res.real:
        r = res.real
        print(
            f"\nreal index ({r['n']} movies): search p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms; "
            f"held-out recall@{K} {r['recall']:.3f} (synthetic {r['synthetic_kind']} at the same size: "
            f"{r['synthetic_recall']:.3f})",
            flush=True,
        )
    return res


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.index_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--docs", type=int, default=2000, help="catalog documents for throughput (0: skip)"
    )
    p.add_argument(
        "--query-n", type=int, default=300, help="timed query embeddings per configuration"
    )
    p.add_argument("--skip-build", action="store_true", help="skip the sample index build")
    p.add_argument("--build-timeout", type=float, default=900)
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic vectors (0: skip)")
    p.add_argument("--data", choices=["lowrank", "uniform"], default="lowrank")
    p.add_argument("--threads", type=int, default=2, help="threads for index.add and batch search")
    p.add_argument("--latency-queries", type=int, default=1000)
    p.add_argument("--recall-queries", type=int, default=100)
    p.add_argument(
        "--budget-s", type=float, default=600, help="f32/i8 at full size only if this allows"
    )
    p.add_argument("--small-n", type=int, default=50_000, help="size for f32/i8 when over budget")
    p.add_argument(
        "--all-full", action="store_true", help="build f32/i8 at --n whatever the budget"
    )
    p.add_argument(
        "--uniform-n",
        type=int,
        default=20_000,
        help="also a uniform-random f16 index of this size (0: skip)",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=REPORT_DIR,
        help="where index.json and index.md go (default docs/benchmarks)",
    )
    args = p.parse_args(argv)
    if not (MODELS / "manifest.json").is_file() or not (SAMPLE_INDEX / "manifest.json").is_file():
        print(
            "error: run `make index` first (needs var/models/minilm and var/index)", file=sys.stderr
        )
        return 2
    res = run(args)
    raw = {
        "args": args,
        "embed": res.embed,
        "queries": {
            f"{q.variant}, {q.threads} threads": latency_summary(q.ms) for q in res.queries
        },
        "tokens": res.tokens,
        "build": res.build,
        "synthetic": res.synth,
        "synthetic_note": res.synth_note,
        "real_index": res.real,
    }
    res.report.finish(results=raw, blocks=render(res))
    json_path, md_path = write_report(res.report, args.out_dir)
    print(f"\nwrote {md_path} from {json_path.name} ({res.report.duration_s:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
