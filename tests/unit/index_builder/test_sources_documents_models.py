"""The sample catalog source, the document template, the models step and the offline evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from index_builder.documents import TEMPLATE_VERSION, content_hash, document_text
from index_builder.sources import SourceStats
from index_builder.sources.movielens import load_notes
from moviemind_core.catalog import Movie
from tests.support.servers import ROOT

NOTES = ROOT / "data" / "movie_notes"


@pytest.fixture(scope="module")
def movielens() -> tuple[dict[int, Movie], SourceStats]:
    from index_builder.sources.movielens import iter_movielens

    stats = SourceStats()
    return {m.id: m for m in iter_movielens(stats)}, stats


def test_notes_are_well_formed_and_cover_the_most_rated() -> None:
    notes = load_notes(NOTES)
    assert len(notes) >= 2500
    for n in notes.values():
        assert 5 <= len(n.keywords) <= 10, n
        assert 10 <= len(n.synopsis.split()) <= 40, n
        assert len(n.cast) <= 3


def test_malformed_note_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"movie_id": 1, "keywords": ["x"]}\nnot json\n{"movie_id": "two"}\n\n'
    )
    stats = SourceStats()
    notes = load_notes(tmp_path, stats)
    assert list(notes) == [1]
    assert stats.reasons == {"malformed note": 2}


def test_movielens_source_yields_the_real_catalog(movielens) -> None:
    movies, stats = movielens
    assert 9000 <= len(movies) <= 9066
    assert stats.yielded == len(movies)
    matrix = movies[2571]
    assert matrix.title == "The Matrix" and matrix.year == 1999
    assert "Sci-Fi" in matrix.genres
    # Notes merged: synopsis, keywords and people for a most-rated movie.
    assert matrix.overview and matrix.keywords and matrix.director
    # Ratings: MovieLens stars doubled to TMDB's 0..10 scale, counts are real.
    assert 0 < matrix.vote_average <= 10 and matrix.vote_count > 100
    assert movies[356].vote_count == max(m.vote_count for m in movies.values())  # Forrest Gump
    assert all(m.source_ids == {"movielens": m.id} for m in list(movies.values())[:50])
    assert not any("(no genres listed)" in m.genres for m in movies.values())


def test_document_text_and_hash() -> None:
    m = Movie(
        id=1,
        title="Heat",
        year=1995,
        genres=("Action", "Crime"),
        keywords=("heist",),
        overview="A thief and a detective.",
        director="Michael Mann",
        cast=("Al Pacino", "Robert De Niro"),
    )
    about = (
        "Genres: Action, Crime. Keywords: heist. A thief and a detective. "
        "Directed by Michael Mann. Starring Al Pacino, Robert De Niro."
    )
    assert document_text(m, "doc-v1") == "Heat (1995). " + about
    assert document_text(m, "doc-v2") == about  # describes the movie; no title words to match
    assert document_text(m, "doc-v3") == about + " (Heat)"
    assert document_text(m) == document_text(m, TEMPLATE_VERSION)
    assert document_text(Movie(id=2, title="Untitled"), "doc-v2") == "Untitled."
    with pytest.raises(ValueError, match="unknown document template"):
        document_text(m, "doc-v9")
    text = document_text(m)
    h = content_hash(text, "sha-a")
    assert h == content_hash(text, "sha-a")
    assert h != content_hash(text, "sha-b") and h != content_hash(text + " ", "sha-a")
    assert h != content_hash(text, "sha-a", "doc-v1")  # same text, other template: new vector
    assert TEMPLATE_VERSION.startswith("doc-v")


def test_models_command_is_a_no_op_when_up_to_date(models_dir: Path) -> None:
    before = (models_dir / "minilm" / "manifest.json").stat().st_mtime_ns
    out = subprocess.run(
        [sys.executable, "-m", "index_builder", "models", "--out", str(models_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in out.stdout
    assert (models_dir / "minilm" / "manifest.json").stat().st_mtime_ns == before
    manifest = json.loads((models_dir / "minilm" / "manifest.json").read_text())
    assert (
        manifest["source_sha256"]
        == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )
    assert set(manifest["variants"]) == {"fp32", "int8"}
    assert manifest["dim"] == 384 and manifest["pooling"] == "mean"
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in out.stdout  # checked, nothing written for it


def test_models_export_reruns_when_a_file_changed(tmp_path: Path, models_dir: Path) -> None:
    import shutil

    from index_builder.models import _up_to_date, minilm_source_dir

    copy = tmp_path / "minilm"
    shutil.copytree(models_dir / "minilm", copy)
    sha = json.loads((copy / "manifest.json").read_text())["source_sha256"]
    assert minilm_source_dir().is_dir()
    assert _up_to_date(copy, sha)
    with open(copy / "model.int8.onnx", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert not _up_to_date(copy, sha)
