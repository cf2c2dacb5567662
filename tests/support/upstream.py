"""Helpers for tests of the edge's upstream pool against OpenAI stubs on loopback."""

from __future__ import annotations

import json

import pytest

from edge.upstream import (
    REASONS,
    TokenDelta,
    UpstreamBroken,
    UpstreamPool,
    UpstreamSettings,
    UpstreamUnavailable,
)

# The smallest tokenizer.json the `tokenizers` library loads: a word-level vocabulary.
TOKENIZER_JSON = json.dumps(
    {
        "version": "1.0",
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "movie": 1}, "unk_token": "[UNK]"},
        "pre_tokenizer": {"type": "Whitespace"},
    }
).encode()
MESSAGES = [{"role": "system", "content": "You pick movies."}, {"role": "user", "content": "Hi"}]


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
