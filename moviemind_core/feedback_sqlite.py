"""The feedback store in a SQLite file (WAL): the embedded default, nothing to set up."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from moviemind_core.feedback import (
    MIGRATIONS,
    VERSION_TABLE,
    FeedbackEvent,
    SqlStore,
    StoreUnavailable,
    row_params,
    upsert_sql,
)

T = TypeVar("T")


class SqliteStore(SqlStore):
    """FeedbackStore over one SQLite file; safe to call from any one thread at a time."""

    MARK = "?"

    def __init__(self, path: str, *, timeout_s: float = 5.0) -> None:
        super().__init__(timeout_s=timeout_s)
        self.path = Path(path)

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
            conn.executemany(upsert_sql(self.MARK), [row_params(e) for e in events])
            conn.execute("COMMIT")

        if events:
            self._run(work)


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
