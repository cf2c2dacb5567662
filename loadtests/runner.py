"""The load-test runner: local stack, Locust phases, faults, objectives, reports.

Phases (each one headless Locust process, its own CSV/HTML/PNG):
    steady      the objective run: 20 users searching, typing titles, recommending (with and
                without the model); latency and zero-failure objectives
    failover    near and far model servers behind delay proxies; the near one is killed under
                load and restarted; every request must still succeed and the edge must go back
    index_swap  the served index is rebuilt in place and the edge gets SIGHUP, under load
    overload    more recommend-with-model users than the model servers can take
    capacity    (--capacity) /v1/search users stepped up until p95 crosses the objective
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from loadtests.objectives import ObjectiveSet, PhaseResult, Verdict, check, missed
from loadtests.report import (
    Row,
    Sample,
    chart,
    markdown_rows,
    markdown_table,
    percentile,
    plain_table,
    read_samples,
    summarize,
    text_table,
    window,
)
from loadtests.stack import ROOT, LocalStack, cpu_seconds, rss_mb, schedstat
from loadtests.workload import build_workload, save_workload

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
NEAR_DELAY_S = 0.005
FAR_DELAY_S = 0.060
BREAKER_COOLDOWN_S = 2.0
# No waiting room on the model servers: a busy one answers 429 at once and the edge fails over or
# degrades. A queued request would wait a whole answer (several seconds here) plus its own prompt,
# past the edge's 10 s first-token timeout: queue x answer time + prefill must stay below it.
MODEL_QUEUE = 0
CAPACITY_STEPS = (5, 10, 20, 30, 40, 60, 80, 100, 130, 160, 200)
CAPACITY_SETTLE_S = 3.0
DEFAULT_PHASES = ("steady", "failover", "index_swap", "overload")


@dataclass
class Options:
    mode: str  # "default", "quick", "capacity", "host"
    out_dir: Path
    work_dir: Path
    index: Path
    objectives: ObjectiveSet
    host: str | None = None
    api_key: str | None = None
    users: int | None = None
    duration_s: int | None = None
    seed: int = 7
    step_s: float = 15.0
    phases: tuple[str, ...] = DEFAULT_PHASES
    edge_env: dict[str, str] = field(default_factory=dict)


def log(msg: str = "") -> None:
    print(msg, flush=True)


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


# ---- edge metrics -------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, float]:
    """Flatten the edge's Prometheus text into 'name{k=v,...}' -> value (plus per-name sums)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_created") or s.name.endswith("_bucket"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
            out[s.name + ":all"] = out.get(s.name + ":all", 0.0) + s.value
    return out


def metric_delta(
    before: dict[str, float], after: dict[str, float], prefix: str
) -> dict[str, float]:
    """Non-zero changes of every series whose key starts with `prefix` (labelled series only)."""
    keys = {k for k in (*before, *after) if k.startswith(prefix) and not k.endswith(":all")}
    return {
        k: after.get(k, 0.0) - before.get(k, 0.0)
        for k in sorted(keys)
        if after.get(k, 0.0) != before.get(k, 0.0)
    }


# ---- one Locust process ---------------------------------------------------------------------------


@dataclass
class LocustResult:
    name: str
    samples: list[Sample]
    markers: list[dict]
    started: float
    ended: float
    exit_code: int
    files: list[Path] = field(default_factory=list)


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


