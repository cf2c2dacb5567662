"""The edge's upstream pool against scriptable OpenAI-compatible stubs on loopback: streaming,
failover before the first token, no retry after it.

Fault injection only (500, 429, refused, hangs, sockets closed mid-stream); the real model server
is exercised by the other integration tests.
"""

from __future__ import annotations

import pytest

from edge.upstream import (
    StreamEnded,
    StreamStarted,
    TokenDelta,
    UpstreamBroken,
    UpstreamPool,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.support.openai_stub import Garbage, Hang, Status, Stream, blackhole, closed_port_url
from tests.support.upstream import (
    MESSAGES,
    RecordingMetrics,
    collect,
    collect_until_error,
    kind,
    settings,
    text_of,
)

pytestmark = pytest.mark.anyio


# ---- happy path ----------------------------------------------------------------------------------


async def test_happy_path_streams_events_and_reuses_the_connection(stubs):
    stub = stubs(Stream(["Hel", "lo", " there"]))
    pool = UpstreamPool(settings(stub.url))
    try:
        events = await collect(pool, max_tokens=12, temperature=0.3, stop=["\n\n"], seed=7)
        assert events == [
            StreamStarted(url=stub.url, model="stub-model"),
            TokenDelta("Hel"),
            TokenDelta("lo"),
            TokenDelta(" there"),
            StreamEnded(finish_reason="stop", prompt_tokens=7, completion_tokens=3),
        ]
        sent = stub.chat_requests[0].body
        assert sent["stream"] is True
        assert sent["model"] == "stub-model"  # from /v1/models, since settings.model is None
        assert sent["messages"] == MESSAGES
        assert (sent["max_tokens"], sent["temperature"], sent["stop"], sent["seed"]) == (
            12,
            0.3,
            ["\n\n"],
            7,
        )
        assert "authorization" not in stub.chat_requests[0].headers

        again = await collect(pool)
        assert text_of(again) == "Hello there"
        assert stub.count("/v1/models") == 1  # the model name is cached
        # Keep-alive: models lookup and both streams went over one TCP connection.
        assert {r.connection for r in stub.requests} == {1}
        assert stub.connections == 1
        assert pool.status() == [
            {"url": stub.url, "state": "closed", "consecutive_failures": 0, "last_error": None}
        ]
    finally:
        await pool.aclose()


async def test_bearer_token_and_configured_model_are_sent(stubs):
    stub = stubs(Stream(["ok"]))
    pool = UpstreamPool(settings(stub.url, token="s3cret", model="smollm2"))
    try:
        events = await collect(pool)
        assert events[0] == StreamStarted(url=stub.url, model="smollm2")
        req = stub.chat_requests[0]
        assert req.headers["authorization"] == "Bearer s3cret"
        assert req.body["model"] == "smollm2"
        assert stub.count("/v1/models") == 0  # a configured model needs no lookup
    finally:
        await pool.aclose()


async def test_empty_completion_is_a_clean_start_and_end(stubs):
    stub = stubs(Stream([], finish_reason="length"))
    pool = UpstreamPool(settings(stub.url))
    try:
        events = await collect(pool)
        assert events == [
            StreamStarted(url=stub.url, model="stub-model"),
            StreamEnded(finish_reason="length", prompt_tokens=7, completion_tokens=0),
        ]
    finally:
        await pool.aclose()


async def test_finish_reason_without_done_is_complete(stubs):
    stub = stubs(Stream(["a", "b"], done=False, close_delimited=True))
    pool = UpstreamPool(settings(stub.url))
    try:
        events = await collect(pool)
        assert text_of(events) == "ab"
        assert isinstance(events[-1], StreamEnded) and events[-1].finish_reason == "stop"
    finally:
        await pool.aclose()


# ---- failover before the first token -----------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (Status(500, "engine exploded"), "http_5xx"),
        (Status(429, "queue full", retry_after=3), "http_429"),
        ("refused", "connect_error"),
        (Hang(after_headers=True), "first_token_timeout"),
        (Hang(after_headers=False), "first_token_timeout"),
    ],
    ids=["500", "429", "refused", "hang-after-headers", "hang-before-headers"],
)
async def test_failover_to_the_next_upstream(stubs, first, code):
    second = stubs(Stream(["from", " B"]))
    if first == "refused":
        first_url, first_stub = closed_port_url(), None
    else:
        first_stub = stubs(first)
        first_url = first_stub.url
    metrics = RecordingMetrics()
    pool = UpstreamPool(settings(first_url, second.url, first_token_timeout_s=0.4), metrics)
    try:
        events = await collect(pool)
        assert events[0] == StreamStarted(url=second.url, model="stub-model")
        assert text_of(events) == "from B"
        assert isinstance(events[-1], StreamEnded)
        assert metrics.failovers == [(first_url, code)]
        assert metrics.failures == [(first_url, code)]
        status = pool.status()
        # A 429 means busy, not broken: it fails over but does not count toward the breaker.
        expected_failures = 0 if code == "http_429" else 1
        assert status[0]["consecutive_failures"] == expected_failures
        assert status[0]["state"] == "closed"
        assert kind(status[0]["last_error"]) == code
        if first_stub is not None:
            assert len(first_stub.chat_requests) == 1
        if code == "http_429":
            assert "Retry-After 3" in status[0]["last_error"]
    finally:
        await pool.aclose()


async def test_connect_timeout_fails_over(stubs):
    second = stubs(Stream(["B"]))
    with blackhole() as dead:
        metrics = RecordingMetrics()
        pool = UpstreamPool(settings(dead, second.url, connect_timeout_s=0.2), metrics)
        try:
            events = await collect(pool)
        finally:
            await pool.aclose()
    assert events[0].url == second.url
    assert metrics.failovers == [(dead, "connect_timeout")]


