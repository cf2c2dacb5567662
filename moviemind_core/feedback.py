"""Visitor feedback: the event, the one schema, and the store protocol both tiers use.

The edge writes feedback (`POST /v1/feedback`) and the index builder reads it back
(`build --feedback URL`); both open the same store here, so the table, its migrations and the
upsert exist once. A store is SQLite (a file path: embedded, no set-up) or PostgreSQL (a
`postgresql://` URL); `open_store` picks by the URL. One row per visitor, movie and signal: a
repeated vote replaces the earlier one, so a visitor cannot stack votes on a film.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar

import msgspec

T = TypeVar("T")

Signal = Literal["like", "dislike", "seen", "chose"]
# What the index builder counts as a visitor liking a film ("seen" and "dislike" are not).
POSITIVE: frozenset[str] = frozenset({"like", "chose"})

# The page makes the visitor id (a random UUID); anything id-like of a sane length is accepted.
Visitor = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class FeedbackEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One vote: `at` in unix seconds; `liked_ids`/`query` are the request the vote answered."""

    visitor: str
    movie_id: int
    signal: Signal
    at: float
    liked_ids: tuple[int, ...] = ()
    query: str = ""


class StoreUnavailable(OSError):
    """The database cannot be reached or refused the write: retry later, nothing was applied."""


class FeedbackStore(Protocol):
    """What the edge's writer and the builder's reader need of a database."""

    def write(self, events: Sequence[FeedbackEvent]) -> None:
        """Upsert the events in one transaction (all or none); StoreUnavailable if down."""
        ...

    def delete_visitor(self, visitor: str) -> int:
        """Delete every vote of a visitor; returns how many rows went."""
        ...

    def purge_before(self, cutoff: float) -> int:
        """Delete votes older than `cutoff` (unix seconds); returns how many rows went."""
        ...

    def read(self) -> Iterator[FeedbackEvent]:
        """Every stored vote, oldest first."""
        ...

    def count(self) -> int:
        """How many votes are stored."""
        ...

    def close(self) -> None:
        """Release the connection (a later call reconnects)."""
        ...


# Idempotent migrations, in order; a store records the highest version it applied. Types are
# those SQLite and PostgreSQL both accept, so one list serves both.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            "CREATE TABLE IF NOT EXISTS feedback ("
            " visitor TEXT NOT NULL,"
            " movie_id BIGINT NOT NULL,"
            " signal TEXT NOT NULL,"
            " at DOUBLE PRECISION NOT NULL,"
            " liked_ids TEXT NOT NULL DEFAULT '[]',"
            " query TEXT NOT NULL DEFAULT '',"
            " PRIMARY KEY (visitor, movie_id, signal))",
            # Retention deletes by age.
            "CREATE INDEX IF NOT EXISTS feedback_at ON feedback (at)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS feedback_schema (version INTEGER NOT NULL)"


def upsert_sql(mark: str) -> str:
    """The one write statement, with the driver's parameter mark (`?` or `%s`)."""
    values = ", ".join([mark] * 6)
    return (
        "INSERT INTO feedback (visitor, movie_id, signal, at, liked_ids, query) "
        f"VALUES ({values}) ON CONFLICT (visitor, movie_id, signal) DO UPDATE SET "
        "at = excluded.at, liked_ids = excluded.liked_ids, query = excluded.query"
    )


SELECT_ALL = (
    "SELECT visitor, movie_id, signal, at, liked_ids, query FROM feedback "
    "ORDER BY at, visitor, movie_id, signal"
)


def row_params(e: FeedbackEvent) -> tuple[str, int, str, float, str, str]:
    """An event as the upsert's parameters (the liked ids as a JSON array)."""
    return (
        e.visitor,
        e.movie_id,
        e.signal,
        e.at,
        msgspec.json.encode(e.liked_ids).decode(),
        e.query,
    )


def event_of(row: Sequence[object]) -> FeedbackEvent:
    """A stored row as an event."""
    visitor, movie_id, signal, at, liked, query = row
    return FeedbackEvent(
        visitor=str(visitor),
        movie_id=int(movie_id),  # type: ignore[arg-type]
        signal=str(signal),  # type: ignore[arg-type]
        at=float(at),  # type: ignore[arg-type]
        liked_ids=tuple(msgspec.json.decode(str(liked), type=list[int])),
        query=str(query),
    )


class SqlStore:
    """What the SQLite and PostgreSQL stores share: every statement but the writes, written once
    with the driver's parameter mark. Subclasses open the connection and run work on it."""

    MARK = "?"

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._conn: Any = None
        self._lock = threading.Lock()

    def _run(self, work: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def delete_visitor(self, visitor: str) -> int:
        """Delete a visitor's votes."""
        sql = f"DELETE FROM feedback WHERE visitor = {self.MARK}"
        return self._run(lambda c: c.execute(sql, (visitor,)).rowcount)

    def purge_before(self, cutoff: float) -> int:
        """Delete votes older than `cutoff`."""
        sql = f"DELETE FROM feedback WHERE at < {self.MARK}"
        return self._run(lambda c: c.execute(sql, (cutoff,)).rowcount)

    def read(self) -> Iterator[FeedbackEvent]:
        """Every vote, oldest first (read in one go: a consistent snapshot)."""
        rows = self._run(lambda c: c.execute(SELECT_ALL).fetchall())
        return (event_of(r) for r in rows)

    def count(self) -> int:
        """How many votes are stored."""
        return int(self._run(lambda c: c.execute("SELECT count(*) FROM feedback").fetchone()[0]))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def is_postgres(url: str) -> bool:
    """True for a PostgreSQL URL, False for a SQLite file path."""
    return url.startswith(("postgresql://", "postgres://"))


def describe(url: str) -> str:
    """The store's address without a password, for logs and reports."""
    if not is_postgres(url):
        return f"sqlite {sqlite_path(url)}"
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{'@' if at else ''}{host}"


def sqlite_path(url: str) -> str:
    """A SQLite location: a plain path, or `sqlite:///PATH` (relative) / `sqlite:////abs`."""
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else url


def open_store(url: str, *, timeout_s: float = 5.0) -> FeedbackStore:
    """The store at `url` (a file path: SQLite; `postgresql://...`: PostgreSQL). Connects lazily:
    a database that is down makes the first call raise StoreUnavailable, not this one."""
    if is_postgres(url):
        from moviemind_core.feedback_postgres import PostgresStore

        return PostgresStore(url, timeout_s=timeout_s)
    from moviemind_core.feedback_sqlite import SqliteStore

    return SqliteStore(sqlite_path(url), timeout_s=timeout_s)
