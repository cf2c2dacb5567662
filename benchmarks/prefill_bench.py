"""Guided answers with assistant prefill: prompt tokens evaluated per request, both engines.

One guided answer is what the edge sends for k = 5 picks: the system and user messages
(~150 tokens), then one chat request per pick whose final assistant message is the answer so far
plus the next line's start ("2. Heat (1995):"), continued by the model up to `stop: ["\\n"]` or
24 tokens. Each request's `usage` says how many prompt tokens came from the KV cache; the rest
were evaluated. The baseline is the single uncached call with the same messages.

This measures the model server's continuation and prefix reuse with session 3's line-by-line
design. The edge now sends one request per pick (a shared head, then that pick's facts, then the
edge's opening of the sentence); benchmarks/reasons_bench.py measures that design end to end.

    python -m benchmarks.prefill_bench            # SmolLM2 Q4_1, 2 threads, both engines

Writes docs/benchmarks/prefill.json and renders prefill.md from it (devstack.report).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from devstack.report import BenchReport, Heading, Table, blocks, write_report
from devstack.servers import start_model_server

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / "var" / "cache" / "model_server"
THREADS = 2
PICK_TOKENS = 24
SYSTEM = (
    "You are moviemind, a movie recommender. For each pick write one line: the number, "
    "title and year, a colon, then one sentence on why this user will like it."
)
# (liked, five candidates as "Title (year): genres")
CASES: list[tuple[str, list[str]]] = [
    (
        "Kingdom of Heaven; Robin Hood; Troy",
        [
            "Gladiator (2000): action, drama",
            "Braveheart (1995): war, drama",
            "The Last Samurai (2003): action, drama",
            "Alexander (2004): war, history",
            "300 (2006): action, war",
        ],
    ),
    (
        "Alien; Blade Runner",
        [
            "Aliens (1986): sci-fi, action",
            "The Thing (1982): horror, sci-fi",
            "Prometheus (2012): sci-fi, mystery",
            "Moon (2009): sci-fi, drama",
            "Event Horizon (1997): horror, sci-fi",
        ],
    ),
    (
        "The Notebook; Pride & Prejudice",
        [
            "Atonement (2007): drama, romance",
            "Sense and Sensibility (1995): drama, romance",
            "The Time Traveler's Wife (2009): drama, romance",
            "Jane Eyre (2011): drama, romance",
            "A Walk to Remember (2002): drama, romance",
        ],
    ),
]


def messages(liked: str, candidates: Sequence[str]) -> list[dict[str, str]]:
    """The system and user messages of one request."""
    lines = "\n".join(f"[{i + 1}] {c}" for i, c in enumerate(candidates))
    user = f"I enjoyed: {liked}.\nCandidates:\n{lines}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def chat(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed chat request; the reply with its wall time in `seconds`."""
    t0 = time.perf_counter()
    r = client.post("/v1/chat/completions", json={"temperature": 0, **body})
    r.raise_for_status()
    doc = r.json()
    doc["seconds"] = time.perf_counter() - t0
    return doc


def n_tokens(client: httpx.Client, text: str) -> int:
    """Tokens of `text` in the server's vocabulary."""
    return len(client.post("/tokenize", json={"content": text}).json()["tokens"])


def evaluated(usage: dict[str, Any]) -> int:
    """Prompt tokens the engine evaluated (not taken from its KV cache)."""
    return usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]


def reset_cache(client: httpx.Client) -> None:
    """Leave an unrelated prompt in the KV cache, so the next request starts cold."""
    chat(client, {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1})


