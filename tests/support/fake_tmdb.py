"""A fake TMDB v3 API on 127.0.0.1 for tests: real HTTP, TMDB's JSON shapes, scriptable faults.

Serves `/3/discover/movie`, `/3/movie/{id}` (with up to 20 `append_to_response` parts: keywords,
credits, recommendations, similar, external_ids, alternative_titles) and `/3/movie/changes`, the
way TMDB does:
- authentication by `Authorization: Bearer TOKEN` (the read-access token) or by the
  `api_key=KEY` query parameter (the v3 key); anything else is TMDB's 401;
- list pages stop at 500 ("Pages start at 1 and max at 500"), while `total_pages` and
  `total_results` still count everything, so a catalog can span thousands of pages
  (`generated=N` serves N movies made on demand, without holding them);
- discover honours `include_adult`, `include_video`, `vote_count.gte` and `language`; details
  honour `language` (a translation's title and overview, else the original title and an
  empty overview);
- `/movie/changes` takes `start_date`/`end_date` (YYYY-MM-DD, at most 14 days apart, default
  the last day) and pages 100 ids at a time;
- errors are TMDB's JSON (`{"success": false, "status_code": N, "status_message": "..."}`).

Faults: `fail` (an HTTP status with TMDB's JSON body), `html` (a CDN's HTML error page, 502 by
default), `rate_limit` (429 with or without Retry-After) and `drop` (close the connection
without answering), each N times or forever. Every request is recorded.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_GENRES = [
    {"id": 28, "name": "Action"},
    {"id": 12, "name": "Adventure"},
    {"id": 35, "name": "Comedy"},
    {"id": 18, "name": "Drama"},
    {"id": 878, "name": "Science Fiction"},
    {"id": 53, "name": "Thriller"},
]
_NOT_FOUND = (404, 34, "The resource you requested could not be found.")
_BAD_KEY = (401, 7, "Invalid API key: You must be granted a valid key.")
_RATE_LIMITED = (429, 25, "Your request count (#) is over the allowed limit of (40).")
_SERVER_ERROR = (500, 11, "Internal error: Something went wrong, contact TMDb.")
_BAD_PAGE = (
    400,
    22,
    "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer.",
)
_BAD_DATE_RANGE = (400, 47, "Invalid date range: Should be a range no longer than 14 days.")
_BAD_DATE = (400, 47, "The input is not valid.")
_MAX_PAGE = 500
_MAX_APPEND = 20
_CHANGES_PAGE_SIZE = 100
# Parts of a details record served only when appended.
_APPENDABLE = (
    "keywords",
    "credits",
    "recommendations",
    "similar",
    "external_ids",
    "alternative_titles",
)
# A real CDN's error page (what sits in front of api.themoviedb.org answers in HTML, not JSON).
_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>CloudFront</center>\r\n"
    "</body>\r\n</html>\r\n"
)

TOKEN = "test-token"
API_KEY = "0123456789abcdef0123456789abcdef"


def popularity_of(i: int) -> float:
    """Movie i's popularity: strictly falling with i and always positive."""
    return round(1000.0 - i * 7.5, 3) if i < 120 else round(100.0 * 120 / (i + 1), 6)