def _short(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _cell(v: object) -> str:
    if not isinstance(v, float):
        return str(v)
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


class Runner:
    """Runs the phases of one mode and writes the report; `run()` returns the exit code."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.stack: LocalStack | None = None
        self.host = opts.host or ""
        self.api_key = opts.api_key
        self.phases: dict[str, PhaseResult] = {}
        self.sections: list[str] = []  # markdown for summary.md
        self.facts: dict[str, object] = {}
        self._children: list[subprocess.Popen] = []
        self.workload_path = opts.work_dir / "workload.json"
        self.started = time.time()

    # ---- plumbing ------------------------------------------------------------------------

    def _env(self, samples: Path, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEMIND_")}
        env.update(
            {
                "MOVIEMIND_LOADTEST_WORKLOAD": str(self.workload_path),
                "MOVIEMIND_LOADTEST_SAMPLES": str(samples),
                "MOVIEMIND_LOADTEST_SEED": str(self.opts.seed),
                "PYTHONUNBUFFERED": "1",
                **extra,
            }
        )
        if self.api_key:
            env["MOVIEMIND_EDGE_API_KEY"] = self.api_key
        return env

    def locust(
        self,
        name: str,
        mix: dict[str, int],
        duration_s: float,
        *,
        tick: Callable[[float], None] | None = None,
        env: dict[str, str] | None = None,
        shape: bool = False,
        progress_entry: str = "/v1/search",
    ) -> LocustResult:
        """Run one headless Locust process for `duration_s` and collect its samples.

        `tick(elapsed)` is called about every 0.5 s, elapsed counted from the first request, so a
        phase can inject faults at fixed points of its load.
        """
        out = self.opts.out_dir
        samples_path = self.opts.work_dir / f"{name}.samples.jsonl"
        samples_path.unlink(missing_ok=True)
        users = sum(mix.values())
        classes = {
            "search": "SearchUser",
            "title": "TitleUser",
            "recommend": "RecommendUser",
            "stream": "StreamUser",
            "overload": "OverloadUser",
        }
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", self.host, "--csv", str(out / name), "--html", str(out / f"{name}.html"),
            "--only-summary", "--stop-timeout", "15", "--loglevel", "WARNING",
        ]  # fmt: skip
        if not shape:
            cmd += ["-u", str(users), "-r", str(max(users, 1)), "-t", f"{int(duration_s)}s"]
        cmd += [classes[k] for k in mix]
        extra = {
            "MOVIEMIND_LOADTEST_MIX": ",".join(f"{k}={v}" for k, v in mix.items()),
            **(env or {}),
        }
        log_path = self.opts.work_dir / "logs" / f"locust-{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        mix_text = ", ".join(f"{v} {k}" for k, v in mix.items())
        log(
            f"==> phase {name}: {users} users ({mix_text}) for {duration_s:.0f} s against {self.host}"
        )
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self._env(samples_path, extra),
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._children.append(proc)
            started = time.time()
            first: float | None = None
            offset = 0
            seen: list[Sample] = []
            last_print = started
            hard_deadline = started + duration_s + 90  # start-up, stop-timeout, report writing
            try:
                while proc.poll() is None:
                    time.sleep(0.5)
                    new, _markers, offset = read_samples(samples_path, offset)
                    seen.extend(new)
                    if first is None and seen:
                        first = min(s.t for s in seen)
                    now = time.time()
                    if tick is not None and first is not None:
                        tick(now - first)
                    if now - last_print >= 5 and first is not None:
                        last_print = now
                        recent = [s for s in seen if s.t >= now - 5.5]
                        p95 = percentile([s.ms for s in recent if s.name == progress_entry], 95)
                        http = [s for s in seen if s.is_http]
                        log(
                            f"    {now - first:5.0f} s  {len(http):6d} requests  {sum(1 for s in seen if not s.ok):3d} failed  "
                            f"{sum(1 for s in recent if s.is_http) / 5:6.1f} req/s  {progress_entry} p95 "
                            + (f"{p95:6.1f} ms" if p95 is not None else "     - ms")
                            + " (last 5 s)"
                        )
                    if now > hard_deadline:
                        log(
                            f"    locust did not stop by itself after {duration_s + 90:.0f} s; stopping it"
                        )
                        os.killpg(proc.pid, signal.SIGTERM)
                        proc.wait(15)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                self._children.remove(proc)
        samples, markers, _ = read_samples(samples_path, 0)
        if proc.returncode not in (0, 1):  # 1: some request failed, which the objectives judge
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"locust ({name}) exited with {proc.returncode}; its log ends:\n{tail}"
            )
        if not samples:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"locust ({name}) sent no requests; its log ends:\n{tail}")
        ended = max(s.t + s.ms / 1000 for s in samples)
        files = sorted(p for p in out.glob(f"{name}*") if p.suffix in (".csv", ".html"))
        return LocustResult(
            name, samples, markers, min(s.t for s in samples), ended, proc.returncode, files
        )

    def _counters(self, before: dict, after: dict, names: tuple[str, ...]) -> dict[str, float]:
        """Changes of the edge's counters, upstream URLs replaced by region names."""
        out: dict[str, float] = {}
        urls = self.stack.upstream_urls if self.stack else {}
        for name in names:
            for key, value in metric_delta(before, after, f"moviemind_edge_{name}").items():
                key = key.replace("moviemind_edge_", "").replace("_total", "")
                for region, url in urls.items():
                    key = key.replace(url, region)
                out[key] = value
        return out

    def _table(self, title: str, rows: list[Row]) -> None:
        log(f"\n{title}\n{text_table(rows)}\n")
        self.sections.append(f"### {title}\n\n{markdown_rows(rows)}\n")

    def _chart(self, result: LocustResult, title: str, markers=(), series=None) -> None:
        path = chart(
            result.samples,
            self.opts.out_dir / f"{result.name}.png",
            title,
            markers=markers,
            series=series,
            t0=result.started,
        )
        if path is not None:
            self.sections.append(f"![{title}]({path.name})\n")

    def warm_up(self, with_model: bool) -> None:
        """A few requests of each kind before measuring: first embeddings, tokenizer fetch."""
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        log("==> warming up")
        with httpx.Client(base_url=self.host, headers=headers, timeout=30, trust_env=False) as c:
            for q in ("funny heist", "space opera", "quiet family drama"):
                c.get("/v1/search", params={"q": q, "k": 10})
                c.get("/v1/movies", params={"title": q[:4]})
            c.post("/v1/recommend", json={"liked": ["Heat"], "explain": False})
            if with_model:
                try:
                    c.post(
                        "/v1/recommend",
                        json={"liked": ["Heat"], "query": "dark", "k": 3, "explain": True},
                        timeout=60,
                    )
                except httpx.HTTPError as exc:
                    log(f"    warm-up recommend with the model failed: {exc}")

    # ---- phases ----------------------------------------------------------------------------

    def phase_steady(self, users: int, duration_s: float) -> None:
        before = self._resources()
        r = self.locust("steady", mix_for(users), duration_s)
        after = self._resources()
        rows = summarize(r.samples, r.ended - r.started)
        self.phases["steady"] = PhaseResult("steady", r.samples)
        self._table(f"steady: {users} users, {duration_s:.0f} s", rows)
        self._recommend_breakdown(r.samples, "steady")
        self._resource_report(before, after, r)
        self._chart(r, f"steady load, {users} users")

    def _resources(self) -> dict[str, dict[str, float]]:
        """CPU seconds and RSS of every local process, plus each model server's own counters."""
        out: dict[str, dict[str, float]] = {}
        if self.stack is None:
            return out
        procs = {"edge": self.stack.edge, **{f"model {k}": v for k, v in self.stack.models.items()}}
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

    def _resource_report(self, before: dict, after: dict, r: LocustResult) -> None:
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
            body.append(
                (name, f"{cpu:.1f}", f"{100 * cpu / seconds:.0f}", f"{a['rss_mb']:.0f}", note)
            )
        log(plain_table(head, body))
        self.sections.append("Processes during the phase:\n\n" + markdown_table(head, body) + "\n")
        self.facts["steady_processes"] = {
            row[0]: dict(zip(head[1:], row[1:], strict=True)) for row in body
        }

    def _recommend_breakdown(self, samples: list[Sample], phase: str) -> None:
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
        self.sections.append(f"Streamed recommends in {phase}: {text}.\n")
        self.facts[f"{phase}_stream_outcomes"] = reasons

    def phase_failover(
        self, duration_s: float = 75, kill_at: float = 20, restart_at: float = 40
    ) -> None:
        assert self.stack is not None
        stack = self.stack
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
        r = self.locust("failover", mix, duration_s, tick=tick, progress_entry="recommend ttft")
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
        self.phases["failover"] = PhaseResult(
            "failover", r.samples, flags={"returned_to_near": returned}
        )
        rows = summarize(r.samples, r.ended - r.started)
        self._table("failover: near region killed and restarted under load", rows)

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
        deltas = self._counters(
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
        self.sections.append(
            "Failover windows (recommend with a streamed answer; latencies in ms):\n\n"
            + markdown_table(head, body)
            + "\n\n"
            + "\n".join(f"- {x}" for x in lines)
            + "\n"
        )
        self.facts["failover"] = {
            "windows": windows,
            "added_ttft_ms_p50": added_ttft,
            "added_total_ms_p50": added_total,
            "recovery_s": recovery,
            "near_state_end": near_state,
            "near_tokens_after_restart": near_tokens,
            "edge_counters": deltas,
            "delays_one_way_ms": {"near": NEAR_DELAY_S * 1000, "far": FAR_DELAY_S * 1000},
        }
        markers = [
            (marks[k], label)
            for k, label in (
                ("kill", "near killed"),
                ("restart", "near restarted"),
                ("near_ready", "near ready"),
            )
            if k in marks
        ]
        if t_back:
            markers.append((t_back, "back on near"))
        self._chart(
            r,
            "failover: near model server killed and restarted",
            markers=markers,
            series={"model requests via near": near_reqs, "model requests via far": far_reqs},
        )

    def phase_index_swap(self, duration_s: float = 40, swap_at: float = 8) -> None:
        assert self.stack is not None
        stack = self.stack
        marks: dict[str, float] = {}
        old_version = stack.readyz().get("index_version")
        state: dict[str, object] = {}

        def tick(elapsed: float) -> None:
            if "build" not in marks and elapsed >= swap_at:
                marks["build"] = time.time()
                log(
                    f"    {elapsed:5.0f} s  rebuilding the served index in place (python -m index_builder build --out {stack.served_index.name})"
                )
                with open(self.opts.work_dir / "logs" / "index-build.log", "wb") as build_log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "index_builder", "build", "--out", str(stack.served_index), "--threads", "1"],
                        cwd=ROOT, stdout=build_log, stderr=subprocess.STDOUT, start_new_session=True,
                    )  # fmt: skip
                self._children.append(proc)
                state["build"] = proc
            build = state.get("build")
            if (
                isinstance(build, subprocess.Popen)
                and "built" not in marks
                and build.poll() is not None
            ):
                marks["built"] = time.time()
                self._children.remove(build)
                if build.returncode != 0:
                    log(
                        f"    index build failed with {build.returncode} (see logs/index-build.log)"
                    )
                    return
                assert stack.edge is not None
                os.kill(stack.edge.pid, signal.SIGHUP)
                marks["sighup"] = time.time()
                log(
                    f"    {elapsed:5.0f} s  index built in {marks['built'] - marks['build']:.1f} s; sent SIGHUP to the edge"
                )
            if "sighup" in marks and "swapped" not in marks:
                try:
                    version = stack.readyz().get("index_version")
                except httpx.HTTPError:
                    return
                if version and version != old_version:
                    marks["swapped"] = time.time()
                    state["new_version"] = version
                    log(
                        f"    {elapsed:5.0f} s  edge serves index {version} ({marks['swapped'] - marks['sighup']:.1f} s after SIGHUP)"
                    )

        mix = {"search": 4, "title": 2, "recommend": 2, "stream": 1}
        r = self.locust("index_swap", mix, duration_s, tick=tick)
        build = state.get("build")
        if isinstance(build, subprocess.Popen) and build.poll() is None:
            build.kill()
            build.wait(10)
        swapped = "swapped" in marks
        self.phases["index_swap"] = PhaseResult(
            "index_swap", r.samples, flags={"index_swapped": swapped}
        )
        self._table("index swap under load", summarize(r.samples, r.ended - r.started))
        line = (
            f"index {old_version} -> {state.get('new_version', 'NOT SWAPPED')}; rebuild took "
            + (
                f"{marks['built'] - marks['build']:.1f} s, the edge served the new one {marks['swapped'] - marks['sighup']:.1f} s after SIGHUP"
                if swapped
                else "(no swap)"
            )
        )
        log("    " + line)
        self.sections.append(f"- {line}\n")
        self.facts["index_swap"] = {
            "old": old_version,
            "new": state.get("new_version"),
            **{k: round(v - r.started, 2) for k, v in marks.items()},
        }
        markers = [
            (marks[k], label)
            for k, label in (
                ("build", "rebuild starts"),
                ("sighup", "SIGHUP"),
                ("swapped", "new index served"),
            )
            if k in marks
        ]
        self._chart(r, "index swap under load", markers=markers)

    def phase_overload(self, duration_s: float = 30, users: int = 12) -> None:
        assert self.stack is not None
        before = parse_metrics(self.stack.metrics_text())
        mix = {"overload": users, "search": 2}
        r = self.locust("overload", mix, duration_s, progress_entry="/v1/recommend (model)")
        after = parse_metrics(self.stack.metrics_text())
        self.phases["overload"] = PhaseResult("overload", r.samples)
        self._table(
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
        deltas = self._counters(before, after, ("upstream_failures", "degraded", "breaker_opens"))
        log(plain_table(head, body))
        line = "edge counters during the phase: " + (
            ", ".join(f"{k} +{v:g}" for k, v in deltas.items()) or "none"
        )
        log("    " + line)
        self.sections.append(
            "Recommend-with-model outcomes beyond capacity:\n\n"
            + markdown_table(head, body)
            + f"\n\n- {line}\n"
        )
        self.facts["overload"] = {
            "outcomes": {k: len(v) for k, v in outcomes.items()},
            "edge_counters": deltas,
            "model_queue": MODEL_QUEUE,
        }
        self._chart(
            r, f"overload: {users} recommend-with-model users, model queue {MODEL_QUEUE} per server"
        )

    def phase_capacity(self, steps: tuple[int, ...], step_s: float, stop_ms: float) -> None:
        assert self.stack is not None and self.stack.edge is not None
        stack, pid = self.stack, self.stack.edge.pid
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
        r = self.locust("capacity", mix, step_s * len(steps), tick=tick, env=env, shape=True)
        tick(0)
        self.phases["capacity"] = PhaseResult("capacity", r.samples)
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
        self.sections.append(
            "### capacity of /v1/search\n\n"
            + markdown_table(tuple(cols.values()), body)
            + f"\n\n- {summary}\n"
        )
        self.facts["capacity"] = {
            "steps": rows,
            "best": best,
            "stop_p95_ms": stop_ms,
            "step_s": step_s,
        }
        markers = [(m["t"], f"{m['users']} users") for m in marks]
        self._chart(r, "capacity: /v1/search users stepped up", markers=markers)

    # ---- modes -----------------------------------------------------------------------------

    def run(self) -> int:
        o = self.opts
        o.out_dir.mkdir(parents=True, exist_ok=True)
        o.work_dir.mkdir(parents=True, exist_ok=True)
        save_workload(build_workload(o.index, seed=o.seed), self.workload_path)
        try:
            if o.mode == "host":
                self.warm_up(with_model=True)
                self.phase_steady(o.users or 20, o.duration_s or 60)
            else:
                self._start_stack()
                if o.mode == "quick":
                    self.warm_up(with_model=True)
                    self.phase_steady(o.users or 6, o.duration_s or 15)
                elif o.mode == "capacity":
                    self.warm_up(with_model=False)
                    steps = (
                        CAPACITY_STEPS
                        if o.users is None
                        else tuple(s for s in CAPACITY_STEPS if s <= o.users) or (o.users,)
                    )
                    self.phase_capacity(steps, o.step_s, self._objective_ms("search-p95", 20.0))
                else:
                    self.warm_up(with_model=True)
                    if "steady" in o.phases:
                        self.phase_steady(o.users or 20, o.duration_s or 60)
                    if "failover" in o.phases:
                        self.phase_failover()
                    if "index_swap" in o.phases:
                        self.phase_index_swap()
                    if "overload" in o.phases:
                        self.phase_overload()
        finally:
            if self.stack is not None:
                log("==> stopping the local stack")
                self.stack.close()
            for proc in list(self._children):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        verdicts = check(o.objectives, self.phases, o.mode)
        self._write_summary(verdicts)
        bad = missed(verdicts)
        enforced = [v for v in verdicts if v.enforced]
        log(
            f"==> {len(enforced) - len(bad)} of {len(enforced)} enforced objectives met"
            + (
                f" ({len(verdicts) - len(enforced)} more measured for information only)"
                if len(verdicts) > len(enforced)
                else ""
            )
            + (f"; MISSED: {', '.join(v.objective.id for v in bad)}" if bad else "")
        )
        return 1 if bad else 0

    def _objective_ms(self, oid: str, default: float) -> float:
        for o in self.opts.objectives.objective:
            if o.id == oid and o.max_ms is not None:
                return o.max_ms
        return default

    def _start_stack(self) -> None:
        o = self.opts
        if o.mode == "capacity":
            regions: list[tuple[str, float | None]] = []
        elif o.mode == "quick":
            regions = [("near", None)]
        else:
            regions = [("near", NEAR_DELAY_S), ("far", FAR_DELAY_S)]
        log(
            f"==> starting a local stack in {o.work_dir} ({len(regions)} model server(s) + edge, index {o.index})"
        )
        t = time.monotonic()
        self.stack = LocalStack(
            o.work_dir,
            o.index,
            regions,
            model_env={"MOVIEMIND_MODEL_QUEUE": str(MODEL_QUEUE)},
            edge_env={"MOVIEMIND_EDGE_BREAKER_COOLDOWN_S": str(BREAKER_COOLDOWN_S), **o.edge_env},
            log=log,
        ).start()
        self.host = self.stack.edge_url
        self.api_key = self.stack.api_key
        log(
            f"    stack up in {time.monotonic() - t:.0f} s: edge {self.host}, upstreams {', '.join(f'{k} {v}' for k, v in self.stack.upstream_urls.items()) or 'none'}"
        )
        delays = {"near": NEAR_DELAY_S, "far": FAR_DELAY_S}
        models = ", ".join(
            f"{name} ({'direct' if delay is None else f'behind a proxy adding {1000 * delays[name]:g} ms each way'})"
            for name, delay in regions
        )
        self.sections.append(
            "Local stack on 127.0.0.1: "
            + (
                f"SmolLM2-135M model servers {models}, each 1 thread, 1 slot, queue {MODEL_QUEUE}; "
                if regions
                else "no model server; "
            )
            + f"one edge process (index {_short(o.index)}, API key on, rate limit off, breaker cooldown "
            f"{BREAKER_COOLDOWN_S:g} s"
            + "".join(f", {k}={v}" for k, v in o.edge_env.items())
            + ", other settings default); Locust on the same machine.\n"
        )

    def _write_summary(self, verdicts: list[Verdict]) -> None:
        o = self.opts
        head = ("objective", "promise", "measured", "result")
        body = [(v.objective.id, v.objective.describe(), v.measured, v.status) for v in verdicts]
        log(
            f"\nobjectives (loadtests/objectives.toml version {o.objectives.version})\n{plain_table(head, body)}\n"
        )
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = "?"
        meta = {
            "mode": o.mode,
            "started_utc": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - self.started),
            "commit": commit,
            "cores": os.cpu_count(),
            "load_average_end": os.getloadavg(),
            "python": platform.python_version(),
            "objectives_version": o.objectives.version,
            "host": "local stack on 127.0.0.1" if o.mode != "host" else self.host,
        }
        name = "capacity" if o.mode == "capacity" else "summary"
        md = [
            f"# moviemind load test: {o.mode} run",
            "",
            f"Run {meta['started_utc']} at commit {commit} on {meta['cores']} cores "
            f"(load average at the end {', '.join(f'{x:.1f}' for x in meta['load_average_end'])}), {meta['duration_s']} s in all. "
            f"Objectives: loadtests/objectives.toml version {o.objectives.version}. Written by `python -m loadtests"
            + {
                "default": "",
                "quick": " --quick",
                "capacity": " --capacity",
                "host": " --host URL",
            }[o.mode]
            + "`.",
            "",
            "## Objectives",
            "",
            markdown_table(head, body),
            "",
            "## Phases",
            "",
            *self.sections,
        ]
        (o.out_dir / f"{name}.md").write_text("\n".join(md) + "\n")
        payload = {
            "meta": meta,
            "objectives": [
                {
                    "id": v.objective.id,
                    "promise": v.objective.describe(),
                    "measured": v.measured,
                    "result": v.status,
                }
                for v in verdicts
            ],
            "phases": {
                k: [
                    r.as_dict()
                    for r in summarize(
                        p.samples,
                        (max(s.t for s in p.samples) - min(s.t for s in p.samples))
                        if p.samples
                        else None,
                    )
                ]
                for k, p in self.phases.items()
            },
            "facts": self.facts,
        }
        (o.out_dir / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
        log(
            f"==> report in {o.out_dir}/ ({name}.md, {name}.json, Locust CSV/HTML and PNG per phase)"
        )
