"""The TMDB v3 API as a catalog source: discover pagination, details and a resumable checkpoint.

TMDB itself is never reached in tests; `tests/support/fake_tmdb.py` speaks its JSON shapes on loopback.

Over 400 lines on purpose: settings, the retrying client, the checkpoint and the iterator share
the checkpoint's state and its resume rules; split, each part would need the others' internals.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

from index_builder.sources import SourceStats
from index_builder.sources.tmdb_export import RowError, movie_from_tmdb
from moviemind_core.catalog import Movie
from moviemind_core.config import SettingsError, env_names, reject_unknown

__all__ = [
    "TmdbAuthError",
    "TmdbCheckpointError",
    "TmdbError",
    "TmdbSettings",
    "TmdbSettingsError",
    "TmdbUnavailableError",
    "iter_tmdb_api",
]

# TMDB refuses discover pages above 500.
_MAX_DISCOVER_PAGE = 500
# 2: movies carry TMDB's recommendation/similar lists (`Movie.related`); older checkpoints lack
# them, so they are refused with a message instead of silently building without neighbours.
_CHECKPOINT_VERSION = 2
_ENV_PREFIX = "MOVIEMIND_TMDB_"
_LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
# A v3 "API key" is 32 hex digits; Bearer auth needs the longer v4 "API Read Access Token".
_V3_KEY = re.compile(r"^[0-9a-f]{32}$")

# Indirection so tests can observe (and shorten) the waits without patching time.sleep globally.
_sleep: Callable[[float], None] = time.sleep


class TmdbSettingsError(ValueError):
    """A TMDB setting is missing or invalid; the message is one line naming the variable."""


class TmdbError(RuntimeError):
    """TMDB answered in a way the source cannot continue from."""


class TmdbAuthError(TmdbError):
    """TMDB rejected the token (HTTP 401). Retrying cannot help."""


class TmdbUnavailableError(TmdbError):
    """TMDB kept failing (5xx, 429, connection errors) after every allowed retry."""


class TmdbCheckpointError(TmdbError):
    """The checkpoint file is unreadable or belongs to a different query."""


class TmdbSettings(msgspec.Struct, frozen=True):
    """How to reach TMDB and how much to fetch. Read from `MOVIEMIND_TMDB_*` by `from_env`."""

    token: str
    base_url: str = "https://api.themoviedb.org/3"
    pages: int = 5
    language: str = "en-US"
    min_vote_count: int = 0
    timeout_s: float = 10.0
    max_retries: int = 5
    # First retry waits about backoff_s, doubling per retry up to backoff_max_s (with jitter).
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    # A Retry-After beyond this is capped, so a confused server cannot park the build for hours.
    retry_after_max_s: float = 120.0
    checkpoint_every: int = 20

    def __post_init__(self) -> None:
        def bad(field: str, why: str, value: object) -> TmdbSettingsError:
            return TmdbSettingsError(f"{_ENV_PREFIX}{field.upper()} {why} (got {value!r})")

        if not self.token.strip():
            raise TmdbSettingsError(
                f"{_ENV_PREFIX}TOKEN is not set: use your TMDB API Read Access Token"
            )
        if any(c.isspace() for c in self.token.strip()):
            raise TmdbSettingsError(f"{_ENV_PREFIX}TOKEN must not contain whitespace")
        if not self.base_url.startswith(("http://", "https://")):
            raise bad("base_url", "must start with http:// or https://", self.base_url)
        if not 1 <= self.pages <= _MAX_DISCOVER_PAGE:
            raise bad("pages", f"must be between 1 and {_MAX_DISCOVER_PAGE}", self.pages)
        if not _LANGUAGE.match(self.language):
            raise bad("language", "must look like en or en-US", self.language)
        if self.min_vote_count < 0:
            raise bad("min_vote_count", "must be >= 0", self.min_vote_count)
        if not 0 < self.timeout_s <= 600:
            raise bad("timeout_s", "must be > 0 and <= 600", self.timeout_s)
        if not 0 <= self.max_retries <= 20:
            raise bad("max_retries", "must be between 0 and 20", self.max_retries)
        if not 0 <= self.backoff_s <= 60:
            raise bad("backoff_s", "must be between 0 and 60", self.backoff_s)
        if not self.backoff_s <= self.backoff_max_s <= 600:
            raise bad("backoff_max_s", "must be >= BACKOFF_S and <= 600", self.backoff_max_s)
        if not 0 <= self.retry_after_max_s <= 3600:
            raise bad("retry_after_max_s", "must be between 0 and 3600", self.retry_after_max_s)
        if self.checkpoint_every < 1:
            raise bad("checkpoint_every", "must be >= 1", self.checkpoint_every)

    def __repr__(self) -> str:
        # The token is a credential: keep it out of logs and tracebacks.
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__ if name != "token"
        )
        return f"TmdbSettings(token='***', {fields})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TmdbSettings:
        """Build settings from `MOVIEMIND_TMDB_*`; raise `TmdbSettingsError` on a bad value."""
        env = os.environ if environ is None else environ
        try:  # a misspelt name would otherwise silently leave its default
            reject_unknown(env, _ENV_PREFIX, env_names(cls).values())
        except SettingsError as exc:
            raise TmdbSettingsError(str(exc)) from None
        kwargs: dict[str, Any] = {"token": env.get(f"{_ENV_PREFIX}TOKEN", "")}
        for info in msgspec.structs.fields(cls):
            name, kind = info.name, info.type
            if name == "token":
                continue
            raw = env.get(f"{_ENV_PREFIX}{name.upper()}")
            if raw is None or not raw.strip():
                continue
            raw = raw.strip()
            if kind is str:
                kwargs[name] = raw
                continue
            try:
                kwargs[name] = int(raw) if kind is int else float(raw)
            except ValueError:
                noun = "an integer" if kind is int else "a number"
                raise TmdbSettingsError(
                    f"{_ENV_PREFIX}{name.upper()} must be {noun} (got {raw!r})"
                ) from None
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# HTTP with retries.


class _Client:
    """A TMDB GET with the retry policy: 429 waits Retry-After, 5xx and transport errors back
    off exponentially with jitter, 401 and other 4xx fail at once."""

    def __init__(self, settings: TmdbSettings) -> None:
        self._settings = settings
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {settings.token.strip()}",
                "Accept": "application/json",
            },
            timeout=settings.timeout_s,
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _backoff(self, attempt: int) -> float:
        s = self._settings
        ceiling = min(s.backoff_max_s, s.backoff_s * (2**attempt))
        # Half fixed, half random: retries from parallel builders spread out but never hammer.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.0), self._settings.retry_after_max_s)

    def get(self, path: str, params: Mapping[str, str | int], *, missing_ok: bool = False) -> Any:
        """GET `path` under the base URL and decode its JSON; None for a 404 when `missing_ok`."""
        attempts = self._settings.max_retries + 1
        for attempt in range(attempts):
            try:
                response = self._http.get(path, params=dict(params))
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                delay = self._backoff(attempt)
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return msgspec.json.decode(response.content)
                    except msgspec.DecodeError:
                        # A proxy cutting the body short looks like this; worth another try.
                        problem, delay = "reply was not valid JSON", self._backoff(attempt)
                elif status == 401:
                    raise TmdbAuthError(self._auth_message(response))
                elif status == 404 and missing_ok:
                    return None
                elif status == 429:
                    problem = "rate limited (HTTP 429)"
                    retry_after = self._retry_after(response)
                    delay = self._backoff(attempt) if retry_after is None else retry_after
                elif status >= 500:
                    problem, delay = f"HTTP {status}", self._backoff(attempt)
                else:
                    raise TmdbError(f"TMDB {path} answered HTTP {status}: {_message(response)}")
            if attempt + 1 < attempts:
                _sleep(delay)
        raise TmdbUnavailableError(
            f"TMDB {path} failed after {attempts} attempt{'s' if attempts > 1 else ''}: {problem}"
        )

    def _auth_message(self, response: httpx.Response) -> str:
        text = "TMDB rejected the token (401): check MOVIEMIND_TMDB_TOKEN"
        if _V3_KEY.match(self._settings.token.strip()):
            text += " (it looks like a v3 API key; Bearer auth needs the API Read Access Token)"
        said = _message(response)
        return f"{text}; TMDB says: {said}" if said else text


def _message(response: httpx.Response) -> str:
    """TMDB's own words from an error body ({status_code, status_message} or {errors: [...]})."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        if isinstance(body.get("status_message"), str):
            return body["status_message"]
        if isinstance(body.get("errors"), list):
            return "; ".join(str(e) for e in body["errors"])
    return ""


