"""`python -m index_builder models|build|publish|eval`: see `--help` of each."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from index_builder.collaborative import CollabSettings
from index_builder.documents import TEMPLATE_VERSION
from index_builder.interactions import Ratings
from index_builder.sources import SourceStats
from moviemind_core.bundle import BundleError

if TYPE_CHECKING:  # httpx (the build extra) only when a TMDB source runs
    from index_builder.sources.tmdb_api import TmdbReport

CollabDefaults = CollabSettings()

DEFAULT_MODELS = Path("var/models")
DEFAULT_INDEX = Path("var/index")
DEFAULT_TMDB_CHECKPOINT = Path("var/cache/tmdb_checkpoint.json")
# A separate default: the two TMDB listings keep separate checkpoints (each refuses the other's).
DEFAULT_TMDB_IDS_CHECKPOINT = Path("var/cache/tmdb_ids_checkpoint.json")


def _ratings(args: argparse.Namespace) -> Ratings | None:
    """The interaction data a build or eval uses, cut at --ratings-until when given."""
    from index_builder.interactions import parse_cutoff, read_ratings_csv, sample_ratings

    if args.ratings:
        ratings = read_ratings_csv(args.ratings)
    elif args.movielens_dir:
        ratings = read_ratings_csv(Path(args.movielens_dir) / "ratings.csv")
    elif args.source == "movielens":
        ratings = sample_ratings()
    else:
        return None
    if args.source in ("tmdb-export", "tmdb-api"):
        from index_builder.sources.movielens import read_links

        if not args.movielens_dir:
            raise SystemExit(
                "error: a TMDB catalog needs --movielens-dir (for links.csv) to use ratings"
            )
        ratings = ratings.map_movies(read_links(Path(args.movielens_dir)))
    if args.ratings_until:
        ratings = ratings.until(parse_cutoff(args.ratings_until))
    print(f"  ratings: {len(ratings):,} from {len(set(ratings.user.tolist())):,} users")
    return ratings


def _movies(args: argparse.Namespace, stats: SourceStats, ratings: Ratings | None) -> list:
    if args.refresh and args.source == "movielens":
        raise SystemExit("error: --refresh is for TMDB sources (tmdb-api, a daily ID export)")
    if args.source == "movielens" and args.movielens_dir:
        from index_builder.sources.movielens import iter_movielens_dir

        assert ratings is not None
        movies = list(iter_movielens_dir(Path(args.movielens_dir), stats, ratings))
    elif args.source == "movielens":
        from index_builder.sources.movielens import iter_movielens

        movies = list(iter_movielens(stats, ratings=ratings))
    elif args.source == "tmdb-export":
        from index_builder.sources.tmdb_export import iter_tmdb_export
        from index_builder.sources.tmdb_id_export import is_id_export

        if not args.input:
            raise SystemExit("error: --source tmdb-export needs --input FILE (.csv or .jsonl)")
        if is_id_export(Path(args.input)):
            movies = _tmdb_id_export(args, stats)
        else:
            if args.refresh:
                raise SystemExit("error: --refresh needs --source tmdb-api or a daily ID export")
            movies = list(iter_tmdb_export(Path(args.input), stats))
    else:
        from index_builder.sources.tmdb_api import TmdbReport, TmdbSettings, iter_tmdb_api

        settings = TmdbSettings.from_env()
        report = TmdbReport()
        progress = _Progress("TMDB discover", report)
        movies = list(
            iter_tmdb_api(
                settings,
                Path(args.checkpoint or DEFAULT_TMDB_CHECKPOINT),
                stats,
                progress,
                fresh=args.tmdb_fresh,
                refresh=args.refresh,
                report=report,
            )
        )
        progress.end()
    if args.limit:
        # Keep the most popular movies (every source has popularity; a daily ID export has
        # nothing else), so a small index still has the well-known titles.
        movies = sorted(movies, key=lambda m: (-m.popularity, -m.vote_count, m.id))[: args.limit]
        movies.sort(key=lambda m: m.id)
    return movies


def _tmdb_id_export(args: argparse.Namespace, stats: SourceStats) -> list:
    """TMDB's daily ID export: the (--limit most popular) ids, fetched through the API."""
    from index_builder.sources.tmdb_api import TmdbReport, TmdbSettings, iter_tmdb_ids
    from index_builder.sources.tmdb_id_export import read_id_export

    try:
        settings = TmdbSettings.from_env()
    except ValueError as exc:
        raise SystemExit(
            f"error: {args.input} is TMDB's daily ID export (ids only, no titles); its details "
            f"come from the API, which needs settings: {exc}"
        ) from None
    print(f"  reading {args.input} ...", file=sys.stderr, flush=True)
    chosen = read_id_export(Path(args.input), limit=args.limit)
    print(f"  {chosen.summary()}")
    for reason, count in (
        ("adult", chosen.adult),
        ("video", chosen.video),
        ("bad_row", chosen.bad),
    ):
        if count:  # left out on purpose (adult, video) or unreadable: the summary says why
            stats.skipped += count
            stats.reasons[reason] = stats.reasons.get(reason, 0) + count
    report = TmdbReport()
    progress = _Progress("TMDB ids", report)
    movies = list(
        iter_tmdb_ids(
            settings,
            chosen.ids,
            Path(args.checkpoint or DEFAULT_TMDB_IDS_CHECKPOINT),
            stats,
            progress,
            fresh=args.tmdb_fresh,
            refresh=args.refresh,
            report=report,
        )
    )
    progress.end()
    return movies


