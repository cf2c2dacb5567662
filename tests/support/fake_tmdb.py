"""A fake TMDB v3 API on 127.0.0.1 for tests: real HTTP, TMDB's JSON shapes, scriptable faults.

Serves `/3/discover/movie` and `/3/movie/{id}` (with `append_to_response=keywords,credits,
recommendations,similar`), checks the Bearer token, and answers errors the way TMDB does
(`{"success": false, "status_code": N, "status_message": "..."}`). Every request is recorded.
Faults: `fail` (an HTTP status N times or forever), `rate_limit` (429 with Retry-After) and
`drop` (close the connection without answering).
"""

from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import dataclass
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


def make_movie(i: int) -> dict[str, Any]:
    """A TMDB `/movie/{id}` details record (with keywords and credits) for movie number i.

    Ids are 1000 + i; popularity falls with i so discover order is 0, 1, 2, ...; cast is
    listed out of billing order on purpose; every fifth movie has no imdb_id.
    """
    movie_id = 1000 + i
    genres = [_GENRES[i % len(_GENRES)], _GENRES[(i + 2) % len(_GENRES)]]
    return {
        "adult": False,
        "backdrop_path": f"/backdrop{movie_id}.jpg",
        "belongs_to_collection": None,
        "budget": 1_000_000 * (i + 1),
        "genres": genres,
        "homepage": "",
        "id": movie_id,
        "imdb_id": None if i % 5 == 4 else f"tt{9_000_000 + i:07d}",
        "original_language": "en",
        "original_title": f"Fake Movie {i}",
        "overview": f"The story of fake movie number {i}.",
        "popularity": round(1000.0 - i * 7.5, 3),
        "poster_path": f"/poster{movie_id}.jpg",
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
    }


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
    kind: str  # "status", "drop"
    status: int = 500
    remaining: int | None = 1  # None: forever
    retry_after: str | None = None


class FakeTmdb:
    """The fake server. Use as a context manager; `url` is the base URL (…/3)."""

    def __init__(
        self,
        movies: list[dict[str, Any]] | None = None,
        *,
        token: str = "test-token",
        page_size: int = 20,
    ) -> None:
        self.movies: dict[int, dict[str, Any]] = {m["id"]: m for m in (movies or [])}
        self.token = token
        self.page_size = page_size
        # Ids that discover lists but details answer 404 for.
        self.missing: set[int] = set()
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

    # -- scripting ---------------------------------------------------------------------------

    def fail(self, path: str, status: int = 500, times: int | None = 1) -> None:
        """Answer requests to `path` with `status` (TMDB error body) `times` times (None: always)."""
        with self._lock:
            self._faults.append(_Fault(path, "status", status, times))

    def rate_limit(self, path: str, retry_after: str | None = "1", times: int | None = 1) -> None:
        """Answer 429 with this Retry-After header (None: no header)."""
        with self._lock:
            self._faults.append(_Fault(path, "status", 429, times, retry_after))

    def drop(self, path: str, times: int | None = 1) -> None:
        """Close the connection without sending a response."""
        with self._lock:
            self._faults.append(_Fault(path, "drop", 0, times))

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
        if path.startswith("/movie/") and path[len("/movie/") :].isdigit():
            return self._details(int(path[len("/movie/") :]), query)
        return _error(_NOT_FOUND)

    def _page(self, query: dict[str, str], limit: int) -> int | None:
        try:
            page = int(query.get("page", "1"))
        except ValueError:
            return None
        return page if 1 <= page <= limit else None

    def _discover(self, query: dict[str, str]) -> tuple[int, Any]:
        page = self._page(query, 500)
        if page is None:
            return _error(_BAD_PAGE)
        min_votes = int(query.get("vote_count.gte", "0") or 0)
        with self._lock:
            movies = [m for m in self.movies.values() if m["vote_count"] >= min_votes]
        movies.sort(key=lambda m: m["popularity"], reverse=True)
        start = (page - 1) * self.page_size
        return 200, {
            "page": page,
            "results": [_discover_item(m) for m in movies[start : start + self.page_size]],
            "total_pages": math.ceil(len(movies) / self.page_size),
            "total_results": len(movies),
        }

    def _details(self, movie_id: int, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            movie = self.movies.get(movie_id)
            movie = None if movie_id in self.missing else copy.deepcopy(movie)
        if movie is None:
            return _error(_NOT_FOUND)
        appended = set(query.get("append_to_response", "").split(","))
        for key in ("keywords", "credits", "recommendations", "similar"):
            if key not in appended:
                movie.pop(key, None)
        return 200, movie


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
        with fake._lock:
            fake.requests.append((path, query))
            fake.auth_headers.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            self._send(*_error(_BAD_KEY))
            return
        fault = fake._take_fault(path)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
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
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
