"""`python -m loadtests` (`make loadtest`): Locust against a local stack, objectives, report.

    python -m loadtests              objective run + region failover + index swap + overload (~6 min)
    python -m loadtests --quick      smoke: a small mixed load for ~15 s (report under var/loadtests/quick)
    python -m loadtests --capacity   step /v1/search users until p95 crosses the objective
    python -m loadtests --host URL   only the steady scenario against an existing edge (no local stack)

Exit code: 0 all enforced objectives met, 1 one was missed, 2 the run could not be done, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from loadtests.objectives import DEFAULT_PATH, ObjectivesError, load_objectives
from loadtests.runner import DEFAULT_PHASES, Options, Runner
from loadtests.stack import ROOT


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m loadtests", description="moviemind load tests (Locust)"
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short smoke run (~15 s of load)")
    mode.add_argument(
        "--capacity", action="store_true", help="find the /v1/search saturation point"
    )
    mode.add_argument(
        "--host", metavar="URL", help="run the steady scenario against this edge; starts nothing"
    )
    ap.add_argument(
        "--api-key",
        default=os.environ.get("MOVIEMIND_EDGE_API_KEY"),
        help="edge API key for --host (default: $MOVIEMIND_EDGE_API_KEY)",
    )
    ap.add_argument(
        "--users", type=int, help="users of the steady phase (capacity: the highest step)"
    )
    ap.add_argument("--duration", type=int, metavar="S", help="seconds of the steady phase")
    ap.add_argument(
        "--step-s", type=float, default=15.0, help="seconds per capacity step (default 15)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="report directory (default docs/loadtests; --quick and --host: var/loadtests/<mode>)",
    )
    ap.add_argument(
        "--index",
        type=Path,
        default=ROOT / "var" / "index",
        help="index bundle to serve and to draw queries from (default var/index)",
    )
    ap.add_argument(
        "--objectives",
        type=Path,
        default=DEFAULT_PATH,
        help="objectives file (default loadtests/objectives.toml)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--phases",
        default=",".join(DEFAULT_PHASES),
        help=f"default mode: which phases to run, comma-separated (default {','.join(DEFAULT_PHASES)})",
    )
    ap.add_argument(
        "--prompt-tokens",
        type=int,
        metavar="N",
        help="local stack: the edge's MOVIEMIND_EDGE_PROMPT_TOKENS (default: the edge's own default)",
    )
    args = ap.parse_args(argv)
    if args.users is not None and not 1 <= args.users <= 500:
        ap.error("--users must be 1..500")
    if args.duration is not None and not 1 <= args.duration <= 1800:
        ap.error("--duration must be 1..1800 seconds")
    if args.host and not args.host.startswith(("http://", "https://")):
        ap.error("--host must be an http(s) URL")
    args.phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    unknown = set(args.phases) - set(DEFAULT_PHASES)
    if unknown or not args.phases:
        ap.error(f"--phases: choose from {', '.join(DEFAULT_PHASES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    mode = (
        "quick"
        if args.quick
        else "capacity"
        if args.capacity
        else "host"
        if args.host
        else "default"
    )
    try:
        objectives = load_objectives(args.objectives)
    except ObjectivesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (args.index / "manifest.json").is_file():
        print(
            f"error: no index bundle at {args.index} (build one with `make index`)", file=sys.stderr
        )
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = args.out or (
        ROOT / "docs" / "loadtests"
        if mode in ("default", "capacity")
        else ROOT / "var" / "loadtests" / mode
    )
    opts = Options(
        mode=mode,
        out_dir=out.resolve(),
        work_dir=(ROOT / "var" / "loadtests" / f"run-{stamp}-{mode}-{os.getpid()}").resolve(),
        index=args.index.resolve(),
        objectives=objectives,
        host=args.host.rstrip("/") if args.host else None,
        api_key=args.api_key if args.host else None,
        users=args.users,
        duration_s=args.duration,
        seed=args.seed,
        step_s=args.step_s,
        phases=args.phases,
        edge_env={"MOVIEMIND_EDGE_PROMPT_TOKENS": str(args.prompt_tokens)}
        if args.prompt_tokens
        else {},
    )

    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the stack is always torn down.
    def _terminate(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        return Runner(opts).run()
    except KeyboardInterrupt:
        print("interrupted; the local stack was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
