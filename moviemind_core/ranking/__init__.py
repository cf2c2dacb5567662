"""Ranking: a pipeline of small parts over one RankQuery, shared by the edge and the evaluation.

query.py     RankQuery, Filters, MoodRequest and build_query (the one way to make a query)
settings.py  RankingSettings (the weights; MOVIEMIND_EDGE_RANK_* at the edge)
priors.py    per-bundle arrays: priors, genres, keywords, the content scan matrix
run.py       one request's shared state (similarity scan, co-ratings, coherence)
sources.py   candidate sources: collaborative neighbours, content scan, mood keywords,
             well-liked fallback
filters.py   exclusions and the request's filters
scorers.py   priors, content, mood, collaborative, coherence, popularity calibration
selector.py  top k, maximal marginal relevance, `because`
pipeline.py  Pipeline.run: sources -> filters -> scorers -> selector
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.ranking.pipeline import Pipeline, Scored
from moviemind_core.ranking.priors import ContentScan, Priors
from moviemind_core.ranking.query import (
    NO_FILTERS,
    Filters,
    MoodRequest,
    RankQuery,
    build_query,
    taste_profile,
)
from moviemind_core.ranking.run import EXACT_SCAN_MAX
from moviemind_core.ranking.settings import RankingSettings

__all__ = [
    "EXACT_SCAN_MAX",
    "ContentScan",
    "Filters",
    "MoodRequest",
    "Pipeline",
    "Priors",
    "RankQuery",
    "RankingSettings",
    "Scored",
    "build_query",
    "rank",
    "taste_profile",
]

_DEFAULT = RankingSettings()


def rank(
    bundle: Bundle,
    priors: Priors,
    profile: np.ndarray | None,
    k: int,
    *,
    liked_rows: Sequence[int] | np.ndarray = (),
    mood: np.ndarray | None = None,
    negative: np.ndarray | None = None,
    avoid_rows: np.ndarray | None = None,
    keyword_share: np.ndarray | None = None,
    exclude: Iterable[int] = (),
    filters: Filters = NO_FILTERS,
    settings: RankingSettings = _DEFAULT,
) -> list[Scored]:
    """The pipeline on ready-made vectors (tests and experiments that hold vectors, not text).
    Served and evaluated code builds its query with `build_query` instead."""
    query = RankQuery(
        k=k,
        liked_rows=np.asarray(liked_rows, dtype=np.int64),
        profile=profile,
        mood=mood,
        negative=negative,
        avoid_rows=avoid_rows,
        keyword_share=keyword_share,
        exclude_ids=frozenset(exclude),
        filters=filters,
    )
    return Pipeline(settings).run(bundle, priors, query)
