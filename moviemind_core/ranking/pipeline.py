"""The ranking pipeline: candidate sources -> filters -> scorers -> selector, over one RankQuery.

The edge (edge/preparation.py) and the offline evaluation (index_builder/evaluate.py) both call
`Pipeline.run`, so the evaluated numbers are the served ranking's."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.catalog import Movie
from moviemind_core.ranking.filters import DEFAULT_FILTERS, Filter
from moviemind_core.ranking.priors import Priors
from moviemind_core.ranking.query import RankQuery
from moviemind_core.ranking.run import Run
from moviemind_core.ranking.scorers import DEFAULT_SCORERS, Scorer
from moviemind_core.ranking.selector import because, select
from moviemind_core.ranking.settings import RankingSettings
from moviemind_core.ranking.sources import DEFAULT_SOURCES, Source

_DEFAULT_SETTINGS = RankingSettings()


class Scored(msgspec.Struct, frozen=True):
    """A ranked movie; `because` is the liked movie id that gave it the most collaborative weight."""

    movie: Movie
    similarity: float
    score: float
    because: int | None = None


class Pipeline:
    """Sources, filters and scorers (each one job), then the selector."""

    def __init__(
        self,
        settings: RankingSettings = _DEFAULT_SETTINGS,
        *,
        sources: Sequence[Source] = DEFAULT_SOURCES,
        filters: Sequence[Filter] = DEFAULT_FILTERS,
        scorers: Sequence[Scorer] = DEFAULT_SCORERS,
    ) -> None:
        self.settings = settings
        self.sources = tuple(sources)
        self.filters = tuple(filters)
        self.scorers = tuple(scorers)

    def run(self, bundle: Bundle, priors: Priors, query: RankQuery) -> list[Scored]:
        """The k best movies for the query (without liked movies or a mood: the best-rated that
        pass the filters). Excluded ids are never returned."""
        run = Run(bundle, priors, query, self.settings)
        n = len(bundle)
        if run.anything_to_go_on:
            # The union as a mask over the catalog: cheaper than sorting the concatenation, and
            # the same sorted rows.
            proposed = np.zeros(n, bool)
            for source in self.sources:
                proposed[source(run)] = True
            rows = np.flatnonzero(proposed)
        else:
            rows = np.arange(n)
        rows = self._admissible(run, rows)
        if len(rows) < query.k and run.anything_to_go_on and len(rows) < n:
            # Strict filters left too few: score every movie that passes them (vectorised, O(n)).
            rows = self._admissible(run, np.arange(n))
        if not len(rows):
            return []
        score = np.zeros(len(rows), np.float32)
        for scorer in self.scorers:
            term = scorer(run, rows)
            if term is not None:
                score += term
        picks = select(run, rows, score)
        picked = rows[picks]
        shown = _shown_similarity(run, picked)
        return [
            Scored(bundle.movies[int(r)], float(sim), float(score[i]), by)
            for r, i, sim, by in zip(
                picked.tolist(), picks.tolist(), shown.tolist(), because(run, picked), strict=True
            )
        ]

    def _admissible(self, run: Run, rows: np.ndarray) -> np.ndarray:
        for f in self.filters:
            rows = f(run, rows)
        return rows


def _shown_similarity(run: Run, rows: np.ndarray) -> np.ndarray:
    """The similarity reported with a pick: to the liked movies' profile, to the mood, or the
    mean of both (times the thin-document factor); 0 with neither."""
    parts = [run.sim(name, rows) for name in ("profile", "mood") if name in run.directions]
    if not parts:
        return np.zeros(len(rows), np.float32)
    return sum(parts) / len(parts) * run.thin(rows)
