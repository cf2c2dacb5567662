"""benchmarks.panel: the panel file is complete, titles match the catalog the way film lovers
write them, and acceptance and hub share count what they say."""

from __future__ import annotations

import numpy as np

from benchmarks.panel import catalog_ids, judge, load_panel, most_rated, summarise
from moviemind_core.catalog import Movie
from tests.unit.core.test_ranking import make_bundle


def test_the_panel_has_30_requests_across_moods_and_liked_titles() -> None:
    panel = load_panel()
    assert len(panel) >= 30
    assert len({r.id for r in panel}) == len(panel)
    assert sum(1 for r in panel if not r.liked) >= 10  # mood-only requests
    assert all(r.liked or r.query for r in panel)
    assert all(len(r.accept) >= 30 for r in panel)  # broad lists, not one right answer


def catalog():
    movies = [
        Movie(id=1, title="Heat", year=1995, vote_count=900),
        Movie(id=2, title="Heat", year=1986, vote_count=10),
        Movie(id=3, title="Seven (a.k.a. Se7en)", year=1995, vote_count=800),
        Movie(id=4, title="Intouchables", year=2011, vote_count=50),
        Movie(id=5, title="The Matrix", year=1999, vote_count=1000),
    ]
    return make_bundle(movies, np.eye(5, dtype=np.float32))


def test_titles_match_with_and_without_year_article_or_aka() -> None:
    b = catalog()
    assert catalog_ids(b, ["Heat"]) == {1, 2}
    assert catalog_ids(b, ["Heat (1995)"]) == {1}
    assert catalog_ids(b, ["Se7en", "The Intouchables", "Matrix"]) == {3, 4, 5}
    assert catalog_ids(b, ["Not In The Catalog"]) == set()


def test_acceptance_and_hub_share_count_top_10_slots() -> None:
    b = catalog()
    hubs = most_rated(b, 2)
    assert hubs == {5, 1}
    panel = load_panel()
    req = panel[0].__class__(id="x", liked=["A"], accept=["Se7en", "Heat (1986)"])
    s = judge(b, req, [3, 5, 2, 1], hubs)
    assert s.accepted == 2 and s.acceptance == 0.5
    assert s.hubs == ["The Matrix (1999)", "Heat (1995)"]
    total = summarise([s, judge(b, req, [3, 2], hubs)])
    assert total.acceptance == 0.75  # mean over requests of 0.5 and 1.0
    assert total.hub_share == round(2 / 6, 4)  # over all six slots
