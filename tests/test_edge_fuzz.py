"""Fuzz the edge from its own OpenAPI schema (schemathesis): no request may produce a 5xx.

A dedicated edge on the sample index whose only upstream is a closed port: `/v1/recommend`
with `explain: true` then degrades at once (one refused connection opens the breaker) instead
of waiting on a model, so every generated request is answered in milliseconds.

The schema is taken from the edge app built in-process at collection time, because
schemathesis' lazy loader (`schemathesis.pytest.from_fixture`, which could read it from the live
server) sets `Function._nodeid`, which pytest 9.2 no longer has. The first test proves the live
edge serves exactly this document, so what is fuzzed is what `/schema/openapi.json` promises.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error

from edge.app import create_app
from edge.settings import load_settings
from tests.servers import Server, free_port, start_edge

pytestmark = pytest.mark.slow

SPEC = create_app(load_settings({})).openapi_schema.to_schema()
schema = schemathesis.openapi.from_dict(SPEC)


@pytest.fixture(scope="module")
def fuzz_edge(logs: Path, sample_index: Path) -> Iterator[Server]:
    s = start_edge(
        logs,
        [f"http://127.0.0.1:{free_port()}"],
        index=str(sample_index),
        MOVIEMIND_EDGE_BREAKER_FAILURES="1",
        MOVIEMIND_EDGE_BREAKER_COOLDOWN_S="600",
    )
    try:
        yield s
    finally:
        s.stop()


def test_the_live_edge_serves_the_fuzzed_schema(fuzz_edge: Server) -> None:
    r = httpx.get(f"{fuzz_edge.url}/schema/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == SPEC
    assert {"/v1/recommend", "/v1/search", "/v1/movies", "/v1/movies/{movie_id}"} <= set(
        SPEC["paths"]
    )


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_produces_a_server_error(case, fuzz_edge: Server) -> None:
    case.call_and_validate(base_url=fuzz_edge.url, checks=[not_a_server_error], timeout=30)


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
