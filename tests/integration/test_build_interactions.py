"""`python -m index_builder build` with interaction data: MovieLens CSV files (any size, links
to TMDB ids, a time cut) and TMDB's related lists from the (fake) TMDB API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moviemind_core.bundle import Bundle
from tests.support.fake_tmdb import FakeTmdb, make_movie
from tests.support.servers import ROOT

pytestmark = pytest.mark.slow

MOVIES_CSV = """movieId,title,genres
1,Gladiator (2000),Action|Adventure|Drama
2,Braveheart (1995),Action|Drama|War
3,"Kingdom of Heaven (2005)",Action|Drama|Romance|War
4,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
5,Finding Nemo (2003),Adventure|Animation|Children|Comedy
6,"Matrix, The (1999)",Action|Sci-Fi|Thriller
"""
LINKS_CSV = "movieId,imdbId,tmdbId\n1,0172495,98\n2,0112573,197\n3,0320661,1495\n4,0114709,862\n5,0266543,12\n6,0133093,\n"


def write_movielens(directory: Path) -> None:
    """A tiny MovieLens layout: epic fans (users 0-19) and cartoon fans (20-39); the last
    ratings (time >= 5000) pair the epics with Toy Story, and must vanish with the cut."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "movies.csv").write_text(MOVIES_CSV)
    (directory / "links.csv").write_text(LINKS_CSV)
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(40):
        for j, m in enumerate((1, 2, 3) if u < 20 else (4, 5)):
            lines.append(f"{u},{m},{4.5 if j else 4.0},{1000 + u * 10 + j}")
        lines.append(f"{u},6,3.0,{1000 + u * 10 + 5}")
    lines += [f"{u},4,5.0,{5000 + u}" for u in range(20)]
    (directory / "ratings.csv").write_text("\n".join(lines) + "\n")


def build(models_dir: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = [sys.executable, "-m", "index_builder", "build", "--out", str(out)]
    cmd += ["--models", str(models_dir / "minilm"), "--threads", "1", *args]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def neighbour_titles(b: Bundle, movie_id: int) -> list[str]:
    row = b.row_of[movie_id]
    return [b.movies[r].title for r in b.neighbour_rows[row] if r >= 0]


def test_movielens_dir_builds_neighbours_votes_and_respects_the_time_cut(
    models_dir: Path, tmp_path: Path
) -> None:
    ml = tmp_path / "ml"
    write_movielens(ml)
    out = tmp_path / "all"
    log = build(models_dir, out, "--movielens-dir", str(ml), "--ease-lambda", "1")
    assert "ratings: 160 from 40 users" in log
    b = Bundle.load(out)
    assert b.manifest.collab.method == "ease" and b.manifest.collab.params["ratings"] == 160
    assert {m.title for m in b.movies} >= {"The Matrix", "Kingdom of Heaven"}
    assert b.movie(3).source_ids == {"movielens": 3, "tmdb": 1495}
    assert b.movie(6).source_ids == {"movielens": 6}  # no TMDB id in links.csv
    # links.csv's ids reach the record: TMDB's where given, IMDb's with its "tt" prefix.
    assert (b.movie(3).tmdb_id, b.movie(3).imdb_id) == (1495, "tt0320661")
    assert (b.movie(6).tmdb_id, b.movie(6).imdb_id) == (None, "tt0133093")
    assert b.movie(4).vote_count == 40 and b.movie(1).vote_count == 20
    assert "Toy Story" in neighbour_titles(b, 1)  # the late ratings pair epics with Toy Story

    cut = tmp_path / "cut"
    build(
        models_dir, cut, "--movielens-dir", str(ml), "--ease-lambda", "1", "--ratings-until", "5000"
    )
    c = Bundle.load(cut)
    assert c.movie(4).vote_count == 20  # the 20 late Toy Story ratings are gone
    assert "Toy Story" not in neighbour_titles(c, 1)
    assert set(neighbour_titles(c, 3)) >= {"Gladiator", "Braveheart"}


def test_tmdb_catalog_uses_movielens_ratings_through_links(
    models_dir: Path, tmp_path: Path
) -> None:
    ml = tmp_path / "ml"
    write_movielens(ml)
    export = tmp_path / "tmdb.csv"
    export.write_text(
        "id,title,release_date,genres,overview,vote_average,vote_count,popularity\n"
        "98,Gladiator,2000-05-01,Action|Drama,A general becomes a gladiator.,8.2,18000,50\n"
        "197,Braveheart,1995-05-24,Action|War,A Scottish rebellion.,7.9,10000,40\n"
        "1495,Kingdom of Heaven,2005-05-03,Action|War,A blacksmith defends Jerusalem.,6.9,4000,30\n"
        "862,Toy Story,1995-10-30,Animation|Family,Toys come to life.,8.0,17000,60\n"
    )
    out = tmp_path / "tmdb"
    build(
        models_dir,
        out,
        "--source",
        "tmdb-export",
        "--input",
        str(export),
        "--movielens-dir",
        str(ml),
        "--ease-lambda",
        "1",
        "--ratings-until",
        "5000",
    )
    b = Bundle.load(out)
    assert b.manifest.collab.method == "ease"
    assert set(neighbour_titles(b, 1495)) >= {"Gladiator", "Braveheart"}
    assert b.movie(98).vote_count == 18000  # a TMDB catalog keeps TMDB's own votes


def test_tmdb_api_related_lists_become_neighbours(models_dir: Path, tmp_path: Path) -> None:
    token = "test-token"
    with FakeTmdb([make_movie(i) for i in range(25)], token=token) as fake:
        env = {
            "MOVIEMIND_TMDB_TOKEN": token,
            "MOVIEMIND_TMDB_BASE_URL": fake.url,
            "MOVIEMIND_TMDB_PAGES": "2",
        }
        out = tmp_path / "api"
        ck = tmp_path / "ck.json"
        build(models_dir, out, "--source", "tmdb-api", "--checkpoint", str(ck), env=env)
        fetched = len(fake.detail_requests())
        # Resumable like the rest: a second build replays the checkpoint, lists included.
        build(
            models_dir, tmp_path / "again", "--source", "tmdb-api", "--checkpoint", str(ck), env=env
        )
        assert len(fake.detail_requests()) == fetched
    for path in (out, tmp_path / "again"):
        b = Bundle.load(path)
        assert b.manifest.collab.method == "tmdb-lists"
        assert neighbour_titles(b, 1003) == ["Fake Movie 4", "Fake Movie 5", "Fake Movie 6"]
        assert neighbour_titles(b, 1024) == []  # its related ids are not in this catalog
        assert not any(m.related for m in b.movies)  # lists live in the neighbour files only
        w = b.neighbour_weights[b.row_of[1003]]
        assert np.all(np.diff(w[:3]) < 0)
