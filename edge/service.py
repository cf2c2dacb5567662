"""What the edge does per request, independent of HTTP: resolve, embed, rank, prompt, ground."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec

from edge.grounding import Pick, ground
from edge.index_store import Snapshot
from edge.metrics import EdgeMetrics
from edge.mood import parse_mood
from edge.prompt import ApproxCounter, HFCounter, TokenCounter, build_prompt, candidate_line
from edge.settings import EdgeSettings
from edge.titles import Resolved, pick_in_context
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
    MovieOut,
    Recommendation,
    RecommendRequest,
    RecommendResponse,
    ResolvedLiked,
    SearchHit,
    Timings,
)
from moviemind_core.catalog import Movie, lookup_key
from moviemind_core.ranking import RankingSettings, Scored, rank, taste_profile


class ApiError(Exception):
    """An error with an HTTP status, a stable type and a message safe to show a client."""

    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}


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


def metadata_reason(m: Movie, liked: list[Movie], query: str, snapshot: Snapshot) -> str:
    """A reason built from catalog data alone (retrieval-only and degraded answers)."""
    parts = []
    if liked:
        vec = snapshot.bundle.vector(m.id)
        best = (
            max(liked, key=lambda lm: float(snapshot.bundle.vector(lm.id) @ vec))
            if vec is not None
            else liked[0]
        )
        shared = [g for g in m.genres if g in best.genres]
        parts.append(
            f"Close to {best.title}" + (f": also {', '.join(shared[:3]).lower()}" if shared else "")
        )
    elif query:
        parts.append(
            f"Matches \u201c{query[:60]}\u201d"
            + (f": {', '.join(m.genres[:3]).lower()}" if m.genres else "")
        )
    if m.keywords:
        parts.append(", ".join(m.keywords[:3]))
    if m.vote_count:
        parts.append(
            f"rated {m.vote_average:.1f}/10 by {m.vote_count} viewer"
            + ("s" if m.vote_count != 1 else "")
        )
    return "; ".join(parts) + "."


def usable_reason(reason: str | None, p: Prepared, movie: Movie | None = None) -> bool:
    """False for what small models put where a reason belongs: a bare title, a genre list, or
    the candidate's own prompt line echoed back."""
    if not reason or len(reason.split()) < 3:
        return False
    key = lookup_key(reason)
    titles = {lookup_key(m.title) for m in p.liked} | {lookup_key(s.movie.title) for s in p.ranked}
    if key in titles:
        return False
    if movie is not None and key in lookup_key(candidate_line(0, movie, 2)):
        return False
    genres = {g.lower() for s in p.ranked for g in s.movie.genres}
    words = [w.strip().lower() for w in reason.replace("|", ",").split(",")]
    return not all(w in genres for w in words if w)


