"""Guided per-pick reasons, end to end: picks on screen, model reasons, the gate, prompt tokens.

`python -m benchmarks.reasons_bench` starts a real model server (SmolLM2; ctransformers, then
llama_cpp with MOVIEMIND_MODEL_ENGINE=llama_cpp) and a real edge on the sample index, once per
reason style (guided choice, then free text), and sends the fixed request set of
benchmarks/reason_requests.py (streamed, debug on) one at a time:

* time to picks on screen: the `candidates` event (SSE, client clock);
* time to the first model reason (`reason` event) and to all reasons (`recommendations`);
* share of model reasons that pass the gate, and why the rest were rejected (edge /metrics,
  `moviemind_edge_reasons_total{verdict}`, read before and after each request);
* prompt tokens evaluated per request (model server /metrics: prompt tokens minus those taken
  from the KV cache), against the 146 uncached of the single-call prompt;
* maximum request time.

It writes docs/benchmarks/reasons.json and docs/benchmarks/reasons.md, and with `--samples FILE`
every pick's raw line, gate verdict and shown reason (the corpus of tests/data comes from it).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.edge_bench import loadavg, machine, pct, table
from benchmarks.reason_requests import REQUESTS
from devstack.machine import cpu_model_and_flags

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "docs" / "benchmarks" / "reasons.json"
OUT_MD = ROOT / "docs" / "benchmarks" / "reasons.md"
K = 5
BASELINE_UNCACHED = 146  # prompt tokens the single-call answer evaluated per request before
PICKS_P50_TARGET_MS = 100.0
MAX_REQUEST_TARGET_S = 10.0


def metric_values(text: str, name: str) -> dict[str, float]:
    """{label set or "": value} of one Prometheus metric family in exposition text."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name):
            m = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
            if m:
                out[m.group(1) or ""] = float(m.group(2))
    return out


def model_tokens(client: httpx.Client, url: str) -> tuple[float, float]:
    text = client.get(url + "/metrics").text
    total = sum(metric_values(text, "moviemind_model_prompt_tokens_total").values())
    cached = sum(metric_values(text, "moviemind_model_prompt_tokens_cached_total").values())
    return total, cached


def verdicts(client: httpx.Client, url: str) -> tuple[Counter, Counter]:
    """Counts by verdict of the edge's two reason counters, from one /metrics read:
    `moviemind_edge_reasons_total` (one per pick, its outcome) and
    `moviemind_edge_reason_attempts_total` (one per sentence the gate judged)."""
    text = client.get(url + "/metrics").text
    out: tuple[Counter, Counter] = (Counter(), Counter())
    for counts, metric in zip(out, ("reasons", "reason_attempts"), strict=True):
        for labels, v in metric_values(text, f"moviemind_edge_{metric}_total").items():
            counts[labels.split('"')[1]] += v
    return out


