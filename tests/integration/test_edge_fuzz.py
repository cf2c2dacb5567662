"""Fuzz the edge from its own OpenAPI schema (schemathesis): every check passes.

A dedicated edge on the sample index whose only upstream is a closed port: `/v1/recommend`
with `explain: true` then degrades at once (one refused connection opens the breaker) instead
of waiting on a model, so every generated request is answered in milliseconds.

schemathesis runs as its CLI (`--checks all`, settings in tests/integration/schemathesis.toml) against the
live edge's /schema/openapi.json; the first test proves that document is the one the app builds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.app import create_app
from edge.settings import load_settings
from tests.support.servers import ROOT, Server, free_port, start_edge

pytestmark = pytest.mark.slow

SPEC = create_app(load_settings({})).openapi_schema.to_schema()


@pytest.fixture(scope="module")
def fuzz_edge(logs: Path, sample_index: Path) -> Iterator[Server]:
    with start_edge(
        logs,
        [f"http://127.0.0.1:{free_port()}"],
        index=str(sample_index),
        MOVIEMIND_EDGE_BREAKER_FAILURES="1",
        MOVIEMIND_EDGE_BREAKER_COOLDOWN_S="600",
    ) as s:
        yield s


def test_the_live_edge_serves_the_fuzzed_schema(fuzz_edge: Server) -> None:
    r = httpx.get(f"{fuzz_edge.url}/schema/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == SPEC
    assert {"/v1/recommend", "/v1/search", "/v1/movies", "/v1/movies/{movie_id}"} <= set(
        SPEC["paths"]
    )


def test_schemathesis_finds_nothing_with_every_check(fuzz_edge: Server, tmp_path: Path) -> None:
    """`schemathesis run --checks all`: no 5xx, and every status, content type and body the
    edge answers is the one its OpenAPI document promises (errors included)."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(ROOT / "tests" / "integration" / "schemathesis.toml"),
            "run",
            f"{fuzz_edge.url}/schema/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--request-timeout",
            "30",
        ],
        cwd=tmp_path,  # its example database stays out of the repository
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def route_series(url: str) -> set[str]:
    """The `route` label values of the edge's request metrics."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        s.labels["route"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("moviemind_edge_request") and "route" in s.labels
    }


def test_metric_series_do_not_grow_with_the_paths_requested(fuzz_edge: Server) -> None:
    """Labels are route templates: 60 new paths (no API key needed for /schema) add no series."""
    with httpx.Client(base_url=fuzz_edge.url, timeout=30) as c:
        for path in ("/schema/probe", "/v1/movies/603", "/static/style.css", "/metrics"):
            c.get(path)
        before = route_series(fuzz_edge.url)
        for i in range(20):
            c.get(f"/schema/probe-{i}")
            c.get(f"/v1/movies/{100000 + i}")
            c.get(f"/static/nothing-{i}.js")
    after = route_series(fuzz_edge.url)
    assert after == before, after - before
    assert not any(str(100000 + i) in r or f"probe-{i}" in r for r in after for i in range(20))


def test_the_fuzzed_edge_logged_no_unhandled_error(fuzz_edge: Server) -> None:
    """Runs after the fuzzing (file order): a 5xx hidden behind a 4xx would still be logged."""
    log = fuzz_edge.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert "unhandled error" not in log
    assert httpx.get(f"{fuzz_edge.url}/readyz", timeout=30).status_code == 200
    # The edge's own count of what it answered: every operation was hit, valid and invalid.
    text = httpx.get(f"{fuzz_edge.url}/metrics", timeout=30).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "moviemind_edge_requests_total":
                key = (s.labels["route"], s.labels["status"][0] + "xx")
                counts[key] = counts.get(key, 0) + s.value
    print("fuzzed requests by route and status class:", dict(sorted(counts.items())))
    for route in ("/v1/recommend", "/v1/search", "/v1/movies", "/v1/movies/{movie_id}"):
        assert (route, "5xx") not in counts, counts
        assert counts.get((route, "2xx"), 0) >= 1, (route, counts)
        assert counts.get((route, "4xx"), 0) >= 1, (route, counts)
