"""The run's report: summary.md (objectives, then each phase's sections) and summary.json."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime

import msgspec

from devstack.machine import format_load, machine_info
from loadtests.objectives import Verdict
from loadtests.report import markdown_table, plain_table, summarize
from loadtests.session import ROOT, Session, log


def write_summary(session: Session, verdicts: list[Verdict]) -> None:
    """Print the objectives table; write summary.md (or capacity.md) and its JSON."""
    o = session.opts
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
    machine = machine_info()
    meta = {
        "mode": o.mode,
        "started_utc": datetime.fromtimestamp(session.started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - session.started),
        "commit": commit,
        "machine": msgspec.to_builtins(machine),
        "load_average_start": session.load_start,
        "load_average_end": machine.load_average,
        "objectives_version": o.objectives.version,
        "host": "local stack on 127.0.0.1" if o.mode != "host" else session.host,
    }
    name = "capacity" if o.mode == "capacity" else "summary"
    md = [
        f"# moviemind load test: {o.mode} run",
        "",
        f"Run {meta['started_utc']} at commit {commit} on {machine.describe()} (load average "
        f"{format_load(session.load_start)} at the start, {format_load(machine.load_average)} at the "
        f"end), {meta['duration_s']} s in all. "
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
        *session.sections,
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
            for k, p in session.phases.items()
        },
        "facts": session.facts,
    }
    (o.out_dir / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    log(f"==> report in {o.out_dir}/ ({name}.md, {name}.json, Locust CSV/HTML and PNG per phase)")
