"""moviemind_core.feedback: the SQLite store (one vote per visitor, movie and signal; deletion;
retention; idempotent migrations) and URL handling. PostgreSQL runs the same code against a
real server in tests/integration/test_feedback.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from moviemind_core.feedback import (
    SCHEMA_VERSION,
    FeedbackEvent,
    StoreUnavailable,
    describe,
    open_store,
)
from moviemind_core.feedback_postgres import PostgresStore
from moviemind_core.feedback_sqlite import SqliteStore


def vote(visitor: str, movie: int, signal: str = "like", at: float = 100.0, **kw) -> FeedbackEvent:
    return FeedbackEvent(visitor=visitor, movie_id=movie, signal=signal, at=at, **kw)  # type: ignore[arg-type]


def test_a_repeated_vote_replaces_the_earlier_one(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "f.sqlite3"))
    store.write([vote("visitor-a", 1, at=1.0, query="heist"), vote("visitor-a", 1, "seen")])
    store.write([vote("visitor-a", 1, at=5.0, liked_ids=(7, 8), query="tense")])
    rows = list(store.read())
    assert store.count() == 2
    like = next(r for r in rows if r.signal == "like")
    assert (like.at, like.liked_ids, like.query) == (5.0, (7, 8), "tense")


def test_delete_and_retention(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "f.sqlite3"))
    store.write([vote("visitor-a", 1), vote("visitor-a", 2), vote("visitor-b", 1, at=10.0)])
    assert store.delete_visitor("visitor-a") == 2
    assert store.delete_visitor("visitor-a") == 0
    assert store.purge_before(50.0) == 1
    assert store.count() == 0


def test_the_file_is_wal_and_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.sqlite3"
    for _ in range(2):  # a restart: the schema is there, nothing applies twice
        store = open_store(f"sqlite:///{path}")
        store.write([vote("visitor-a", 1)])
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM feedback_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_an_unusable_file_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    store = open_store(str(tmp_path / "dir"))  # a directory is no database
    with pytest.raises(StoreUnavailable):
        store.write([vote("visitor-a", 1)])


def test_a_locked_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    store = SqliteStore(str(path), timeout_s=0.1)
    store.write([vote("visitor-a", 1)])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="locked"):
        store.write([vote("visitor-a", 2)])
    other.execute("ROLLBACK")
    store.write([vote("visitor-a", 2)])
    assert store.count() == 2


def test_urls_pick_the_store_and_hide_passwords() -> None:
    assert isinstance(open_store("postgresql://u:pw@db:5432/mm"), PostgresStore)
    assert isinstance(open_store("var/feedback.sqlite3"), SqliteStore)
    assert describe("postgresql://u:pw@db:5432/mm") == "postgresql://u@db:5432/mm"
    assert "pw" not in describe("postgres://u:pw@db/mm")
