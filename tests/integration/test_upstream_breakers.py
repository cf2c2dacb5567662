"""The upstream pool's circuit breakers in action, against stubs on loopback (the breaker's own
states are unit-tested in tests/unit/edge/test_breaker.py)."""

from __future__ import annotations

import anyio
import pytest

from edge.upstream import (
    UpstreamPool,
    UpstreamUnavailable,
)
from tests.support.openai_stub import Hang, Status, Stream
from tests.support.upstream import (
    FakeClock,
    RecordingMetrics,
    collect,
    kind,
    settings,
    text_of,
)

pytestmark = pytest.mark.anyio


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
