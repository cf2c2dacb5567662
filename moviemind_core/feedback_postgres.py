"""The feedback store in PostgreSQL (psycopg 3): what a deployment with several edges uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from moviemind_core.feedback import (
    MIGRATIONS,
    VERSION_TABLE,
    FeedbackEvent,
    SqlStore,
    StoreUnavailable,
    row_params,
    upsert_sql,
)

# Any number: every edge takes this transaction-level advisory lock while migrating, so edges
# starting together apply each migration once.
_MIGRATION_LOCK = 7_300_221
T = TypeVar("T")


class PostgresStore(SqlStore):
    """FeedbackStore over one connection, reopened after a failure (the database restarted)."""

    MARK = "%s"

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        super().__init__(timeout_s=timeout_s)
        self.url = url

    def _connect(self) -> Any:
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,  # transactions are explicit (conn.transaction())
                connect_timeout=max(1, round(self.timeout_s)),
                # A write that hangs (a stuck server, a lock) fails instead of holding the writer.
                options=f"-c statement_timeout={int(self.timeout_s * 1000)}",
            )
            _migrate(conn)
        except psycopg.Error as exc:
            raise StoreUnavailable("postgresql: " + " ".join(str(exc).split())) from exc
        self._conn = conn
        return conn

    def _run(self, work: Callable[[Any], T]) -> T:
        import psycopg

        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction():
                    return work(conn)
            except psycopg.Error as exc:
                # A broken connection is dropped; the next call opens a new one.
                if conn.broken or conn.closed:
                    self._conn = None
                raise StoreUnavailable("postgresql: " + " ".join(str(exc).split())) from exc

    def write(self, events: Sequence[FeedbackEvent]) -> None:
        """Upsert the events in one transaction."""
        if events:
            self._run(
                lambda c: c.cursor().executemany(
                    upsert_sql(self.MARK), [row_params(e) for e in events]
                )
            )


def _migrate(conn: Any) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(VERSION_TABLE)
        current = conn.execute("SELECT max(version) FROM feedback_schema").fetchone()[0] or 0
        for version, statements in MIGRATIONS:
            if version > current:
                for sql in statements:
                    conn.execute(sql)
                conn.execute("INSERT INTO feedback_schema (version) VALUES (%s)", (version,))