async def test_4xx_is_not_failed_over(stubs):
    first = stubs(Status(400, "messages must not be empty"))
    second = stubs(Stream(["B"]))
    metrics = RecordingMetrics()
    pool = UpstreamPool(settings(first.url, second.url), metrics)
    try:
        with pytest.raises(UpstreamUnavailable) as info:
            await collect(pool)
        assert not isinstance(info.value, UpstreamTimeout)
        assert info.value.status == 400
        assert "messages must not be empty" in str(info.value)
        assert [kind(r) for _, r in info.value.attempts] == ["http_4xx"]
        assert second.chat_requests == []
        # Our own bad request says nothing about the upstream's health, but it is visible.
        assert pool.status()[0]["consecutive_failures"] == 0
        assert "messages must not be empty" in pool.status()[0]["last_error"]
        assert metrics.failures == [(first.url, "http_4xx")] and metrics.failovers == []
    finally:
        await pool.aclose()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_token_is_counted_logged_and_failed_over(stubs, caplog, status):
    wrong = stubs(Status(status, "invalid token"))
    good = stubs(Stream(["B"]))
    metrics = RecordingMetrics()
    pool = UpstreamPool(settings(wrong.url, good.url, breaker_failures=2), metrics)
    try:
        for _ in range(2):
            assert text_of(await collect(pool)) == "B"
        assert metrics.failures == [(wrong.url, "http_auth")] * 2
        assert metrics.opened == [wrong.url]
        first = pool.status()[0]
        assert first["state"] == "open" and f"HTTP {status}" in first["last_error"]
        assert "MOVIEMIND_EDGE_UPSTREAM_TOKEN" in first["last_error"]
        assert any(wrong.url in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        # Out of rotation: the next request goes straight to the good one.
        await collect(pool)
        assert len(wrong.chat_requests) == 2
    finally:
        await pool.aclose()


# ---- after the first token: no retry -----------------------------------------------------------


@pytest.mark.parametrize(
    ("behavior", "partial", "code"),
    [
        (Stream(["one", " two", " three", " four"], die_after=2), "one two", "read_error"),
        (
            Stream(["one", " two", " three"], die_after=1, close_delimited=True),
            "one",
            "stream_ended",
        ),
        (Garbage(["x", "y"]), "xy", "invalid_stream"),
    ],
    ids=["socket-closed", "closed-without-done", "invalid-sse"],
)
async def test_mid_stream_break_raises_broken_with_partial_text(stubs, behavior, partial, code):
    first = stubs(behavior)
    second = stubs(Stream(["never"]))
    metrics = RecordingMetrics()
    pool = UpstreamPool(settings(first.url, second.url), metrics)
    try:
        events, exc = await collect_until_error(pool)
        assert isinstance(exc, UpstreamBroken)
        assert exc.url == first.url
        assert exc.partial_text == partial
        assert kind(exc.reason) == code
        assert events[0] == StreamStarted(url=first.url, model="stub-model")
        assert text_of(events) == partial
        assert second.chat_requests == []  # never retried mid-stream
        assert metrics.failures == [(first.url, code)] and metrics.failovers == []
        assert pool.status()[0]["consecutive_failures"] == 1
    finally:
        await pool.aclose()


async def test_total_timeout_mid_stream_is_broken(stubs):
    stub = stubs(Stream(["slow", " and", " slower"], delay_s=0.6))
    pool = UpstreamPool(settings(stub.url, first_token_timeout_s=0.5, total_timeout_s=0.9))
    try:
        events, exc = await collect_until_error(pool)
        assert isinstance(exc, UpstreamBroken)
        assert kind(exc.reason) == "total_timeout"
        assert exc.partial_text == text_of(events) and exc.partial_text.startswith("slow")
    finally:
        await pool.aclose()


async def test_caller_closing_early_is_not_a_failure(stubs):
    stub = stubs(Stream(["a", "b", "c", "d"], delay_s=0.05))
    metrics = RecordingMetrics()
    pool = UpstreamPool(settings(stub.url), metrics)
    try:
        gen = pool.stream_chat(MESSAGES, max_tokens=8)
        assert isinstance(await anext(gen), StreamStarted)
        assert await anext(gen) == TokenDelta("a")
        await gen.aclose()
        assert metrics.failures == []
        assert text_of(await collect(pool)) == "abcd"
        assert pool.status()[0]["consecutive_failures"] == 0
    finally:
        await pool.aclose()


# ---- nothing can answer ------------------------------------------------------------------------


@pytest.mark.timeout(20)
async def test_all_down_lists_every_attempt(stubs):
    refused_a, refused_b = closed_port_url(), closed_port_url()
    with blackhole() as dead:
        pool = UpstreamPool(settings(refused_a, dead, refused_b, connect_timeout_s=0.2))
        try:
            with pytest.raises(UpstreamUnavailable) as info:
                await collect(pool)
        finally:
            await pool.aclose()
    exc = info.value
    assert not isinstance(exc, UpstreamTimeout)  # unreachable is 503, not 504
    assert [u for u, _ in exc.attempts] == [refused_a, dead, refused_b]
    assert [kind(r) for _, r in exc.attempts] == [
        "connect_error",
        "connect_timeout",
        "connect_error",
    ]


async def test_all_time_out_raises_upstream_timeout(stubs):
    a, b = stubs(Hang()), stubs(Hang(after_headers=False))
    pool = UpstreamPool(settings(a.url, b.url, first_token_timeout_s=0.3))
    try:
        with pytest.raises(UpstreamTimeout) as info:
            await collect(pool)
        assert [kind(r) for _, r in info.value.attempts] == ["first_token_timeout"] * 2
    finally:
        await pool.aclose()
