"""TMDB-format exports: each CSV list format, JSON Lines, malformed rows, duplicates."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from index_builder.sources import SourceStats
from index_builder.sources.tmdb_export import iter_tmdb_export, movie_from_tmdb
from moviemind_core.catalog import Movie

DATA = Path(__file__).resolve().parents[2] / "data" / "tmdb"


def load(path: Path) -> tuple[dict[int, Movie], SourceStats]:
    stats = SourceStats()
    movies = {m.id: m for m in iter_tmdb_export(path, stats)}
    assert stats.yielded == len(movies)
    return movies, stats


def test_csv_with_json_list_columns_and_credits() -> None:
    movies, stats = load(DATA / "kaggle_5000.csv")
    assert stats.summary() == "2 movies, 0 skipped"
    assert movies[603] == Movie(
        id=603,
        title="The Matrix",
        year=1999,
        genres=("Action", "Science Fiction"),
        overview="A hacker learns that the world he knows is a simulation and joins the rebels fighting its makers.",
        keywords=("future", "dystopia", "artificial intelligence"),
        director="Lana Wachowski",  # the first Director in crew, not the screenwriter
        cast=("Keanu Reeves", "Laurence Fishburne", "Carrie-Anne Moss"),
        popularity=78.52,
        vote_average=8.2,
        vote_count=20000,
        source_ids={"tmdb": 603},
        original_title="The Matrix",
        tmdb_id=603,
    )
    assert movies[862].keywords == () and movies[862].director is None and movies[862].cast == ()


def test_csv_with_comma_separated_columns() -> None:
    movies, stats = load(DATA / "comma.csv")
    assert stats.skipped == 0
    inception = movies[27205]
    assert inception.genres == ("Action", "Science Fiction", "Adventure")
    # Lower-cased and de-duplicated ("Dream" and "dream").
    assert inception.keywords == ("rescue", "mission", "dream", "subconscious")
    assert inception.cast == ("Leonardo DiCaprio", "Joseph Gordon-Levitt", "Elliot Page")
    assert inception.director == "Christopher Nolan"
    assert inception.source_ids == {"tmdb": 27205, "imdb": "tt1375666"}
    assert (inception.year, inception.vote_average, inception.vote_count) == (2010, 8.364, 34495)
    star_wars = movies[11]
    assert star_wars.director is None and star_wars.cast == () and star_wars.keywords == ()
    assert star_wars.source_ids == {"tmdb": 11}


def test_csv_with_pipe_separated_columns_and_release_year() -> None:
    movies, stats = load(DATA / "pipe.csv")
    assert stats.skipped == 0
    jw = movies[135397]
    assert jw.title == "Jurassic World"  # only original_title in this layout
    assert jw.year == 2015  # from release_year; release_date is 6/9/15
    assert jw.genres == ("Action", "Adventure", "Science Fiction", "Thriller")
    assert jw.keywords == ("monster", "dna", "tyrannosaurus rex", "dinosaur")
    assert jw.cast == ("Chris Pratt", "Bryce Dallas Howard", "Irrfan Khan")
    assert jw.director == "Colin Trevorrow"
    assert movies[76341].title == "Mad Max: Fury Road"


def test_csv_with_python_literal_lists_and_a_shifted_row() -> None:
    movies, stats = load(DATA / "metadata.csv")
    assert list(movies) == [862]
    assert movies[862].genres == ("Animation", "Family")
    assert movies[862].vote_count == 5415  # written as 5415.0
    assert stats.reasons == {"bad_id": 1}  # the row whose id column holds a date


def test_malformed_csv_rows_are_counted_not_fatal() -> None:
    movies, stats = load(DATA / "malformed.csv")
    assert sorted(movies) == [1, 2, 10]
    assert movies[1].title == "Good One"  # the first of the duplicate ids wins
    assert movies[1].keywords == ("love", "loss") and movies[1].cast == ("A", "B", "C")
    assert movies[2] == Movie(id=2, title="Sparse", source_ids={"tmdb": 2}, tmdb_id=2)
    assert movies[10].genres == ("Comedy",) and movies[10].year == 1999
    assert stats.reasons == {
        "no_id": 1,
        "bad_id": 1,
        "bad_number": 4,
        "bad_json": 1,
        "missing_title": 1,
        "duplicate_id": 1,
        "bad_row": 1,
    }
    assert stats.summary().startswith("3 movies, 10 skipped")


def test_jsonl_details_shapes() -> None:
    movies, stats = load(DATA / "details.jsonl")
    assert stats.skipped == 0 and list(movies) == [238, 680, 12]
    godfather = movies[238]
    assert godfather.keywords == ("italy", "mafia")
    assert godfather.cast == ("Marlon Brando", "Al Pacino", "James Caan")
    assert godfather.director == "Francis Ford Coppola"
    assert godfather.source_ids == {"tmdb": 238, "imdb": "tt0068646"}
    assert (godfather.year, godfather.genres) == (1972, ("Drama", "Crime"))
    pulp = movies[680]
    assert pulp.keywords == () and pulp.cast == () and pulp.source_ids == {"tmdb": 680}
    nemo = movies[12]
    assert nemo.title == "Finding Nemo"
    assert nemo.genres == ("Animation", "Family")  # genre_ids through TMDB's genre list


def test_malformed_jsonl_lines_are_counted_not_fatal() -> None:
    movies, stats = load(DATA / "malformed.jsonl")
    assert sorted(movies) == [1, 7]
    assert movies[1].title == "Fine"
    assert (movies[7].vote_count, movies[7].vote_average, movies[7].popularity) == (12, 6.1, 2.0)
    assert stats.reasons == {
        "bad_json": 2,
        "bad_row": 1,
        "bad_id": 1,
        "no_id": 1,
        "missing_title": 1,
        "bad_number": 2,
        "duplicate_id": 1,
    }


def test_json_array_gzip_bom_and_crlf(tmp_path: Path) -> None:
    records = [json.loads(line) for line in (DATA / "details.jsonl").read_text().splitlines()]
    array = tmp_path / "movies.json"
    array.write_text(json.dumps(records, indent=1))
    assert list(load(array)[0]) == [238, 680, 12]

    zipped = tmp_path / "movies.jsonl.gz"
    with open(DATA / "details.jsonl", "rb") as src, gzip.open(zipped, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert load(zipped)[0] == load(DATA / "details.jsonl")[0]

    # A spreadsheet's save: UTF-8 BOM, CRLF line ends, a quoted newline inside an overview.
    excel = tmp_path / "excel.csv"
    excel.write_bytes(
        '\ufeffid,title,overview,genres\r\n5,Amélie,"Line one\r\nline two",Comedy|Romance\r\n'.encode()
    )
    movies, stats = load(excel)
    assert movies[5].title == "Amélie" and movies[5].overview == "Line one\r\nline two"
    assert movies[5].genres == ("Comedy", "Romance") and stats.skipped == 0


def test_empty_and_unsupported_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert load(empty)[0] == {}
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,title\n")
    assert load(header_only)[0] == {}
    with pytest.raises(ValueError, match="expected .csv, .jsonl or .json"):
        list(iter_tmdb_export(tmp_path / "movies.xlsx", SourceStats()))
    bad_array = tmp_path / "broken.json"
    bad_array.write_text('[{"id": 1, "title": "x"},')
    movies, stats = load(bad_array)
    assert movies == {} and stats.reasons == {"bad_json": 1}


def test_poster_imdb_and_alternative_titles_from_details_shapes() -> None:
    record = {
        "id": 603,
        "title": "The Matrix",
        "original_title": "The Matrix",
        "poster_path": "/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg",
        "imdb_id": "",
        "external_ids": {"imdb_id": "tt0133093", "wikidata_id": "Q83495"},
        "alternative_titles": {
            "titles": [
                {"iso_3166_1": "US", "title": "The Matrix", "type": ""},
                {"iso_3166_1": "FR", "title": "Matrix", "type": ""},
                {"iso_3166_1": "BR", "title": " Matrix ", "type": ""},
                {"iso_3166_1": "JP", "title": "マトリックス", "type": ""},
            ]
        },
    }
    m = movie_from_tmdb(record)
    assert (m.poster_path, m.imdb_id, m.tmdb_id) == (
        "/f89U3ADr1oiB1s9GkdPOEpXUk5H.jpg",
        "tt0133093",
        603,
    )
    assert m.source_ids == {"tmdb": 603, "imdb": "tt0133093"}
    assert m.alt_titles == ("Matrix", "マトリックス") and m.original_title == "The Matrix"
    # TMDB's nulls and empty strings are absent values, never empty strings.
    bare = movie_from_tmdb(
        {"id": 7, "title": "X", "poster_path": None, "imdb_id": None, "alternative_titles": None}
    )
    assert (bare.poster_path, bare.imdb_id, bare.alt_titles) == (None, None, ())
    assert (
        movie_from_tmdb({"id": 8, "title": "Y", "poster_path": "", "imdb_id": "n/a"}).imdb_id
        is None
    )
    # Kaggle-style exports carry the IMDb number without "tt".
    assert movie_from_tmdb({"id": 9, "title": "Z", "imdb_id": "0133093"}).imdb_id == "tt0133093"
