"""Guided answers with assistant prefill: prompt tokens evaluated per request, both engines.

One guided answer is what the edge sends for k = 5 picks: the system and user messages
(~150 tokens), then one chat request per pick whose final assistant message is the answer so far
plus the next line's start ("2. Heat (1995):"), continued by the model up to `stop: ["\\n"]` or
24 tokens. Each request's `usage` says how many prompt tokens came from the KV cache; the rest
were evaluated. The baseline is today's single uncached call with the same messages.

    python -m benchmarks.prefill_bench            # SmolLM2 Q4_1, 2 threads, both engines

Writes docs/benchmarks/prefill.json and renders docs/benchmarks/prefill.md from it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.edge_bench import loadavg, machine, table
from benchmarks.model_server_bench import CACHE_DIR, ROOT, server_process

OUT_JSON = ROOT / "docs" / "benchmarks" / "prefill.json"
OUT_MD = ROOT / "docs" / "benchmarks" / "prefill.md"
THREADS = 2
PICK_TOKENS = 24
SYSTEM = (
    "You are moviemind, a movie recommender. The user names movies they enjoyed and gives "
    "numbered candidates. The answer lists the picks one per line, each line starting with the "
    "number, the title and the year, then a colon and one sentence in your own words on why "
    "this user will like that movie."
)
# (liked, five candidates as "Title (year): genres; keywords")
CASES: list[tuple[str, list[str]]] = [
    (
        "Kingdom of Heaven; Robin Hood; Troy",
        [
            "Gladiator (2000): action, drama; rome, revenge, arena",
            "Braveheart (1995): war, drama; scotland, rebellion",
            "The Last Samurai (2003): action, drama; japan, honor",
            "Alexander (2004): war, history; conquest, macedonia",
            "300 (2006): action, war; sparta, battle",
        ],
    ),
    (
        "Alien; Blade Runner",
        [
            "Aliens (1986): sci-fi, action; space marines, survival",
            "The Thing (1982): horror, sci-fi; antarctica, paranoia",
            "Prometheus (2012): sci-fi, mystery; space, origins",
            "Moon (2009): sci-fi, drama; isolation, clone",
            "Event Horizon (1997): horror, sci-fi; spaceship, hell",
        ],
    ),
    (
        "The Notebook; Pride & Prejudice",
        [
            "Atonement (2007): drama, romance; war, guilt",
            "Sense and Sensibility (1995): drama, romance; sisters, class",
            "The Time Traveler's Wife (2009): drama, romance; time travel",
            "Jane Eyre (2011): drama, romance; governess, secrets",
            "A Walk to Remember (2002): drama, romance; faith, illness",
        ],
    ),
]


def cpu_flags() -> dict[str, bool]:
    """Which SIMD extensions the CPU reports (llama.cpp's kernels depend on them)."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {f: f in flags for f in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni")}


def messages(liked: str, candidates: Sequence[str]) -> list[dict[str, str]]:
    """The system and user messages of one request."""
    lines = "\n".join(f"[{i + 1}] {c}" for i, c in enumerate(candidates))
    user = f"I enjoyed: {liked}.\nPick all five candidates, best first.\nCandidates:\n{lines}"
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
        calls.append(
            {
                "prompt_tokens": usage["prompt_tokens"],
                "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                "evaluated": evaluated(usage),
                "line_start_tokens": n_tokens(client, start),
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
    env = {
        "MOVIEMIND_MODEL_ENGINE": engine,
        "MOVIEMIND_MODEL_THREADS": str(THREADS),
        "MOVIEMIND_MODEL_PORT": "{port}",
        "MOVIEMIND_MODEL_CACHE_DIR": str(CACHE_DIR),
        # Token counts are the point; on a busy shared machine a call may take minutes.
        "MOVIEMIND_MODEL_DEADLINE_S": "900",
    }
    log = log_dir / f"prefill_{engine}.log"
    with (
        server_process([sys.executable, "-m", "model_server"], env, "/readyz", log) as base,
        httpx.Client(base_url=base, timeout=600) as client,
    ):
        chat(client, {"messages": [{"role": "user", "content": "warm up"}], "max_tokens": 4})
        system_tokens = n_tokens(client, f"<|im_start|>system\n{SYSTEM}<|im_end|>\n")
        answers = [guided(client, liked, cands) for liked, cands in CASES]
    return {"engine": engine, "system_tokens": system_tokens, "answers": answers}


def summary_rows(results: Sequence[dict[str, Any]]) -> list[tuple]:
    """One row per engine and case: the baseline against the guided calls."""
    rows = []
    for res in results:
        for a in res["answers"]:
            calls = a["calls"]
            later = calls[1:]
            rows.append(
                (
                    res["engine"],
                    a["liked"].split(";")[0],
                    a["single"]["evaluated"],
                    " + ".join(str(c["evaluated"]) for c in calls),
                    sum(c["evaluated"] for c in calls),
                    sum(c["evaluated"] - c["line_start_tokens"] for c in later),
                    f"{a['single']['seconds']:.2f}",
                    f"{sum(c['seconds'] for c in calls):.2f}",
                    f"{max(c['seconds'] for c in calls):.2f}",
                )
            )
    return rows


HEADERS = (
    "engine",
    "case",
    "single call: evaluated",
    "guided: evaluated per call",
    "guided: total",
    "calls 2-5: beyond the line start",
    "single call s",
    "guided s (5 calls)",
    "slowest call s",
)


def render(res: dict[str, Any]) -> str:
    """The Markdown report from the JSON results."""
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in res["cpu_flags"].items())
    out = [
        "# Guided answers with assistant prefill: prompt tokens evaluated",
        "",
        f"Generated by `python -m benchmarks.prefill_bench` on {res['date']}.",
        f"CPU: {res['machine']['cpu']}, {res['machine']['cores']} cores; flags: {flags}.",
        f"Load average at start {res['load_start']}, at end {res['load_end']} (a shared machine:",
        "seconds are indicative, token counts are exact).",
        "",
        f"SmolLM2-135M-Instruct Q4_1, {THREADS} threads, greedy. For each case: a single call with",
        "the system and user messages and an empty KV cache (today's design; up to "
        f"{5 * PICK_TOKENS} tokens), then",
        "a guided answer from an empty cache: five chat requests, each ending with an assistant",
        f'message (the answer so far plus "N. Title (year):"), `stop: ["\\n"]`, <= {PICK_TOKENS} '
        "tokens.",
        "`evaluated` = `usage.prompt_tokens - usage.prompt_tokens_details.cached_tokens`.",
        '"beyond the line start": tokens evaluated in calls 2-5 besides the new line\'s own',
        "tokens (tokenized alone): the previous reply's last token, which was sampled but never",
        "evaluated, and any re-tokenization difference at the boundary.",
        "",
        table(HEADERS, summary_rows(res["results"])),
        "",
        f"The system message is {res['results'][0]['system_tokens']} tokens of the first call; "
        "the edge primes it at start-up",
        "(MOVIEMIND_EDGE_PRIME_PREFIX), so in service the first call evaluates only the rest.",
        "",
        "## Per call",
        "",
    ]
    for r in res["results"]:
        for a in r["answers"]:
            rows = [
                (
                    i + 1,
                    c["prompt_tokens"],
                    c["cached_tokens"],
                    c["evaluated"],
                    c["line_start_tokens"],
                    c["completion_tokens"],
                    c["finish_reason"],
                    f"{c['seconds']:.2f}",
                    json.dumps(c["text"]),
                )
                for i, c in enumerate(a["calls"])
            ]
            out += [
                f"### {r['engine']}: {a['liked']}",
                "",
                table(
                    (
                        "call",
                        "prompt",
                        "cached",
                        "evaluated",
                        "line start",
                        "generated",
                        "finish",
                        "s",
                        "text",
                    ),
                    rows,
                ),
                "",
            ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, write JSON and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="ctransformers,llama_cpp")
    parser.add_argument("--render-only", action="store_true", help="re-render the Markdown")
    args = parser.parse_args(argv)
    if args.render_only:
        OUT_MD.write_text(render(json.loads(OUT_JSON.read_text())))
        return 0
    engines = [e for e in args.engines.split(",") if e]
    if "llama_cpp" in engines and importlib.util.find_spec("llama_cpp") is None:
        print("llama-cpp-python not installed: skipping llama_cpp", file=sys.stderr)
        engines.remove("llama_cpp")
    res: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "cpu_flags": cpu_flags(),
        "load_start": loadavg(),
    }
    log_dir = Path(tempfile.mkdtemp(prefix="prefill_bench_"))
    res["results"] = [run_engine(e, log_dir) for e in engines]
    res["load_end"] = loadavg()
    print(f"CPU {res['machine']['cpu']}; flags {res['cpu_flags']}; load {res['load_start']}")
    print(table(HEADERS, summary_rows(res["results"])))
    OUT_JSON.write_text(json.dumps(res, indent=1) + "\n")
    OUT_MD.write_text(render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