def make_movie(i: int) -> dict[str, Any]:
    """A TMDB `/movie/{id}` details record (with every appendable part) for movie number i.

    Ids are 1000 + i; popularity falls with i so discover order is 0, 1, 2, ...; cast is
    listed out of billing order on purpose; every fifth movie has no imdb_id and no poster.
    A French translation (`_translations`, never served as such) gives `language=fr-FR` its
    own title and overview.
    """
    movie_id = 1000 + i
    genres = [_GENRES[i % len(_GENRES)], _GENRES[(i + 2) % len(_GENRES)]]
    imdb_id = None if i % 5 == 4 else f"tt{9_000_000 + i:07d}"
    return {
        "adult": False,
        "backdrop_path": f"/backdrop{movie_id}.jpg",
        "belongs_to_collection": None,
        "budget": 1_000_000 * (i + 1),
        "genres": genres,
        "homepage": "",
        "id": movie_id,
        "imdb_id": imdb_id,
        "original_language": "en",
        "original_title": f"Fake Movie {i}",
        "overview": f"The story of fake movie number {i}.",
        "popularity": popularity_of(i),
        "poster_path": None if i % 5 == 4 else f"/poster{movie_id}.jpg",
        "production_companies": [],
        "production_countries": [],
        "release_date": f"{1980 + i % 40}-0{1 + i % 9}-15",
        "revenue": 0,
        "runtime": 90 + i % 60,
        "spoken_languages": [],
        "status": "Released",
        "tagline": "",
        "title": f"Fake Movie {i}",
        "video": False,
        "vote_average": round(5.0 + (i % 50) / 10, 3),
        "vote_count": 10 * (i + 1),
        "keywords": {
            "keywords": [
                {"id": 10_000 + i, "name": f"Keyword {i}"},
                {"id": 9951, "name": "Time Travel"},
            ]
        },
        # TMDB's own related lists: the next two movies are "recommendations", the one after and
        # an id no catalog holds are "similar" (each entry is a discover-style item).
        "recommendations": _related_page([movie_id + 1, movie_id + 2]),
        "similar": _related_page([movie_id + 3, 99_999_999]),
        "credits": {
            "cast": [_cast(f"Actor {i}-{order}", order, movie_id) for order in (3, 1, 0, 2, 4)],
            "crew": [
                _crew(f"Writer {i}", "Writing", "Screenplay", movie_id),
                _crew(f"Director {i}", "Directing", "Director", movie_id),
            ],
        },
        "external_ids": {
            "imdb_id": imdb_id,
            "wikidata_id": None,
            "facebook_id": None,
            "instagram_id": None,
            "twitter_id": None,
        },
        "alternative_titles": {
            "titles": [
                {"iso_3166_1": "FR", "title": f"Film factice {i}", "type": ""},
                {"iso_3166_1": "US", "title": f"Fake Movie {i}", "type": "working title"},
                {"iso_3166_1": "DE", "title": f"Falscher Film {i}", "type": ""},
            ]
        },
        "_translations": {
            "fr": {"title": f"Film factice {i}", "overview": f"L'histoire du film factice {i}."}
        },
    }


def make_sparse_movie(i: int) -> dict[str, Any]:
    """Movie i as TMDB serves a thin, newly added entry: no release date, overview, genres,
    poster, IMDb id, keywords, credits, votes or alternative titles, an empty `title`."""
    movie = make_movie(i)
    movie.update(
        {
            "backdrop_path": None,
            "budget": 0,
            "genres": [],
            "imdb_id": None,
            "overview": "",
            "poster_path": None,
            "release_date": "",
            "runtime": 0,
            "status": "Rumored",
            "title": "",
            "vote_average": 0,
            "vote_count": 0,
            "keywords": {"keywords": []},
            "recommendations": _related_page([]),
            "similar": _related_page([]),
            "credits": {"cast": [], "crew": []},
            "external_ids": {"imdb_id": None, "wikidata_id": None},
            "alternative_titles": {"titles": []},
            "_translations": {},
        }
    )
    return movie


def _related_page(ids: list[int]) -> dict[str, Any]:
    """A page of `recommendations` or `similar` as TMDB appends it to details."""
    results = [
        {
            "adult": False,
            "backdrop_path": None,
            "id": other,
            "title": f"Related {other}",
            "original_title": f"Related {other}",
            "overview": "",
            "poster_path": None,
            "media_type": "movie",
            "original_language": "en",
            "genre_ids": [],
            "popularity": 1.0,
            "release_date": "2000-01-01",
            "video": False,
            "vote_average": 6.0,
            "vote_count": 10,
        }
        for other in ids
    ]
    return {"page": 1, "results": results, "total_pages": 1, "total_results": len(results)}


def _cast(name: str, order: int, movie_id: int) -> dict[str, Any]:
    return {
        "adult": False,
        "gender": 2,
        "id": hash(name) & 0xFFFFFF,
        "known_for_department": "Acting",
        "name": name,
        "original_name": name,
        "popularity": 1.0,
        "profile_path": None,
        "cast_id": order + 1,
        "character": f"Role {order}",
        "credit_id": f"{movie_id:x}{order:04x}",
        "order": order,
    }


def _crew(name: str, department: str, job: str, movie_id: int) -> dict[str, Any]:
    return {
        "adult": False,
        "gender": 1,
        "id": hash(name) & 0xFFFFFF,
        "known_for_department": department,
        "name": name,
        "original_name": name,
        "popularity": 1.0,
        "profile_path": None,
        "credit_id": f"{movie_id:x}{job}",
        "department": department,
        "job": job,
    }


def _localised(movie: dict[str, Any], language: str) -> dict[str, Any]:
    """Title and overview in `language` as TMDB serves them (a copy; `_translations` removed)."""
    movie = dict(movie)
    translations = movie.pop("_translations", {}) or {}
    code = language.split("-")[0] if language else "en"
    if code != "en":
        own = translations.get(code) or {}
        movie["title"] = own.get("title") or movie["original_title"]
        movie["overview"] = own.get("overview") or ""
    return movie