def guided(client: httpx.Client, liked: str, candidates: Sequence[str]) -> dict[str, Any]:
    """One guided answer: a baseline single call, then five continuation calls."""
    base_messages = messages(liked, candidates)
    reset_cache(client)
    single = chat(client, {"messages": base_messages, "max_tokens": 5 * PICK_TOKENS})
    reset_cache(client)
    calls = []
    answer = ""
    for i, cand in enumerate(candidates):
        start = ("\n" if answer else "") + f"{i + 1}. {cand.split(':')[0]}:"
        answer += start
        reply = chat(
            client,
            {
                "messages": [*base_messages, {"role": "assistant", "content": answer}],
                "max_tokens": PICK_TOKENS,
                "stop": ["\n"],
            },
        )
        text = reply["choices"][0]["message"]["content"]
        answer += text
        usage = reply["usage"]
        # Tokens no earlier call has seen: this prompt minus the previous prompt and reply.
        known = calls[-1]["prompt_tokens"] + calls[-1]["completion_tokens"] if calls else 0
        calls.append(
            {
                "prompt_tokens": usage["prompt_tokens"],
                "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                "evaluated": evaluated(usage),
                "new_tokens": usage["prompt_tokens"] - known,
                "completion_tokens": usage["completion_tokens"],
                "finish_reason": reply["choices"][0]["finish_reason"],
                "seconds": reply["seconds"],
                "text": text,
            }
        )
    return {
        "liked": liked,
        "single": {
            "prompt_tokens": single["usage"]["prompt_tokens"],
            "evaluated": evaluated(single["usage"]),
            "completion_tokens": single["usage"]["completion_tokens"],
            "seconds": single["seconds"],
        },
        "calls": calls,
        "answer": answer,
    }


def run_engine(engine: str, log_dir: Path) -> dict[str, Any]:
    """All cases against one freshly started server."""
    with (
        start_model_server(
            log_dir,
            MOVIEMIND_MODEL_ENGINE=engine,
            MOVIEMIND_MODEL_THREADS=str(THREADS),
            MOVIEMIND_MODEL_CACHE_DIR=str(CACHE_DIR),
            # Token counts are the point; on a busy shared machine a call may take minutes.
            MOVIEMIND_MODEL_DEADLINE_S="900",
        ) as server,
        httpx.Client(base_url=server.url, timeout=900, trust_env=False) as client,
    ):
        chat(client, {"messages": [{"role": "user", "content": "warm up"}], "max_tokens": 4})
        system_tokens = n_tokens(client, f"<|im_start|>system\n{SYSTEM}<|im_end|>\n")
        answers = [guided(client, liked, cands) for liked, cands in CASES]
    return {"engine": engine, "system_tokens": system_tokens, "answers": answers}