def _fetch_movie(client: _Client, movie_id: int, settings: TmdbSettings) -> Movie | str:
    """Details with keywords, credits and TMDB's related lists as a `Movie`, or the reason it
    cannot be one. The lists come in the same request (append_to_response): no extra calls."""
    data = client.get(
        f"/movie/{movie_id}",
        {
            "append_to_response": "keywords,credits,recommendations,similar",
            "language": settings.language,
        },
        missing_ok=True,
    )
    if data is None:
        return "not_found"
    if not isinstance(data, dict):
        return "bad_reply"
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


# ---------------------------------------------------------------------------------------------
# Checkpoint.


class _Checkpoint(msgspec.Struct, kw_only=True):
    """What a run has done so far. Movies and skips are keyed by TMDB id, so a resumed run
    replays them instead of asking TMDB again."""

    version: int = _CHECKPOINT_VERSION
    query: dict[str, str | int]
    total_pages: int | None = None
    total_results: int | None = None
    page_ids: dict[int, list[int]] = {}
    pages_done: list[int] = []
    movies: dict[int, Movie] = {}
    skipped: dict[int, str] = {}
    complete: bool = False
    updated_at: str = ""


def _query_of(settings: TmdbSettings) -> dict[str, str | int]:
    # `pages` is not part of the query: asking for more pages extends a finished checkpoint.
    return {
        "base_url": settings.base_url.rstrip("/"),
        "sort_by": "popularity.desc",
        "language": settings.language,
        "min_vote_count": settings.min_vote_count,
    }


