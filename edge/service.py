"""What the edge does per request, independent of HTTP: preparation, then the answer.

Preparation (resolve, parse the mood, rank) gives a `Prepared`; the answer shows the picks with
catalog reasons, then asks a reason writer (edge/reasons/, one per strategy) for model reasons
and ends with typed events (edge/events.py). A model tier that is full or breaks ends the
answer at once: the picks stand, with catalog reasons where the model wrote none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from edge.catalog_notes import catalog_info, unresolved_notes
from edge.events import AnswerEvent, Degraded, Failure, Reason, Result
from edge.metrics import EdgeMetrics
from edge.preparation import Preparation, Prepared, ms
from edge.prompt import REASON_SYSTEM_PROMPT, TokenCounter, build_prompt
from edge.reasons.catalog import closest_liked, metadata_reason
from edge.reasons.choose import writer_for
from edge.reasons.draft import Draft
from edge.reasons.protocol import ModelTier
from edge.reasons.tokens import ModelTokens
from edge.settings import EdgeSettings
from edge.upstream import UpstreamBroken, UpstreamTimeout, UpstreamUnavailable
from edge.wire import (
    LikedRef,
    Recommendation,
    RecommendRequest,
    RecommendResponse,
    movie_extras,
    movie_out,
)
from moviemind_core.ranking import Scored

__all__ = ["Draft", "Prepared", "Recommender", "closest_liked", "metadata_reason", "movie_out"]


log = logging.getLogger("moviemind.edge.service")


class Recommender:
    """The edge's request logic; `app.py` only maps HTTP onto it."""

    def __init__(self, settings: EdgeSettings, upstream: ModelTier, metrics: EdgeMetrics) -> None:
        self.settings = settings
        self.upstream = upstream
        self.metrics = metrics
        self.tokens = ModelTokens(upstream)
        # Resolve, parse, build the RankQuery and rank: edge/preparation.py.
        self.preparation = Preparation(settings, metrics)
        self.search = self.preparation.search
        self.prepare = self.preparation.prepare

    async def token_counter(self, *, wait: bool = False) -> TokenCounter:
        """The model's own tokenizer once the upstream has served it; an estimate until then
        (see `ModelTokens.counter`)."""
        return await self.tokens.counter(wait=wait)

    async def prime_prefix(self) -> int:
        """Put the fixed start of every prompt into each model server's prefix cache, so the
        first user's request is as fast as the rest; returns how many servers took it."""
        try:
            counter = await self.token_counter(wait=True)
            if self.settings.llm_rerank:
                k = RecommendRequest().k  # the request line is part of the prefix: prime it
                prompt = build_prompt([], "", [], k, counter, self.settings.prompt_tokens)
                messages = prompt.messages
            else:
                messages = [{"role": "system", "content": REASON_SYSTEM_PROMPT}]
            primed = await self.upstream.prime(messages)
        except Exception as exc:  # an optimisation: never let it disturb start-up
            log.warning("prefix priming failed: %s: %s", type(exc).__name__, exc)
            return 0
        log.info(
            "primed the prefix cache of %d of %d model server(s)",
            primed,
            len(self.settings.upstream.urls),
        )
        return primed

    def _recommendation(self, p: Prepared, s: Scored, reason: str | None) -> Recommendation:
        m = s.movie
        best = closest_liked(m, p.liked, p.snapshot, s.because)
        return Recommendation(
            id=m.id,
            title=m.title,
            year=m.year,
            genres=list(m.genres),
            score=round(s.score, 4),
            reason=reason or metadata_reason(m, best, p.request.query.strip()),
            reason_source="model" if reason else "catalog",
            because=LikedRef(id=best.id, title=best.title, year=best.year) if best else None,
            **movie_extras(m),
        )

    def catalog_notes(self, p: Prepared) -> dict[str, Any]:
        """The reply's `catalog` (source, year range) and a note per unresolved liked title."""
        info = catalog_info(p.snapshot.bundle, self.settings.image_base)
        return {
            "catalog": info,
            "unresolved_notes": unresolved_notes(p.unresolved, p.request.liked_ids, info),
        }

    def shown_first(self, p: Prepared) -> list[Recommendation]:
        """What the client sees before the model has written anything: the ranker's picks (all
        candidates when the model may reorder them) with catalog reasons."""
        picks = (
            p.ranked if self.settings.llm_rerank and p.request.explain else p.ranked[: p.request.k]
        )
        return [self._recommendation(p, s, None) for s in picks]

    def finish(
        self, p: Prepared, draft: Draft, degraded: Degraded | None = None
    ) -> RecommendResponse:
        """The final answer: the draft's picks, each with its gated model reason or the catalog's."""
        if draft.dropped:
            self.metrics.dropped_titles.inc(len(draft.dropped))
        if degraded is not None:
            self.metrics.degraded.labels(degraded.value).inc()
        p.timings.total = ms(time.perf_counter() - p.started)
        recs = [self._recommendation(p, s, draft.reasons.get(s.movie.id)) for s in draft.picks]
        # Only gated text: the model's reasons that passed, one line per pick (each names its
        # movie: the edge began the sentence with the title).
        lines = [r.reason for r in recs if r.reason_source == "model"]
        raw = "".join(draft.raw)
        return RecommendResponse(
            recommendations=recs,
            resolved_liked=p.resolved,
            unresolved_liked=p.unresolved,
            explanation="\n".join(lines) or None,
            degraded=degraded is not None,
            degraded_reason=degraded.wire() if degraded is not None else None,
            model=draft.model,
            timings_ms=p.timings,
            dropped_titles=draft.dropped,
            index_version=p.snapshot.version,
            **self.catalog_notes(p),
            raw_model_text=raw if p.request.debug and raw else None,
        )

    async def answer(self, p: Prepared) -> AsyncIterator[AnswerEvent]:
        """The answer as events: (Reason | Token)* (tokens only with debug), maybe a Failure,
        then the Result.

        The ranker's picks stand whatever the model does; the model only adds reasons, within
        REASONS_TIMEOUT_S in all. No model, a full one, a broken one or a slow one: the answer
        ends there, at once, with catalog reasons where the model wrote none.
        """
        draft = Draft(picks=list(p.ranked[: p.request.k]))
        if not p.request.explain:
            yield Result(self.finish(p, draft))
            return
        p.model_started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.settings.reasons_timeout_s
        if self.settings.llm_rerank:
            draft.picks = list(p.ranked)
        writer = await writer_for(p, self.upstream, self.metrics, self.settings, self.tokens)
        degraded: Degraded | None = None
        try:
            async with contextlib.aclosing(writer.write(draft, deadline)) as events:
                async for ev in events:
                    if isinstance(ev, Reason) or p.request.debug:
                        yield ev
        except UpstreamBroken:
            yield Failure(
                "upstream_broken",
                "the model server stopped mid-answer; the rest of the reasons come from the "
                "catalog",
            )
            degraded = Degraded.UPSTREAM_BROKEN
        except UpstreamTimeout:
            degraded = Degraded.UPSTREAM_TIMEOUT
        except UpstreamUnavailable:
            if (
                draft.model is not None
            ):  # it answered for earlier picks, then went away or filled up
                yield Failure("upstream_broken", "the model server went away mid-answer")
                degraded = Degraded.UPSTREAM_BROKEN
            else:
                degraded = Degraded.UPSTREAM_UNAVAILABLE
        except TimeoutError:
            # The reasons budget ran out: the picks written so far keep the model's reasons.
            self.metrics.reasons.labels("timeout").inc()
        if len(draft.picks) > p.request.k:
            draft.picks = draft.picks[: p.request.k]
        p.timings.llm_total = ms(time.perf_counter() - p.model_started)
        yield Result(self.finish(p, draft, degraded))

    async def recommend(self, p: Prepared) -> RecommendResponse:
        """Non-streaming recommend: the ranker's picks with gated model reasons where written."""
        async for ev in self.answer(p):
            if isinstance(ev, Result):
                return ev.response
        raise AssertionError("answer() always ends with a result")