def one_request(client: httpx.Client, edge: str, liked: list[str], query: str) -> dict[str, Any]:
    """Send one streamed request; times (ms, client clock) of the events that matter."""
    body = {"liked": liked, "query": query, "k": K, "stream": True, "debug": True}
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    final: dict[str, Any] = {}
    event = None
    with client.stream("POST", edge + "/v1/recommend", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                marks.setdefault(event, (time.perf_counter() - t0) * 1000)
            elif line.startswith("data: ") and event == "recommendations":
                final = json.loads(line[6:])
    marks["end"] = (time.perf_counter() - t0) * 1000
    return {"marks": marks, "final": final}


def run_engine(
    engine: str,
    log_dir: Path,
    samples: list[dict],
    requests: list[tuple[list[str], str]],
    index: str,
    style: str = "choice",
) -> dict[str, Any]:
    from tests.support.servers import start_edge, start_model_server

    # One thread: on a shared 2-core machine two ggml threads spin-wait on each other (measured
    # 20-30x slower decode under load); the edge and the client need the other core anyway.
    env = {"MOVIEMIND_MODEL_THREADS": "1"}
    if engine != "ctransformers":
        env["MOVIEMIND_MODEL_ENGINE"] = engine
    model = start_model_server(log_dir, **env)
    edge = start_edge(
        log_dir,
        [model.url],
        index=index,
        MOVIEMIND_EDGE_PRIME_PREFIX="true",
        MOVIEMIND_EDGE_REASON_STYLE=style,
    )
    label = f"{engine} / {style}"
    rows = []
    try:
        client = httpx.Client(timeout=120, trust_env=False)
        one_request(client, edge.url, ["Heat"], "")  # warm-up: first embedding, prefix cache
        for liked, query in requests:
            (v0, a0), (p0, c0) = verdicts(client, edge.url), model_tokens(client, model.url)
            res = one_request(client, edge.url, liked, query)
            (v1, a1), (p1, c1) = verdicts(client, edge.url), model_tokens(client, model.url)
            final = res["final"]
            recs = final.get("recommendations", [])
            got = v1 - v0
            rows.append(
                {
                    "liked": liked,
                    "query": query,
                    "picks_ms": res["marks"].get("candidates"),
                    "first_reason_ms": res["marks"].get("reason"),
                    "all_reasons_ms": res["marks"].get("recommendations"),
                    "total_ms": res["marks"]["end"],
                    "verdicts": dict(got),
                    "attempts": dict(a1 - a0),
                    "model_reasons": sum(r["reason_source"] == "model" for r in recs),
                    "prompt_tokens": p1 - p0,
                    "evaluated_tokens": (p1 - p0) - (c1 - c0),
                    "degraded": final.get("degraded"),
                }
            )
            for i, r in enumerate(recs):
                samples.append(
                    {
                        "engine": label,
                        "liked": liked,
                        "query": query,
                        "rank": i + 1,
                        "id": r["id"],
                        "title": r["title"],
                        "reason": r["reason"],
                        "source": r["reason_source"],
                        "attempts": _raw_lines(final.get("raw_model_text") or "", i + 1),
                    }
                )
            print(
                f"{label:22s} {', '.join(liked) or '-':40.40s} picks {rows[-1]['picks_ms']:7.1f} ms"
                f"  all {rows[-1]['all_reasons_ms'] / 1000:5.2f} s  shown {rows[-1]['model_reasons']}"
                f"  eval {rows[-1]['evaluated_tokens']:.0f} tok",
                flush=True,
            )
    finally:
        edge.stop()
        model.stop()
    return summarise(label, rows)


def _raw_lines(raw: str, rank: int) -> list[str]:
    """The sentences the model finished for pick `rank`, in the order they were tried."""
    return [line[len(f"{rank}. ") :] for line in raw.splitlines() if line.startswith(f"{rank}. ")]


def summarise(engine: str, rows: list[dict]) -> dict[str, Any]:
    verdict_total: Counter = Counter()
    attempt_total: Counter = Counter()
    for r in rows:
        verdict_total.update(r["verdicts"])
        attempt_total.update(r.get("attempts", {}))
    tried = sum(attempt_total.values())
    written = sum(v for k, v in verdict_total.items() if k != "timeout")
    first = [r["first_reason_ms"] for r in rows if r["first_reason_ms"] is not None]
    return {
        "engine": engine,
        "requests": len(rows),
        "picks_ms_p50": pct([r["picks_ms"] for r in rows], 50),
        "picks_ms_p95": pct([r["picks_ms"] for r in rows], 95),
        "first_reason_ms_p50": pct(first, 50),
        "requests_with_a_model_reason": len(first),
        "all_reasons_ms_p50": pct([r["all_reasons_ms"] for r in rows], 50),
        "all_reasons_ms_p95": pct([r["all_reasons_ms"] for r in rows], 95),
        "max_request_s": max(r["total_ms"] for r in rows) / 1000,
        "reasons_written": written,
        "reasons_shown": verdict_total.get("shown", 0),
        "pass_rate": verdict_total.get("shown", 0) / written if written else float("nan"),
        "rejections": dict(verdict_total.most_common()),
        "sentences_judged": tried,
        "sentences_passed": attempt_total.get("shown", 0),
        "sentence_pass_rate": attempt_total.get("shown", 0) / tried if tried else float("nan"),
        "sentence_rejections": dict(attempt_total.most_common()),
        "evaluated_tokens_p50": pct([r["evaluated_tokens"] for r in rows], 50),
        "evaluated_tokens_mean": sum(r["evaluated_tokens"] for r in rows) / len(rows),
        "prompt_tokens_p50": pct([r["prompt_tokens"] for r in rows], 50),
        "degraded": sum(bool(r["degraded"]) for r in rows),
        "rows": rows,
    }


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    flags = ", ".join(f for f, on in report["cpu_flags"].items() if on) or "none"
    lines = [
        "# Guided reasons: picks on screen, model reasons, the gate",
        "",
        f"Run {report['when']} with `python -m benchmarks.reasons_bench`; {m['cpu']}, "
        f"{m['cores']} cores (flags: {flags}); load average before {report['load_before']}, "
        f"after {report['load_after']}. {report['requests']} fixed requests "
        "(benchmarks/reason_requests.py), k=5, streamed, one at a time, model server with "
        "1 thread, SmolLM2-135M-Instruct Q4_1. The machine is shared: absolute times move "
        "with the load.",
        "",
        table(
            [
                "engine",
                "picks on screen p50 / p95 (ms)",
                "first shown model reason p50 (ms; requests with one)",
                "all reasons p50 / p95 (s)",
                "max request (s)",
                "picks with a model reason",
                "model sentences passing the gate",
                "prompt tokens evaluated / request (p50)",
            ],
            [
                [
                    e["engine"],
                    f"{e['picks_ms_p50']:.1f} / {e['picks_ms_p95']:.1f}",
                    f"{e['first_reason_ms_p50']:.0f} (n={e['requests_with_a_model_reason']})",
                    f"{e['all_reasons_ms_p50'] / 1000:.2f} / {e['all_reasons_ms_p95'] / 1000:.2f}",
                    f"{e['max_request_s']:.2f}",
                    f"{e['reasons_shown']:.0f} of {e['reasons_written']:.0f} "
                    f"({100 * e['pass_rate']:.0f}%)",
                    f"{e.get('sentences_passed', 0):.0f} of {e.get('sentences_judged', 0):.0f} "
                    f"({100 * e.get('sentence_pass_rate', float('nan')):.0f}%)",
                    f"{e['evaluated_tokens_p50']:.0f} (of {e['prompt_tokens_p50']:.0f} sent)",
                ]
                for e in report["engines"]
            ],
        ),
        "",
        f"Targets: picks on screen <= {PICKS_P50_TARGET_MS:.0f} ms p50; no request over "
        f"{MAX_REQUEST_TARGET_S:.0f} s; >= 70% of SmolLM2's reasons pass the gate. Before this "
        f"change one uncached call evaluated {BASELINE_UNCACHED} prompt tokens per request.",
        "",
        "## Why the gate rejected sentences",
        "",
        "Every sentence the model finished, by the gate's verdict (under guided choice a pick "
        "takes one sentence, and a second only when the gate rejects the first; as free text "
        "up to three):",
        "",
        _verdict_table(report, "sentence_rejections"),
        "",
        "Each pick's outcome: `shown` (it got a model reason), else the rule that rejected its "
        "last sentence:",
        "",
        _verdict_table(report, "rejections"),
        "",
        "Two styles (MOVIEMIND_EDGE_REASON_STYLE), each on both engines. `choice` (the "
        'default): the edge begins each pick\'s sentence ("<Title> is") and the model ends it '
        "with one of the sentences the catalog backs (guided_choice; edge/reason_choices.py), "
        "one call per pick, and once more (without the rejected sentence and those too like "
        'reasons already shown) if the gate rejects it. `free`: the edge begins it ("<Title> is a"; then "Watch <Title> '
        'for its", then "<Title> offers"), the model ends it in its own words (stop at the '
        "sentence's end), steered by logit_bias away from genre words the pick lacks, the "
        "user's voice and markup; a rejected sentence is tried again from the next opening "
        "while the pick's MOVIEMIND_EDGE_REASON_TOKENS last. The gate judges every sentence "
        "in both styles. "
        "`truncated`: no sentence end within the tokens left. Prompt tokens evaluated = prompt "
        "tokens minus those the model server took from its KV cache, summed over a request's "
        "calls.",
        "",
        "In the first table `shown` passed the gate; `timeout` counts picks left when the "
        "reasons budget "
        "(MOVIEMIND_EDGE_REASONS_TIMEOUT_S) ran out; every other column is a gate rule "
        "(edge/reason_gate.py).",
        "",
    ]
    return "\n".join(lines)


def _verdict_table(report: dict[str, Any], key: str) -> str:
    names = sorted({k for e in report["engines"] for k in e.get(key, {})})
    return table(
        ["engine", *names],
        [
            [e["engine"]] + [f"{e.get(key, {}).get(k, 0):.0f}" for k in names]
            for e in report["engines"]
        ],
    )


def rerender() -> None:
    """Write docs/benchmarks/reasons.md again from reasons.json (after a change to `render`)."""
    OUT_MD.write_text(render(json.loads(OUT_JSON.read_text())))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="ctransformers,llama_cpp")
    ap.add_argument(
        "--styles",
        default="choice,free",
        help="MOVIEMIND_EDGE_REASON_STYLE values to compare (guided choice, free text)",
    )
    ap.add_argument("--samples", type=Path, help="write every pick's reason here (JSONL)")
    ap.add_argument("--index", default="var/index", help="bundle directory the edge serves")
    ap.add_argument("--limit", type=int, default=len(REQUESTS), help="first N requests only")
    ap.add_argument("--logs", type=Path, default=Path("/tmp/moviemind-reasons-bench"))
    args = ap.parse_args()
    load_before = loadavg()
    samples: list[dict] = []
    requests = REQUESTS[: args.limit]
    engines = [
        run_engine(e, args.logs, samples, requests, args.index, style)
        for e in args.engines.split(",")
        if e
        for style in args.styles.split(",")
        if style
    ]
    report = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "cpu_flags": cpu_model_and_flags()[1],
        "load_before": load_before,
        "load_after": loadavg(),
        "requests": len(requests),
        "engines": engines,
    }
    OUT_JSON.write_text(json.dumps(report, indent=1))
    OUT_MD.write_text(render(report))
    if args.samples:
        args.samples.write_text("".join(json.dumps(s) + "\n" for s in samples))
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
