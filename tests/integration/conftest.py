"""Fixtures of the integration tests: OpenAI stubs that are always stopped, and the edges of
the API tests (module-scoped: each module that uses one starts its own).

- `edge` (session fixture, tests/conftest.py): default settings; what needs no model answer.
- `model_edge`: a second edge on the same model server, patient with it (this 2-core machine is
  shared and a 135M model's prefill can take seconds under load) and protected by an API key and
  a CORS origin, so the protection tests need no third edge.
- `limited_edge`: rate limit 30/minute, its upstream a closed port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.edge_api import KEY, ORIGIN, PATIENT
from tests.support.openai_stub import OpenAIStub, Stream
from tests.support.servers import Server, free_port, start_edge


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def stubs():
    """Factory for stubs that are always stopped, whatever the test does."""
    started: list[OpenAIStub] = []

    def make(default=None, **kw) -> OpenAIStub:
        stub = OpenAIStub(default=default or Stream(), **kw).start()
        started.append(stub)
        return stub

    try:
        yield make
    finally:
        for stub in started:
            stub.stop()


@pytest.fixture(scope="module")
def api(edge: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=edge.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def model_edge(logs: Path, sample_index: Path, model_server: Server) -> Iterator[Server]:
    with start_edge(
        logs,
        [model_server.url],
        index=str(sample_index),
        MOVIEMIND_EDGE_API_KEY=KEY,
        MOVIEMIND_EDGE_CORS_ORIGINS=f"{ORIGIN},http://other.test",
        **PATIENT,
    ) as s:
        yield s


@pytest.fixture(scope="module")
def keyed(model_edge: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=model_edge.url, timeout=300, headers={"X-API-Key": KEY}) as c:
        yield c


@pytest.fixture(scope="module")
def limited_edge(logs: Path, sample_index: Path) -> Iterator[Server]:
    with start_edge(
        logs,
        [f"http://127.0.0.1:{free_port()}"],
        index=str(sample_index),
        MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE="30",
    ) as s:
        yield s
