"""What a caller of `UpstreamPool.stream_chat` receives, in order."""

from __future__ import annotations

import msgspec


class StreamStarted(msgspec.Struct):
    """The first content token arrived from `url`; from here on there is no failover."""

    url: str
    model: str | None


class TokenDelta(msgspec.Struct):
    """A piece of the answer, in order."""

    text: str


class StreamEnded(msgspec.Struct):
    """The upstream finished cleanly (`[DONE]` or a finish_reason)."""

    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


UpstreamEvent = StreamStarted | TokenDelta | StreamEnded