class _Progress:
    """A TMDB run's progress on stderr (at most every 2 s) and its summary line at the end."""

    def __init__(self, label: str, report: TmdbReport) -> None:
        self.label = label
        self.report = report
        self.started = time.monotonic()
        # The first line after 2 s, when the rate means something.
        self.shown = self.started
        self.done = self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if now - self.shown >= 2.0:
            self.shown = now
            rate = done / max(now - self.started, 1e-9)
            left = (total - done) / rate if rate > 0 and total > done else 0.0
            print(
                f"  {self.label}: {done:,}/{total:,} ({rate:,.1f}/s, ~{left:,.0f} s left)",
                file=sys.stderr,
                flush=True,
            )

    def end(self) -> None:
        """Print the summary: what was listed, fetched, replayed, changed; requests made."""
        took = time.monotonic() - self.started
        print(f"  {self.report.summary()} in {took:,.1f} s")


def _collab_settings(args: argparse.Namespace) -> CollabSettings:
    from index_builder.collaborative import CollabSettings

    return CollabSettings(
        method=args.collab,
        ease_lambda=args.ease_lambda,
        top_n=args.neighbours,
        max_items=args.max_items,
        min_stars=args.min_stars,
    )


def cmd_models(args: argparse.Namespace) -> None:
    from index_builder.models import obtain_models

    obtain_models(Path(args.out), force=args.force)


def cmd_build(args: argparse.Namespace) -> None:
    from index_builder.build import build
    from index_builder.collaborative import neighbours_for
    from moviemind_core.embedder import Embedder, EmbedderError

    print(f"source: {args.source}")
    stats = SourceStats()
    ratings = _ratings(args)
    movies = _movies(args, stats, ratings)
    print(f"  {stats.summary()}")
    if not movies:
        raise SystemExit("error: the source yielded no movies")
    try:
        embedder = Embedder(Path(args.models), variant=args.variant, threads=args.threads)
    except EmbedderError as exc:
        raise SystemExit(f"error: {exc}") from None
    ids = np.asarray([m.id for m in movies], dtype=np.int64)
    related = {m.id: m.related for m in movies if m.related}
    from index_builder.feedback import with_feedback

    interactions = with_feedback(ratings, args.feedback, ids, args.feedback_min_support)
    neighbours, collab = neighbours_for(
        ids, interactions if args.collab != "none" else None, _collab_settings(args), related
    )
    build(
        [msgspec.structs.replace(m, related=()) if m.related else m for m in movies],
        Path(args.out),
        embedder,
        source=args.source,
        dtype=args.dtype,
        incremental=not args.full,
        template=args.template,
        neighbours=neighbours,
        collab=collab,
    )


def cmd_publish(args: argparse.Namespace) -> None:
    from index_builder.publish import publish
    from moviemind_core.storage import S3Settings

    publish(Path(args.bundle), args.url, S3Settings.from_env(), keep=args.keep)


