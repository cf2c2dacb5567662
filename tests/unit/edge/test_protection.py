"""edge.protection: the API key guard and the per-client rate limiter."""

from __future__ import annotations

import pytest

import edge.protection as protection
from edge.grounding import ground
from edge.protection import ApiKeyGuard, RateLimiter
from moviemind_core.catalog import Movie


def test_api_key_guard() -> None:
    assert ApiKeyGuard(None).allows({})
    g = ApiKeyGuard("s3cret")
    assert not g.allows({})
    assert g.allows({b"x-api-key": b"s3cret"})
    assert g.allows({b"authorization": b"Bearer s3cret"})
    assert g.allows({b"authorization": b"bearer  s3cret "})
    assert not g.allows({b"x-api-key": b"wrong"})
    assert not g.allows({b"authorization": b"Basic s3cret"})
    assert not g.allows({b"authorization": b"Bearer s3cre"})


def test_rate_limiter_bursts_then_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])
    limiter = RateLimiter(60)  # one a second, a burst of 10
    assert all(limiter.check("a") is None for _ in range(10))
    retry = limiter.check("a")
    assert retry == 1
    assert limiter.check("b") is None  # clients are counted apart
    now[0] += 2.0
    assert limiter.check("a") is None
    assert limiter.check("a") is None
    assert limiter.check("a") is not None
    slow = RateLimiter(6)  # one per 10 s, burst 1
    assert slow.check("c") is None
    assert slow.check("c") == 10


def test_rate_limiter_off_and_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(RateLimiter(0).check("a") is None for _ in range(1000))
    limiter = RateLimiter(600, max_clients=50)
    for i in range(200):
        assert limiter.check(f"10.0.0.{i}") is None
    assert len(limiter.buckets) <= 50


def test_ground_takes_the_title_a_line_starts_with() -> None:
    cands = [
        Movie(id=1, title="The Incredibles", year=2004),
        Movie(id=2, title="A Family Thing", year=1996),
    ]
    text = "A Family Thing (1996) - a warm comedy; better than The Incredibles (2004), say some."
    g = ground(text, cands, 1)
    assert [p.movie.id for p in g.picks] == [2]
    assert g.picks[0].reason.startswith("a warm comedy")
