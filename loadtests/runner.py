"""The load-test runner: starts the local stack, runs the phases of a mode, checks the objectives.

Modes and phases (each phase one headless Locust process with its own CSV/HTML/PNG, one module
under loadtests/phases/):
    steady      the objective run: 20 users searching, typing titles, recommending (with and
                without the model); latency and zero-failure objectives
    failover    near and far model servers behind delay proxies; the near one is killed under
                load and restarted; every request must still succeed and the edge must go back
    index_swap  the served index is rebuilt in place and the edge gets SIGHUP, under load
    overload    more recommend-with-model users than the model servers can take
    capacity    (--capacity) /v1/search users stepped up until p95 crosses the objective
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from loadtests.objectives import check, missed
from loadtests.phases import capacity, failover, index_swap, overload, steady
from loadtests.session import (
    BREAKER_COOLDOWN_S,
    DEFAULT_PHASES,
    FAR_DELAY_S,
    MODEL_QUEUE,
    NEAR_DELAY_S,
    Options,
    Session,
    log,
)
from loadtests.stack import ROOT, LocalStack
from loadtests.summary import write_summary
from loadtests.workload import build_workload, save_workload

__all__ = ["DEFAULT_PHASES", "Options", "Runner"]


def _short(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


class Runner(Session):
    """Runs the phases of one mode and writes the report; `run()` returns the exit code."""

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

    # ---- modes -----------------------------------------------------------------------------

    def run(self) -> int:
        o = self.opts
        o.out_dir.mkdir(parents=True, exist_ok=True)
        o.work_dir.mkdir(parents=True, exist_ok=True)
        save_workload(build_workload(o.index, seed=o.seed), self.workload_path)
        try:
            if o.mode == "host":
                self.warm_up(with_model=True)
                steady.run(self, o.users or 20, o.duration_s or 60)
            else:
                self._start_stack()
                if o.mode == "quick":
                    self.warm_up(with_model=True)
                    steady.run(self, o.users or 6, o.duration_s or 15)
                elif o.mode == "capacity":
                    self.warm_up(with_model=False)
                    steps = (
                        capacity.CAPACITY_STEPS
                        if o.users is None
                        else tuple(s for s in capacity.CAPACITY_STEPS if s <= o.users) or (o.users,)
                    )
                    capacity.run(self, steps, o.step_s, self._objective_ms("search-p95", 20.0))
                else:
                    self.warm_up(with_model=True)
                    if "steady" in o.phases:
                        steady.run(self, o.users or 20, o.duration_s or 60)
                    if "failover" in o.phases:
                        failover.run(self)
                    if "index_swap" in o.phases:
                        index_swap.run(self)
                    if "overload" in o.phases:
                        overload.run(self)
        finally:
            if self.stack is not None:
                log("==> stopping the local stack")
                self.stack.close()
            for proc in list(self.children):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        verdicts = check(o.objectives, self.phases, o.mode)
        write_summary(self, verdicts)
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
