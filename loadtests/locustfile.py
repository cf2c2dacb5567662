"""Locust scenarios for a moviemind edge: search, title lookup, recommend with and without the model.

Run directly against any edge (a local stack or a deployment):

    python -m locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 60s --host http://127.0.0.1:8000

Environment (all optional):
    MOVIEMIND_EDGE_API_KEY          sent as X-API-Key when set
    MOVIEMIND_LOADTEST_WORKLOAD     JSON written by loadtests.workload (default: built from var/index)
    MOVIEMIND_LOADTEST_INDEX        bundle to build the workload from (default var/index)
    MOVIEMIND_LOADTEST_SEED         seed for the workload and the users' choices (default 7)
    MOVIEMIND_LOADTEST_MIX          exact users per class, e.g. "search=10,title=6,recommend=3,stream=1"
    MOVIEMIND_LOADTEST_THINK_S      think time of search/title users, "MIN:MAX" seconds (default 0.25:0.75)
    MOVIEMIND_LOADTEST_SAMPLES      append one JSON line per request here (the runner's raw data)

Streams are recorded twice: the HTTP entry ("/v1/recommend stream") times the response headers,
and two entries of type SSE time the first `token` event ("recommend ttft") and the `done` event
("recommend total"). A degraded answer (no model) is a success; it is also counted under
"recommend degraded" so a report can tell how many there were and how fast they came.

Over 400 lines on purpose: Locust loads one file (`-f`), so its user classes, the stream timing
and the samples writer stay together here.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

from locust import HttpUser, between, events, task

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `locust -f loadtests/locustfile.py` from any directory
    sys.path.insert(0, str(ROOT))

from devstack.sse import sse_events  # noqa: E402
from loadtests.workload import Workload, build_workload, load_workload  # noqa: E402

SEED = int(os.environ.get("MOVIEMIND_LOADTEST_SEED", "7"))
DEGRADED_WITHIN_S = 1.0


def _workload() -> Workload:
    path = os.environ.get("MOVIEMIND_LOADTEST_WORKLOAD")
    if path:
        return load_workload(Path(path))
    return build_workload(
        Path(os.environ.get("MOVIEMIND_LOADTEST_INDEX", ROOT / "var" / "index")), seed=SEED
    )


WORKLOAD = _workload()
_user_ids = itertools.count()


def _think() -> tuple[float, float]:
    raw = os.environ.get("MOVIEMIND_LOADTEST_THINK_S", "0.25:0.75")
    low, _, high = raw.partition(":")
    return float(low), float(high or low)


# ---- raw samples for the runner's own analysis (phase windows, charts) ---------------------------

_samples_lock = threading.Lock()
_samples_file = None


def _samples():
    global _samples_file
    path = os.environ.get("MOVIEMIND_LOADTEST_SAMPLES")
    if path and _samples_file is None:
        # Line-buffered, open for the process lifetime: the runner follows it live.
        _samples_file = open(path, "a", buffering=1)  # noqa: SIM115
    return _samples_file


@events.request.add_listener
def _record(
    request_type,
    name,
    response_time,
    response_length,
    exception=None,
    context=None,
    start_time=None,
    **_kw,
):
    out = _samples()
    if out is None:
        return
    row = {
        "t": round(start_time if start_time else time.time() - (response_time or 0) / 1000, 4),
        "type": request_type,
        "name": name,
        "ms": round(float(response_time or 0), 3),
        "ok": exception is None,
    }
    if exception is not None:
        row["err"] = str(exception)[:160]
    for key, value in (context or {}).items():
        if isinstance(value, str | int | float | bool) or value is None:
            row[key] = value
    with _samples_lock:
        out.write(json.dumps(row) + "\n")


def log_event(kind: str, **fields) -> None:
    """A marker line in the samples file (a load step, say), for the runner's windows."""
    out = _samples()
    if out is not None:
        with _samples_lock:
            out.write(json.dumps({"t": round(time.time(), 4), "event": kind, **fields}) + "\n")


@events.quitting.add_listener
def _flush(**_kw):
    if _samples_file is not None:
        _samples_file.flush()


@events.test_stop.add_listener
def _flush_on_stop(**_kw):
    if _samples_file is not None:
        _samples_file.flush()


def _fire(
    name: str,
    started: float,
    elapsed_s: float,
    *,
    ok: bool = True,
    error: str | None = None,
    context: dict | None = None,
) -> None:
    events.request.fire(
        request_type="SSE",
        name=name,
        response_time=elapsed_s * 1000,
        response_length=0,
        exception=None if ok else RuntimeError(error or "failed"),
        context=context or {},
        start_time=started,
    )


# ---- users -----------------------------------------------------------------------------------------


