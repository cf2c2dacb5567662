"""Reading an OpenAI chat-completions SSE stream: chunks, deadlines, error bodies."""

from __future__ import annotations

import asyncio
from collections import deque

import httpx
import msgspec

from edge.sse import SSEDecoder
from edge.upstream.errors import INVALID_STREAM, UPSTREAM_ERROR, AttemptFailed

# ---- wire format of a chat.completion.chunk (only what we read) --------------------------------


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _ErrorObj(msgspec.Struct):
    message: str = ""


class _Chunk(msgspec.Struct):
    choices: list[_Choice] | None = None
    usage: Usage | None = None
    model: str | None = None
    error: _ErrorObj | str | None = None


class _ModelEntry(msgspec.Struct):
    id: str
    # What the server can do beyond plain chat, e.g. {"continue_final_message": true}.
    capabilities: dict[str, bool] = {}


class _ModelList(msgspec.Struct):
    data: list[_ModelEntry] = []


CHUNK_DECODER = msgspec.json.Decoder(_Chunk)
MODELS_DECODER = msgspec.json.Decoder(_ModelList)
ERROR_BODY_LIMIT = 16 * 1024
# After [DONE] the rest of the HTTP body (the chunked terminator) is read so the connection can
# be reused; it is normally in the same packet, so this only bounds a misbehaving server.
DRAIN_S = 0.25


class EventStream:
    """An open SSE response: reads `data` payloads against a deadline, never across a yield."""

    __slots__ = ("_decoder", "_eof", "_it", "_pending", "response")

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._it = response.aiter_bytes()
        self._decoder = SSEDecoder()
        self._pending: deque[str] = deque()
        self._eof = False

    async def next_data(self, deadline: float) -> str | None:
        """The next event's data, or None at end of stream. Raises TimeoutError at `deadline`."""
        while not self._pending:
            if self._eof:
                return None
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(self._it)
            except StopAsyncIteration:
                self._eof = True
                self._pending.extend(self._decoder.flush())
                continue
            self._pending.extend(self._decoder.feed(chunk))
        return self._pending.popleft()

    async def drain(self, deadline: float) -> None:
        """Read to the end of the HTTP body so the keep-alive connection goes back to the pool."""
        try:
            async with asyncio.timeout_at(deadline):
                async for _ in self._it:
                    pass
        except (TimeoutError, httpx.HTTPError):
            pass  # the response is closed right after; the connection is simply not reused

    async def aclose(self) -> None:
        await self.response.aclose()


class Parsed:
    """What one chunk says, reduced to the fields we use."""

    __slots__ = ("done", "finish_reason", "model", "text", "usage")

    def __init__(self) -> None:
        self.done = False
        self.text = ""
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.model: str | None = None


def parse_data(data: str) -> Parsed:
    """One SSE `data` payload -> Parsed; raises AttemptFailed on invalid JSON or an in-stream error."""
    out = Parsed()
    if data.strip() == "[DONE]":
        out.done = True
        return out
    try:
        chunk = CHUNK_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise AttemptFailed(INVALID_STREAM, f"bad chunk {data[:80]!r}: {exc}") from None
    if chunk.error is not None:
        msg = chunk.error if isinstance(chunk.error, str) else chunk.error.message
        raise AttemptFailed(UPSTREAM_ERROR, msg[:200] or "error event without a message")
    if chunk.choices:
        choice = chunk.choices[0]
        if choice.delta is not None and choice.delta.content:
            out.text = choice.delta.content
        out.finish_reason = choice.finish_reason
    out.usage = chunk.usage
    out.model = chunk.model
    return out


def error_message(body: bytes) -> str:
    """The upstream's own error text from an OpenAI / Litestar / plain error body."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace").strip()[:300] or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:300]
        if isinstance(err, str):
            return err[:300]
        if isinstance(obj.get("detail"), str):
            return obj["detail"][:300]
        if isinstance(obj.get("message"), str):
            return obj["message"][:300]
    return body.decode("utf-8", "replace").strip()[:300]
