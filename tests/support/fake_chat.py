"""A model tier in memory: the interface of `UpstreamPool` that the request path uses, with
scripted replies, so the request path runs in unit tests without servers or sockets.

    tier = FakeChat(replies=[first_choice, Unavailable()])   # then `default` for the rest
    ... tier.calls (what was asked), tier.ended (answers said done) ...
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from edge.upstream import (
    StreamEnded,
    StreamStarted,
    TokenDelta,
    UpstreamBroken,
    UpstreamEvent,
    UpstreamTimeout,
    UpstreamUnavailable,
)


@dataclass
class Call:
    """One stream_chat call as the fake received it."""

    messages: list[dict]
    max_tokens: int
    stop: list[str] | None
    extra: dict
    prefer: str | None
    at: float  # event-loop time


@dataclass(frozen=True)
class Text:
    """Stream `text` (in pieces of a few characters), then end with `finish`."""

    text: str
    finish: str = "stop"
    delay_s: float = 0.0


@dataclass(frozen=True)
class Unavailable:
    """No server could start (every one full or down): raised before anything is streamed."""

    reason: str = "http_429: HTTP 429: queue full"
    timeout: bool = False


@dataclass(frozen=True)
class Broken:
    """Start, stream `partial`, then break mid-answer."""

    partial: str = "half a sent"


@dataclass(frozen=True)
class Hang:
    """Start, then stream nothing for `seconds`."""

    seconds: float = 30.0


Reply = Text | Unavailable | Broken | Hang
Replier = Callable[[Call], Reply]


def first_choice(call: Call) -> Reply:
    """What a model server with guided choice may answer: the first choice offered; else a
    plain sentence."""
    choices = call.extra.get("guided_choice")
    return Text(choices[0] if choices else " a tense, well-made film.")


@dataclass
class FakeChat:
    """`replies` answer the calls in order (each a Reply or a function of the call), then
    `default` answers the rest."""

    replies: Iterable[Reply | Replier] = ()
    default: Reply | Replier = first_choice
    capabilities: dict[str, bool] = field(
        default_factory=lambda: {"continue_final_message": True, "guided_choice": True}
    )
    urls: tuple[str, ...] = ("http://near.invalid", "http://far.invalid")
    model: str = "fake-model"
    tokenizer: bytes | None = None

    def __post_init__(self) -> None:
        self._queue: deque[Reply | Replier] = deque(self.replies)
        self.calls: list[Call] = []
        self.ended: list[tuple[str, str]] = []
        self.failed_at: float | None = None  # loop time of the first scripted failure

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        seed: int | None = None,
        extra: dict | None = None,
        prefer: str | None = None,
    ) -> AsyncIterator[UpstreamEvent]:
        """Like `UpstreamPool.stream_chat`: the preferred URL serves, else the first."""
        loop = asyncio.get_running_loop()
        call = Call(messages, max_tokens, stop, dict(extra or {}), prefer, loop.time())
        self.calls.append(call)
        step = self._queue.popleft() if self._queue else self.default
        reply = step if isinstance(step, Text | Unavailable | Broken | Hang) else step(call)
        url = prefer if prefer in self.urls else self.urls[0]
        if isinstance(reply, Unavailable):
            self.failed_at = self.failed_at or loop.time()
            attempts = [(u, reply.reason) for u in self.urls]
            kind = UpstreamTimeout if reply.timeout else UpstreamUnavailable
            raise kind(f"no upstream could answer: {reply.reason}", attempts)
        yield StreamStarted(url=url, model=self.model)
        if isinstance(reply, Hang):
            await asyncio.sleep(reply.seconds)
            return
        if isinstance(reply, Broken):
            yield TokenDelta(reply.partial)
            self.failed_at = self.failed_at or loop.time()
            raise UpstreamBroken(url, reply.partial, "read_error: connection reset")
        pieces = [reply.text[i : i + 4] for i in range(0, len(reply.text), 4)]
        for piece in pieces:
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            yield TokenDelta(piece)
        yield StreamEnded(
            finish_reason=reply.finish, prompt_tokens=9, completion_tokens=len(pieces)
        )

    async def end_answer(self, url: str, answer: str) -> bool:
        """Recorded in `ended`."""
        self.ended.append((url, answer))
        return True

    async def supports(self, capability: str, patience_s: float = 2.0) -> bool:
        """From `capabilities`."""
        return bool(self.capabilities.get(capability))

    async def continues_final_message(self, patience_s: float = 2.0) -> bool:
        """Prefill, from `capabilities`."""
        return await self.supports("continue_final_message")

    async def tokenizer_json(self) -> bytes | None:
        """`tokenizer` (None: the edge counts with its estimate)."""
        return self.tokenizer

    async def prime(self, messages: list[dict], patience_s: float = 120.0) -> int:
        """Nothing to prime; every server 'took' it."""
        return len(self.urls)

    def status(self) -> list[dict]:
        """Every fake server closed and healthy."""
        return [
            {"url": u, "state": "closed", "consecutive_failures": 0, "last_error": None}
            for u in self.urls
        ]
