"""The feedback store in a SQLite file (WAL): the embedded default, nothing to set up."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from moviemind_core.feedback import (
    MIGRATIONS,
    SELECT_ALL,
    VERSION_TABLE,
    FeedbackEvent,
    StoreUnavailable,
    event_of,
    row_params,
    upsert_sql,
)

T = TypeVar("T")


class SqliteStore:
    """FeedbackStore over one SQLite file; safe to call from any one thread at a time."""

    def __init__(self, path: str, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
            conn = sqlite3.connect(
                self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
            )
            # WAL: the builder can read while the edge writes; NORMAL sync is durable across
            # application crashes (a power cut may lose the last commits, not corrupt the file).
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            _migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
        self._conn = conn
        return conn

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._connect()
            try:
                return work(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    def write(self, events: Sequence[FeedbackEvent]) -> None:
        """Upsert the events in one transaction."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(upsert_sql("?"), [row_params(e) for e in events])
            conn.execute("COMMIT")

        if events:
            self._run(work)

    def delete_visitor(self, visitor: str) -> int:
        """Delete a visitor's votes."""
        return self._run(
            lambda c: c.execute("DELETE FROM feedback WHERE visitor = ?", (visitor,)).rowcount
        )

    def purge_before(self, cutoff: float) -> int:
        """Delete votes older than `cutoff`."""
        return self._run(
            lambda c: c.execute("DELETE FROM feedback WHERE at < ?", (cutoff,)).rowcount
        )

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


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file has not seen, in one write transaction (two edges
    starting at once: the second waits for the first and then finds nothing to do)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(VERSION_TABLE)
        row = conn.execute("SELECT max(version) FROM feedback_schema").fetchone()
        current = row[0] or 0
        for version, statements in MIGRATIONS:
            if version > current:
                for sql in statements:
                    conn.execute(sql)
                conn.execute("INSERT INTO feedback_schema (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
