"""The TMDB v3 API as a catalog source: which ids, their details, a resumable checkpoint, refresh.

Two ways to choose ids: `/discover/movie` pages by popularity (`iter_tmdb_api`), or a list of
ids such as TMDB's daily ID export (`iter_tmdb_ids`). Either way each id's details come from
`/movie/{id}` with everything else appended in the same request, and the checkpoint lets a rerun
replay what it has. `refresh=True` asks `/movie/changes` which ids TMDB edited since the last
finished run and fetches only those (plus ids new to the list); a plain rerun asks nothing.

TMDB itself is never reached in tests; `tests/support/fake_tmdb.py` speaks its JSON shapes on
loopback. HTTP, authentication and retries live in `tmdb_client`.

Over 400 lines on purpose: the checkpoint, the listing and the refresh share the checkpoint's
state and its resume rules; split, each part would need the others' internals.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from index_builder.sources import SourceStats
from index_builder.sources.tmdb_client import (
    MAX_PAGE,
    TmdbAuthError,
    TmdbClient,
    TmdbError,
    TmdbSettings,
    TmdbSettingsError,
    TmdbUnavailableError,
)
from index_builder.sources.tmdb_export import RowError, movie_from_tmdb
from index_builder.sources.tmdb_id_export import ExportedId
from moviemind_core.catalog import Movie

__all__ = [
    "TmdbAuthError",
    "TmdbCheckpointError",
    "TmdbError",
    "TmdbReport",
    "TmdbSettings",
    "TmdbSettingsError",
    "TmdbUnavailableError",
    "iter_tmdb_api",
    "iter_tmdb_ids",
]

# 3: movies carry poster_path, tmdb/imdb ids, original and alternative titles; a version-2
# checkpoint would build a catalog without them, so it is refused with a message instead.
_CHECKPOINT_VERSION = 3
# What each details request appends (same request, no extra calls). TMDB takes up to 20.
_APPEND = (
    "keywords",
    "credits",
    "recommendations",
    "similar",
    "external_ids",
    "alternative_titles",
)
_MAX_APPEND = 20
if len(_APPEND) > _MAX_APPEND:  # pragma: no cover - a guard for whoever edits _APPEND
    raise RuntimeError(f"TMDB's append_to_response takes at most {_MAX_APPEND} parts")
# /movie/changes answers at most 14 days per request. 13-day windows that share their edge
# day stay within that whichever way TMDB counts the ends, and miss no day.
_CHANGES_WINDOW = timedelta(days=13)

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 - patched by tests


class TmdbCheckpointError(TmdbError):
    """The checkpoint file is unreadable or belongs to a different query."""


class TmdbReport(msgspec.Struct, kw_only=True):
    """What a run did, for the build log: requests made, details fetched vs. replayed."""

    listed: int = 0  # ids in the listing (discover pages or the id list)
    fetched: int = 0  # details requested from TMDB this run
    replayed: int = 0  # movies taken from the checkpoint without a request
    changed: int = 0  # catalog ids TMDB edited since the last finished run (refetched)
    requests: int = 0  # every HTTP attempt, retries included
    notes: list[str] = []

    def summary(self) -> str:
        """One line for the build log."""
        line = (
            f"TMDB: {self.listed:,} listed, {self.fetched:,} fetched, "
            f"{self.replayed:,} from the checkpoint, {self.changed:,} changed since the last "
            f"run, {self.requests:,} requests"
        )
        return "; ".join([line, *self.notes])


# ---------------------------------------------------------------------------------------------
# Details.


def _fetch_movie(client: TmdbClient, movie_id: int, settings: TmdbSettings) -> Movie | str:
    """Details with everything in `_APPEND` as a `Movie`, or the reason it cannot be one."""
    data = client.get(
        f"/movie/{movie_id}",
        {"append_to_response": ",".join(_APPEND), "language": settings.language},
        missing_ok=True,
    )
    if data is None:
        return "not_found"
    if not isinstance(data, dict):
        return "bad_reply"
    if data.get("adult") is True:
        # Ids from /movie/changes or an old export can turn out adult; the catalog never shows
        # them (discover asks include_adult=false, the export reader drops adult rows).
        return "adult"
    try:
        movie = movie_from_tmdb(data)
    except RowError as err:
        return err.reason
    related = related_ids(data)
    return msgspec.structs.replace(movie, related=related) if related else movie


def related_ids(details: dict) -> tuple[int, ...]:
    """Ids from the appended `recommendations` then `similar` pages, best first, no repeats."""
    out: dict[int, None] = {}
    for key in ("recommendations", "similar"):
        page = details.get(key)
        results = page.get("results") if isinstance(page, dict) else None
        for item in results if isinstance(results, list) else ():
            other = item.get("id") if isinstance(item, dict) else None
            if isinstance(other, int) and other != details.get("id"):
                out.setdefault(other, None)
    return tuple(out)


def _int_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# ---------------------------------------------------------------------------------------------
# Checkpoint.


class _Checkpoint(msgspec.Struct, kw_only=True):
    """What a run has done so far. Movies and skips are keyed by TMDB id, so a resumed run
    replays them instead of asking TMDB again. `started_at` is when the current pass began
    (its oldest data); `synced_at` the start of the last finished pass, which `refresh` asks
    /movie/changes about."""

    version: int = _CHECKPOINT_VERSION
    query: dict[str, str | int]
    total_pages: int | None = None
    total_results: int | None = None
    page_ids: dict[int, list[int]] = {}
    pages_done: list[int] = []
    movies: dict[int, Movie] = {}
    skipped: dict[int, str] = {}
    complete: bool = False
    started_at: str = ""
    synced_at: str = ""
    updated_at: str = ""


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _new_checkpoint(query: dict[str, str | int]) -> _Checkpoint:
    return _Checkpoint(query=query, started_at=_stamp(_now()))


def _load_checkpoint(path: Path, query: dict[str, str | int]) -> _Checkpoint:
    if not path.exists():
        return _new_checkpoint(query)
    try:
        state = msgspec.json.decode(path.read_bytes(), type=_Checkpoint)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as err:
        raise TmdbCheckpointError(
            f"TMDB checkpoint {path} is unreadable ({err}); delete it to start over"
        ) from None
    if state.version != _CHECKPOINT_VERSION:
        raise TmdbCheckpointError(
            f"TMDB checkpoint {path} has version {state.version}, expected "
            f"{_CHECKPOINT_VERSION}; delete it to start over"
        )
    if state.query != query:
        diff = ", ".join(
            f"{k} {state.query.get(k)!r} -> {v!r}"
            for k, v in query.items()
            if state.query.get(k) != v
        )
        raise TmdbCheckpointError(
            f"TMDB checkpoint {path} was written for a different query ({diff}); "
            "delete it or use another checkpoint path"
        )
    if not state.started_at:
        state.started_at = _stamp(_now())
    return state


class _CheckpointWriter:
    """Writes the checkpoint atomically (temp file, fsync, rename) every so many movies."""

    def __init__(self, path: Path, state: _Checkpoint, every: int) -> None:
        self.path = path
        self.state = state
        self.every = every
        self._saved_at = self._size()
        self._dirty = False

    def _size(self) -> int:
        return len(self.state.movies) + len(self.state.skipped)

    def note(self) -> None:
        """Record that the state changed; save when enough has accumulated."""
        self._dirty = True
        # The whole file is rewritten each time, so the interval grows with its size (1/20th):
        # total bytes written stay linear in the catalog size, and a hard kill loses <= 5%.
        if self._size() - self._saved_at >= max(self.every, self._size() // 20):
            self.save()

    def save(self) -> None:
        if not self._dirty:
            return
        self.state.updated_at = _stamp(_now())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(msgspec.json.encode(self.state))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self._saved_at = self._size()
        self._dirty = False


# ---------------------------------------------------------------------------------------------
# Changes since the last run.


def changed_ids(client: TmdbClient, since: datetime, until: datetime) -> tuple[set[int], int]:
    """Ids TMDB's /movie/changes lists between `since` and `until` (dates, both included), and
    how many windows had to stop at page 500 (their later pages are out of TMDB's reach).

    The range is cut into windows TMDB accepts (at most 14 days); a window whose changes run
    past page 500 is halved until it fits or is a single day.
    """
    ids: set[int] = set()
    truncated = 0
    windows = []
    last = until.astimezone(UTC).date()
    start = min(since.astimezone(UTC).date(), last)
    while True:
        end = min(start + _CHANGES_WINDOW, last)
        windows.append((start, end))
        if end >= last:
            break
        start = end
    while windows:
        start, end = windows.pop(0)
        first = _changes_page(client, start, end, 1)
        total = first.get("total_pages") if isinstance(first.get("total_pages"), int) else 1
        if total > MAX_PAGE and end > start:
            middle = start + (end - start) // 2
            windows[:0] = [(start, middle), (middle + timedelta(days=1), end)]
            continue
        if total > MAX_PAGE:
            truncated += 1
        ids.update(_change_ids(first))
        for page in range(2, min(total, MAX_PAGE) + 1):
            ids.update(_change_ids(_changes_page(client, start, end, page)))
    return ids, truncated


def _changes_page(client: TmdbClient, start: date, end: date, page: int) -> dict:
    data = client.get(
        "/movie/changes",
        {"start_date": start.isoformat(), "end_date": end.isoformat(), "page": page},
    )
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TmdbError(f"TMDB /movie/changes {start}..{end} page {page} has no results list")
    return data


def _change_ids(data: dict) -> Iterator[int]:
    for item in data["results"]:
        ident = _int_id(item.get("id")) if isinstance(item, dict) else None
        if ident is not None:
            yield ident


# ---------------------------------------------------------------------------------------------
# The shared engine: a listing of ids -> movies, through the checkpoint.


class _Run:
    """One pass over a listing: replays what the checkpoint holds, fetches the rest."""

    def __init__(
        self,
        settings: TmdbSettings,
        checkpoint: Path,
        query: dict[str, str | int],
        stats: SourceStats,
        report: TmdbReport,
        *,
        fresh: bool,
    ) -> None:
        self.settings = settings
        self.stats = stats
        self.report = report
        self.path = Path(checkpoint)
        self.state = _new_checkpoint(query) if fresh else _load_checkpoint(self.path, query)
        self.writer = _CheckpointWriter(self.path, self.state, settings.checkpoint_every)
        if fresh:
            self.writer.note()
        self.client = TmdbClient(settings)
        self.seen: set[int] = set()

    def refresh(self) -> bool:
        """Forget what TMDB changed since the last finished pass, so this pass refetches it.
        False (and a note) when there is no finished pass to refresh: the run just resumes."""
        state = self.state
        if not state.complete or not state.synced_at:
            self.report.notes.append(
                "nothing to refresh yet (the checkpoint has no finished run): resumed instead"
            )
            return False
        started = _now()
        ids, truncated = changed_ids(self.client, datetime.fromisoformat(state.synced_at), started)
        stale = [i for i in ids if i in state.movies or i in state.skipped]
        for ident in stale:
            state.movies.pop(ident, None)
            state.skipped.pop(ident, None)
        self.report.changed = len(stale)
        if truncated:
            self.report.notes.append(
                f"{truncated} day(s) had more changes than TMDB pages through (500 pages); "
                "rerun with --tmdb-fresh to be sure nothing is stale"
            )
        state.started_at = _stamp(started)
        state.complete = False
        self.writer.note()
        return True

    def movie(self, movie_id: int, listed: dict[str, float] | None = None) -> Movie | None:
        """The movie for a listed id (replayed or fetched), or None when skipped; counts it."""
        state = self.state
        if movie_id in self.seen:
            # Popularity shifts while paging, so an id can show up on two pages.
            self.stats.skip("duplicate_id")
            return None
        self.seen.add(movie_id)
        self.report.listed += 1
        if movie_id in state.movies or movie_id in state.skipped:
            self.report.replayed += 1
        else:
            result = _fetch_movie(self.client, movie_id, self.settings)
            self.report.fetched += 1
            if isinstance(result, Movie):
                state.movies[movie_id] = result
            else:
                state.skipped[movie_id] = result
            self.writer.note()
        movie = state.movies.get(movie_id)
        if movie is None:
            self.stats.skip(state.skipped[movie_id])
            return None
        if listed:
            # Listings carry today's popularity (and discover today's votes): newer than a
            # replayed record's, and free, so an unchanged movie never needs a request for them.
            fresh = {k: v for k, v in listed.items() if getattr(movie, k) != v}
            if fresh:
                movie = msgspec.structs.replace(movie, **fresh)
                state.movies[movie_id] = movie
                self.writer.note()
        self.stats.yielded += 1
        return movie

    def finish(self) -> None:
        """Mark the pass complete: the next refresh asks for changes since it began."""
        state = self.state
        if not state.complete:
            state.complete = True
            state.synced_at = state.started_at
            self.writer.note()

    def close(self) -> None:
        """Save the checkpoint and close the client (also when the consumer stops early)."""
        try:
            self.writer.save()
        finally:
            self.report.requests += self.client.requests
            self.client.close()


# ---------------------------------------------------------------------------------------------
# Sources.


def iter_tmdb_api(
    settings: TmdbSettings,
    checkpoint: Path,
    stats: SourceStats,
    progress: Callable[[int, int], None] | None = None,
    *,
    fresh: bool = False,
    refresh: bool = False,
    report: TmdbReport | None = None,
) -> Iterator[Movie]:
    """Yield the most popular movies from TMDB's /discover/movie, with full details.

    Fetches `settings.pages` discover pages (sort_by=popularity.desc, no adult or video
    titles), then /movie/{id} with keywords, credits, recommendations, similar, external ids
    and alternative titles appended for each id. Progress is kept in the JSON file
    `checkpoint`: a rerun after a crash replays what was fetched and only asks TMDB for the
    rest; a finished run needs no requests at all when run again. `refresh=True` re-reads the
    discover pages (today's popularity and votes, new titles) and refetches only the movies
    /movie/changes lists as edited since the last finished run; `fresh=True` ignores the
    checkpoint. Asking for more pages than a checkpoint holds extends it. TMDB serves at most
    500 pages (10,000 movies); past that the run stops cleanly with a note in `report`.
    Movies TMDB no longer has (404), adult ones and records that cannot be mapped are skipped
    and counted, as are ids repeated across pages.

    `progress(done, total)` is called after each listed id; `total` is TMDB's result count for
    the requested pages. Raises `TmdbAuthError` on 401, `TmdbUnavailableError` when retries
    run out, `TmdbCheckpointError` for a foreign checkpoint.
    """
    report = TmdbReport() if report is None else report
    query: dict[str, str | int] = {
        # `pages` is not part of the query: asking for more pages extends a finished checkpoint.
        "base_url": settings.base_url.rstrip("/"),
        "sort_by": "popularity.desc",
        "language": settings.language,
        "min_vote_count": settings.min_vote_count,
    }
    run = _Run(settings, checkpoint, query, stats, report, fresh=fresh)
    state = run.state
    done = 0

    def planned_pages() -> int:
        known = state.total_pages if state.total_pages is not None else settings.pages
        return min(settings.pages, known, MAX_PAGE)

    def planned_total() -> int:
        per_page = len(state.page_ids.get(1, ())) or 20
        estimate = planned_pages() * per_page
        return min(estimate, state.total_results) if state.total_results is not None else estimate

    try:
        if refresh and not fresh and run.refresh():
            # Re-read the listing: today's order, popularity and votes, and new titles.
            state.page_ids.clear()
            state.pages_done.clear()
        page = 1
        while page <= planned_pages():
            listed: dict[int, dict[str, float]] = {}
            ids = state.page_ids.get(page)
            if ids is None:
                ids, listed = _discover_page(run.client, settings, page, state)
                state.complete = False
                run.writer.note()
            for movie_id in ids:
                movie = run.movie(movie_id, listed.get(movie_id))
                if movie is not None:
                    yield movie
                done += 1
                if progress is not None:
                    progress(done, planned_total())
            if page not in state.pages_done:
                state.pages_done.append(page)
                run.writer.note()
            if not ids:
                break
            page += 1
        if settings.pages >= MAX_PAGE and (state.total_pages or 0) > MAX_PAGE:
            report.notes.append(
                f"TMDB lists {state.total_results or 0:,} movies but discover stops at page "
                f"{MAX_PAGE} ({MAX_PAGE * 20:,} movies); for more, build from the daily ID "
                "export (--source tmdb-export --input movie_ids_MM_DD_YYYY.json.gz)"
            )
        run.finish()
    finally:
        run.close()


def _discover_page(
    client: TmdbClient, settings: TmdbSettings, page: int, state: _Checkpoint
) -> tuple[list[int], dict[int, dict[str, float]]]:
    """One discover page: its ids (recorded in the checkpoint) and each id's listed figures."""
    params: dict[str, str | int] = {
        "sort_by": "popularity.desc",
        "page": page,
        "language": settings.language,
        "include_adult": "false",
        "include_video": "false",
    }
    if settings.min_vote_count > 0:
        params["vote_count.gte"] = settings.min_vote_count
    data = client.get("/discover/movie", params)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TmdbError(f"TMDB /discover/movie page {page} has no results list")
    if isinstance(data.get("total_pages"), int):
        state.total_pages = data["total_pages"]
    if isinstance(data.get("total_results"), int):
        state.total_results = data["total_results"]
    ids: list[int] = []
    listed: dict[int, dict[str, float]] = {}
    for item in data["results"]:
        ident = _int_id(item.get("id")) if isinstance(item, dict) else None
        if ident is None:
            continue
        ids.append(ident)
        figures = {}
        for key, kind in (("popularity", float), ("vote_average", float), ("vote_count", int)):
            value = item.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                figures[key] = kind(value)
        listed[ident] = figures
    state.page_ids[page] = ids
    return ids, listed


def iter_tmdb_ids(
    settings: TmdbSettings,
    ids: Iterable[ExportedId],
    checkpoint: Path,
    stats: SourceStats,
    progress: Callable[[int, int], None] | None = None,
    *,
    fresh: bool = False,
    refresh: bool = False,
    report: TmdbReport | None = None,
) -> Iterator[Movie]:
    """Yield a movie per id of `ids` (e.g. `read_id_export`), in their order, with details.

    The same details, checkpoint and skip rules as `iter_tmdb_api`. An id the checkpoint holds
    is replayed, with the listing's popularity (today's, in a daily export); a new id is
    fetched. `refresh=True` also refetches the ids /movie/changes lists as edited since the
    last finished run. So a nightly build over the day's export asks TMDB only about new and
    changed movies, and a rerun over the same export asks nothing.
    """
    report = TmdbReport() if report is None else report
    query: dict[str, str | int] = {
        "base_url": settings.base_url.rstrip("/"),
        "listing": "ids",
        "language": settings.language,
    }
    listing = list(ids)
    run = _Run(settings, checkpoint, query, stats, report, fresh=fresh)
    try:
        if refresh and not fresh:
            run.refresh()
        for done, row in enumerate(listing, 1):
            figures = {"popularity": row.popularity} if row.popularity > 0 else None
            movie = run.movie(row.id, figures)
            if movie is not None:
                yield movie
            if progress is not None:
                progress(done, len(listing))
        run.finish()
    finally:
        run.close()