class EdgeUser(HttpUser):
    """Common set-up: API key, a seeded random source per user, JSON error messages."""

    abstract = True
    wait_time = between(*_think())

    def on_start(self) -> None:
        self.rng = random.Random(SEED * 1000 + next(_user_ids))
        key = os.environ.get("MOVIEMIND_EDGE_API_KEY")
        if key:
            self.client.headers["X-API-Key"] = key
        # A load test must see the edge's own answers, never a corporate proxy's.
        self.client.trust_env = False

    @staticmethod
    def _error_text(resp) -> str:
        try:
            err = resp.json()["error"]
            return f"HTTP {resp.status_code} {err['type']}: {err['message'][:100]}"
        except Exception:
            return f"HTTP {resp.status_code}: {(resp.text or '')[:100]}"

    def _liked(self) -> list[str]:
        return list(self.rng.choice(WORKLOAD.liked_sets))

    def _query(self) -> str:
        return self.rng.choice(WORKLOAD.moods) if self.rng.random() < 0.5 else ""


class SearchUser(EdgeUser):
    """Free-text search: the edge's fast path (embed + ANN + rank)."""

    weight = 10

    @task
    def search(self) -> None:
        q = self.rng.choice(WORKLOAD.search_queries)
        with self.client.get(
            "/v1/search",
            params={"q": q, "k": 10},
            name="/v1/search",
            catch_response=True,
            timeout=10,
        ) as r:
            if r.status_code != 200:
                r.failure(self._error_text(r))
            elif not r.json().get("results"):
                r.failure("no results")


class TitleUser(EdgeUser):
    """Autocomplete: the prefix of a real title, as someone types it."""

    weight = 6

    @task
    def lookup(self) -> None:
        prefix = self.rng.choice(WORKLOAD.title_prefixes)
        with self.client.get(
            "/v1/movies",
            params={"title": prefix, "limit": 10},
            name="/v1/movies?title",
            catch_response=True,
            timeout=10,
        ) as r:
            if r.status_code != 200:
                r.failure(self._error_text(r))
            else:
                r.request_meta["context"]["hits"] = len(r.json().get("results") or [])


class RecommendUser(EdgeUser):
    """Recommend from liked titles without the model (explain: false): retrieval and ranking only."""

    weight = 3
    wait_time = between(1.0, 3.0)

    @task
    def recommend(self) -> None:
        body = {"liked": self._liked(), "query": self._query(), "k": 5, "explain": False}
        with self.client.post(
            "/v1/recommend",
            json=body,
            name="/v1/recommend (no model)",
            catch_response=True,
            timeout=10,
        ) as r:
            if r.status_code != 200:
                r.failure(self._error_text(r))
            elif not r.json().get("recommendations"):
                r.failure("no recommendations")


class StreamUser(EdgeUser):
    """Recommend with the model's answer streamed as server-sent events."""

    weight = 1
    wait_time = between(1.0, 3.0)

    @task
    def recommend_stream(self) -> None:
        body = {
            "liked": self._liked(),
            "query": self._query(),
            "k": 5,
            "explain": True,
            "stream": True,
            # `token` events (the model's raw text, one per written line) come only with debug;
            # "recommend ttft" times the first of them.
            "debug": True,
        }
        started = time.time()
        t0 = time.perf_counter()
        ttft: float | None = None
        seen: dict[str, dict] = {}
        with self.client.post(
            "/v1/recommend",
            json=body,
            name="/v1/recommend stream",
            stream=True,
            catch_response=True,
            timeout=(5, 30),
        ) as r:
            if r.status_code != 200 or "text/event-stream" not in r.headers.get("content-type", ""):
                r.failure(self._error_text(r))
                _fire(
                    "recommend total",
                    started,
                    time.perf_counter() - t0,
                    ok=False,
                    error=f"HTTP {r.status_code}",
                )
                return
            try:
                for event, data in sse_events(r.iter_content(chunk_size=None)):
                    if event == "token" and ttft is None:
                        ttft = time.perf_counter() - t0
                    elif event in ("recommendations", "done", "error"):
                        seen[event] = json.loads(data) if data else {}
                    if event == "done":
                        break
            except Exception as exc:  # a read timeout or a dropped connection mid-stream
                r.failure(f"stream broke: {type(exc).__name__}: {str(exc)[:80]}")
                _fire(
                    "recommend total",
                    started,
                    time.perf_counter() - t0,
                    ok=False,
                    error=f"stream broke: {type(exc).__name__}",
                )
                return
            total = time.perf_counter() - t0
            if "done" not in seen or "recommendations" not in seen:
                r.failure("stream ended without recommendations and done")
                _fire("recommend total", started, total, ok=False, error="no done event")
                return
            degraded = bool(seen["done"].get("degraded"))
            reason = (seen["recommendations"].get("degraded_reason") or "").split(":")[0] or None
            ctx = {"degraded": degraded, "reason": reason}
            r.request_meta["context"].update(ctx)
        if ttft is not None:
            _fire("recommend ttft", started, ttft, context=ctx)
        _fire("recommend total", started, total, context=ctx)
        if degraded:
            _fire("recommend degraded", started, total, context=ctx)


