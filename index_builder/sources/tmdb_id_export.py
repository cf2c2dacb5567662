"""TMDB's daily ID export (`movie_ids_MM_DD_YYYY.json.gz`) read as a list of ids to fetch.

The export is one JSON object per line, `{"adult", "id", "original_title", "popularity",
"video"}`, about a million movies, published daily at files.tmdb.org/p/exports. It holds no
movie data: the API source (`tmdb_api.iter_tmdb_ids`) fetches the details of the ids chosen here.
"""

from __future__ import annotations

import gzip
import heapq
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import msgspec

__all__ = ["ExportedId", "IdExport", "is_id_export", "read_id_export"]

_ID_EXPORT_NAME = re.compile(r"^movie_ids_\d{2}_\d{2}_\d{4}\.json(\.gz)?$")
# Read size; a line split across two blocks is joined again (tests use tiny blocks).
_BLOCK = 1 << 20
_ID_EXPORT_KEYS = frozenset({"adult", "id", "original_title", "popularity", "video"})


class ExportedId(msgspec.Struct, frozen=True):
    """One usable row of the daily ID export: what to fetch, and how popular it is today."""

    id: int
    popularity: float = 0.0
    original_title: str | None = None


class _IdRow(msgspec.Struct):
    id: int
    popularity: float | None = None
    original_title: str | None = None
    adult: bool | None = None
    video: bool | None = None


class IdExport(msgspec.Struct, kw_only=True):
    """The ids chosen from a daily ID export (most popular first) and what was left out."""

    ids: list[ExportedId]
    rows: int = 0
    adult: int = 0
    video: int = 0
    bad: int = 0
    # Usable rows beyond the requested limit (not fetched, not errors).
    over_limit: int = 0

    def summary(self) -> str:
        """One line for the build log."""
        return (
            f"daily ID export: {self.rows:,} rows; left out {self.adult:,} adult, "
            f"{self.video:,} video, {self.bad:,} malformed, {self.over_limit:,} beyond --limit; "
            f"{len(self.ids):,} ids to fetch"
        )


def is_id_export(path: Path) -> bool:
    """True for TMDB's daily ID export: its file name, or a first record with only its keys."""
    path = Path(path)
    if _ID_EXPORT_NAME.match(path.name):
        return True
    if not path.name.lower().endswith((".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz")):
        return False
    try:
        first = json.loads(_first_line(path))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(first, dict) and "id" in first and first.keys() <= _ID_EXPORT_KEYS


def read_id_export(path: Path, limit: int = 0) -> IdExport:
    """The ids of a daily ID export to fetch through the API, most popular first.

    Adult and video rows are left out (the catalog never shows them), as are malformed lines and
    repeated ids; `limit` > 0 keeps the `limit` most popular, choosing in one pass with memory
    for `limit` rows, so a million-line export costs seconds, not gigabytes.
    """
    decoder = msgspec.json.Decoder(_IdRow)
    report = IdExport(ids=[])
    seen: set[int] = set()

    def usable() -> Iterator[tuple[float, int, str | None]]:
        for line in _lines(Path(path)):
            report.rows += 1
            try:
                row = decoder.decode(line)
            except msgspec.DecodeError:
                try:  # a stray non-UTF-8 byte in a title should not cost the row
                    row = decoder.decode(line.decode("utf-8", "replace").encode())
                except (msgspec.DecodeError, msgspec.ValidationError):
                    report.bad += 1
                    continue
            except msgspec.ValidationError:
                report.bad += 1
                continue
            if row.adult:
                report.adult += 1
            elif row.video:
                report.video += 1
            elif row.id <= 0 or row.id in seen:
                report.bad += 1
            else:
                seen.add(row.id)
                pop = row.popularity
                pop = pop if pop and math.isfinite(pop) and pop > 0 else 0.0
                # Ties go to the lower (older, usually better known) id; ids are unique, so
                # the title never takes part in the order.
                yield pop, -row.id, row.original_title

    rows = heapq.nlargest(limit, usable()) if limit > 0 else sorted(usable(), reverse=True)
    report.ids = [ExportedId(-neg_id, pop, title) for pop, neg_id, title in rows]
    report.over_limit = len(seen) - len(report.ids)
    return report


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115


def _lines(path: Path) -> Iterator[bytes]:
    """Non-blank lines as bytes, read a block at a time: straight to msgspec, without a text
    decoding pass or a gzip readline call per line over a million lines."""
    rest = b""
    with _open_binary(path) as fh:
        while chunk := fh.read(_BLOCK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from (line for line in lines if line.strip())
    if rest.strip():
        yield rest


def _first_line(path: Path) -> bytes:
    for line in _lines(path):
        return line.removeprefix(b"\xef\xbb\xbf")
    return b""
