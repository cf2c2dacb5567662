"""Fixtures of the integration tests: OpenAI stubs that are always stopped."""

from __future__ import annotations

import pytest

from tests.openai_stub import OpenAIStub, Stream


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
