"""Phase `steady`: the objective run, a mixed load of searching, title typing and recommending."""

from __future__ import annotations

import contextlib

import httpx

from devstack.machine import cpu_seconds, rss_mb
from loadtests.edge_metrics import parse_metrics
from loadtests.objectives import PhaseResult
from loadtests.report import Sample, markdown_table, plain_table, summarize
from loadtests.session import LocustResult, Session, log


def mix_for(users: int) -> dict[str, int]:
    """Users per class for `users` in total, by weight (search 10, title 6, recommend 3, stream 1)."""
    weights = {"search": 10, "title": 6, "recommend": 3, "stream": 1}
    total = sum(weights.values())
    exact = {k: users * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[
        : users - sum(counts.values())
    ]:
        counts[k] += 1
    # Small runs still exercise every kind that fits, taking from search first.
    for k in ("title", "stream", "recommend"):
        if counts[k] == 0 and counts["search"] > 1:
            counts[k], counts["search"] = 1, counts["search"] - 1
    return {k: v for k, v in counts.items() if v}


def run(session: Session, users: int, duration_s: float) -> None:
    """Mixed load of `users` users for `duration_s`: latency tables, processes, a chart."""
    before = _resources(session)
    r = session.locust("steady", mix_for(users), duration_s)
    after = _resources(session)
    rows = summarize(r.samples, r.ended - r.started)
    session.phases["steady"] = PhaseResult("steady", r.samples)
    session.table(f"steady: {users} users, {duration_s:.0f} s", rows)
    _recommend_breakdown(session, r.samples, "steady")
    _resource_report(session, before, after, r)
    session.chart(r, f"steady load, {users} users")


def _resources(session: Session) -> dict[str, dict[str, float]]:
    """CPU seconds and RSS of every local process, plus each model server's own counters."""
    out: dict[str, dict[str, float]] = {}
    if session.stack is None:
        return out
    procs = {
        "edge": session.stack.edge,
        **{f"model {k}": v for k, v in session.stack.models.items()},
    }
    for name, proc in procs.items():
        if proc is None or not proc.running:
            continue
        entry = {"cpu_s": cpu_seconds(proc.pid), "rss_mb": rss_mb(proc.pid)}
        if name.startswith("model"):
            with contextlib.suppress(httpx.HTTPError):
                text = httpx.get(proc.url + "/metrics", timeout=5, trust_env=False).text
                entry.update(
                    {
                        k: v
                        for k, v in parse_metrics(text).items()
                        if k.startswith("moviemind_model_")
                    }
                )
        out[name] = entry
    return out


def _resource_report(session: Session, before: dict, after: dict, r: LocustResult) -> None:
    if not after:
        return
    seconds = r.ended - r.started
    http = sum(1 for s in r.samples if s.is_http)
    head = ("process", "CPU s", "CPU % of a core", "RSS MB", "notes")
    body = []
    for name, a in after.items():
        b = before.get(name, {})
        cpu = a["cpu_s"] - b.get("cpu_s", 0.0)
        note = ""
        if name == "edge" and http:
            note = f"{1000 * cpu / http:.2f} ms CPU per request of this mix"
        elif name.startswith("model"):

            def d(key: str, a: dict = a, b: dict = b) -> float:
                return a.get(key, 0.0) - b.get(key, 0.0)

            n_tps = d("moviemind_model_decode_tokens_per_second_count")
            n_ttft = d("moviemind_model_time_to_first_token_seconds_count")
            parts = [f"{d('moviemind_model_requests_total:all'):.0f} generations"]
            if n_tps:
                parts.append(
                    f"decode {d('moviemind_model_decode_tokens_per_second_sum') / n_tps:.0f} tokens/s"
                )
            if n_ttft:
                parts.append(
                    f"first token {d('moviemind_model_time_to_first_token_seconds_sum') / n_ttft:.1f} s avg"
                )
            parts.append(
                f"{d('moviemind_model_prompt_tokens_total'):.0f} prompt tokens ({d('moviemind_model_prompt_tokens_cached_total'):.0f} cached), "
                f"{d('moviemind_model_completion_tokens_total'):.0f} generated"
            )
            note = ", ".join(parts)
        body.append((name, f"{cpu:.1f}", f"{100 * cpu / seconds:.0f}", f"{a['rss_mb']:.0f}", note))
    log(plain_table(head, body))
    session.sections.append("Processes during the phase:\n\n" + markdown_table(head, body) + "\n")
    session.facts["steady_processes"] = {
        row[0]: dict(zip(head[1:], row[1:], strict=True)) for row in body
    }


def _recommend_breakdown(session: Session, samples: list[Sample], phase: str) -> None:
    streams = [s for s in samples if s.name == "recommend total"]
    if not streams:
        return
    reasons: dict[str, int] = {}
    for s in streams:
        key = s.extra.get("reason") or (
            "model answer" if not s.extra.get("degraded") else "degraded"
        )
        reasons[key] = reasons.get(key, 0) + 1
    text = ", ".join(f"{n} {k}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    log(f"    streamed recommends ({phase}): {text}")
    session.sections.append(f"Streamed recommends in {phase}: {text}.\n")
    session.facts[f"{phase}_stream_outcomes"] = reasons