def _load_checkpoint(path: Path, settings: TmdbSettings) -> _Checkpoint:
    query = _query_of(settings)
    if not path.exists():
        return _Checkpoint(query=query)
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
        self.state.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
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
# Sources.


def iter_tmdb_api(
    settings: TmdbSettings,
    checkpoint: Path,
    stats: SourceStats,
    progress: Callable[[int, int], None] | None = None,
    *,
    fresh: bool = False,
) -> Iterator[Movie]:
    """Yield the most popular movies from TMDB's /discover/movie, with full details.

    Fetches `settings.pages` discover pages (sort_by=popularity.desc), then
    /movie/{id}?append_to_response=keywords,credits,recommendations,similar for each id. Progress is kept in the JSON
    file `checkpoint`: a rerun after a crash or interruption replays what was fetched and only
    asks TMDB for the rest; a finished run marks it complete, and rerunning then needs no
    requests at all (pass `fresh=True` to ignore it and fetch everything again). Asking for more
    pages than a checkpoint holds extends it. Movies TMDB no longer has (404) and records that
    cannot be mapped are skipped and counted, as are ids repeated across pages.

    `progress(done, total)` is called after each discover result is handled; `total` is TMDB's
    result count for the requested pages. Raises `TmdbAuthError` on 401,
    `TmdbUnavailableError` when retries run out, `TmdbCheckpointError` for a foreign checkpoint.
    """
    checkpoint = Path(checkpoint)
    state = (
        _Checkpoint(query=_query_of(settings)) if fresh else _load_checkpoint(checkpoint, settings)
    )
    writer = _CheckpointWriter(checkpoint, state, settings.checkpoint_every)
    if fresh:
        writer.note()
    seen: set[int] = set()
    done = 0

    def planned_pages() -> int:
        known = state.total_pages if state.total_pages is not None else settings.pages
        return min(settings.pages, known, _MAX_DISCOVER_PAGE)

    def planned_total() -> int:
        per_page = len(state.page_ids.get(1, ())) or 20
        estimate = planned_pages() * per_page
        return min(estimate, state.total_results) if state.total_results is not None else estimate

    with _Client(settings) as client:
        try:
            page = 1
            while page <= planned_pages():
                ids = state.page_ids.get(page)
                if ids is None:
                    ids = _discover_page(client, settings, page, state)
                    state.complete = False
                    writer.note()
                for movie_id in ids:
                    if movie_id in seen:
                        # Popularity shifts while paging, so an id can show up on two pages.
                        stats.skip("duplicate_id")
                    else:
                        seen.add(movie_id)
                        if movie_id not in state.movies and movie_id not in state.skipped:
                            result = _fetch_movie(client, movie_id, settings)
                            if isinstance(result, Movie):
                                state.movies[movie_id] = result
                            else:
                                state.skipped[movie_id] = result
                            writer.note()
                        movie = state.movies.get(movie_id)
                        if movie is None:
                            stats.skip(state.skipped[movie_id])
                        else:
                            stats.yielded += 1
                            yield movie
                    done += 1
                    if progress is not None:
                        progress(done, planned_total())
                if page not in state.pages_done:
                    state.pages_done.append(page)
                    writer.note()
                if not ids:
                    break
                page += 1
            if not state.complete:
                state.complete = True
                writer.note()
        finally:
            # Runs on success, on an exception, and when the consumer stops early (close()).
            writer.save()


def _discover_page(
    client: _Client, settings: TmdbSettings, page: int, state: _Checkpoint
) -> list[int]:
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
    ids = [
        r["id"]
        for r in data["results"]
        if isinstance(r, dict) and isinstance(r.get("id"), int) and not isinstance(r["id"], bool)
    ]
    state.page_ids[page] = ids
    return ids
