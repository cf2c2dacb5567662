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
from dataclasses import dataclass

import msgspec

from edge.errors import NoCandidates, NothingToGoOn, UnresolvedTitles
from edge.events import AnswerEvent, Degraded, Failure, Reason, Result
from edge.index_store import Snapshot
from edge.metrics import EdgeMetrics
from edge.mood import Mood, parse_mood, word_forms, word_groups
from edge.prompt import REASON_SYSTEM_PROMPT, TokenCounter, build_prompt
from edge.reasons.catalog import closest_liked, metadata_reason
from edge.reasons.choose import writer_for
from edge.reasons.draft import Draft
from edge.reasons.protocol import ModelTier
from edge.reasons.tokens import ModelTokens
from edge.settings import EdgeSettings
from edge.titles import Resolved, pick_in_context
from edge.upstream import UpstreamBroken, UpstreamTimeout, UpstreamUnavailable
from edge.wire import (
    LikedRef,
    MovieOut,
    Recommendation,
    RecommendRequest,
    RecommendResponse,
    ResolvedLiked,
    SearchHit,
    Timings,
)
from moviemind_core.catalog import Movie
from moviemind_core.ranking import RankingSettings, Scored, rank, taste_profile

__all__ = ["Draft", "Prepared", "Recommender", "closest_liked", "metadata_reason", "movie_out"]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def movie_out(m: Movie) -> MovieOut:
    return MovieOut(id=m.id, title=m.title, year=m.year, genres=list(m.genres))


log = logging.getLogger("moviemind.edge.service")


@dataclass
class Prepared:
    """A recommend request after retrieval, before (or without) the model."""

    snapshot: Snapshot
    request: RecommendRequest
    liked: list[Movie]
    resolved: list[ResolvedLiked]
    unresolved: list[str]
    ranked: list[Scored]
    timings: Timings
    started: float
    mood: Mood
    model_started: float = 0.0


