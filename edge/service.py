"""What the edge does per request, independent of HTTP: resolve, embed, rank, prompt, ground.

Over 400 lines on purpose: one request's life (resolve, rank, ask the model pick by pick, gate,
ground, finish) reads top to bottom; the pieces with a single job live in their own modules
(mood, titles, prompt, reason_gate, grounding, upstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from edge.catalog_notes import catalog_info, unresolved_notes
from edge.grounding import ground
from edge.index_store import Snapshot
from edge.metrics import EdgeMetrics
from edge.preparation import Preparation, Prepared, ms
from edge.prompt import (
    REASON_STOPS,
    REASON_SYSTEM_PROMPT,
    ApproxCounter,
    HFCounter,
    TokenCounter,
    build_prompt,
    build_reason_messages,
    choice_opening,
    reason_openings,
)
from edge.reason_choices import Focus, focus_of, reason_choices, varied
from edge.reason_gate import TRUNCATED, GateContext, check, clean, repeats
from edge.settings import EdgeSettings
from edge.steering import Steering
from edge.upstream import (
    StreamEnded,
    StreamStarted,
    TokenDelta,
    UpstreamBroken,
    UpstreamPool,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from edge.wire import (
    LikedRef,
    ReasonEvent,
    Recommendation,
    RecommendRequest,
    RecommendResponse,
    movie_extras,
)
from moviemind_core.catalog import Movie, lookup_key
from moviemind_core.ranking import Scored

# A sentence needs room: a retry with fewer tokens left than this would end mid-sentence.
MIN_ATTEMPT_TOKENS = 12
# The reasons metric's label for a pick whose catalog entry is too thin for any sentence
# (guided choice): the model is not asked and the catalog's reason stays.
NO_CHOICES = "no_choices"

log = logging.getLogger("moviemind.edge.service")


def closest_liked(
    m: Movie, liked: list[Movie], snapshot: Snapshot, because: int | None = None
) -> Movie | None:
    """The liked movie a pick is closest to: the one the ranker credits (`because`), else the
    nearest by embedding; None without liked movies."""
    if not liked:
        return None
    credited = [lm for lm in liked if lm.id == because]
    if credited:
        return credited[0]
    vec = snapshot.bundle.vector(m.id)
    if vec is None:
        return liked[0]
    return max(liked, key=lambda lm: float(snapshot.bundle.vector(lm.id) @ vec))


def metadata_reason(m: Movie, best: Movie | None, query: str) -> str:
    """A reason built from catalog data alone: shown first, and wherever no model reason passes
    the gate. `best` is the liked movie the pick is closest to (`closest_liked`), if any."""
    parts = []
    # IMAX is a screen format MovieLens files among the genres, not a reason.
    genres = [g for g in m.genres if g != "IMAX"]
    if best is not None:
        shared = [g for g in genres if g in best.genres]
        parts.append(
            f"Close to {best.title}" + (f": also {', '.join(shared[:3]).lower()}" if shared else "")
        )
    elif query:
        parts.append(
            f"Matches \u201c{query[:60]}\u201d"
            + (f": {', '.join(genres[:3]).lower()}" if genres else "")
        )
    if m.keywords:
        parts.append(", ".join(m.keywords[:3]))
    if m.vote_count:
        parts.append(
            f"rated {m.vote_average:.1f}/10 by {m.vote_count} viewer"
            + ("s" if m.vote_count != 1 else "")
        )
    return "; ".join(parts) + "."


@dataclass
class Draft:
    """An answer being written: the picks in their shown order and the reasons that passed."""

    picks: list[Scored]
    reasons: dict[int, str] = field(default_factory=dict)
    raw: list[str] = field(default_factory=list)
    model: str | None = None
    dropped: list[str] = field(default_factory=list)


class Recommender:
    """The edge's request logic; `app.py` only maps HTTP onto it."""

    def __init__(
        self, settings: EdgeSettings, upstream: UpstreamPool, metrics: EdgeMetrics
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.metrics = metrics
        self._counter: TokenCounter | None = None
        self._counter_fetch: asyncio.Task[None] | None = None
        self._steering: Steering | None = None
        # Resolve, parse, build the RankQuery and rank: edge/preparation.py.
        self.preparation = Preparation(settings, metrics)
        self.search = self.preparation.search
        self.prepare = self.preparation.prepare

    async def token_counter(self, *, wait: bool = False) -> TokenCounter:
        """The model's own tokenizer once the upstream has served it; an estimate until then.

        A request never waits for the tokenizer (an upstream that hangs would hold every request
        behind the fetch): it starts or joins one fetch in the background and counts with the
        estimate meanwhile. `wait=True` (start-up priming) waits for that fetch.
        """
        if self._counter is None:
            if self._counter_fetch is None or self._counter_fetch.done():
                self._counter_fetch = asyncio.create_task(self._fetch_counter())
            if wait:
                await asyncio.shield(self._counter_fetch)
        return self._counter or ApproxCounter()

    async def _fetch_counter(self) -> None:
        try:
            raw = await self.upstream.tokenizer_json()
        except Exception as exc:  # the estimate is a working fallback; say why it is in use
            log.warning("no tokenizer from the model servers: %s: %s", type(exc).__name__, exc)
            return
        if raw:
            self._counter = HFCounter(raw)

    async def steering(self) -> Steering | None:
        """logit_bias maps in the model's tokens, once its tokenizer is known; None until then
        (and for upstreams that serve no tokenizer): the gate alone judges those lines."""
        counter = await self.token_counter()
        if self._steering is None and isinstance(counter, HFCounter):
            self._steering = Steering(counter.tok)
        return self._steering

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

    def _recommendation(
        self, p: Prepared, rank: int, s: Scored, reason: str | None
    ) -> Recommendation:
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
        return [self._recommendation(p, i, s, None) for i, s in enumerate(picks)]

    def finish(
        self,
        p: Prepared,
        draft: Draft,
        *,
        degraded_reason: str | None = None,
    ) -> RecommendResponse:
        """The final answer: the draft's picks, each with its gated model reason or the catalog's."""
        if draft.dropped:
            self.metrics.dropped_titles.inc(len(draft.dropped))
        if degraded_reason:
            self.metrics.degraded.labels(degraded_reason.split(":")[0]).inc()
        p.timings.total = ms(time.perf_counter() - p.started)
        recs = [
            self._recommendation(p, i, s, draft.reasons.get(s.movie.id))
            for i, s in enumerate(draft.picks)
        ]
        # Only gated text: the model's reasons that passed, one line per pick (each names its
        # movie: the edge began the sentence with the title).
        lines = [r.reason for r in recs if r.reason_source == "model"]
        raw = "".join(draft.raw)
        return RecommendResponse(
            recommendations=recs,
            resolved_liked=p.resolved,
            unresolved_liked=p.unresolved,
            explanation="\n".join(lines) or None,
            degraded=degraded_reason is not None,
            degraded_reason=degraded_reason,
            model=draft.model,
            timings_ms=p.timings,
            dropped_titles=draft.dropped,
            index_version=p.snapshot.version,
            **self.catalog_notes(p),
            raw_model_text=raw if p.request.debug and raw else None,
        )

    async def _complete(
        self,
        p: Prepared,
        messages: list[dict],
        max_tokens: int,
        stop: list[str] | None,
        extra: dict,
    ) -> tuple[str, bool, str | None, int]:
        """One model call, read to its end: (text, finished by itself, model name, tokens)."""
        parts: list[str] = []
        model = None
        finished = False
        used: int | None = None
        t0 = time.perf_counter()
        async with contextlib.aclosing(
            self.upstream.stream_chat(
                messages,
                max_tokens=max_tokens,
                temperature=0.0,
                seed=1,
                stop=stop,
                # Small models loop ("comedy, comedy, ..."); a mild penalty keeps lines varied.
                extra={"repetition_penalty": 1.15, **extra},
            )
        ) as events:
            async for ev in events:
                if isinstance(ev, StreamStarted):
                    model = ev.model
                    if p.timings.llm_first_token is None:
                        p.timings.llm_first_token = ms(time.perf_counter() - p.model_started)
                        self.metrics.first_token.observe(time.perf_counter() - t0)
                elif isinstance(ev, TokenDelta):
                    parts.append(ev.text)
                elif isinstance(ev, StreamEnded):
                    finished = ev.finish_reason != "length"
                    used = ev.completion_tokens
        # Servers that send no usage stream about one token per delta.
        return "".join(parts), finished, model, len(parts) if used is None else used

    def _gate(
        self, p: Prepared, draft: Draft, s: Scored, raw: str, finished: bool, ctx: GateContext
    ) -> str | None:
        """The reason to show for pick `s` from the model's `raw` line, or None (counted)."""
        verdict, text = self._verdict(draft, s, raw, finished, ctx)
        self.metrics.reasons.labels(verdict or "shown").inc()
        return text if verdict is None else None

    def _verdict(
        self, draft: Draft, s: Scored, raw: str, finished: bool, ctx: GateContext
    ) -> tuple[str | None, str]:
        text = clean(raw, finished)
        verdict = check(text, s.movie, ctx, list(draft.reasons.values())) if text else TRUNCATED
        return verdict, text

    def _attempts(
        self,
        p: Prepared,
        draft: Draft,
        s: Scored,
        steering: Steering | None,
        focus: Focus | None,
        rejected: list[str],
    ) -> Iterator[tuple[str, list[str] | None, dict[str, Any]]]:
        """How to ask for pick `s`'s sentence: (opening, stop strings, extra request fields) per
        attempt, in order; the next is only asked for when the gate rejected the last. With
        guided choice (with a `focus`: what the request asks for) the model picks one of the
        sentences the catalog backs, and once more (without the rejected one and those too like
        reasons already shown) if the gate says no. Otherwise the openings in turn, free text steered by logit_bias. `rejected`: the
        caller's list of this pick's sentences the gate turned down so far, read as each next
        attempt is built."""
        # vLLM's names for "continue the last message"; servers that read the last message's
        # role (llama.cpp, moviemind) ignore them.
        base: dict[str, Any] = {"continue_final_message": True, "add_generation_prompt": False}
        if focus is not None:
            opening = choice_opening(s.movie)
            choices = varied(
                reason_choices(s.movie, p.snapshot.people, focus), list(draft.reasons.values())
            )
            if not choices:
                return  # too little in the catalog for a sentence: its own reason stays
            # No stop strings: a choice may hold a period ("William H. Macy") and ends itself.
            # No repetition penalty: every choice repeats words the prompt holds.
            base |= {"repetition_penalty": 1.0}
            yield opening, None, {**base, "guided_choice": choices}
            earlier = list(draft.reasons.values())
            rest = [
                c
                for c in choices
                if opening + c not in rejected and not repeats(opening + c, earlier)
            ]
            if rest:
                yield opening, None, {**base, "guided_choice": rest}
            return
        if steering is not None:
            base["logit_bias"] = steering.bias_for(s.movie)
        for opening in reason_openings(s.movie):
            yield opening, REASON_STOPS, base

    async def _guided(
        self, p: Prepared, draft: Draft, deadline: float, choose: bool
    ) -> AsyncIterator[tuple[str, Any]]:
        """One sentence per pick, begun by the edge ("Braveheart is") and finished by the model
        (assistant prefill): with guided choice, as one of the catalog-backed sentences
        (edge/reason_choices.py); otherwise as free text steered away from known failures
        (logit_bias) and stopped at the sentence's end, tried again from the next opening while
        the pick's token budget (REASON_TOKENS, shared by its attempts) lasts. The gate judges
        every sentence either way."""
        picks = tuple(s.movie for s in draft.picks)
        steering = None if choose else await self.steering()
        focus = focus_of(p.mood, p.liked) if choose else None
        for i, s in enumerate(draft.picks):
            messages = build_reason_messages(p.liked, p.request.query, s.movie, plot=not choose)
            ctx = GateContext(picks, tuple(p.liked), messages[-1]["content"], p.snapshot.vocabulary)
            budget = self.settings.reason_tokens
            # What the metric says of a pick the model was never asked about.
            verdict: str | None = NO_CHOICES if choose else TRUNCATED
            rejected: list[str] = []
            for opening, stops, extra in self._attempts(p, draft, s, steering, focus, rejected):
                if budget < MIN_ATTEMPT_TOKENS:
                    break
                call = [*messages, {"role": "assistant", "content": opening}]
                async with asyncio.timeout_at(deadline):
                    raw, finished, model, used = await self._complete(p, call, budget, stops, extra)
                budget -= max(used, 1)
                draft.model = draft.model or model
                line = f"{opening}{raw}".strip()
                if finished and line and line[-1] not in ".!?":
                    line += "."  # the stop string (the sentence's own end) is not sent back
                draft.raw.append(f"{i + 1}. {line}\n")
                yield "token", f"{i + 1}. {line}\n"
                verdict, text = self._verdict(draft, s, line, finished, ctx)
                self.metrics.reason_attempts.labels(verdict or "shown").inc()
                if verdict is None:
                    draft.reasons[s.movie.id] = text
                    yield "reason", ReasonEvent(id=s.movie.id, rank=i + 1, reason=text)
                    break
                rejected.append(line)
            self.metrics.reasons.labels(verdict or "shown").inc()

    async def _single(
        self, p: Prepared, draft: Draft, deadline: float
    ) -> AsyncIterator[tuple[str, Any]]:
        """Today's one answer for all picks, tied to the candidates by grounding: for upstreams
        that cannot continue a message, and for LLM_RERANK (the model orders the candidates)."""
        counter = await self.token_counter()
        candidates = [s.movie for s in draft.picks]
        prompt = build_prompt(
            p.liked,
            p.request.query,
            candidates,
            p.request.k,
            counter,
            self.settings.prompt_tokens,
            needs_year=lambda m: len(p.snapshot.bundle.titles.get(lookup_key(m.title), ())) > 1,
        )
        max_tokens = min(
            self.settings.max_answer_tokens, self.settings.reason_tokens * p.request.k + 16
        )
        try:
            async with asyncio.timeout_at(deadline):
                text, _, draft.model, _ = await self._complete(
                    p, prompt.messages, max_tokens, None, {}
                )
        except UpstreamBroken as exc:
            text = exc.partial_text
            self._ground(p, draft, text, prompt.messages[-1]["content"])
            raise
        draft.raw.append(text)
        yield "token", text
        self._ground(p, draft, text, prompt.messages[-1]["content"])
        for i, s in enumerate(draft.picks):
            if s.movie.id in draft.reasons:
                yield (
                    "reason",
                    ReasonEvent(id=s.movie.id, rank=i + 1, reason=draft.reasons[s.movie.id]),
                )

    def _ground(self, p: Prepared, draft: Draft, text: str, user_prompt: str) -> None:
        """Tie the single answer's lines to picks (reordering them only under LLM_RERANK)."""
        candidates = [s.movie for s in draft.picks]
        by_id = {s.movie.id: s for s in draft.picks}
        grounded = ground(text, candidates, p.request.k, exclude={m.id for m in p.liked})
        draft.dropped = grounded.dropped
        if self.settings.llm_rerank:
            draft.picks = [by_id[pick.movie.id] for pick in grounded.picks]
        ctx = GateContext(
            tuple(s.movie for s in draft.picks), tuple(p.liked), user_prompt, p.snapshot.vocabulary
        )
        for pick in grounded.picks:
            if pick.reason and pick.movie.id in {s.movie.id for s in draft.picks}:
                reason = self._gate(p, draft, by_id[pick.movie.id], pick.reason, True, ctx)
                if reason is not None:
                    draft.reasons[pick.movie.id] = reason

    async def answer(self, p: Prepared) -> AsyncIterator[tuple[str, Any]]:
        """The answer as events: ("reason", ReasonEvent)*, ("token", raw text)* only with debug,
        maybe ("error", body), then ("result", response).

        The ranker's picks stand whatever the model does; the model only adds reasons, within
        REASONS_TIMEOUT_S in all. No model, a broken one or a slow one: catalog reasons stay.
        """
        draft = Draft(picks=list(p.ranked[: p.request.k]))
        if not p.request.explain:
            yield "result", self.finish(p, draft)
            return
        p.model_started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.settings.reasons_timeout_s
        rerank = self.settings.llm_rerank
        if rerank:
            draft.picks = list(p.ranked)
        guided = not rerank and await self.upstream.continues_final_message()
        choose = (
            guided
            and self.settings.reason_style == "choice"
            and await self.upstream.supports("guided_choice")
        )
        degraded = None
        try:
            steps = (
                self._guided(p, draft, deadline, choose)
                if guided
                else self._single(p, draft, deadline)
            )
            async with contextlib.aclosing(steps) as events:
                async for kind, data in events:
                    if kind != "token" or p.request.debug:
                        yield kind, data
        except UpstreamBroken:
            yield (
                "error",
                {
                    "type": "upstream_broken",
                    "message": "the model server stopped mid-answer; the rest of the reasons "
                    "come from the catalog",
                },
            )
            degraded = "upstream_broken: the model stopped mid-answer"
        except UpstreamTimeout:
            degraded = "upstream_timeout: no model answered in time"
        except UpstreamUnavailable:
            if draft.model is not None:  # it answered for earlier picks, then went away
                yield (
                    "error",
                    {"type": "upstream_broken", "message": "the model server went away mid-answer"},
                )
                degraded = "upstream_broken: the model stopped mid-answer"
            else:
                degraded = "upstream_unavailable: no model server could answer"
        except TimeoutError:
            # The reasons budget ran out: the picks written so far keep the model's reasons.
            self.metrics.reasons.labels("timeout").inc()
        if rerank and len(draft.picks) > p.request.k:
            draft.picks = draft.picks[: p.request.k]
        p.timings.llm_total = ms(time.perf_counter() - p.model_started)
        yield "result", self.finish(p, draft, degraded_reason=degraded)

    async def recommend(self, p: Prepared) -> RecommendResponse:
        """Non-streaming recommend: the ranker's picks with gated model reasons where written."""
        async for kind, data in self.answer(p):
            if kind == "result":
                return data
        raise AssertionError("answer() always ends with a result")
