"""Samples -> tables and charts: per-entry percentiles over a window, a summary table, a PNG.

The runner's raw data is the JSON-lines file the locustfile writes (one line per request, plus
marker lines); Locust's own CSV and HTML reports are written next to it by Locust itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devstack.report import markdown_table
from devstack.stats import percentile


@dataclass(frozen=True)
class Sample:
    """One request (or SSE milestone) as the locustfile recorded it."""

    t: float  # wall-clock start, seconds since the epoch
    type: str
    name: str
    ms: float
    ok: bool
    err: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_http(self) -> bool:
        return self.type != "SSE"


def read_samples(path: Path, offset: int = 0) -> tuple[list[Sample], list[dict], int]:
    """Samples and marker events from `path` starting at byte `offset`; also the new offset.

    A partly written last line is left for the next call.
    """
    samples: list[Sample] = []
    markers: list[dict] = []
    if not path.exists():
        return samples, markers, offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "event" in row:
            markers.append(row)
            continue
        known = {"t", "type", "name", "ms", "ok", "err"}
        samples.append(
            Sample(
                t=float(row["t"]),
                type=str(row["type"]),
                name=str(row["name"]),
                ms=float(row["ms"]),
                ok=bool(row["ok"]),
                err=row.get("err"),
                extra={k: v for k, v in row.items() if k not in known},
            )
        )
    return samples, markers, offset + end


def window(samples: Iterable[Sample], t0: float = -math.inf, t1: float = math.inf) -> list[Sample]:
    """Samples that started in [t0, t1)."""
    return [s for s in samples if t0 <= s.t < t1]


@dataclass(frozen=True)
class Row:
    """Summary of one entry over a window."""

    type: str
    name: str
    count: int
    failures: int
    rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def summarize(samples: Sequence[Sample], duration_s: float | None = None) -> list[Row]:
    """One Row per (type, name), HTTP entries first, then SSE; rps over `duration_s`."""
    if not samples:
        return []
    if duration_s is None:
        duration_s = max(1e-9, max(s.t for s in samples) - min(s.t for s in samples))
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.type, s.name), []).append(s)
    rows = []
    for (type_, name), group in sorted(
        groups.items(), key=lambda kv: (kv[0][0] == "SSE", kv[0][1])
    ):
        ms = [s.ms for s in group]
        rows.append(
            Row(
                type=type_,
                name=name,
                count=len(group),
                failures=sum(1 for s in group if not s.ok),
                rps=len(group) / duration_s if duration_s > 0 else 0.0,
                p50=percentile(ms, 50),
                p95=percentile(ms, 95),
                p99=percentile(ms, 99),
                max=max(ms),
            )
        )
    return rows


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


TABLE_HEAD = ("type", "name", "requests", "failed", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")


def _cells(r: Row) -> tuple[str, ...]:
    return (
        r.type,
        r.name,
        str(r.count),
        str(r.failures),
        _fmt(r.rps),
        _fmt(r.p50),
        _fmt(r.p95),
        _fmt(r.p99),
        _fmt(r.max),
    )


def text_table(rows: Sequence[Row]) -> str:
    """A fixed-width table for the terminal."""
    return plain_table(TABLE_HEAD, [_cells(r) for r in rows])


def plain_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = (
        [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
        if body
        else [len(h) for h in head]
    )
    lines = [
        "  ".join(
            str(c).ljust(w) if i < 2 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in (head, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_rows(rows: Sequence[Row]) -> str:
    return markdown_table(TABLE_HEAD, [_cells(r) for r in rows])


# ---- chart ------------------------------------------------------------------------------------


def chart(
    samples: Sequence[Sample],
    path: Path,
    title: str,
    *,
    markers: Sequence[tuple[float, str]] = (),
    series: dict[str, Sequence[float]] | None = None,
    bin_s: float = 2.0,
    t0: float | None = None,
) -> Path | None:
    """Latency percentiles and throughput over time, one PNG.

    Top: p50/p95/p99 per bin for every entry with enough requests (log scale). Bottom: requests
    per second (all HTTP, failures) and any extra event series (e.g. model requests per region,
    as wall-clock timestamps). Vertical lines mark `markers` (time, label).
    """
    if not samples:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = t0 if t0 is not None else min(s.t for s in samples)
    t_end = max(s.t for s in samples) - t0
    # A trailing partial bin would show a bogus drop in throughput: leave it out.
    n_bins = max(1, int(t_end // bin_s))
    samples = [s for s in samples if s.t - t0 < n_bins * bin_s]
    centers = (np.arange(n_bins) + 0.5) * bin_s

    def binned(group: Sequence[Sample]) -> list[list[float]]:
        bins: list[list[float]] = [[] for _ in range(n_bins)]
        for s in group:
            i = min(n_bins - 1, max(0, int((s.t - t0) / bin_s)))
            bins[i].append(s.ms)
        return bins

    names: dict[str, list[Sample]] = {}
    for s in samples:
        if s.name != "recommend degraded":
            names.setdefault(s.name, []).append(s)
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, group) in enumerate(sorted(names.items())):
        if len(group) < 3:
            continue
        color = colors[i % len(colors)]
        bins = binned(group)
        # Sparse entries (a streamed answer every few seconds) leave gaps a line cannot bridge.
        marker = "o" if sum(1 for b in bins if b) < 0.7 * n_bins else None
        for q, style, width in ((50, ":", 1.0), (95, "-", 1.8), (99, "--", 1.0)):
            ys = [percentile(b, q) if b else np.nan for b in bins]
            ax1.plot(
                centers,
                ys,
                style,
                color=color,
                linewidth=width,
                marker=marker if q == 95 else None,
                markersize=3,
                label=f"{name} p{q}" if q == 95 else None,
            )
    ax1.set_yscale("log")
    ax1.set_ylabel("latency, ms (p95 solid, p50 dotted, p99 dashed)")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="upper left", ncol=2)
    ax1.set_title(title)

    http = [s for s in samples if s.is_http]
    counts = np.zeros(n_bins)
    fails = np.zeros(n_bins)
    for s in http:
        i = min(n_bins - 1, max(0, int((s.t - t0) / bin_s)))
        counts[i] += 1
        fails[i] += 0 if s.ok else 1
    ax2.plot(centers, counts / bin_s, "-", color="black", label="HTTP requests/s")
    ax2.plot(centers, fails / bin_s, "-", color="red", label="failed/s")
    ax2.set_ylabel("HTTP requests per second")
    ax2.set_xlabel(f"seconds since start ({bin_s:g} s bins)")
    ax2.grid(True, alpha=0.3)
    handles, labels = ax2.get_legend_handles_labels()
    if series:
        # Rare events (a model request every few seconds) read best as running totals on their
        # own axis: the slope is the rate, a flat stretch is a region getting nothing.
        ax3 = ax2.twinx()
        colors3 = ("tab:purple", "tab:olive", "tab:cyan")
        for color, (label, times) in zip(colors3, series.items(), strict=False):
            ts = sorted(t - t0 for t in times if 0 <= t - t0 < n_bins * bin_s)
            xs = [0.0, *ts, n_bins * bin_s]
            ys = [0, *range(1, len(ts) + 1), len(ts)]
            ax3.step(
                xs, ys, where="post", color=color, linewidth=1.5, label=f"{label} (running total)"
            )
        ax3.set_ylabel("running total")
        ax3.set_ylim(bottom=0)
        h3, l3 = ax3.get_legend_handles_labels()
        handles, labels = handles + h3, labels + l3
    ax2.legend(handles, labels, fontsize=7, loc="upper left")
    for t, label in markers:
        for ax in (ax1, ax2):
            ax.axvline(t - t0, color="gray", linestyle="-.", linewidth=1)
        ax1.annotate(
            label,
            (t - t0, 0.02),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=7,
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