class OverloadUser(EdgeUser):
    """Recommend with the model, about one a second per user: more than the model servers can take.

    Success is a model answer, a 429, or a degraded answer within a second; a degraded answer
    that took longer, a 504 or a client timeout is a failure.
    """

    # Only when asked for (MOVIEMIND_LOADTEST_MIX=overload=N): it saturates the model.
    abstract = True
    weight = 1
    # Beyond the model (a few answers a minute per server) without also saturating the edge CPU.
    wait_time = between(0.5, 1.0)

    @task
    def recommend_model(self) -> None:
        body = {"liked": self._liked(), "query": self._query(), "k": 5, "explain": True}
        with self.client.post(
            "/v1/recommend",
            json=body,
            name="/v1/recommend (model)",
            catch_response=True,
            timeout=(5, 30),
        ) as r:
            if r.status_code == 429:
                r.request_meta["context"]["outcome"] = "429"
                r.success()
                return
            if r.status_code != 200:
                r.failure(self._error_text(r))
                return
            data = r.json()
            if not data.get("recommendations"):
                r.failure("no recommendations")
                return
            # Where the time went, as the edge measured it: its whole answer and the part spent
            # waiting on the model tier (the rest of the client's time is the network and queues).
            timings = data.get("timings_ms") or {}
            r.request_meta["context"].update(
                {"edge_ms": timings.get("total"), "model_ms": timings.get("llm_total")}
            )
            if data.get("degraded"):
                reason = (data.get("degraded_reason") or "").split(":")[0]
                r.request_meta["context"].update(
                    {"outcome": "degraded", "degraded": True, "reason": reason}
                )
                total_s = r.request_meta["response_time"] / 1000
                # Fixed messages, so Locust groups the failures; the time is in the sample itself.
                if reason == "upstream_timeout":
                    r.failure("degraded after an upstream timeout")
                elif total_s > DEGRADED_WITHIN_S:
                    r.failure(f"degraded answer slower than {DEGRADED_WITHIN_S:g} s")
            else:
                r.request_meta["context"]["outcome"] = "model"


def _apply_mix() -> None:
    """MOVIEMIND_LOADTEST_MIX pins how many users of each class run (Locust's fixed_count)."""
    raw = os.environ.get("MOVIEMIND_LOADTEST_MIX", "")
    classes = {
        "search": SearchUser,
        "title": TitleUser,
        "recommend": RecommendUser,
        "stream": StreamUser,
        "overload": OverloadUser,
    }
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, count = part.partition("=")
        if name not in classes:
            raise SystemExit(
                f"MOVIEMIND_LOADTEST_MIX: unknown user class {name!r} (one of {', '.join(classes)})"
            )
        classes[name].fixed_count = int(count)
        if name == "overload":
            OverloadUser.abstract = False


_apply_mix()


if os.environ.get("MOVIEMIND_LOADTEST_STEPS"):
    from locust import LoadTestShape

    class StepShape(LoadTestShape):
        """Capacity search: hold each user count for STEP_S seconds; stop after the step whose
        p95 of /v1/search crossed STOP_P95_MS (or after the last step).

        MOVIEMIND_LOADTEST_STEPS="10,20,40", MOVIEMIND_LOADTEST_STEP_S=15,
        MOVIEMIND_LOADTEST_STOP_P95_MS=25. Each step start is logged as a marker line.
        """

        steps = [int(x) for x in os.environ["MOVIEMIND_LOADTEST_STEPS"].split(",") if x.strip()]
        step_s = float(os.environ.get("MOVIEMIND_LOADTEST_STEP_S", "15"))
        stop_ms = float(os.environ.get("MOVIEMIND_LOADTEST_STOP_P95_MS", "25"))

        def __init__(self) -> None:
            super().__init__()
            self._current = -1
            self._stop = False

        def tick(self):
            i = int(self.get_run_time() // self.step_s)
            if i != self._current:
                # At least three steps, so the report shows a curve even on a busy machine.
                if self._current >= 2 and self._crossed():
                    self._stop = True
                if self._stop or i >= len(self.steps):
                    return None
                self._current = i
                log_event("step", users=self.steps[i], index=i)
            users = self.steps[self._current]
            return users, max(10, users)

        def _crossed(self) -> bool:
            # Locust's "current" percentile covers the last 10 s, i.e. the end of the step.
            entry = self.runner.stats.get("/v1/search", "GET")
            p95 = entry.get_current_response_time_percentile(0.95) if entry.num_requests else None
            return p95 is not None and p95 > self.stop_ms
