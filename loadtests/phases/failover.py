"""Phase `failover`: the near model server is killed under load and restarted; the far one serves
meanwhile, and the edge must go back to the near one."""

from __future__ import annotations

import contextlib
import time

import httpx

from devstack.stats import percentile
from loadtests.edge_metrics import parse_metrics
from loadtests.objectives import PhaseResult
from loadtests.report import markdown_table, plain_table, summarize, window
from loadtests.session import (
    BREAKER_COOLDOWN_S,
    FAR_DELAY_S,
    NEAR_DELAY_S,
    Session,
    chart_markers,
    log,
)


def run(
    session: Session, duration_s: float = 75, kill_at: float = 20, restart_at: float = 40
) -> None:
    """Kill the near model server at `kill_at` s, restart it at `restart_at` s, under load."""
    assert session.stack is not None
    stack = session.stack
    marks: dict[str, float] = {}
    before = parse_metrics(stack.metrics_text())

    def tick(elapsed: float) -> None:
        if "kill" not in marks and elapsed >= kill_at:
            marks["kill"] = time.time()
            stack.kill_model("near")
            log(f"    {elapsed:5.0f} s  killed the near model server (SIGKILL)")
        elif "kill" in marks and "restart" not in marks and elapsed >= restart_at:
            marks["restart"] = time.time()
            stack.restart_model("near")
            log(f"    {elapsed:5.0f} s  restarting the near model server")
        elif "restart" in marks and "near_ready" not in marks:
            try:
                ok = (
                    httpx.get(
                        stack.models["near"].url + "/readyz", timeout=1, trust_env=False
                    ).status_code
                    == 200
                )
            except httpx.HTTPError:
                ok = False
            if ok:
                marks["near_ready"] = time.time()
                log(f"    {elapsed:5.0f} s  near model server ready again")

    mix = {"search": 4, "title": 2, "recommend": 2, "stream": 2}
    r = session.locust("failover", mix, duration_s, tick=tick, progress_entry="recommend ttft")
    after = parse_metrics(stack.metrics_text())
    status = stack.readyz().get("upstreams", [])
    near, far = stack.proxies["near"], stack.proxies["far"]
    chat = "POST /v1/chat/completions"
    t_kill = marks.get("kill", r.ended)
    t_ready = marks.get("near_ready")
    near_reqs = [
        e.t for e in near.events("request") if e.detail.startswith(chat) and e.t >= r.started
    ]
    far_reqs = [
        e.t for e in far.events("request") if e.detail.startswith(chat) and e.t >= r.started
    ]
    back = [t for t in near_reqs if t_ready is not None and t >= t_ready]
    t_back = back[0] if back else None
    near_state = status[0]["state"] if status else "?"
    # The restarted process has fresh counters: any token it generated went to the edge.
    near_tokens = 0.0
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(stack.models["near"].url + "/metrics", timeout=5, trust_env=False).text
        near_tokens = parse_metrics(text).get("moviemind_model_completion_tokens_total", 0.0)
    returned = bool(back) and near_tokens > 0

    def stats(t0: float, t1: float) -> dict[str, object]:
        part = window(r.samples, t0, t1)
        out: dict[str, object] = {"seconds": round(t1 - t0, 1)}
        for name in ("recommend ttft", "recommend total"):
            ms = [s.ms for s in part if s.name == name]
            out[name] = {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95)}
        totals = [s for s in part if s.name == "recommend total"]
        out["degraded"] = sum(1 for s in totals if s.extra.get("degraded"))
        out["near_model_requests"] = sum(1 for t in near_reqs if t0 <= t < t1)
        out["far_model_requests"] = sum(1 for t in far_reqs if t0 <= t < t1)
        out["failed"] = sum(1 for s in part if not s.ok)
        return out

    windows = {
        "before (near up)": stats(r.started, t_kill),
        "outage (near down)": stats(t_kill, t_back or r.ended),
    }
    if t_back is not None:
        windows["after (back on near)"] = stats(t_back, r.ended + 1)
    session.phases["failover"] = PhaseResult(
        "failover", r.samples, flags={"returned_to_near": returned}
    )
    rows = summarize(r.samples, r.ended - r.started)
    session.table("failover: near region killed and restarted under load", rows)

    def ms(v) -> str:
        return "-" if v is None else f"{v:.0f}"

    head = (
        "window",
        "s",
        "ttft n",
        "ttft p50",
        "ttft p95",
        "total p50",
        "total p95",
        "degraded",
        "model req near",
        "model req far",
        "failed",
    )
    body = []
    for label, w in windows.items():
        tt, tot = w["recommend ttft"], w["recommend total"]
        body.append(
            (
                label,
                f"{w['seconds']:.0f}",
                str(tt["n"]),
                ms(tt["p50"]),
                ms(tt["p95"]),
                ms(tot["p50"]),
                ms(tot["p95"]),
                str(w["degraded"]),
                str(w["near_model_requests"]),
                str(w["far_model_requests"]),
                str(w["failed"]),
            )
        )
    before_w, outage_w = windows["before (near up)"], windows["outage (near down)"]
    added_ttft = added_total = None
    if (
        before_w["recommend ttft"]["p50"] is not None
        and outage_w["recommend ttft"]["p50"] is not None
    ):
        added_ttft = outage_w["recommend ttft"]["p50"] - before_w["recommend ttft"]["p50"]
    if (
        before_w["recommend total"]["p50"] is not None
        and outage_w["recommend total"]["p50"] is not None
    ):
        added_total = outage_w["recommend total"]["p50"] - before_w["recommend total"]["p50"]
    recovery = None if (t_back is None or t_ready is None) else t_back - t_ready
    deltas = session.counters(
        before, after, ("failovers", "breaker_opens", "upstream_failures", "degraded")
    )
    ready_text = f"{t_ready - marks['restart']:.1f} s after the restart" if t_ready else "never"
    back_text = f"{recovery:.1f} s after that" if recovery is not None else "never"
    lines = [
        "recommend latency added during failover (median, outage minus before): "
        f"time to first token {ms(added_ttft)} ms, total {ms(added_total)} ms",
        f"near model server ready again {ready_text}; first model request through near {back_text} "
        f"(breaker cooldown {BREAKER_COOLDOWN_S:g} s); the restarted near model server generated {near_tokens:.0f} tokens; "
        f"near breaker at the end: {near_state}",
        "edge counters during the phase: "
        + (", ".join(f"{k} +{v:g}" for k, v in deltas.items()) or "none"),
    ]
    log(plain_table(head, body))
    for line in lines:
        log("    " + line)
    session.sections.append(
        "Failover windows (recommend with a streamed answer; latencies in ms):\n\n"
        + markdown_table(head, body)
        + "\n\n"
        + "\n".join(f"- {x}" for x in lines)
        + "\n"
    )
    session.facts["failover"] = {
        "windows": windows,
        "added_ttft_ms_p50": added_ttft,
        "added_total_ms_p50": added_total,
        "recovery_s": recovery,
        "near_state_end": near_state,
        "near_tokens_after_restart": near_tokens,
        "edge_counters": deltas,
        "delays_one_way_ms": {"near": NEAR_DELAY_S * 1000, "far": FAR_DELAY_S * 1000},
    }
    markers = chart_markers(
        marks, {"kill": "near killed", "restart": "near restarted", "near_ready": "near ready"}
    )
    if t_back:
        markers.append((t_back, "back on near"))
    session.chart(
        r,
        "failover: near model server killed and restarted",
        markers=markers,
        series={"model requests via near": near_reqs, "model requests via far": far_reqs},
    )
