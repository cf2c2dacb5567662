"""edge.settings: every MOVIEMIND_EDGE_* name is known or rejected at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edge.settings import SettingsError, load_settings
from tests.servers import ROOT


def test_a_misspelt_setting_is_rejected_with_the_likely_name() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"MOVIEMIND_EDGE_UPSTREEMS": "http://10.0.0.5:8001"})
    message = str(info.value)
    assert "MOVIEMIND_EDGE_UPSTREEMS" in message and "MOVIEMIND_EDGE_UPSTREAMS" in message
    assert "\n" not in message


def test_other_tiers_settings_are_not_the_edges_business() -> None:
    s = load_settings({"MOVIEMIND_MODEL_PORT": "9", "MOVIEMIND_EDGE_RANK_OVERSAMPLE": "8"})
    assert s.ranking.oversample == 8


def test_python_m_edge_exits_2_on_an_unknown_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEMIND_")}
    done = subprocess.run(
        [sys.executable, "-m", "edge"],
        cwd=ROOT,
        env={**env, "MOVIEMIND_EDGE_PROT": "8000"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2, done.stderr
    assert "unknown setting MOVIEMIND_EDGE_PROT" in done.stderr
    assert "MOVIEMIND_EDGE_PORT" in done.stderr


def test_a_misspelt_object_storage_setting_is_rejected() -> None:
    with pytest.raises(SettingsError, match="unknown setting MOVIEMIND_S3_ENDPONT"):
        load_settings({"MOVIEMIND_S3_ENDPONT": "https://us-east-1.linodeobjects.com"})
    s = load_settings({"MOVIEMIND_S3_ENDPOINT": "http://127.0.0.1:9000"})
    assert s.s3.endpoint == "http://127.0.0.1:9000" and s.s3.region == "us-east-1"
