"""`python -m index_builder models|build|publish|eval`: see `--help` of each."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from index_builder.sources import SourceStats
from moviemind_core.bundle import BundleError

DEFAULT_MODELS = Path("var/models")
DEFAULT_INDEX = Path("var/index")


def _movies(args: argparse.Namespace, stats: SourceStats) -> list:
    if args.source == "movielens":
        from index_builder.sources.movielens import iter_movielens

        movies = list(iter_movielens(stats))
    elif args.source == "tmdb-export":
        from index_builder.sources.tmdb_export import iter_tmdb_export

        if not args.input:
            raise SystemExit("error: --source tmdb-export needs --input FILE (.csv or .jsonl)")
        movies = list(iter_tmdb_export(Path(args.input), stats))
    else:
        from index_builder.sources.tmdb_api import TmdbSettings, iter_tmdb_api

        settings = TmdbSettings.from_env()
        checkpoint = Path(args.checkpoint)
        movies = list(iter_tmdb_api(settings, checkpoint, stats, fresh=args.tmdb_fresh))
    if args.limit:
        # Keep the most-voted movies, so a small test index still has the well-known titles.
        movies = sorted(movies, key=lambda m: (-m.vote_count, m.id))[: args.limit]
        movies.sort(key=lambda m: m.id)
    return movies


def cmd_models(args: argparse.Namespace) -> None:
    from index_builder.models import obtain_models

    obtain_models(Path(args.out), force=args.force)


def cmd_build(args: argparse.Namespace) -> None:
    from index_builder.build import build
    from moviemind_core.embedder import Embedder, EmbedderError

    print(f"source: {args.source}")
    stats = SourceStats()
    movies = _movies(args, stats)
    print(f"  {stats.summary()}")
    if not movies:
        raise SystemExit("error: the source yielded no movies")
    try:
        embedder = Embedder(Path(args.models), variant=args.variant, threads=args.threads)
    except EmbedderError as exc:
        raise SystemExit(f"error: {exc}") from None
    build(
        movies,
        Path(args.out),
        embedder,
        source=args.source,
        dtype=args.dtype,
        incremental=not args.full,
    )


def cmd_publish(args: argparse.Namespace) -> None:
    from index_builder.publish import publish
    from moviemind_core.storage import S3Settings

    publish(Path(args.bundle), args.url, S3Settings.from_env(), keep=args.keep)


def cmd_eval(args: argparse.Namespace) -> None:
    from index_builder.evaluate import run_eval

    report = run_eval(
        Path(args.index), min_liked=args.min_liked, max_users=args.max_users, seed=args.seed
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("# Offline evaluation\n\n" + report.markdown())
        print(f"wrote {args.out}")


def _source_errors() -> type[Exception]:
    """The TMDB client's error base, without importing httpx when it is not used."""
    try:
        from index_builder.sources.tmdb_api import TmdbError
    except ImportError:  # the build extra is not installed
        return BundleError
    return TmdbError


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
    b.add_argument("--input", help="export file for --source tmdb-export")
    b.add_argument("--checkpoint", default="var/cache/tmdb_checkpoint.json")
    b.add_argument(
        "--tmdb-fresh", action="store_true", help="ignore a finished TMDB checkpoint and refetch"
    )
    b.add_argument("--out", default=str(DEFAULT_INDEX))
    b.add_argument("--models", default=str(DEFAULT_MODELS / "minilm"))
    b.add_argument("--variant", choices=["fp32", "int8"], default="fp32")
    b.add_argument("--dtype", choices=["f32", "f16", "i8"], default="f16")
    b.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    b.add_argument("--limit", type=int, default=0, help="keep only the N most-voted movies")
    b.add_argument("--full", action="store_true", help="re-embed everything")
    b.set_defaults(func=cmd_build)

    u = sub.add_parser("publish", help="upload a bundle to S3-compatible storage, move latest")
    u.add_argument("--bundle", default=str(DEFAULT_INDEX))
    u.add_argument("--url", required=True, help="s3://BUCKET/PREFIX")
    u.add_argument("--keep", type=int, default=3, help="versions to keep")
    u.set_defaults(func=cmd_publish)

    e = sub.add_parser("eval", help="offline evaluation on MovieLens ratings (HR@10, NDCG@10)")
    e.add_argument("--index", default=str(DEFAULT_INDEX))
    e.add_argument("--min-liked", type=int, default=5)
    e.add_argument("--max-users", type=int, default=0)
    e.add_argument("--seed", type=int, default=7)
    e.add_argument("--out", help="also write the table as Markdown to this file")
    e.set_defaults(func=cmd_eval)

    args = p.parse_args(argv)
    try:
        args.func(args)
    except (BundleError, ValueError, OSError, _source_errors()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