class Recommender:
    """The edge's request logic; `app.py` only maps HTTP onto it."""

    def __init__(
        self, settings: EdgeSettings, upstream: UpstreamPool, metrics: EdgeMetrics
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.metrics = metrics
        self._counter: TokenCounter | None = None

    async def token_counter(self) -> TokenCounter:
        """The model's own tokenizer when the upstream serves it; an estimate otherwise."""
        if self._counter is None:
            try:
                raw = await self.upstream.tokenizer_json()
            except Exception:
                raw = None
            if raw:
                self._counter = HFCounter(raw)
            else:
                return ApproxCounter()  # ask again next time: the upstream may come back
        return self._counter

    async def prime_prefix(self) -> int:
        """Put the fixed start of every prompt into each model server's prefix cache, so the
        first user's request is as fast as the rest; returns how many servers took it."""
        try:
            counter = await self.token_counter()
            k = RecommendRequest().k  # the request line is part of the prefix: prime the default
            prompt = build_prompt([], "", [], k, counter, self.settings.prompt_tokens)
            primed = await self.upstream.prime(prompt.messages)
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
                raise ApiError(
                    422,
                    "unresolved_titles",
                    "none of the liked movies are in the catalog: "
                    + ", ".join(repr(u) for u in unresolved[:10])
                    + "; look titles up with GET /v1/movies?title=",
                )
            raise ApiError(
                422,
                "validation_error",
                "name at least one liked movie (liked or liked_ids) or a query",
            )
        t0 = time.perf_counter()
        # "nothing too dark": embed what is wanted; what is excluded pushes away (or filters).
        mood = parse_mood(query, snap.priors.genre_bit)
        qvec = snap.embedder.embed_one(mood.wanted) if mood.wanted else None
        negative = snap.embedder.embed_one(", ".join(mood.excluded)) if mood.excluded else None
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
            exclude=seen | {m.id for m in liked},
            filters=filters,
            settings=rs,
        )
        t2 = time.perf_counter()
        if query:
            self.metrics.embed.observe(t1 - t0)
        self.metrics.search.observe(t2 - t1)
        if not ranked:
            raise ApiError(404, "no_candidates", "no movie in the catalog passes these filters")
        timings = Timings(embed=ms(t1 - t0) if query else 0.0, search=ms(t2 - t1))
        return Prepared(snap, req, liked, resolved, unresolved, ranked, timings, started)

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

    def _recommendation(self, p: Prepared, pick: Pick, scores: dict[int, float]) -> Recommendation:
        m = pick.movie
        reason = pick.reason if usable_reason(pick.reason, p, m) else None
        reason = reason or metadata_reason(m, p.liked, p.request.query.strip(), p.snapshot)
        return Recommendation(
            id=m.id,
            title=m.title,
            year=m.year,
            genres=list(m.genres),
            score=round(scores.get(m.id, 0.0), 4),
            reason=reason,
        )

    def finish(
        self,
        p: Prepared,
        text: str | None,
        *,
        degraded_reason: str | None = None,
        model: str | None = None,
    ) -> RecommendResponse:
        """Ground the model's text (or nothing) into k catalog recommendations."""
        candidates = [s.movie for s in p.ranked]
        scores = {s.movie.id: s.score for s in p.ranked}
        grounded = ground(text or "", candidates, p.request.k, exclude={m.id for m in p.liked})
        if grounded.dropped:
            self.metrics.dropped_titles.inc(len(grounded.dropped))
        if degraded_reason:
            self.metrics.degraded.labels(degraded_reason.split(":")[0]).inc()
        p.timings.total = ms(time.perf_counter() - p.started)
        return RecommendResponse(
            recommendations=[self._recommendation(p, pick, scores) for pick in grounded.picks],
            resolved_liked=p.resolved,
            unresolved_liked=p.unresolved,
            explanation=text.strip() if text else None,
            degraded=degraded_reason is not None,
            degraded_reason=degraded_reason,
            model=model,
            timings_ms=p.timings,
            dropped_titles=grounded.dropped,
            index_version=p.snapshot.version,
        )

    async def ask_model(
        self, p: Prepared
    ) -> AsyncIterator[StreamStarted | TokenDelta | StreamEnded]:
        """Stream the model's answer for a prepared request (raises Upstream* errors)."""
        counter = await self.token_counter()
        prompt = build_prompt(
            p.liked,
            p.request.query,
            [s.movie for s in p.ranked],
            p.request.k,
            counter,
            self.settings.prompt_tokens,
            needs_year=lambda m: len(p.snapshot.bundle.titles.get(lookup_key(m.title), ())) > 1,
        )
        max_tokens = min(self.settings.max_answer_tokens, 28 * p.request.k + 16)
        async for event in self.upstream.stream_chat(
            prompt.messages,
            max_tokens=max_tokens,
            temperature=0.0,
            seed=1,
            # Small models loop ("comedy, comedy, ..."); a mild penalty keeps the lines varied.
            extra={"repetition_penalty": 1.15},
        ):
            yield event

    async def answer(self, p: Prepared) -> AsyncIterator[tuple[str, Any]]:
        """The answer as events: ("token", text)*, maybe ("error", body), then ("result", response).

        Whatever happens upstream, the last event is a grounded result: the model's picks, or
        degraded retrieval when no model answered or one broke mid-answer.
        """
        if not p.request.explain:
            yield "result", self.finish(p, None)
            return
        t0 = time.perf_counter()
        parts: list[str] = []
        model = None
        try:
            async for ev in self.ask_model(p):
                if isinstance(ev, StreamStarted):
                    model = ev.model
                    p.timings.llm_first_token = ms(time.perf_counter() - t0)
                    self.metrics.first_token.observe(time.perf_counter() - t0)
                elif isinstance(ev, TokenDelta):
                    parts.append(ev.text)
                    yield "token", ev.text
        except UpstreamBroken as exc:
            p.timings.llm_total = ms(time.perf_counter() - t0)
            yield (
                "error",
                {
                    "type": "upstream_broken",
                    "message": "the model server stopped mid-answer; completing from the catalog",
                },
            )
            broken = "upstream_broken: the model stopped mid-answer"
            text = exc.partial_text or "".join(parts)
            yield "result", self.finish(p, text, degraded_reason=broken, model=model)
            return
        except UpstreamTimeout:
            yield (
                "result",
                self.finish(p, None, degraded_reason="upstream_timeout: no model answered in time"),
            )
            return
        except UpstreamUnavailable:
            down = "upstream_unavailable: no model server could answer"
            yield "result", self.finish(p, None, degraded_reason=down)
            return
        p.timings.llm_total = ms(time.perf_counter() - t0)
        yield "result", self.finish(p, "".join(parts), model=model)

    async def recommend(self, p: Prepared) -> RecommendResponse:
        """Non-streaming recommend: the model's grounded picks, or a degraded retrieval answer."""
        async for kind, data in self.answer(p):
            if kind == "result":
                return data
        raise AssertionError("answer() always ends with a result")
