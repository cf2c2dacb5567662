"""Phase `overload`: more recommend-with-model users than the model servers can take."""

from __future__ import annotations

from devstack.stats import percentile
from loadtests.edge_metrics import parse_metrics
from loadtests.objectives import PhaseResult
from loadtests.report import markdown_table, plain_table, summarize
from loadtests.session import MODEL_QUEUE, Session, log


def run(session: Session, duration_s: float = 30, users: int = 12) -> None:
    """`users` recommend-with-model users against the model servers' capacity."""
    assert session.stack is not None
    before = parse_metrics(session.stack.metrics_text())
    mix = {"overload": users, "search": 2}
    r = session.locust("overload", mix, duration_s, progress_entry="/v1/recommend (model)")
    after = parse_metrics(session.stack.metrics_text())
    session.phases["overload"] = PhaseResult("overload", r.samples)
    session.table(
        f"overload: {users} recommend-with-model users (one request every 0.5-1 s each)",
        summarize(r.samples, r.ended - r.started),
    )
    rec = [s for s in r.samples if s.name == "/v1/recommend (model)"]
    outcomes: dict[str, list[float]] = {}
    for s in rec:
        key = s.extra.get("outcome") or ("failed" if not s.ok else "?")
        if key == "degraded":
            key = f"degraded ({s.extra.get('reason') or '?'})"
        outcomes.setdefault(key, []).append(s.ms)
    head = ("outcome", "requests", "p50 ms", "p95 ms", "max ms")
    body = [
        (
            k,
            str(len(v)),
            f"{percentile(v, 50):.0f}",
            f"{percentile(v, 95):.0f}",
            f"{max(v):.0f}",
        )
        for k, v in sorted(outcomes.items(), key=lambda kv: -len(kv[1]))
    ]
    deltas = session.counters(before, after, ("upstream_failures", "degraded", "breaker_opens"))
    log(plain_table(head, body))
    line = "edge counters during the phase: " + (
        ", ".join(f"{k} +{v:g}" for k, v in deltas.items()) or "none"
    )
    log("    " + line)
    session.sections.append(
        "Recommend-with-model outcomes beyond capacity:\n\n"
        + markdown_table(head, body)
        + f"\n\n- {line}\n"
    )
    session.facts["overload"] = {
        "outcomes": {k: len(v) for k, v in outcomes.items()},
        "edge_counters": deltas,
        "model_queue": MODEL_QUEUE,
    }
    session.chart(
        r, f"overload: {users} recommend-with-model users, model queue {MODEL_QUEUE} per server"
    )
