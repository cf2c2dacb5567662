"""Preparation: a request's ranking inputs and its picks, before any model is asked.

Resolve the liked titles (ambiguous ones against the other liked movies), parse the mood
(edge.mood), build the RankQuery through the kernel (`build_query`, the same call the offline
evaluation makes) and run the ranking pipeline. `/v1/search` is the same pipeline on a mood alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from edge.errors import NoCandidates, NothingToGoOn, UnresolvedTitles
from edge.index_store import Snapshot
from edge.metrics import EdgeMetrics
from edge.mood import Mood, parse_mood, word_forms, word_groups
from edge.settings import EdgeSettings
from edge.titles import Resolved, pick_in_context
from edge.wire import RecommendRequest, ResolvedLiked, SearchHit, Timings
from moviemind_core.catalog import Movie
from moviemind_core.ranking import MoodRequest, Pipeline, Scored, build_query


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


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


def mood_request(mood: Mood) -> MoodRequest:
    """The kernel's view of a parsed mood: the catalog words each wanted word may appear as, and
    the words that mark an excluded theme ("nothing too dark" -> dark, bleak, grim, ...)."""
    return MoodRequest(
        wanted=mood.wanted,
        excluded=mood.excluded,
        genres_none=mood.genres_none,
        keyword_groups=tuple(frozenset(g) for g in word_groups(mood.wanted)),
        avoid_words=frozenset(word_forms(" ".join(mood.excluded))),
    )


class Preparation:
    """Turns requests into ranked picks; one per edge (it holds the settings' pipeline)."""

    def __init__(self, settings: EdgeSettings, metrics: EdgeMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pipeline = Pipeline(settings.ranking)

    def search(self, snap: Snapshot, q: str, k: int) -> tuple[list[SearchHit], Timings]:
        """`/v1/search`: the query embedded as a mood, ranked with the same pipeline (no
        exclusions, no parsing: a search box takes the words as they are)."""
        t0 = time.perf_counter()
        vec = snap.embedder.embed_one(q)
        t1 = time.perf_counter()
        query = build_query(
            snap.bundle, snap.priors, k, mood=MoodRequest(wanted=q), embed=lambda _t: vec
        )
        hits = self.pipeline.run(snap.bundle, snap.priors, query)
        t2 = time.perf_counter()
        if self.metrics is not None:
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
        """Resolve liked movies, parse and embed the mood, build the RankQuery and rank."""
        started = time.perf_counter()
        liked, resolved, unresolved, seen = self.resolve(snap, req)
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
        want = max(req.k, min(self.settings.candidates, req.k * 4)) if req.explain else req.k
        rank_query = build_query(
            snap.bundle,
            snap.priors,
            want,
            liked_ids=[m.id for m in liked],
            mood=mood_request(mood),
            embed=snap.embedder.embed_one if query else None,
            filters=req.filters,
            exclude=seen,
        )
        t1 = time.perf_counter()
        ranked = self.pipeline.run(snap.bundle, snap.priors, rank_query)
        t2 = time.perf_counter()
        if self.metrics is not None:
            if query:
                self.metrics.embed.observe(t1 - t0)
            self.metrics.search.observe(t2 - t1)
        if not ranked:
            raise NoCandidates("no movie in the catalog passes these filters")
        timings = Timings(embed=ms(t1 - t0) if query else 0.0, search=ms(t2 - t1))
        return Prepared(snap, req, liked, resolved, unresolved, ranked, timings, started, mood)

    def resolve(
        self, snap: Snapshot, req: RecommendRequest
    ) -> tuple[list[Movie], list[ResolvedLiked], list[str], set[int]]:
        """Liked ids and titles -> catalog movies (each input accounted for once: resolved or
        unresolved), with ambiguous titles re-resolved against the other liked movies."""
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
        liked, resolved = in_context(snap, liked, resolved, ambiguous)
        return liked, resolved, unresolved, seen | {m.id for m in liked}


def in_context(
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
