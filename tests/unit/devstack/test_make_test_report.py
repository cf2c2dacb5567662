"""`make test`'s closing line (scripts/skipped_checks.py) and the demo check's answer test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devstack.demo_check import DemoCheckFailed, check_answer
from tests.support.servers import ROOT

SCRIPT = ROOT / "scripts" / "skipped_checks.py"


def last_line(report_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(report_dir)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_names_every_skipped_check_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "pytest-skipped.txt").write_text(
        "tests/deploy/test_monitoring.py::test_rules: promtool not installed\n"
    )
    (tmp_path / "container-smoke.log").write_text(
        "building...\ncontainer smoke test SKIPPED: no container engine (a docker daemon or podman)\n"
    )
    line = last_line(tmp_path)
    assert line.startswith("skipped checks (2): ")
    assert "test_monitoring.py::test_rules: promtool not installed" in line
    assert "container smoke test: no container engine" in line


def test_says_none_when_everything_ran(tmp_path: Path) -> None:
    (tmp_path / "pytest-skipped.txt").write_text("")
    (tmp_path / "container-smoke.log").write_text("container smoke test: all 5 checks passed\n")
    assert last_line(tmp_path) == "skipped checks: none"


def rec(source: str) -> dict:
    return {"id": 1, "title": "Heat", "reason": "A tense heist.", "reason_source": source}


def test_the_demo_check_wants_model_reasons() -> None:
    assert check_answer({"recommendations": [rec("model"), rec("catalog")]}) == 1
    with pytest.raises(DemoCheckFailed, match="no reason came from the model"):
        check_answer({"recommendations": [rec("catalog")] * 2})
    with pytest.raises(DemoCheckFailed, match="undegraded"):
        check_answer({"recommendations": [rec("model")] * 2, "degraded": True})
    with pytest.raises(DemoCheckFailed, match="expected 2"):
        check_answer({"recommendations": [rec("model")]})