def _discover_item(movie: dict[str, Any]) -> dict[str, Any]:
    keys = [
        "adult",
        "backdrop_path",
        "id",
        "original_language",
        "original_title",
        "overview",
        "popularity",
        "poster_path",
        "release_date",
        "title",
        "video",
        "vote_average",
        "vote_count",
    ]
    item = {k: movie[k] for k in keys}
    item["genre_ids"] = [g["id"] for g in movie["genres"]]
    return item


@dataclass
class _Fault:
    path: str  # matched against the request path below /3, e.g. "/discover/movie"
    kind: str  # "status", "html", "drop"
    status: int = 500
    remaining: int | None = 1  # None: forever
    retry_after: str | None = None


class FakeTmdb:
    """The fake server. Use as a context manager; `url` is the base URL (…/3)."""

    def __init__(
        self,
        movies: list[dict[str, Any]] | None = None,
        *,
        token: str = TOKEN,
        api_key: str = API_KEY,
        page_size: int = 20,
        generated: int = 0,
    ) -> None:
        self.movies: dict[int, dict[str, Any]] = {m["id"]: m for m in (movies or [])}
        # Movies 1000 .. 1000+generated-1 made by make_movie on request, never stored: a
        # catalog of TMDB's size (a million titles, 50,000 discover pages) costs nothing.
        self.generated = generated
        self.token = token
        self.api_key = api_key
        self.page_size = page_size
        # Ids that discover lists but details answer 404 for.
        self.missing: set[int] = set()
        # The change log /movie/changes reads: (movie id, day it was edited).
        self.changes: list[tuple[int, date]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.auth_headers: list[str | None] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FakeTmdb:
        handler = type("_Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake with `with FakeTmdb(...) as fake`"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/3"

    def settings(self, **values: object):
        """TMDB client settings pointing at this fake: the test token, no rate limit, retries
        that back off in milliseconds; `values` set or override any field."""
        from index_builder.sources.tmdb_client import TmdbSettings

        base: dict[str, object] = {
            "token": TOKEN,
            "base_url": self.url,
            "max_retries": 3,
            "backoff_s": 0.001,
            "backoff_max_s": 0.01,
            "requests_per_s": 0,
        }
        return TmdbSettings(**(base | values))  # type: ignore[arg-type]

    # -- scripting ---------------------------------------------------------------------------

    def fail(self, path: str, status: int = 500, times: int | None = 1) -> None:
        """Answer requests to `path` with `status` (TMDB error body) `times` times (None: always)."""
        with self._lock:
            self._faults.append(_Fault(path, "status", status, times))

    def html(self, path: str, status: int = 502, times: int | None = 1) -> None:
        """Answer with a CDN's HTML error page (text/html, not TMDB's JSON)."""
        with self._lock:
            self._faults.append(_Fault(path, "html", status, times))

    def rate_limit(self, path: str, retry_after: str | None = "1", times: int | None = 1) -> None:
        """Answer 429 with this Retry-After header (None: no header)."""
        with self._lock:
            self._faults.append(_Fault(path, "status", 429, times, retry_after))

    def drop(self, path: str, times: int | None = 1) -> None:
        """Close the connection without sending a response."""
        with self._lock:
            self._faults.append(_Fault(path, "drop", 0, times))

    def change(self, movie_id: int, when: date | None = None) -> None:
        """Record an edit of `movie_id` on day `when` (default today, UTC) for /movie/changes."""
        with self._lock:
            self.changes.append((movie_id, when or datetime.now(UTC).date()))

    # -- inspection --------------------------------------------------------------------------

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def detail_requests(self) -> list[int]:
        """Movie ids whose details were requested, in order, repeats included."""
        return [
            int(p.rsplit("/", 1)[1])
            for p in self.paths()
            if p.startswith("/movie/") and p.rsplit("/", 1)[1].isdigit()
        ]

    def queries(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [q for p, q in self.requests if p == path]

    # -- behaviour (called from the handler threads) -----------------------------------------

    def authorised(self, header: str | None, query: dict[str, str]) -> bool:
        """TMDB's two ways in: the read-access token as Bearer, or the v3 key as api_key."""
        if "api_key" in query:
            return query["api_key"] == self.api_key
        return header == f"Bearer {self.token}"

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if path == fault.path and (fault.remaining is None or fault.remaining > 0):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _respond(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/discover/movie":
            return self._discover(query)
        if path == "/movie/changes":
            return self._changes(query)
        if path.startswith("/movie/") and path[len("/movie/") :].isdigit():
            return self._details(int(path[len("/movie/") :]), query)
        return _error(_NOT_FOUND)

    def _page(self, query: dict[str, str]) -> int | None:
        try:
            page = int(query.get("page", "1"))
        except ValueError:
            return None
        return page if 1 <= page <= _MAX_PAGE else None

    def _movie(self, movie_id: int) -> dict[str, Any] | None:
        with self._lock:
            if movie_id in self.missing:
                return None
            movie = self.movies.get(movie_id)
        if movie is None and 0 <= movie_id - 1000 < self.generated:
            return make_movie(movie_id - 1000)
        return copy.deepcopy(movie)

    def _listed(self, query: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Discover's matches, most popular first (generated movies after stored ones)."""
        min_votes = int(query.get("vote_count.gte", "0") or 0)
        adult = query.get("include_adult", "false") == "true"
        video = query.get("include_video", "false") == "true"
        with self._lock:
            movies = [
                m
                for m in self.movies.values()
                if m["vote_count"] >= min_votes
                and (adult or not m.get("adult"))
                and (video or not m.get("video"))
            ]
        movies.sort(key=lambda m: m["popularity"], reverse=True)
        yield from movies

    def _discover(self, query: dict[str, str]) -> tuple[int, Any]:
        page = self._page(query)
        if page is None:
            return _error(_BAD_PAGE)
        start = (page - 1) * self.page_size
        stored = list(self._listed(query))
        # Generated movie i has vote_count 10 * (i + 1): the vote filter cuts off a prefix.
        min_votes = int(query.get("vote_count.gte", "0") or 0)
        first_generated = max(0, math.ceil(min_votes / 10) - 1) if self.generated else 0
        generated = max(0, self.generated - first_generated)
        total = len(stored) + generated
        chosen = [
            stored[pos] if pos < len(stored) else make_movie(first_generated + pos - len(stored))
            for pos in range(start, min(start + self.page_size, total))
        ]
        language = query.get("language", "en-US")
        return 200, {
            "page": page,
            "results": [_discover_item(_localised(m, language)) for m in chosen],
            # Like TMDB: the true totals, although pages past 500 cannot be asked for.
            "total_pages": math.ceil(total / self.page_size),
            "total_results": total,
        }

    def _details(self, movie_id: int, query: dict[str, str]) -> tuple[int, Any]:
        movie = self._movie(movie_id)
        if movie is None:
            return _error(_NOT_FOUND)
        parts = [p for p in query.get("append_to_response", "").split(",") if p]
        appended = set(parts[:_MAX_APPEND])
        for key in _APPENDABLE:
            if key not in appended:
                movie.pop(key, None)
        return 200, _localised(movie, query.get("language", "en-US"))

    def _changes(self, query: dict[str, str]) -> tuple[int, Any]:
        page = self._page(query)
        if page is None:
            return _error(_BAD_PAGE)
        today = datetime.now(UTC).date()
        try:
            end = date.fromisoformat(query["end_date"]) if "end_date" in query else today
            start = (
                date.fromisoformat(query["start_date"])
                if "start_date" in query
                else end - timedelta(days=1)
            )
        except ValueError:
            return _error(_BAD_DATE)
        if end < start or (end - start).days > 14:
            return _error(_BAD_DATE_RANGE)
        with self._lock:
            ids = sorted({i for i, day in self.changes if start <= day <= end})
            adult = {i for i in ids if (self.movies.get(i) or {}).get("adult")}
        begin = (page - 1) * _CHANGES_PAGE_SIZE
        return 200, {
            "results": [
                {"id": i, "adult": i in adult} for i in ids[begin : begin + _CHANGES_PAGE_SIZE]
            ],
            "page": page,
            "total_pages": max(1, math.ceil(len(ids) / _CHANGES_PAGE_SIZE)),
            "total_results": len(ids),
        }


def _error(spec: tuple[int, int, str]) -> tuple[int, Any]:
    status, code, message = spec
    return status, {"status_code": code, "status_message": message, "success": False}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTmdb
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle + delayed ACK add 40 ms each.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        fake = self.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path[len("/3") :] if parts.path.startswith("/3/") else parts.path
        header = self.headers.get("Authorization")
        with fake._lock:
            fake.requests.append((path, query))
            fake.auth_headers.append(header)
        if not fake.authorised(header, query):
            self._send(*_error(_BAD_KEY))
            return
        fault = fake._take_fault(path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "html":
            self._send_raw(fault.status, _HTML_502.encode(), "text/html")
            return
        if fault is not None:
            spec = {429: _RATE_LIMITED, 401: _BAD_KEY, 404: _NOT_FOUND}.get(
                fault.status, (fault.status, 11, _SERVER_ERROR[2])
            )
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(*_error(spec), headers=headers)
            return
        self._send(*fake._respond(path, query))

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), "application/json;charset=utf-8", headers)

    def _send_raw(
        self, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
