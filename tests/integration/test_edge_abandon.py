"""An abandoned non-streamed /v1/recommend stops the model's work (the upstream stream is closed),
instead of keeping the model busy until its answer ends.

The upstream is the scriptable stub: a real model answers too fast here to tell the difference,
while the stub streams for 20 s and records when its client cuts a response off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.openai_stub import OpenAIStub, Stream
from tests.support.servers import Server, start_edge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow_model() -> Iterator[OpenAIStub]:
    with OpenAIStub(Stream(tokens=["Heat (1995): a heist. "] * 200, delay_s=0.1)) as stub:
        yield stub


@pytest.fixture(scope="module")
def edge_on_slow_model(logs: Path, sample_index: Path, slow_model: OpenAIStub) -> Iterator[Server]:
    with start_edge(
        logs,
        [slow_model.url],
        index=str(sample_index),
        MOVIEMIND_EDGE_PRIME_PREFIX="false",
        MOVIEMIND_EDGE_FIRST_TOKEN_TIMEOUT_S="30",
        MOVIEMIND_EDGE_TOTAL_TIMEOUT_S="60",
    ) as s:
        yield s


def test_a_client_that_hangs_up_stops_the_upstream_stream(
    edge_on_slow_model: Server, slow_model: OpenAIStub
) -> None:
    body = {"liked": ["The Matrix"], "explain": True, "stream": False}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{edge_on_slow_model.url}/v1/recommend", json=body, timeout=1.5)
    gone = time.monotonic()
    assert len(slow_model.chat_requests) == 1  # the model was asked, and is streaming
    while slow_model.cut_off == 0 and time.monotonic() - gone < 10:
        time.sleep(0.1)
    assert slow_model.cut_off == 1, "the edge kept the model's stream open after the hang-up"
    assert time.monotonic() - gone < 3
    metrics = httpx.get(f"{edge_on_slow_model.url}/metrics", timeout=10).text
    assert "moviemind_edge_client_gone_total 1.0" in metrics
