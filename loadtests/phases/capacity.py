"""Phase `capacity` (--capacity): /v1/search users stepped up until p95 crosses the objective,
with the edge's CPU per request split into embedding, search and the rest."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import httpx

from devstack.machine import cpu_seconds, schedstat
from devstack.stats import percentile
from loadtests.edge_metrics import parse_metrics
from loadtests.objectives import PhaseResult
from loadtests.report import Sample, markdown_table, plain_table, window
from loadtests.session import Session, log

CAPACITY_STEPS = (5, 10, 20, 30, 40, 60, 80, 100, 130, 160, 200)
CAPACITY_SETTLE_S = 3.0


@dataclass(frozen=True)
class CpuPoint:
    """The edge process at one moment: CPU time, main-thread schedstat, its /metrics."""

    t: float
    cpu_s: float
    run_s: float
    wait_s: float
    metrics: dict[str, float]


def capacity_row(users: int, part: list[Sample], a: CpuPoint, b: CpuPoint, seconds: float) -> dict:
    """One capacity step: latency from the samples, CPU per request split by the edge's metrics."""

    def d(key: str) -> float:
        return b.metrics.get(key, 0.0) - a.metrics.get(key, 0.0)

    n = max(1.0, d("moviemind_edge_requests_total:all"))
    n_search = max(1.0, d("moviemind_edge_search_seconds_count"))
    # The edge times embedding and search by the wall clock; on a shared machine part of that
    # is waiting for a CPU. Scale by the share of runnable time its loop thread was on a CPU.
    on_cpu = (b.run_s - a.run_s) / max(1e-9, (b.run_s - a.run_s) + (b.wait_s - a.wait_s))
    embed = on_cpu * d("moviemind_edge_embed_seconds_sum") / n_search
    search = on_cpu * d("moviemind_edge_search_seconds_sum") / n_search
    cpu = (b.cpu_s - a.cpu_s) / n
    ms = [s.ms for s in part]
    return {
        "users": users,
        "rps": len(part) / seconds,
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "edge_cpu_pct": 100 * (b.cpu_s - a.cpu_s) / max(1e-9, b.t - a.t),
        "cpu_ms_per_req": 1000 * cpu,
        "embed_ms": 1000 * embed,
        "search_ms": 1000 * search,
        "http_ms": 1000 * max(0.0, cpu - embed - search),
        "rps_per_core": (1 / cpu) if cpu > 0 else 0.0,
        "on_cpu_share": on_cpu,
        "failed": sum(1 for s in part if not s.ok),
    }


def _cell(v: object) -> str:
    if not isinstance(v, float):
        return str(v)
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def run(session: Session, steps: tuple[int, ...], step_s: float, stop_ms: float) -> None:
    """Step /v1/search users through `steps` until p95 crosses `stop_ms`."""
    assert session.stack is not None and session.stack.edge is not None
    stack, pid = session.stack, session.stack.edge.pid
    timeline: list[CpuPoint] = []
    last = [0.0]

    def tick(_elapsed: float) -> None:
        now = time.time()
        if now - last[0] >= 1.0:
            last[0] = now
            with contextlib.suppress(OSError, httpx.HTTPError):
                metrics = parse_metrics(stack.metrics_text())
                timeline.append(CpuPoint(now, cpu_seconds(pid), *schedstat(pid), metrics))

    env = {
        "MOVIEMIND_LOADTEST_STEPS": ",".join(str(s) for s in steps),
        "MOVIEMIND_LOADTEST_STEP_S": str(step_s),
        "MOVIEMIND_LOADTEST_STOP_P95_MS": str(stop_ms),
    }
    mix = {"search": max(steps)}
    r = session.locust("capacity", mix, step_s * len(steps), tick=tick, env=env, shape=True)
    tick(0)
    session.phases["capacity"] = PhaseResult("capacity", r.samples)
    marks = sorted((m for m in r.markers if m.get("event") == "step"), key=lambda m: m["t"])
    rows = []
    for i, m in enumerate(marks):
        t0 = m["t"] + CAPACITY_SETTLE_S
        t1 = marks[i + 1]["t"] if i + 1 < len(marks) else r.ended
        part = [s for s in window(r.samples, t0, t1) if s.name == "/v1/search"]
        points = [p for p in timeline if t0 <= p.t <= t1]
        if len(part) >= 10 and len(points) >= 2:
            rows.append(capacity_row(m["users"], part, points[0], points[-1], t1 - t0))
    cols = {
        "users": "users", "rps": "req/s", "p50": "p50 ms", "p95": "p95 ms", "p99": "p99 ms",
        "edge_cpu_pct": "edge CPU %", "cpu_ms_per_req": "CPU ms/req", "embed_ms": "embed ms",
        "search_ms": "search ms", "http_ms": "HTTP+rest ms", "rps_per_core": "req/s per core",
        "on_cpu_share": "on-CPU share",
    }  # fmt: skip
    body = [tuple(_cell(row[k]) for k in cols) for row in rows]
    under = [x for x in rows if x["p95"] <= stop_ms]
    best = max(under, key=lambda x: x["rps"]) if under else None
    table = plain_table(tuple(cols.values()), body)
    log(f"\ncapacity of /v1/search (one edge process; Locust on the same cores)\n{table}")
    if best:
        summary = (
            f"highest load with p95 <= {stop_ms:g} ms: {best['users']} users, {best['rps']:.0f} req/s "
            f"at {best['edge_cpu_pct']:.0f}% of a core; {best['cpu_ms_per_req']:.2f} ms CPU per request "
            f"(embedding {best['embed_ms']:.2f}, search {best['search_ms']:.2f}, HTTP and the rest "
            f"{best['http_ms']:.2f}) = {best['rps_per_core']:.0f} req/s per fully used core"
        )
    else:
        summary = f"p95 was above {stop_ms:g} ms at every step"
    log("    " + summary)
    session.sections.append(
        "### capacity of /v1/search\n\n"
        + markdown_table(tuple(cols.values()), body)
        + f"\n\n- {summary}\n"
    )
    session.facts["capacity"] = {
        "steps": rows,
        "best": best,
        "stop_p95_ms": stop_ms,
        "step_s": step_s,
    }
    markers = [(m["t"], f"{m['users']} users") for m in marks]
    session.chart(r, "capacity: /v1/search users stepped up", markers=markers)