def cmd_eval(args: argparse.Namespace) -> None:
    from index_builder.build import build
    from index_builder.collaborative import neighbours_for
    from index_builder.evaluate import run_eval
    from moviemind_core.embedder import Embedder

    args.source = "movielens"
    ratings = _ratings(args)
    assert ratings is not None
    embedder = Embedder(Path(args.models), variant="fp32", threads=args.threads)
    work = Path(args.work_dir)

    def build_bundle(train: Ratings, template: str, collab: CollabSettings) -> Path:
        stats = SourceStats()
        if args.movielens_dir:
            from index_builder.sources.movielens import iter_movielens_dir

            movies = list(iter_movielens_dir(Path(args.movielens_dir), stats, train))
        else:
            from index_builder.sources.movielens import iter_movielens

            movies = list(iter_movielens(stats, ratings=train))
        ids = np.asarray([m.id for m in movies], dtype=np.int64)
        neighbours, info = neighbours_for(ids, train, collab)
        out = work / template
        build(
            movies,
            out,
            embedder,
            source="movielens (training ratings)",
            template=template,
            neighbours=neighbours,
            collab=info,
        )
        return out

    report = run_eval(
        ratings,
        build_bundle,
        collab=_collab_settings(args),
        templates=[t for t in args.templates.split(",") if t] if args.templates else (),
        collab_variants=_learner_variants(args) if args.compare_learners else (),
        min_inputs=args.min_inputs,
        seed=args.seed,
        max_users=args.max_users,
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(EVAL_HEADER + report.markdown())
        Path(args.out).with_suffix(".json").write_bytes(
            msgspec.json.format(msgspec.json.encode(report))
        )
        print(f"wrote {args.out} and its .json")


def _learner_variants(args: argparse.Namespace) -> list[CollabSettings]:
    """The collaborative learners `eval --compare-learners` measures side by side."""
    base = _collab_settings(args)
    out = [
        msgspec.structs.replace(base, method="ease", ease_lambda=lam)
        for lam in (100.0, 500.0, 2000.0)
    ]
    out.append(msgspec.structs.replace(base, method="ease", min_stars=3.5))
    out.append(msgspec.structs.replace(base, method="ease", top_n=20))
    out.append(msgspec.structs.replace(base, method="ease", top_n=100))
    out.append(msgspec.structs.replace(base, method="cosine"))
    return out


EVAL_HEADER = """# Offline evaluation

Reproduce: `make eval` (= `.venv/bin/python -m index_builder eval --compare-learners
--templates doc-v1,doc-v2,doc-v3 --out docs/benchmarks/eval.md`; about 2 minutes on 2 cores).

How it cannot leak (`index_builder/evaluate.py`):
- One case per MovieLens user with at least 3 liked movies (>= 4 stars) before a later liked one:
  the held-out movie is the user's last such liked movie; the input is the (up to) 10 liked
  movies just before it, as a person would name a few favourites.
- Every rating of a case's user from the held-out movie's time on is removed, and the bundle
  being evaluated is built from what remains: votes, averages, popularity and collaborative
  neighbours alike. Document vectors come from catalog text, not from ratings.
- Users are split at random into two halves: blend weights, EASE's lambda and the document
  template are chosen on the validation half; every number in the first table is measured on
  the test half, whose users played no part in any choice.
- Every method ranks the whole catalog with only the input excluded (none sees the rest of the
  user's history): HR@10 and NDCG@10 of the held-out movie, Recall@20 of all the user's liked
  movies from the held-out time on, catalog coverage of all top-10 lists; mean ± standard error
  over users. The edge's rows build their RankQuery with `moviemind_core.ranking.build_query` and
  run `Pipeline.run`, the calls the edge serves with (tests/unit/edge/test_preparation.py compares
  the two on recorded requests).

"""


def _source_errors() -> type[Exception]:
    """The TMDB client's error base, without importing httpx when it is not used."""
    try:
        from index_builder.sources.tmdb_api import TmdbError
    except ImportError:  # the build extra is not installed
        return BundleError
    return TmdbError


def _interaction_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("interaction data (collaborative neighbours, votes, popularity)")
    g.add_argument(
        "--movielens-dir", help="MovieLens CSV layout: ratings.csv, movies.csv, links.csv"
    )
    g.add_argument("--ratings", help="a ratings.csv (userId,movieId,rating,timestamp) to use")
    g.add_argument(
        "--ratings-until",
        help="use only ratings before this time (ISO date or unix seconds): no held-out data",
    )
    g.add_argument("--collab", choices=["ease", "cosine", "none"], default="ease")
    g.add_argument("--ease-lambda", type=float, default=CollabDefaults.ease_lambda)
    g.add_argument("--neighbours", type=int, default=CollabDefaults.top_n, help="per movie")
    g.add_argument("--max-items", type=int, default=CollabDefaults.max_items)
    g.add_argument("--min-stars", type=float, default=CollabDefaults.min_stars)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m index_builder", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    m = sub.add_parser("models", help="export MiniLM to ONNX (fp32 + int8), locate SmolLM2")
    m.add_argument("--out", default=str(DEFAULT_MODELS))
    m.add_argument("--force", action="store_true", help="re-export even when up to date")
    m.set_defaults(func=cmd_models)

    b = sub.add_parser("build", help="build an index bundle from a catalog source")
    b.add_argument(
        "--source", choices=["movielens", "tmdb-export", "tmdb-api"], default="movielens"
    )
    b.add_argument(
        "--input",
        help="export file for --source tmdb-export (CSV/JSON Lines, or TMDB's daily ID export "
        "movie_ids_MM_DD_YYYY.json.gz, whose ids are fetched through the API)",
    )
    b.add_argument(
        "--checkpoint",
        help=f"TMDB checkpoint (default {DEFAULT_TMDB_CHECKPOINT}; daily ID exports "
        f"{DEFAULT_TMDB_IDS_CHECKPOINT})",
    )
    b.add_argument(
        "--tmdb-fresh", action="store_true", help="ignore a finished TMDB checkpoint and refetch"
    )
    b.add_argument(
        "--refresh",
        action="store_true",
        help="TMDB: refetch only movies /movie/changes lists as edited since the checkpoint's "
        "last finished run (plus new ones); without it a finished checkpoint is replayed as is",
    )
    b.add_argument("--out", default=str(DEFAULT_INDEX))
    b.add_argument("--models", default=str(DEFAULT_MODELS / "minilm"))
    b.add_argument("--variant", choices=["fp32", "int8"], default="fp32")
    b.add_argument("--dtype", choices=["f32", "f16", "i8"], default="f16")
    b.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    b.add_argument(
        "--limit",
        type=int,
        default=0,
        help="keep only the N most popular movies (a daily ID export: fetch only those)",
    )
    b.add_argument("--full", action="store_true", help="re-embed everything")
    b.add_argument("--template", default=TEMPLATE_VERSION, help="document template to embed")
    _interaction_args(b)
    b.add_argument(
        "--feedback", help="also learn from visitors' likes: SQLite path or postgresql:// URL"
    )
    b.add_argument("--feedback-min-support", type=int, default=3, help="visitors a film needs")
    b.set_defaults(func=cmd_build)

    u = sub.add_parser("publish", help="upload a bundle to S3-compatible storage, move latest")
    u.add_argument("--bundle", default=str(DEFAULT_INDEX))
    u.add_argument("--url", required=True, help="s3://BUCKET/PREFIX")
    u.add_argument("--keep", type=int, default=3, help="versions to keep")
    u.set_defaults(func=cmd_publish)

    e = sub.add_parser(
        "eval", help="leak-free offline evaluation on MovieLens (HR@10, NDCG@10, Recall@20)"
    )
    e.add_argument("--work-dir", default="var/eval", help="where the training bundles are built")
    e.add_argument("--models", default=str(DEFAULT_MODELS / "minilm"))
    e.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    e.add_argument("--min-inputs", type=int, default=3, help="liked movies before the held-out one")
    e.add_argument("--max-users", type=int, default=0, help="evaluate a sample of users (0 = all)")
    e.add_argument("--seed", type=int, default=7)
    e.add_argument("--templates", default="", help="also compare these document templates")
    e.add_argument(
        "--compare-learners", action="store_true", help="also compare collaborative learners"
    )
    e.add_argument("--out", help="write the report as Markdown (and .json beside it)")
    _interaction_args(e)
    e.set_defaults(func=cmd_eval)

    args = p.parse_args(argv)
    try:
        args.func(args)
    except (BundleError, ValueError, OSError, _source_errors()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
