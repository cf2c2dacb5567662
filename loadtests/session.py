"""One load-test run's shared state and plumbing: options, the local stack, one Locust process
per phase, and the report sections the phases add to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.machine import load_average
from devstack.stats import percentile
from loadtests.edge_metrics import metric_delta
from loadtests.objectives import ObjectiveSet, PhaseResult
from loadtests.report import Row, Sample, chart, markdown_rows, read_samples, text_table
from loadtests.stack import ROOT, LocalStack

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
NEAR_DELAY_S = 0.005
FAR_DELAY_S = 0.060
BREAKER_COOLDOWN_S = 2.0
# No waiting room on the model servers: a busy one answers 429 at once and the edge fails over or
# degrades. A queued request would wait a whole answer (several seconds here) plus its own prompt,
# past the edge's 10 s first-token timeout: queue x answer time + prefill must stay below it.
MODEL_QUEUE = 0
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


# ---- one Locust process ---------------------------------------------------------------------------


def chart_markers(marks: dict[str, float], labels: dict[str, str]) -> list[tuple[float, str]]:
    """(time, label) for each named moment of a phase that happened, in the order of `labels`."""
    return [(marks[k], label) for k, label in labels.items() if k in marks]


@dataclass
class LocustResult:
    name: str
    samples: list[Sample]
    markers: list[dict]
    started: float
    ended: float
    exit_code: int
    files: list[Path] = field(default_factory=list)


class Session:
    """What the phases of one run share: options, stack, results, report sections, children."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.stack: LocalStack | None = None
        self.host = opts.host or ""
        self.api_key = opts.api_key
        self.phases: dict[str, PhaseResult] = {}
        self.sections: list[str] = []  # markdown for summary.md
        self.facts: dict[str, object] = {}
        self.children: list[subprocess.Popen] = []
        self.workload_path = opts.work_dir / "workload.json"
        self.started = time.time()
        self.load_start = load_average()

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
            self.children.append(proc)
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
                self.children.remove(proc)
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

    def counters(self, before: dict, after: dict, names: tuple[str, ...]) -> dict[str, float]:
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

    def table(self, title: str, rows: list[Row]) -> None:
        log(f"\n{title}\n{text_table(rows)}\n")
        self.sections.append(f"### {title}\n\n{markdown_rows(rows)}\n")

    def chart(self, result: LocustResult, title: str, markers=(), series=None) -> None:
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
