"""The edge's upstream client against scriptable OpenAI-compatible stubs on loopback.

Fault injection only (500, 429, refused, hangs, sockets closed mid-stream); the real model server
is exercised by the integration tests.
"""

from __future__ import annotations

import asyncio
import json

import anyio
import msgspec
import pytest

from edge.metrics import EdgeMetrics
from edge.prompt import ApproxCounter, HFCounter
from edge.service import Recommender
from edge.settings import EdgeSettings
from edge.sse import SSEDecoder, SSEError
from edge.upstream import (
    REASONS,
    StreamEnded,
    StreamStarted,
    TokenDelta,
    UpstreamBroken,
    UpstreamPool,
    UpstreamSettings,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.openai_stub import Garbage, Hang, OpenAIStub, Status, Stream, blackhole, closed_port_url

pytestmark = pytest.mark.anyio

# The smallest tokenizer.json the `tokenizers` library loads: a word-level vocabulary.
TOKENIZER_JSON = json.dumps(
    {
        "version": "1.0",
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "movie": 1}, "unk_token": "[UNK]"},
        "pre_tokenizer": {"type": "Whitespace"},
    }
).encode()
MESSAGES = [{"role": "system", "content": "You pick movies."}, {"role": "user", "content": "Hi"}]


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


class RecordingMetrics:
    def __init__(self) -> None:
        self.failovers: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str]] = []
        self.opened: list[str] = []

    def failover(self, url: str, reason: str) -> None:
        self.failovers.append((url, reason))

    def failure(self, url: str, reason: str) -> None:
        self.failures.append((url, reason))

    def breaker_open(self, url: str) -> None:
        self.opened.append(url)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(*urls: str, **kw) -> UpstreamSettings:
    base = dict(connect_timeout_s=0.5, first_token_timeout_s=3.0, total_timeout_s=15.0)
    base.update(kw)
    return UpstreamSettings(urls=tuple(urls), **base)


async def collect(pool: UpstreamPool, **kw) -> list:
    kw.setdefault("max_tokens", 16)
    return [ev async for ev in pool.stream_chat(MESSAGES, **kw)]


async def collect_until_error(pool: UpstreamPool) -> tuple[list, BaseException]:
    events: list = []
    with pytest.raises((UpstreamBroken, UpstreamUnavailable)) as info:
        async for ev in pool.stream_chat(MESSAGES, max_tokens=16):
            events.append(ev)
    return events, info.value


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenDelta))


def kind(reason: str) -> str:
    code = reason.split(":", 1)[0]
    assert code in REASONS
    return code


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


# ---- circuit breaker ---------------------------------------------------------------------------


async def test_breaker_opens_skips_then_probe_closes_it(stubs):
    bad = stubs(Status(500))
    good = stubs(Stream(["ok"]))
    metrics = RecordingMetrics()
    clock = FakeClock()
    pool = UpstreamPool(
        settings(bad.url, good.url, breaker_failures=2, breaker_cooldown_s=15), metrics, clock=clock
    )
    try:
        for _ in range(2):
            assert (await collect(pool))[0].url == good.url
        assert len(bad.chat_requests) == 2
        assert pool.status()[0]["state"] == "open"
        assert metrics.opened == [bad.url]

        # Open: the failing upstream is not contacted at all.
        clock.now += 5
        assert (await collect(pool))[0].url == good.url
        assert len(bad.chat_requests) == 2
        assert len(metrics.failovers) == 2  # skipping an open breaker is not a failover

        # After the cooldown one probe goes through; it succeeds and closes the breaker.
        clock.now += 11
        assert pool.status()[0]["state"] == "half_open"
        bad.default = Stream(["back"])
        events = await collect(pool)
        assert events[0].url == bad.url and text_of(events) == "back"
        assert len(bad.chat_requests) == 3
        assert pool.status()[0] == {
            "url": bad.url,
            "state": "closed",
            "consecutive_failures": 0,
            "last_error": "http_5xx: HTTP 500: stub failure",
        }
    finally:
        await pool.aclose()


async def test_failed_probe_reopens_the_breaker(stubs):
    bad = stubs(Status(503))
    good = stubs(Stream(["ok"]))
    metrics = RecordingMetrics()
    clock = FakeClock()
    pool = UpstreamPool(
        settings(bad.url, good.url, breaker_failures=1, breaker_cooldown_s=10), metrics, clock=clock
    )
    try:
        await collect(pool)
        clock.now += 10
        await collect(pool)  # the probe: fails, falls over to good
        assert len(bad.chat_requests) == 2
        assert metrics.opened == [bad.url, bad.url]
        assert pool.status()[0]["state"] == "open"
        clock.now += 9
        await collect(pool)
        assert len(bad.chat_requests) == 2  # a fresh cooldown started at the failed probe
    finally:
        await pool.aclose()