def summary_rows(results: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One row per engine and case: the baseline against the guided calls."""
    rows = []
    for res in results:
        for a in res["answers"]:
            calls = a["calls"]
            later = calls[1:]
            rows.append(
                [
                    res["engine"],
                    a["liked"].split(";")[0],
                    a["single"]["evaluated"],
                    " + ".join(str(c["evaluated"]) for c in calls),
                    sum(c["evaluated"] for c in calls),
                    sum(c["evaluated"] - c["new_tokens"] for c in later),
                    a["single"]["seconds"],
                    sum(c["seconds"] for c in calls),
                    max(c["seconds"] for c in calls),
                ]
            )
    return rows


def findings(results: Sequence[dict[str, Any]]) -> list[str]:
    """The summary in words, computed from the results."""
    answers = [a for r in results for a in r["answers"]]
    later = [c for a in answers for c in a["calls"][1:]]
    again = [c["evaluated"] - c["new_tokens"] for c in later]
    single = [a["single"]["evaluated"] for a in answers]
    total = [sum(c["evaluated"] for c in a["calls"]) for a in answers]
    first = [a["calls"][0]["evaluated"] for a in answers]
    return [
        f"Over {len(answers)} answers ({len(results)} engine(s)): the single uncached call "
        f"evaluates {min(single)}-{max(single)} prompt tokens; a guided answer evaluates "
        f"{min(total)}-{max(total)} in all: {min(first)}-{max(first)} in its first call (the "
        "same prompt plus the first line start), then "
        f"{min(c['evaluated'] for c in later)}-{max(c['evaluated'] for c in later)} per "
        "continuation. Beyond the new tokens: "
        f"{sum(again)} in {len(later)} continuation calls, at most {max(again)} per call: the "
        "previous reply's last token (or, indistinguishably here, a one-token boundary "
        "difference); nothing else from earlier calls was evaluated again."
        if max(again) <= 1
        else f"continuation. Beyond the new tokens: {sum(again)} in {len(later)} continuation "
        f"calls, up to {max(again)} in one (boundary re-tokenization)."
    ]


HEADERS = (
    "engine",
    "case",
    "single call: evaluated",
    "guided: evaluated per call",
    "guided: total",
    "calls 2-5: beyond the new tokens",
    "single call s",
    "guided s (5 calls)",
    "slowest call s",
)


CALL_HEADERS = ["call", "prompt", "cached", "evaluated", "new", "generated", "finish", "s", "text"]


def report_blocks(results: Sequence[dict[str, Any]]) -> list[Any]:
    """What a person reads: the method, the summary table, the findings, then every call."""
    per_call: list[Any] = []
    for r in results:
        for a in r["answers"]:
            rows = [
                [
                    i + 1,
                    c["prompt_tokens"],
                    c["cached_tokens"],
                    c["evaluated"],
                    c["new_tokens"],
                    c["completion_tokens"],
                    c["finish_reason"],
                    c["seconds"],
                    json.dumps(c["text"]),
                ]
                for i, c in enumerate(a["calls"])
            ]
            per_call += [
                "",
                Heading(f"{r['engine']}: {a['liked']}", 3),
                "",
                Table(CALL_HEADERS, rows),
            ]
    return blocks(
        f"SmolLM2-135M-Instruct Q4_1, {THREADS} threads, greedy. For each case: a single call with",
        "the system and user messages and an empty KV cache (today's design; up to "
        f"{5 * PICK_TOKENS} tokens), then",
        "a guided answer from an empty cache: five chat requests, each ending with an assistant",
        f'message (the answer so far plus "N. Title (year):"), `stop: ["\\n"]`, <= {PICK_TOKENS} '
        "tokens.",
        "`evaluated` = `usage.prompt_tokens - usage.prompt_tokens_details.cached_tokens`.",
        '"beyond the new tokens": tokens evaluated in calls 2-5 besides those no earlier call had',
        "(this prompt minus the previous call's prompt and reply). The previous reply's last",
        "token is one when the stop string ended the generation before the engine evaluated it",
        "(it is then evaluated once, here); a re-tokenization difference at the boundary would",
        "add more. Seconds are wall time on a shared machine (see the load average).",
        "",
        Table(list(HEADERS), summary_rows(results)),
        "",
        *findings(results),
        "",
        f"The system message is {results[0]['system_tokens']} tokens of the first call; the edge "
        "primes it at start-up",
        "(MOVIEMIND_EDGE_PRIME_PREFIX), so in service the first call evaluates only the rest.",
        "",
        Heading("Per call"),
        *per_call,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the summary table, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="ctransformers,llama_cpp")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if "llama_cpp" in engines and importlib.util.find_spec("llama_cpp") is None:
        print("llama-cpp-python not installed: skipping llama_cpp", file=sys.stderr)
        engines.remove("llama_cpp")
    report = BenchReport.begin(
        "prefill",
        "Guided answers with assistant prefill: prompt tokens evaluated",
        "python -m benchmarks.prefill_bench",
    )
    log_dir = Path(tempfile.mkdtemp(prefix="prefill_bench_"))
    results = [run_engine(e, log_dir) for e in engines]
    report.finish(results={"engines": results}, blocks=report_blocks(results))
    print(report.machine.describe())
    print(Table(list(HEADERS), summary_rows(results)).markdown())
    json_path, md_path = write_report(report, args.out_dir)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
