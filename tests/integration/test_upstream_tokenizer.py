"""Requests to model servers besides chat: the tokenizer fetch and prefix priming, through the
pool and its breakers."""

from __future__ import annotations

import asyncio

import pytest

from edge.metrics import EdgeMetrics
from edge.prompt import ApproxCounter, HFCounter
from edge.service import Recommender
from edge.settings import EdgeSettings
from edge.upstream import (
    UpstreamPool,
)
from tests.support.openai_stub import Status, Stream, blackhole
from tests.support.upstream import (
    MESSAGES,
    TOKENIZER_JSON,
    FakeClock,
    RecordingMetrics,
    settings,
)

pytestmark = pytest.mark.anyio


# ---- tokenizer ---------------------------------------------------------------------------------


async def test_concurrent_tokenizer_callers_share_one_fetch_through_the_breaker(stubs):
    """Five callers against a hung upstream: one fetch, not five queued ones; a failed fetch
    counts toward the breaker, and an open breaker is not asked again."""
    metrics = RecordingMetrics()
    with blackhole() as hung:
        pool = UpstreamPool(settings(hung, connect_timeout_s=1.0, breaker_failures=1), metrics)
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            ends: list[float] = []

            async def one() -> bytes | None:
                try:
                    return await pool.tokenizer_json()
                finally:
                    ends.append(loop.time() - t0)

            assert await asyncio.gather(*(one() for _ in range(5))) == [None] * 5
            assert max(ends) < 1.8 and max(ends) - min(ends) < 0.2, ends
            assert metrics.failures == [(hung, "connect_timeout")]
            assert pool.status()[0]["state"] == "open"
            t1 = loop.time()
            assert await pool.tokenizer_json() is None
            assert loop.time() - t1 < 0.1  # skipped: its breaker is open
        finally:
            await pool.aclose()


async def test_requests_never_wait_for_the_tokenizer(stubs):
    """The recommender counts with the estimate while the (hung) fetch runs in the background."""
    with blackhole() as hung:
        pool = UpstreamPool(settings(hung, connect_timeout_s=2.0))
        rec = Recommender(EdgeSettings(), pool, EdgeMetrics())
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            counters = await asyncio.gather(*(rec.token_counter() for _ in range(5)))
            assert loop.time() - t0 < 0.2
            assert all(isinstance(c, ApproxCounter) for c in counters)
        finally:
            await pool.aclose()
    tok = stubs(Stream(), tokenizer=TOKENIZER_JSON)
    pool = UpstreamPool(settings(tok.url))
    rec = Recommender(EdgeSettings(), pool, EdgeMetrics())
    try:
        assert isinstance(await rec.token_counter(wait=True), HFCounter)
        assert isinstance(await rec.token_counter(), HFCounter)
        assert tok.count("/v1/tokenizer") == 1
    finally:
        await pool.aclose()


async def test_priming_goes_through_the_breaker(stubs, monkeypatch):
    """A model server still loading (503) counts a failure and opens its breaker; priming asks
    again when the breaker admits a probe, and the probe's success closes it."""
    monkeypatch.setattr("edge.upstream.pool.PRIME_RETRY_S", 0.05)
    stub = stubs(Stream(["x"]))
    stub.script(Status(503, "loading"))
    metrics = RecordingMetrics()
    clock = FakeClock()
    pool = UpstreamPool(
        settings(stub.url, breaker_failures=1, breaker_cooldown_s=10), metrics, clock=clock
    )
    try:
        priming = asyncio.create_task(pool.prime(MESSAGES, patience_s=10))
        while not metrics.opened:
            await asyncio.sleep(0.01)
        assert pool.status()[0]["state"] == "open"
        await asyncio.sleep(0.2)
        assert len(stub.chat_requests) == 1  # not asked while its breaker is open
        clock.now += 10
        assert await priming == 1
        assert metrics.failures == [(stub.url, "http_5xx")]
        assert pool.status()[0]["state"] == "closed"
    finally:
        await pool.aclose()


async def test_tokenizer_json_from_first_upstream_that_has_it(stubs):
    without = stubs(Stream())
    with_tok = stubs(Stream(), tokenizer=b'{"version": "1.0", "model": {}}')
    pool = UpstreamPool(settings(without.url, with_tok.url))
    try:
        assert await pool.tokenizer_json() == b'{"version": "1.0", "model": {}}'
        assert await pool.tokenizer_json() == b'{"version": "1.0", "model": {}}'
        assert with_tok.count("/v1/tokenizer") == 1  # cached
    finally:
        await pool.aclose()


async def test_tokenizer_json_none_when_nobody_offers_it(stubs):
    stub = stubs(Stream())
    pool = UpstreamPool(settings(stub.url))
    try:
        assert await pool.tokenizer_json() is None
        assert await pool.tokenizer_json() is None
        assert stub.count("/v1/tokenizer") == 1  # every upstream answered: the None is cached
    finally:
        await pool.aclose()
