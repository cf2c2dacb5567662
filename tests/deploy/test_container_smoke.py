"""The container smoke test's own contract with `make test`: without an engine it says SKIPPED
and succeeds (--if-available), --check tells the two cases apart, and make test runs it.
The smoke test itself runs from `make test` / `make smoke` (docs/deployment.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "container_smoke.sh"


def docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def run(*args: str) -> subprocess.CompletedProcess:
    # Asking for docker where no daemon answers: the engine check fails at once, nothing builds.
    env = {"PATH": "/usr/bin:/bin", "CONTAINER_ENGINE": "docker", "HOME": "/tmp"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(docker_daemon(), reason="a docker daemon answers here: nothing to skip")
def test_without_an_engine_it_says_skipped() -> None:
    proc = run("--if-available")
    assert proc.returncode == 0, proc.stderr
    assert "container smoke test SKIPPED: no container engine" in proc.stdout
    assert run("--check").returncode == 3


def test_make_test_runs_it_and_make_smoke_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "bash scripts/container_smoke.sh --if-available" in test_recipe
    assert "\nsmoke:" in makefile and "smoke" in makefile.split(".PHONY:", 1)[1].split("\n")[0]