class Recommender:
    """The edge's request logic; `app.py` only maps HTTP onto it."""

    def __init__(self, settings: EdgeSettings, upstream: ModelTier, metrics: EdgeMetrics) -> None:
        self.settings = settings
        self.upstream = upstream
        self.metrics = metrics
        self.tokens = ModelTokens(upstream)

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

    def search(self, snap: Snapshot, q: str, k: int) -> tuple[list[SearchHit], Timings]:
        t0 = time.perf_counter()
        vec = snap.embedder.embed_one(q)
        t1 = time.perf_counter()
        # Plain search is similarity with a light quality prior; no exclusions.
        hits = rank(snap.bundle, snap.priors, None, k, mood=vec, settings=self.settings.ranking)
        t2 = time.perf_counter()
        self.metrics.embed.observe(t1 - t0)
        self.metrics.search.observe(t2 - t1)
        out = [
            SearchHit(
                id=s.movie.id,
                title=s.movie.title,
                year=s.movie.year,
                genres=list(s.movie.genres),
                score=round(s.score, 4),
            )
            for s in hits
        ]
        return out, Timings(embed=ms(t1 - t0), search=ms(t2 - t1), total=ms(t2 - t0))

    def prepare(self, snap: Snapshot, req: RecommendRequest) -> Prepared:
        """Resolve liked movies, embed the query, retrieve and rank candidates."""
        started = time.perf_counter()
        liked: list[Movie] = []
        resolved: list[ResolvedLiked] = []
        unresolved: list[str] = []
        seen: set[int] = set()
        ambiguous: dict[int, Resolved] = {}
        for mid in req.liked_ids:
            m = snap.bundle.movie(mid)
            if m is None:
                unresolved.append(str(mid))
            elif mid not in seen:
                seen.add(mid)
                liked.append(m)
                resolved.append(ResolvedLiked(input=str(mid), id=m.id, title=m.title, year=m.year))
        for text in req.liked:
            r = snap.titles.resolve(text)
            if r is None:
                unresolved.append(text)
            elif r.id in seen:
                # Still accounted for, so every input appears in resolved or unresolved.
                resolved.append(
                    ResolvedLiked(
                        input=text,
                        id=r.id,
                        title=r.title,
                        year=r.year,
                        note="same movie as an earlier entry",
                    )
                )
            else:
                seen.add(r.id)
                m = snap.bundle.movie(r.id)
                assert m is not None
                liked.append(m)
                if r.alternatives:
                    ambiguous[len(resolved)] = r
                resolved.append(
                    ResolvedLiked(input=text, id=r.id, title=r.title, year=r.year, note=r.note)
                )
        liked, resolved = self._in_context(snap, liked, resolved, ambiguous)
        query = req.query.strip()
        if not liked and not query:
            if unresolved:
                raise UnresolvedTitles(
                    "none of the liked movies are in the catalog: "
                    + ", ".join(repr(u) for u in unresolved[:10])
                    + "; look titles up with GET /v1/movies?title=",
                )
            raise NothingToGoOn("name at least one liked movie (liked or liked_ids) or a query")
        t0 = time.perf_counter()
        # "nothing too dark": embed what is wanted; what is excluded pushes away (or filters).
        mood = parse_mood(query, snap.priors.genre_bit)
        qvec = snap.embedder.embed_one(mood.wanted) if mood.wanted else None
        negative = snap.embedder.embed_one(", ".join(mood.excluded)) if mood.excluded else None
        avoid = snap.priors.rows_described_as(word_forms(" ".join(mood.excluded)))
        asked = snap.priors.keyword_share(word_groups(mood.wanted))
        t1 = time.perf_counter()
        filters = req.filters
        if mood.genres_none:
            extra = [g for g in mood.genres_none if g not in filters.genres_none]
            filters = msgspec.structs.replace(filters, genres_none=[*filters.genres_none, *extra])
        rows = [snap.bundle.row_of[m.id] for m in liked]
        rs: RankingSettings = self.settings.ranking
        profile = taste_profile(snap.bundle.vectors[rows])
        want = max(req.k, min(self.settings.candidates, req.k * 4)) if req.explain else req.k
        ranked = rank(
            snap.bundle,
            snap.priors,
            profile,
            want,
            liked_rows=rows,
            mood=qvec,
            negative=negative,
            avoid_rows=avoid,
            keyword_share=asked,
            exclude=seen | {m.id for m in liked},
            filters=filters,
            settings=rs,
        )
        t2 = time.perf_counter()
        if query:
            self.metrics.embed.observe(t1 - t0)
        self.metrics.search.observe(t2 - t1)
        if not ranked:
            raise NoCandidates("no movie in the catalog passes these filters")
        timings = Timings(embed=ms(t1 - t0) if query else 0.0, search=ms(t2 - t1))
        return Prepared(snap, req, liked, resolved, unresolved, ranked, timings, started, mood)

    @staticmethod
    def _in_context(
        snap: Snapshot,
        liked: list[Movie],
        resolved: list[ResolvedLiked],
        ambiguous: dict[int, Resolved],
    ) -> tuple[list[Movie], list[ResolvedLiked]]:
        """Re-resolve titles several movies share against the other liked movies ("Robin Hood"
        beside "Troy" and "Kingdom of Heaven" is the 2010 film, not the 1973 cartoon).
        `ambiguous` maps positions in `resolved` to the title lookups that had alternatives."""
        if not ambiguous or len(liked) < 2:
            return liked, resolved
        index_of = {m.id: i for i, m in enumerate(liked)}
        liked, resolved = list(liked), list(resolved)
        for i, lookup in ambiguous.items():
            r = resolved[i]
            pos = index_of.get(r.id)
            if pos is None:
                continue
            others = [snap.bundle.row_of[m.id] for j, m in enumerate(liked) if j != pos]
            chosen = pick_in_context(snap.bundle, lookup, others)
            if chosen.id != r.id and chosen.id not in index_of:
                movie = snap.bundle.movie(chosen.id)
                assert movie is not None
                liked[pos] = movie
                del index_of[r.id]
                index_of[chosen.id] = pos
                resolved[i] = msgspec.structs.replace(
                    r, id=chosen.id, title=chosen.title, year=chosen.year, note=chosen.note
                )
        return liked, resolved

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
        )

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
