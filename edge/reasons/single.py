"""Single-call reasons: one answer for all picks, tied to them by grounding.

For upstreams that cannot continue a message, and for LLM_RERANK (the model orders the
candidates).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from edge.events import Reason, Token, WriterEvent
from edge.grounding import ground
from edge.metrics import EdgeMetrics
from edge.prompt import TokenCounter, build_prompt
from edge.reason_gate import GateContext
from edge.reasons.call import ModelCalls
from edge.reasons.draft import Draft, judge
from edge.reasons.protocol import Asked
from edge.settings import EdgeSettings
from edge.upstream import UpstreamBroken
from edge.wire import ReasonEvent
from moviemind_core.catalog import lookup_key


class SingleCallWriter:
    """A `ReasonWriter`: one numbered answer, each line grounded to a pick and gated."""

    def __init__(
        self,
        asked: Asked,
        calls: ModelCalls,
        metrics: EdgeMetrics,
        settings: EdgeSettings,
        counter: TokenCounter,
    ) -> None:
        self.asked = asked
        self.calls = calls
        self.metrics = metrics
        self.settings = settings
        self.counter = counter

    async def write(self, draft: Draft, deadline: float) -> AsyncIterator[WriterEvent]:
        """The one call; on a broken stream the lines received so far still count."""
        a, st = self.asked, self.settings
        titles = a.snapshot.bundle.titles
        prompt = build_prompt(
            a.liked,
            a.request.query,
            [s.movie for s in draft.picks],
            a.request.k,
            self.counter,
            st.prompt_tokens,
            needs_year=lambda m: len(titles.get(lookup_key(m.title), ())) > 1,
        )
        user_prompt = prompt.messages[-1]["content"]
        max_tokens = min(st.max_answer_tokens, st.reason_tokens * a.request.k + 16)
        try:
            async with asyncio.timeout_at(deadline):
                out = await self.calls.complete(prompt.messages, max_tokens, None, {})
        except UpstreamBroken as exc:
            self._ground(draft, exc.partial_text, user_prompt)
            raise
        draft.model = out.model
        draft.raw.append(out.text)
        yield Token(out.text)
        self._ground(draft, out.text, user_prompt)
        for i, s in enumerate(draft.picks):
            if s.movie.id in draft.reasons:
                yield Reason(
                    ReasonEvent(id=s.movie.id, rank=i + 1, reason=draft.reasons[s.movie.id])
                )

    def _ground(self, draft: Draft, text: str, user_prompt: str) -> None:
        """Tie the answer's lines to picks (reordering them only under LLM_RERANK)."""
        a = self.asked
        by_id = {s.movie.id: s for s in draft.picks}
        grounded = ground(
            text, [s.movie for s in draft.picks], a.request.k, exclude={m.id for m in a.liked}
        )
        draft.dropped = grounded.dropped
        if self.settings.llm_rerank:
            draft.picks = [by_id[pick.movie.id] for pick in grounded.picks]
        shown = tuple(s.movie for s in draft.picks)
        ctx = GateContext(shown, tuple(a.liked), user_prompt, a.snapshot.vocabulary)
        for pick in grounded.picks:
            if pick.reason and pick.movie.id in {m.id for m in shown}:
                verdict, reason = judge(draft, by_id[pick.movie.id].movie, pick.reason, True, ctx)
                self.metrics.reasons.labels(verdict or "shown").inc()
                if verdict is None:
                    draft.reasons[pick.movie.id] = reason
