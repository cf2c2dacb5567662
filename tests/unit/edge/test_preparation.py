"""edge.preparation: the edge ranks with the RankQuery the offline evaluation builds.

Recorded requests (tests/data/recorded_requests.jsonl: liked ids as the page sends them) go
through the edge's preparation and through `index_builder eval`'s method for the same inputs;
both must return the same movies with the same scores."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest

from edge.index_store import Snapshot
from edge.mood import parse_mood
from edge.preparation import Preparation, mood_request
from edge.settings import load_settings
from edge.titles import TitleIndex
from edge.wire import RecommendRequest
from index_builder.collaborative import CollabSettings
from index_builder.evaluate import Case, Methods
from moviemind_core.bundle import Bundle
from moviemind_core.ranking import Priors, build_query

RECORDED = Path(__file__).parents[2] / "data" / "recorded_requests.jsonl"


@pytest.fixture(scope="module")
def sample(sample_index: Path) -> tuple[Bundle, Snapshot]:
    b = Bundle.load(sample_index, verify=False)
    priors = Priors(b.movies, load_settings({}).ranking.bayes_votes, b.vectors)
    # Liked ids only: no text to embed, so no embedder is needed.
    snap = Snapshot(b, priors, TitleIndex(b.movies, b.titles), None)  # type: ignore[arg-type]
    return b, snap


def recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text().splitlines() if line.strip()]


def test_the_edge_and_the_evaluation_rank_recorded_requests_alike(sample) -> None:
    b, snap = sample
    settings = load_settings({})
    prep = Preparation(settings)
    method = Methods(b, None, CollabSettings(), 7).ranked(settings.ranking)  # type: ignore[arg-type]
    requests = recorded()
    assert len(requests) >= 10
    for body in requests:
        req = msgspec.convert({**body, "explain": False}, RecommendRequest)
        served = prep.prepare(snap, req).ranked
        case = Case(0, tuple(body["liked_ids"]), 0, (0,), 0, "test")
        evaluated = method(case)
        assert [s.movie.id for s in served] == evaluated, body
        assert len(served) == body["k"]
        assert not {s.movie.id for s in served} & set(body["liked_ids"])


def test_the_kernel_query_excludes_liked_movies_and_takes_the_moods_genre_exclusions(
    sample,
) -> None:
    b, snap = sample
    mood = mood_request(parse_mood("a western, no horror", snap.priors.genre_bit))
    assert mood.genres_none == ("Horror",) and mood.keyword_groups
    vec = b.vectors[0]
    q = build_query(b, snap.priors, 5, liked_ids=[1, 1, 6], mood=mood, embed=lambda _t: vec)
    assert q.exclude_ids == {1, 6}
    assert q.liked_rows.tolist() == [b.row_of[1], b.row_of[6]]
    assert q.filters.genres_none == ["Horror"]
    assert q.keyword_share is not None and float(q.keyword_share.max()) > 0
    np.testing.assert_allclose(q.mood, vec)
    with pytest.raises(ValueError, match="embedder"):
        build_query(b, snap.priors, 5, mood=mood)
