"""The per-pick loop both prefill strategies share: one sentence per pick, gated, retried.

Each sentence is begun by the edge, finished by the model (assistant prefill), judged by the
gate, and tried again while the pick's token budget lasts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from edge.events import Reason, Token, WriterEvent
from edge.metrics import EdgeMetrics
from edge.prompt import build_reason_messages
from edge.reason_gate import TRUNCATED, GateContext
from edge.reasons.call import ModelCalls
from edge.reasons.draft import Draft, judge
from edge.reasons.protocol import Asked
from edge.wire import ReasonEvent
from moviemind_core.ranking import Scored

# A sentence needs room: a retry with fewer tokens left than this would end mid-sentence.
MIN_ATTEMPT_TOKENS = 12


@dataclass(frozen=True)
class Attempt:
    """How to ask for one pick's sentence once."""

    opening: str  # the sentence's start, written by the edge
    stops: list[str] | None
    extra: dict[str, Any]  # request fields beyond OpenAI's
    last: bool  # no further attempt follows for this pick, whatever the gate says


# vLLM's names for "continue the last message"; servers that read the last message's role
# (llama.cpp, moviemind) ignore them.
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


class PerPickWriter:
    """A `ReasonWriter` asking for each pick's sentence in turn; subclasses say how (`attempts`)."""

    # What the reasons metric says of a pick the model was never asked about.
    never_asked = TRUNCATED
    # Whether the prompt carries the pick's plot (free text needs it; guided choices carry facts).
    plot = True

    def __init__(
        self, asked: Asked, calls: ModelCalls, metrics: EdgeMetrics, reason_tokens: int
    ) -> None:
        self.asked = asked
        self.calls = calls
        self.metrics = metrics
        self.reason_tokens = reason_tokens

    def attempts(self, draft: Draft, pick: Scored, rejected: list[str]) -> Iterator[Attempt]:
        """The attempts for `pick`, in order; the next is asked for only when the gate rejected
        the last. `rejected`: this pick's lines the gate turned down so far."""
        raise NotImplementedError

    async def write(self, draft: Draft, deadline: float) -> AsyncIterator[WriterEvent]:
        """One sentence per pick; the pick's token budget (`reason_tokens`) is shared by its
        attempts. Upstream errors propagate: the answer ends there."""
        try:
            async for ev in self._write(draft, deadline):
                yield ev
        finally:
            self.calls.end()

    async def _write(self, draft: Draft, deadline: float) -> AsyncIterator[WriterEvent]:
        a = self.asked
        picks = tuple(s.movie for s in draft.picks)
        for i, s in enumerate(draft.picks):
            last_pick = i == len(draft.picks) - 1
            messages = build_reason_messages(a.liked, a.request.query, s.movie, plot=self.plot)
            ctx = GateContext(picks, tuple(a.liked), messages[-1]["content"], a.snapshot.vocabulary)
            budget = self.reason_tokens
            verdict: str | None = self.never_asked
            rejected: list[str] = []
            for attempt in self.attempts(draft, s, rejected):
                if budget < MIN_ATTEMPT_TOKENS:
                    break
                call = [*messages, {"role": "assistant", "content": attempt.opening}]
                async with asyncio.timeout_at(deadline):
                    out = await self.calls.complete(
                        call,
                        budget,
                        attempt.stops,
                        attempt.extra,
                        more=not (last_pick and attempt.last),
                    )
                budget -= max(out.tokens, 1)
                draft.model = draft.model or out.model
                line = f"{attempt.opening}{out.text}".strip()
                if out.finished and line and line[-1] not in ".!?":
                    line += "."  # the stop string (the sentence's own end) is not sent back
                draft.raw.append(f"{i + 1}. {line}\n")
                yield Token(f"{i + 1}. {line}\n")
                verdict, text = judge(draft, s.movie, line, out.finished, ctx)
                self.metrics.reason_attempts.labels(verdict or "shown").inc()
                if verdict is None:
                    draft.reasons[s.movie.id] = text
                    yield Reason(ReasonEvent(id=s.movie.id, rank=i + 1, reason=text))
                    break
                rejected.append(line)
            self.metrics.reasons.labels(verdict or "shown").inc()
