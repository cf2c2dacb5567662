"""Benchmark reports: each benchmark writes one JSON document; its Markdown is rendered from that.

A report is the machine it ran on (CPU flags, load average at start and end), the raw numbers
(`results`, for a reader or another program) and the blocks a person reads: headings, text and
tables. `write_report` writes `<name>.json`, reads it back and renders `<name>.md` from it, so the
Markdown never says anything the JSON does not hold; `python -m devstack.report FILE.json`
renders it again (e.g. after a change to the renderer).

    report = BenchReport.begin("edge", "Edge benchmarks", "python -m benchmarks.edge_bench")
    ...measure...
    report.finish(results={...}, blocks=blocks("text", Table(["", "p50 ms"], rows), "more text"))
    write_report(report, Path("docs/benchmarks"))
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from devstack.machine import MachineInfo, format_load, load_average, machine_info

Cell = str | int | float | None


class Heading(msgspec.Struct, tag="heading"):
    text: str
    level: int = 2


class Text(msgspec.Struct, tag="text"):
    """Markdown as written (lines joined by newlines)."""

    text: str


class Table(msgspec.Struct, tag="table"):
    """A table; floats are shown with `digits` decimals, None and NaN as '-'."""

    head: list[str]
    rows: list[list[Cell]]
    digits: int = 2

    def markdown(self) -> str:
        return markdown_table(self.head, self.rows, self.digits)


Block = Heading | Text | Table


class BenchReport(msgspec.Struct, kw_only=True, dict=True):
    """One benchmark run: what ran where, its raw results and its readable blocks."""

    name: str  # the file stem under docs/benchmarks/
    title: str
    command: str
    started_utc: str
    machine: MachineInfo
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] | None = None
    duration_s: float | None = None
    results: dict[str, Any] = {}
    blocks: list[Block] = []

    @classmethod
    def begin(cls, name: str, title: str, command: str) -> BenchReport:
        """Record the machine and the load average now, as the run starts."""
        machine = machine_info()
        report = cls(
            name=name,
            title=title,
            command=command,
            started_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            machine=machine,
            load_start=machine.load_average,
        )
        # An attribute, not a field (dict=True): a monotonic clock means nothing in the file.
        report._t0 = time.monotonic()
        return report

    def finish(self, *, results: dict[str, Any], blocks: list[Block]) -> BenchReport:
        """Record the load average and duration at the end, the results and the blocks."""
        self.load_end = load_average()
        self.duration_s = round(time.monotonic() - self._t0, 1)
        self.results = results
        self.blocks = blocks
        return self


def blocks(*items: str | Block) -> list[Block]:
    """Blocks from strings (consecutive ones become one Text, one line each) and blocks."""
    out: list[Block] = []
    lines: list[str] = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
            continue
        if lines:
            out.append(Text("\n".join(lines)))
            lines = []
        out.append(item)
    if lines:
        out.append(Text("\n".join(lines)))
    return out


def cell(value: Cell, digits: int = 2) -> str:
    """A table cell: floats with `digits` decimals, None and NaN as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[Cell]], digits: int = 2) -> str:
    """A Markdown table (the one table renderer of reports)."""
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(cell(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(out)


def render_block(block: Block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Table):
        return block.markdown()
    return block.text


def render_markdown(report: BenchReport) -> str:
    """The report as Markdown: a title, where and when it ran, then its blocks."""
    m = report.machine
    end = f"; at the end {format_load(report.load_end)}" if report.load_end else ""
    took = f" ({report.duration_s:.0f} s)" if report.duration_s is not None else ""
    head = [
        f"# {report.title}",
        "",
        f"Written by `{report.command}` (part of `make bench`) from {report.name}.json, its raw "
        "numbers. Numbers from one run; rerun on a quiet machine before quoting them.",
        "",
        f"- Date: {report.started_utc}{took}",
        f"- Machine: {m.describe()}",
        f"- Load average (1/5/15 min) at the start: {format_load(report.load_start)}{end}"
        " (other work on the machine makes the numbers noisier and higher)",
        "",
    ]
    return "\n".join(head + [render_block(b) for b in report.blocks]).rstrip("\n") + "\n"


def _encode_default(obj: Any) -> Any:
    # Raw results hold argparse namespaces, paths and the like: store what they say.
    if isinstance(obj, argparse.Namespace):
        return vars(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot store {type(obj).__name__} in a report")


def _encoder() -> msgspec.json.Encoder:
    return msgspec.json.Encoder(enc_hook=_encode_default)


def read_report(path: Path) -> BenchReport:
    """A report from its JSON file."""
    return msgspec.json.decode(path.read_bytes(), type=BenchReport)


def write_report(report: BenchReport, out_dir: Path) -> tuple[Path, Path]:
    """Write <out_dir>/<name>.json, then <name>.md rendered from that file; both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{report.name}.json"
    json_path.write_bytes(msgspec.json.format(_encoder().encode(report), indent=1) + b"\n")
    md_path = out_dir / f"{report.name}.md"
    md_path.write_text(render_markdown(read_report(json_path)))
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m devstack.report", description="Render benchmark JSON reports to Markdown."
    )
    ap.add_argument("reports", nargs="+", type=Path, help="docs/benchmarks/<name>.json files")
    args = ap.parse_args(argv)
    for path in args.reports:
        try:
            report = read_report(path)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
        md = path.with_suffix(".md")
        md.write_text(render_markdown(report))
        print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
