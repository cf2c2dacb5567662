"""Phase `index_swap`: the served index is rebuilt in place and the edge gets SIGHUP, under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from loadtests.objectives import PhaseResult
from loadtests.report import summarize
from loadtests.session import ROOT, Session, chart_markers, log


def run(session: Session, duration_s: float = 40, swap_at: float = 8) -> None:
    """Rebuild the served index at `swap_at` s and SIGHUP the edge, under load."""
    assert session.stack is not None
    stack = session.stack
    marks: dict[str, float] = {}
    old_version = stack.readyz().get("index_version")
    state: dict[str, object] = {}

    def tick(elapsed: float) -> None:
        if "build" not in marks and elapsed >= swap_at:
            marks["build"] = time.time()
            log(
                f"    {elapsed:5.0f} s  rebuilding the served index in place (python -m index_builder build --out {stack.served_index.name})"
            )
            with open(session.opts.work_dir / "logs" / "index-build.log", "wb") as build_log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "index_builder", "build", "--out", str(stack.served_index), "--threads", "1"],
                    cwd=ROOT, stdout=build_log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            session.children.append(proc)
            state["build"] = proc
        build = state.get("build")
        if (
            isinstance(build, subprocess.Popen)
            and "built" not in marks
            and build.poll() is not None
        ):
            marks["built"] = time.time()
            session.children.remove(build)
            if build.returncode != 0:
                log(f"    index build failed with {build.returncode} (see logs/index-build.log)")
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
    r = session.locust("index_swap", mix, duration_s, tick=tick)
    build = state.get("build")
    if isinstance(build, subprocess.Popen) and build.poll() is None:
        build.kill()
        build.wait(10)
    swapped = "swapped" in marks
    session.phases["index_swap"] = PhaseResult(
        "index_swap", r.samples, flags={"index_swapped": swapped}
    )
    session.table("index swap under load", summarize(r.samples, r.ended - r.started))
    line = f"index {old_version} -> {state.get('new_version', 'NOT SWAPPED')}; rebuild took " + (
        f"{marks['built'] - marks['build']:.1f} s, the edge served the new one {marks['swapped'] - marks['sighup']:.1f} s after SIGHUP"
        if swapped
        else "(no swap)"
    )
    log("    " + line)
    session.sections.append(f"- {line}\n")
    session.facts["index_swap"] = {
        "old": old_version,
        "new": state.get("new_version"),
        **{k: round(v - r.started, 2) for k, v in marks.items()},
    }
    markers = chart_markers(
        marks, {"build": "rebuild starts", "sighup": "SIGHUP", "swapped": "new index served"}
    )
    session.chart(r, "index swap under load", markers=markers)
