"""TMDB-format exports (CSV or JSON Lines) -> `Movie` records.

Also home of the one mapping from TMDB's `/movie/{id}` details shape to `Movie`, which the API
source reuses, so a movie looks the same whichever way it was obtained. TMDB's daily ID export
holds no movie data, only ids to fetch: `tmdb_id_export`.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from index_builder.sources import SourceStats
from moviemind_core.catalog import Movie

__all__ = ["RowError", "iter_tmdb_export", "movie_from_tmdb", "TMDB_GENRES"]

# TMDB's fixed movie genre list (GET /genre/movie/list): lets rows that carry only `genre_ids`
# (discover results, some exports) still get genre names without another request.
TMDB_GENRES: dict[int, str] = {
    28: "Action",
    12: "Adventure",
    16: "Animation",
    35: "Comedy",
    80: "Crime",
    99: "Documentary",
    18: "Drama",
    10751: "Family",
    14: "Fantasy",
    36: "History",
    27: "Horror",
    10402: "Music",
    9648: "Mystery",
    10749: "Romance",
    878: "Science Fiction",
    10770: "TV Movie",
    53: "Thriller",
    10752: "War",
    37: "Western",
}

_CAST_LIMIT = 3
_ALT_TITLE_LIMIT = 30
_IMDB_ID = re.compile(r"^(?:tt)?(\d{7,10})$")
_POSTER_PATH = re.compile(r"^/[\w.-]+\.(?:jpe?g|png|webp|svg)$", re.IGNORECASE)
_YEAR = re.compile(r"^\s*(\d{4})(?:\D|$)")
# Month/day/two-digit-year dates, as in the widely copied "tmdb-movies.csv" (6/9/15).
_US_DATE = re.compile(r"^\s*\d{1,2}/\d{1,2}/(\d{2}|\d{4})\s*$")
# Overviews and JSON credit lists can exceed csv's 128 KiB default field limit; a field larger
# than this is malformed (the row is skipped), not a reason to buffer the whole file.
_CSV_FIELD_LIMIT = 16 * 1024 * 1024


class RowError(ValueError):
    """A record that cannot become a `Movie`; `reason` is the counter name in `SourceStats`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Field parsing shared by both formats. Each takes whatever the file held (str from CSV; str,
# number, list or dict from JSON) and either returns a clean value or raises RowError.


def _parse_id(value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowError("no_id")
    if isinstance(value, bool):
        raise RowError("bad_id", repr(value))
    if isinstance(value, int):
        ident = value
    elif isinstance(value, str) and value.strip().isdigit():
        ident = int(value.strip())
    else:
        raise RowError("bad_id", repr(value))
    if ident <= 0:
        raise RowError("bad_id", repr(value))
    return ident


def _parse_float(value: Any, field: str, lo: float = 0.0, hi: float = math.inf) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.0
    if isinstance(value, bool):
        raise RowError("bad_number", f"{field}={value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError("bad_number", f"{field}={value!r}") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise RowError("bad_number", f"{field}={value!r}")
    return number


def _parse_count(value: Any, field: str) -> int:
    number = _parse_float(value, field)
    # Some exports write counts as floats ("1234.0"); a fractional count is not a count.
    if number != int(number):
        raise RowError("bad_number", f"{field}={value!r}")
    return int(number)


def _parse_year(release_date: Any, release_year: Any = None) -> int | None:
    if isinstance(release_date, str):
        m = _YEAR.match(release_date)
        if m:
            return int(m.group(1))
        m = _US_DATE.match(release_date)
        if m and release_year in (None, ""):
            yy = int(m.group(1))
            return yy if yy >= 100 else (1900 + yy if yy > 30 else 2000 + yy)
    if release_year not in (None, ""):
        try:
            year = int(float(release_year))
        except (TypeError, ValueError):
            return None
        return year if 1870 <= year <= 2200 else None
    return None


def _structured(value: Any) -> Any:
    """Decode a CSV cell that holds a JSON (or Python-literal) list/dict; other values pass."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{":
        return value
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Kaggle's movies_metadata.csv writes Python reprs: [{'id': 16, 'name': 'Animation'}].
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise RowError("bad_json", text[:60]) from None


def _names(value: Any, field: str) -> list[str]:
    """Names from [{id, name}], ["a", "b"], {"keywords": [...]}, 'a|b' or 'a, b'."""
    value = _structured(value)
    if value is None:
        return []
    if isinstance(value, dict):
        # Appended keywords come wrapped: {"keywords": [...]} (movies) or {"results": [...]}.
        for key in ("keywords", "results", field):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            raise RowError("bad_json", f"{field} object without a list")
    if isinstance(value, str):
        sep = "|" if "|" in value else ","
        return [part.strip() for part in value.split(sep) if part.strip()]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            name = item.get("name") if isinstance(item, dict) else item
            if isinstance(name, str) and name.strip():
                out.append(name.strip())
            elif field == "genres" and isinstance(name, int) and name in TMDB_GENRES:
                out.append(TMDB_GENRES[name])
        return out
    raise RowError("bad_json", f"{field} is {type(value).__name__}")


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _director(credits: Any, director: Any) -> str | None:
    if isinstance(director, str) and director.strip():
        # Pipe-separated co-directors ("Joel Coen|Ethan Coen"): the first is the director field.
        return director.split("|")[0].strip() or None
    for person in _crew(credits):
        if person.get("job") == "Director" and isinstance(person.get("name"), str):
            name = person["name"].strip()
            if name:
                return name
    return None


def _crew(credits: Any) -> list[dict[str, Any]]:
    credits = _structured(credits)
    if isinstance(credits, dict):
        credits = credits.get("crew")
    if isinstance(credits, list):
        return [p for p in credits if isinstance(p, dict)]
    return []


def _cast(value: Any) -> tuple[str, ...]:
    value = _structured(value)
    if isinstance(value, dict):
        value = value.get("cast")
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        people = [p for p in value if isinstance(p.get("name"), str) and p["name"].strip()]
        # TMDB bills by `order`; entries without one go last, keeping their listed order.
        people.sort(key=lambda p: p["order"] if isinstance(p.get("order"), int) else 1 << 30)
        return _dedupe(p["name"].strip() for p in people)[:_CAST_LIMIT]
    return _dedupe(_names(value, "cast"))[:_CAST_LIMIT]


def movie_from_tmdb(record: Mapping[str, Any]) -> Movie:
    """Map one TMDB-shaped record to a `Movie`.

    Accepts the `/movie/{id}` details shape (optionally with appended `keywords` and
    `credits`) and flat export rows whose list fields are JSON, Python literals, or
    pipe/comma-separated text. Raises `RowError` when the record cannot be a movie.
    """
    ident = _parse_id(record.get("id"))
    title = record.get("title")
    if not (isinstance(title, str) and title.strip()):
        title = record.get("original_title")
    if not (isinstance(title, str) and title.strip()):
        raise RowError("missing_title", f"id {ident}")
    genres = record.get("genres")
    if genres in (None, "", []) and record.get("genre_ids") is not None:
        genres = record.get("genre_ids")
    overview = record.get("overview")
    credits = record.get("credits")
    source_ids: dict[str, int | str] = {"tmdb": ident}
    imdb_id = _imdb_id(record)
    if imdb_id is not None:
        source_ids["imdb"] = imdb_id
    title = " ".join(title.split())
    original = record.get("original_title")
    original = " ".join(original.split()) if isinstance(original, str) else ""
    return Movie(
        id=ident,
        title=title,
        year=_parse_year(record.get("release_date"), record.get("release_year")),
        genres=_dedupe(_names(genres, "genres")),
        overview=overview.strip() if isinstance(overview, str) else "",
        keywords=_dedupe(k.lower() for k in _names(record.get("keywords"), "keywords")),
        director=_director(
            credits if credits is not None else record.get("crew"), record.get("director")
        ),
        cast=_cast(credits if credits is not None else record.get("cast")),
        popularity=_parse_float(record.get("popularity"), "popularity"),
        vote_average=_parse_float(record.get("vote_average"), "vote_average", 0.0, 10.0),
        vote_count=_parse_count(record.get("vote_count"), "vote_count"),
        source_ids=source_ids,
        original_title=original or None,
        alt_titles=_alt_titles(record.get("alternative_titles"), {title, original}),
        poster_path=_poster_path(record.get("poster_path")),
        tmdb_id=ident,
        imdb_id=imdb_id,
    )


def _imdb_id(record: Mapping[str, Any]) -> str | None:
    """`imdb_id` of the details, else of appended `external_ids`; TMDB sends null or "" when it
    has none, and exports sometimes carry the bare number ("0133093")."""
    external = record.get("external_ids")
    for value in (
        record.get("imdb_id"),
        external.get("imdb_id") if isinstance(external, dict) else None,
    ):
        if isinstance(value, str) and (m := _IMDB_ID.match(value.strip())):
            return f"tt{m.group(1)}"
    return None


def _poster_path(value: Any) -> str | None:
    # A path under TMDB's image base ("/abc.jpg"); null, "" or anything else means no poster.
    if isinstance(value, str) and _POSTER_PATH.match(value.strip()):
        return value.strip()
    return None


def _alt_titles(value: Any, known: set[str]) -> tuple[str, ...]:
    """Titles from appended `alternative_titles` ({"titles": [{iso_3166_1, title, type}]}),
    without the title and original title and repeats, in TMDB's order, at most a few dozen
    (a famous film has over a hundred, mostly transliterations nobody types)."""
    value = _structured(value)
    titles = value.get("titles") if isinstance(value, dict) else value
    if not isinstance(titles, list):
        return ()
    out: dict[str, None] = {}
    for item in titles:
        text = item.get("title") if isinstance(item, dict) else item
        if isinstance(text, str):
            text = " ".join(text.split())
            if text and text not in known:
                out.setdefault(text, None)
    return tuple(out)[:_ALT_TITLE_LIMIT]


# ---------------------------------------------------------------------------------------------
# File formats.


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    # utf-8-sig drops a BOM (spreadsheet exports); undecodable bytes become U+FFFD rather than
    # aborting the whole file on one bad row.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = suffixes[-1] if suffixes else ""
    if kind == ".csv":
        return "csv"
    if kind in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ValueError(
        f"unsupported TMDB export {path.name!r}: expected .csv, .jsonl or .json (optionally .gz)"
    )


def _csv_records(path: Path, stats: SourceStats) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            return
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                # The reader has consumed the offending line(s); go on with the next row.
                stats.skip("bad_csv")
                continue
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                # Usually an unquoted comma or newline in a text field: every column after it
                # has shifted, so nothing in the row can be trusted.
                stats.skip("bad_row")
                continue
            yield dict(zip(header, row, strict=True))


def _jsonl_records(path: Path, stats: SourceStats) -> Iterator[Any]:
    with _open_text(path) as fh:
        first = fh.read(1)
        while first and first.isspace():
            first = fh.read(1)
        if first == "[":
            # A .json file holding one array instead of one object per line.
            try:
                records = json.loads(first + fh.read())
            except json.JSONDecodeError:
                stats.skip("bad_json")
                return
            yield from records
            return
        lines = iter(fh)
        pending = first
        for line in lines:
            line, pending = pending + line, ""
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                stats.skip("bad_json")
        if pending.strip():
            try:
                yield json.loads(pending)
            except json.JSONDecodeError:
                stats.skip("bad_json")


def iter_tmdb_export(path: Path, stats: SourceStats) -> Iterator[Movie]:
    """Yield a `Movie` per usable record of a TMDB-format export (.csv, .jsonl/.json, or .gz).

    Malformed records (no or bad id, bad number, bad JSON, missing title, shifted CSV columns)
    are skipped and counted in `stats` under their reason; a repeated id keeps the first record
    and counts the rest as `duplicate_id`. Only an unreadable file or unknown suffix raises.
    """
    path = Path(path)
    kind = _format_of(path)
    records = _csv_records(path, stats) if kind == "csv" else _jsonl_records(path, stats)
    seen: set[int] = set()
    for record in records:
        if not isinstance(record, dict):
            stats.skip("bad_row")
            continue
        try:
            movie = movie_from_tmdb(record)
        except RowError as err:
            stats.skip(err.reason)
            continue
        except RecursionError:
            stats.skip("bad_json")
            continue
        if movie.id in seen:
            stats.skip("duplicate_id")
            continue
        seen.add(movie.id)
        stats.yielded += 1
        yield movie
