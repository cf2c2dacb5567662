"""edge.settings: every MOVIEMIND_EDGE_* name is known or rejected at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edge.settings import EdgeSettings, SettingsError, load_settings
from tests.support.servers import ROOT


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


def test_settings_defaults_match_the_design() -> None:
    s = load_settings({})
    assert s == EdgeSettings()
    assert (s.host, s.port, s.index) == ("127.0.0.1", 8000, "var/index")
    assert s.upstream.urls == ("http://127.0.0.1:8001",)
    assert s.prompt_tokens == 512
    assert s.api_key is None and s.cors_origins == ()


def test_settings_from_env() -> None:
    s = load_settings(
        {
            "MOVIEMIND_EDGE_PORT": "9000",
            "MOVIEMIND_EDGE_UPSTREAMS": " http://a:1/ , https://b:2/v1,",
            "MOVIEMIND_EDGE_UPSTREAM_TOKEN": "tok",
            "MOVIEMIND_EDGE_API_KEY": "k",
            "MOVIEMIND_EDGE_CORS_ORIGINS": "http://x.test, http://y.test",
            "MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE": "0",
            "MOVIEMIND_EDGE_CONNECT_TIMEOUT_S": "0.25",
            "MOVIEMIND_EDGE_BREAKER_FAILURES": "2",
            "MOVIEMIND_EDGE_RANK_MMR_LAMBDA": "0.7",
            "MOVIEMIND_EDGE_RANK_OVERSAMPLE": "8",
            "MOVIEMIND_EDGE_PROMPT_TOKENS": "",  # empty means default
        }
    )
    assert s.port == 9000
    assert s.upstream.urls == ("http://a:1", "https://b:2/v1")
    assert s.upstream.token == "tok" and s.upstream.connect_timeout_s == 0.25
    assert s.upstream.breaker_failures == 2
    assert s.api_key == "k"
    assert s.cors_origins == ("http://x.test", "http://y.test")
    assert s.rate_limit_per_minute == 0
    assert s.ranking.mmr_lambda == 0.7 and s.ranking.oversample == 8
    assert s.prompt_tokens == 512


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("PORT", "eighty", "MOVIEMIND_EDGE_PORT"),
        ("PORT", "70000", "PORT"),
        ("MAX_BODY_BYTES", "10", "MAX_BODY_BYTES"),
        ("RATE_LIMIT_PER_MINUTE", "-1", "RATE_LIMIT_PER_MINUTE"),
        ("PROMPT_TOKENS", "10", "PROMPT_TOKENS"),
        ("UPSTREAMS", "ftp://x", "UPSTREAMS"),
        ("UPSTREAMS", ",", "UPSTREAMS"),
        ("CONNECT_TIMEOUT_S", "0", "MOVIEMIND_EDGE_CONNECT_TIMEOUT_S"),
        ("FIRST_TOKEN_TIMEOUT_S", "soon", "FIRST_TOKEN_TIMEOUT_S"),
        ("BREAKER_FAILURES", "0", "MOVIEMIND_EDGE_BREAKER_FAILURES"),
        ("RANK_MMR_LAMBDA", "1.5", "RANK_MMR_LAMBDA"),
        ("RANK_OVERSAMPLE", "2.5", "RANK_OVERSAMPLE"),
        ("RANK_HUB_DISCOUNT", "-1", "RANK_HUB_DISCOUNT"),
        ("RANK_THIN_DISCOUNT", "1", "RANK_THIN_DISCOUNT"),
        ("RANK_W_KEYWORDS", "lots", "RANK_W_KEYWORDS"),
        ("QUERY_VARIANT", "int4", "QUERY_VARIANT"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_setting(
    name: str, value: str, mentions: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"MOVIEMIND_EDGE_" + name: value})
    message = str(info.value)
    assert mentions in message
    assert "\n" not in message
