"""Shared fixtures: the sample index and real servers on loopback (session-scoped, reaped at exit)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.process import ROOT, ServerProcess
from devstack.servers import start_edge, start_model_server

SAMPLE_INDEX = ROOT / "var" / "index"
MODELS = ROOT / "var" / "models"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """var/models with the exported MiniLM (make test runs `make index` first; this is a fallback)."""
    if not (MODELS / "minilm" / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "index_builder", "models"], cwd=ROOT, check=True)
    return MODELS


@pytest.fixture(scope="session")
def sample_index(models_dir: Path) -> Path:
    """The full bundled sample index in var/index (built by `make index` when missing)."""
    if not (SAMPLE_INDEX / "manifest.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "index_builder", "build", "--out", str(SAMPLE_INDEX)],
            cwd=ROOT,
            check=True,
        )
    return SAMPLE_INDEX


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def model_server(logs: Path) -> Iterator[ServerProcess]:
    """A real model server with the embedded SmolLM2 on a free loopback port."""
    s = start_model_server(logs)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def edge(logs: Path, sample_index: Path, model_server: ServerProcess) -> Iterator[ServerProcess]:
    """A real edge on the sample index, with the real model server as its only upstream."""
    s = start_edge(logs, [model_server.url], index=str(sample_index))
    try:
        yield s
    finally:
        s.stop()


# ---- skipped checks: `make test` ends with one line naming every one -------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-report",
        metavar="FILE",
        help="write one line per skipped test (node id: reason) to FILE",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    target = terminalreporter.config.getoption("--skip-report")
    if not target:
        return
    lines = []
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        lines.append(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}\n")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text("".join(lines))
