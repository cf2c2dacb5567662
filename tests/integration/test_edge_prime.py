"""MOVIEMIND_EDGE_PRIME_PREFIX: the edge puts its fixed prompt prefix into the model server's
prefix cache at start-up, so the first user's request evaluates only its own part."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import Server, start_edge, start_model_server


def token_counters(model: Server) -> tuple[float, float]:
    """(prompt tokens, prompt tokens served from the prefix cache) the model server counted."""
    text = httpx.get(model.url + "/metrics", timeout=10).text
    values = {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples}
    return (
        values.get("moviemind_model_prompt_tokens_total", 0.0),
        values.get("moviemind_model_prompt_tokens_cached_total", 0.0),
    )


def test_edge_primes_the_model_servers_prefix_cache(logs: Path, sample_index: Path) -> None:
    model = start_model_server(logs)  # its own: the shared one's cache is warm already
    try:
        # Priming off: starting an edge sends the model server nothing.
        quiet = start_edge(
            logs, [model.url], index=str(sample_index), MOVIEMIND_EDGE_PRIME_PREFIX="false"
        )
        time.sleep(2.0)
        quiet.stop()
        assert token_counters(model) == (0.0, 0.0)

        edge = start_edge(logs, [model.url], index=str(sample_index))
        try:
            deadline = time.monotonic() + 60
            while token_counters(model)[0] == 0.0:
                assert time.monotonic() < deadline, "the edge never primed the model server"
                time.sleep(0.2)
            primed_tokens, _ = token_counters(model)
            body = {"liked": ["Heat"], "query": "a tense heist", "k": 5}
            r = httpx.post(edge.url + "/v1/recommend", json=body, timeout=120)
            assert r.status_code == 200, r.text
            assert r.json()["degraded"] is False
            prompt, cached = token_counters(model)
            # The first user's prompt started with everything the priming request sent, except
            # the end of that request (its last line and the assistant header).
            assert cached >= primed_tokens - 16, (primed_tokens, prompt, cached)
            assert cached >= 80
        finally:
            edge.stop()
    finally:
        model.stop()
