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
    # The edge's own account of each answer (timings_ms): total, and the part in the model tier.
    inside: dict[str, list[tuple[float, float]]] = {}
    for s in rec:
        key = s.extra.get("outcome") or ("failed" if not s.ok else "?")
        if key == "degraded":
            key = f"degraded ({s.extra.get('reason') or '?'})"
        outcomes.setdefault(key, []).append(s.ms)
        edge_ms, model_ms = s.extra.get("edge_ms"), s.extra.get("model_ms")
        if isinstance(edge_ms, int | float):
            inside.setdefault(key, []).append((float(edge_ms), float(model_ms or 0.0)))

    def p50(values: list[float]) -> str:
        return f"{percentile(values, 50):.0f}" if values else "-"

    head = (
        "outcome",
        "requests",
        "p50 ms",
        "p95 ms",
        "max ms",
        "edge p50 ms",
        "model tier p50 ms",
        "model tier max ms",
    )
    body = [
        (
            k,
            str(len(v)),
            f"{percentile(v, 50):.0f}",
            f"{percentile(v, 95):.0f}",
            f"{max(v):.0f}",
            p50([e for e, _ in inside.get(k, [])]),
            p50([m for _, m in inside.get(k, [])]),
            f"{max((m for _, m in inside.get(k, [])), default=0):.0f}" if k in inside else "-",
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
        "Recommend-with-model outcomes beyond capacity (edge and model tier: the edge's own "
        "`timings_ms.total` and `llm_total`; the rest of the client's time is the network and "
        "waiting to be served):\n\n" + markdown_table(head, body) + f"\n\n- {line}\n"
    )
    session.facts["overload"] = {
        "outcomes": {k: len(v) for k, v in outcomes.items()},
        "edge_counters": deltas,
        "model_queue": MODEL_QUEUE,
    }
    session.chart(
        r, f"overload: {users} recommend-with-model users, model queue {MODEL_QUEUE} per server"
    )
