"""Every model call of one answer: read to its end, first token timed, the slot held between picks."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass

from edge.metrics import EdgeMetrics
from edge.reasons.protocol import Asked, ChatClient
from edge.upstream import StreamEnded, StreamStarted, TokenDelta

# The request field that names the answer a call belongs to (a moviemind model server extension,
# advertised as the `answer_hold` capability; other servers are never sent it).
HOLD_FIELD = "moviemind_answer"
# Fire-and-forget "answer done" notes in flight (a reference keeps each task alive).
_ENDING: set[asyncio.Task[bool]] = set()


@dataclass(frozen=True)
class Completion:
    """One model call's outcome."""

    text: str
    finished: bool  # ended by itself (not cut by max_tokens)
    model: str | None
    tokens: int


class ModelCalls:
    """The model calls of one answer.

    With `hold`, every call names the answer (`HOLD_FIELD`: id, and whether more of its calls
    follow) and goes first to the server that took the answer's previous call. That server keeps
    its slot for the answer's next pick instead of handing it to a newcomer between two picks: a
    full model tier then refuses new answers at their first call (a fast, degraded answer with
    catalog reasons) rather than breaking answers it has half written.
    """

    def __init__(
        self, client: ChatClient, metrics: EdgeMetrics, asked: Asked, *, hold: bool = False
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.asked = asked
        self.answer_id = uuid.uuid4().hex if hold else None
        self._served_by: str | None = None
        self._kept_by: str | None = None  # the server keeping a slot for the next call

    async def complete(
        self,
        messages: list[dict],
        max_tokens: int,
        stop: list[str] | None,
        extra: dict,
        *,
        more: bool = False,
    ) -> Completion:
        """One call, read to its end. `more`: another call of this answer follows."""
        parts: list[str] = []
        model = None
        finished = False
        used: int | None = None
        t0 = time.perf_counter()
        fields = {"repetition_penalty": 1.15, **extra}
        if self.answer_id is not None:
            fields[HOLD_FIELD] = {"id": self.answer_id, "more": more}
        async with contextlib.aclosing(
            self.client.stream_chat(
                messages,
                max_tokens=max_tokens,
                temperature=0.0,
                seed=1,
                stop=stop,
                # Small models loop ("comedy, comedy, ..."); a mild penalty keeps lines varied.
                extra=fields,
                prefer=self._served_by,
            )
        ) as events:
            async for ev in events:
                if isinstance(ev, StreamStarted):
                    model = ev.model
                    self._served_by = ev.url
                    if more and self.answer_id is not None:
                        # From here the server will keep a slot once this call ends, even if
                        # the edge abandons the call: `end` must reach it either way.
                        self._kept_by = ev.url
                    self._first_token(t0)
                elif isinstance(ev, TokenDelta):
                    parts.append(ev.text)
                elif isinstance(ev, StreamEnded):
                    finished = ev.finish_reason != "length"
                    used = ev.completion_tokens
        if self.answer_id is not None:
            self._kept_by = self._served_by if more else None
        # Servers that send no usage stream about one token per delta.
        return Completion("".join(parts), finished, model, len(parts) if used is None else used)

    def end(self) -> None:
        """The answer is done (written, failed or out of time): free the slot a server keeps for
        it now, in the background; the reply does not wait for it."""
        url, self._kept_by = self._kept_by, None
        if url is None or self.answer_id is None:
            return
        task = asyncio.get_running_loop().create_task(self.client.end_answer(url, self.answer_id))
        _ENDING.add(task)
        task.add_done_callback(_ENDING.discard)

    def _first_token(self, t0: float) -> None:
        timings = self.asked.timings
        if timings.llm_first_token is None:
            now = time.perf_counter()
            timings.llm_first_token = round((now - self.asked.model_started) * 1000, 3)
            self.metrics.first_token.observe(now - t0)
