"""index_builder.evaluate: the protocol cannot leak, and the report covers every method."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.build import build
from index_builder.collaborative import CollabSettings, neighbours_for
from index_builder.evaluate import make_cases, run_eval, training_ratings
from index_builder.interactions import Ratings
from moviemind_core.catalog import Movie
from moviemind_core.embedder import Embedder

GENRES = ("Western", "Animation", "Horror", "Romance")


def ratings(users: int = 120, seed: int = 0) -> Ratings:
    """Users with one favourite genre each (10 movies per genre, ids g*10+1..g*10+10): they
    like (5 stars) movies of their genre in a per-user order, and rate a few others 2 stars."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        g = u % len(GENRES)
        mine = rng.permutation(np.arange(g * 10 + 1, g * 10 + 11))[: rng.integers(5, 10)]
        others = rng.choice([m for m in range(1, 41) if not g * 10 < m <= g * 10 + 10], 3)
        t = 1_000_000 + u
        for i, m in enumerate(mine):
            rows.append((u, m, 5.0, t + i * 100))
        for i, m in enumerate(others):
            rows.append((u, m, 2.0, t + i * 100 + 50))
    a = np.asarray(rows, dtype=np.float64)
    return Ratings(
        a[:, 0].astype(np.int64),
        a[:, 1].astype(np.int64),
        a[:, 2].astype(np.float32),
        a[:, 3].astype(np.int64),
    )


def test_cases_and_training_data_cannot_leak() -> None:
    r = ratings()
    cases = make_cases(r, min_inputs=3, seed=1)
    assert cases and {c.split for c in cases} == {"validation", "test"}
    val = {c.user for c in cases if c.split == "validation"}
    test = {c.user for c in cases if c.split == "test"}
    assert not val & test and abs(len(val) - len(test)) <= 1
    train = training_ratings(r, cases)
    for c in cases:
        mine = train.user == c.user
        assert int(train.time[mine].max()) < c.cutoff  # nothing from the held-out time on
        assert c.target in c.later and c.target not in c.inputs
        assert 3 <= len(c.inputs) <= 10
        # Every input is a training rating of that user (the model may see it, nothing later).
        assert set(c.inputs) <= set(train.movie[mine].tolist())
        assert not set(c.later) & set(train.movie[mine & (train.stars >= 4)].tolist()) - set(
            c.inputs
        )
    other = ~np.isin(r.user, list(val | test))
    assert int(other.sum()) == int((~np.isin(train.user, list(val | test))).sum())


def test_run_eval_reports_every_method_and_the_blend_beats_popularity(
    models_dir: Path, tmp_path: Path
) -> None:
    movies = [
        Movie(
            id=g * 10 + i,
            title=f"{genre} story {i}",
            year=1990 + i,
            genres=(genre,),
            overview=f"A {genre.lower()} film, number {i}.",
        )
        for g, genre in enumerate(GENRES)
        for i in range(1, 11)
    ]
    embedder = Embedder(models_dir / "minilm", variant="fp32", threads=1)

    def build_bundle(train: Ratings, template: str, collab: CollabSettings) -> Path:
        ids = np.asarray([m.id for m in movies], dtype=np.int64)
        neighbours, info = neighbours_for(ids, train, collab, log=lambda _: None)
        out = tmp_path / template
        build(
            movies,
            out,
            embedder,
            source="test",
            template=template,
            neighbours=neighbours,
            collab=info,
            log=lambda *_: None,
        )
        return out

    lines: list[str] = []
    report = run_eval(
        ratings(),
        build_bundle,
        collab=CollabSettings(ease_lambda=5.0, top_n=10),
        collab_variants=[CollabSettings(method="cosine", top_n=10)],
        templates=["doc-v1"],
        log=lines.append,
    )
    names = list(report.results)
    assert names[0] == "random" and names[1].startswith("most popular")
    assert any(n.startswith("content similarity only") for n in names)
    assert any(n.startswith("EASE reference") for n in names)
    tuned = report.results["edge blend (tuned on validation)"]
    popular = report.results["most popular (input excluded)"]
    assert tuned.hr10.mean > popular.hr10.mean  # genre taste is all there is to learn here
    assert 0 <= tuned.hr10.se < 0.2 and 0 < tuned.coverage <= 1
    assert set(report.learners) == {"cosine, top 10"} and set(report.templates) == {"doc-v1"}
    md = report.markdown()
    assert "| edge blend (tuned on validation) |" in md and "±" in md
    assert report.cases["validation"] + report.cases["test"] == 120