async def test_all_breakers_open_fails_fast_without_contact(stubs):
    bad = stubs(Status(500))
    clock = FakeClock()
    pool = UpstreamPool(settings(bad.url, breaker_failures=1, breaker_cooldown_s=10), clock=clock)
    try:
        with pytest.raises(UpstreamUnavailable):
            await collect(pool)
        with pytest.raises(UpstreamUnavailable) as info:
            await collect(pool)
        assert len(bad.chat_requests) == 1
        assert [kind(r) for _, r in info.value.attempts] == ["circuit_open"]
    finally:
        await pool.aclose()


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


# ---- settings and SSE decoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dict(urls=()),
        dict(urls=("ftp://x",)),
        dict(connect_timeout_s=0),
        dict(breaker_failures=0),
    ],
)
def test_bad_settings_are_one_clear_line(bad):
    with pytest.raises(ValueError) as info:
        UpstreamSettings(**bad)
    # "field: why", so the settings reader can name the variable (MOVIEMIND_EDGE_...)
    message = str(info.value)
    assert "\n" not in message and message.split(":")[0] in bad


def test_settings_from_env_style_mapping_are_validated():
    ok = msgspec.convert({"urls": ["http://a:1", "http://b:2"], "token": "t"}, UpstreamSettings)
    assert ok.urls == ("http://a:1", "http://b:2")
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({"urls": ["a:1"]}, UpstreamSettings)
    assert "must start with http://" in str(info.value)


def test_sse_decoder_handles_split_lines_crlf_comments_and_multiline_data():
    dec = SSEDecoder()
    out = []
    stream = (
        b': hello\r\n\r\ndata: {"a":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\r'
    )
    for i in range(len(stream)):  # one byte at a time: every split point
        out += dec.feed(stream[i : i + 1])
    out += dec.feed(b"\n\r\n")
    assert out == ['{"a":1}', "line1\nline2", "[DONE]"]
    assert dec.flush() == []


def test_sse_decoder_flush_and_limits():
    dec = SSEDecoder(max_line_bytes=64)
    assert dec.feed(b"data: [DONE]") == []
    assert dec.flush() == ["[DONE]"]
    with pytest.raises(SSEError):
        SSEDecoder(max_line_bytes=64).feed(b"data: " + b"x" * 100)
    with pytest.raises(SSEError):
        SSEDecoder().feed(b"data: \xff\xfe\n\n")


async def test_probe_without_verdict_lets_the_next_request_probe(stubs):
    bad = stubs(Status(500))
    clock = FakeClock()
    pool = UpstreamPool(settings(bad.url, breaker_failures=1, breaker_cooldown_s=10), clock=clock)
    try:
        with pytest.raises(UpstreamUnavailable):
            await collect(pool)
        clock.now += 10
        bad.script(Status(400, "bad request"))  # the probe is rejected: our fault, not its
        with pytest.raises(UpstreamUnavailable) as info:
            await collect(pool)
        assert info.value.status == 400
        assert pool.status()[0]["state"] == "half_open"
        bad.default = Stream(["up"])
        assert text_of(await collect(pool)) == "up"  # probes again at once, no new cooldown
        assert len(bad.chat_requests) == 3
        assert pool.status()[0]["state"] == "closed"
    finally:
        await pool.aclose()


async def test_only_one_probe_at_a_time(stubs):
    bad = stubs(Status(500))
    good = stubs(Stream(["B"]))
    clock = FakeClock()
    pool = UpstreamPool(
        settings(
            bad.url, good.url, breaker_failures=1, breaker_cooldown_s=10, first_token_timeout_s=1.0
        ),
        clock=clock,
    )
    try:
        await collect(pool)
        clock.now += 10
        bad.script(Hang(seconds=5))
        results: dict[str, list] = {}

        async def run(name: str) -> None:
            results[name] = await collect(pool)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "probe")
            with anyio.fail_after(5):
                while not bad.chat_requests[1:]:  # wait until the probe reached the upstream
                    await anyio.sleep(0.01)
            await run("other")
            assert results["other"][0].url == good.url  # skipped: the probe is in flight
        assert results["probe"][0].url == good.url  # the probe timed out and failed over
        assert len(bad.chat_requests) == 2
        assert pool.status()[0]["state"] == "open"
    finally:
        await pool.aclose()


async def test_a_busy_upstream_never_opens_its_breaker(stubs):
    busy = stubs(Status(429, "queue full", retry_after=1))
    spare = stubs(Stream(["ok"]))
    pool = UpstreamPool(settings(busy.url, spare.url, breaker_failures=2))
    try:
        for _ in range(4):
            assert text_of(await collect(pool)) == "ok"
        status = pool.status()
        assert status[0]["state"] == "closed" and status[0]["consecutive_failures"] == 0
        assert len(busy.chat_requests) == 4  # still asked first every time
    finally:
        await pool.aclose()
