"""The interfaces of reason writing: the model tier it talks to and the writer itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from edge.events import WriterEvent
from edge.upstream.events import UpstreamEvent

if TYPE_CHECKING:
    from edge.index_store import Snapshot
    from edge.mood import Mood
    from edge.reasons.draft import Draft
    from edge.wire import RecommendRequest, Timings
    from moviemind_core.catalog import Movie


class ChatClient(Protocol):
    """The one call reason writing makes: a streamed chat completion (`UpstreamPool`'s)."""

    def stream_chat(
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
        """StreamStarted, TokenDelta*, StreamEnded; raises the errors of edge.upstream.errors."""
        ...

    async def end_answer(self, url: str, answer: str) -> bool:
        """The answer `answer` is done: the server at `url` may free the slot it keeps for it."""
        ...


class ModelTier(ChatClient, Protocol):
    """What the request path asks of the model servers besides chat."""

    async def supports(self, capability: str, patience_s: float = 2.0) -> bool:
        """Every answering model server advertises `capability` in GET /v1/models."""
        ...

    async def continues_final_message(self, patience_s: float = 2.0) -> bool:
        """Every answering model server continues a final assistant message (prefill)."""
        ...

    async def tokenizer_json(self) -> bytes | None:
        """The model's tokenizer.json, or None when no server offers it."""
        ...

    async def prime(self, messages: list[dict], patience_s: float = 120.0) -> int:
        """Put `messages` in every server's prefix cache; how many took it."""
        ...

    def status(self) -> list[dict]:
        """Per model server: url, breaker state, failures, last error."""
        ...


class Asked(Protocol):
    """What a writer reads of the prepared request (`edge.service.Prepared` has it all)."""

    snapshot: Snapshot
    request: RecommendRequest
    liked: list[Movie]
    mood: Mood
    timings: Timings
    model_started: float


class ReasonWriter(Protocol):
    """Writes model reasons into a draft, one strategy per implementation.

    `write` fills `draft.reasons` (gated text only) and yields a `Token` per raw model line
    and a `Reason` per reason that passed, by `deadline` (event-loop time). Model-tier failures
    propagate as the upstream errors; the caller ends the answer with catalog reasons at once.
    """

    def write(self, draft: Draft, deadline: float) -> AsyncIterator[WriterEvent]:
        """The events of writing `draft`'s reasons."""
        ...
