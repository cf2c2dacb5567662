"""Feedback end to end, against SQLite and a real PostgreSQL server (tests/support/postgres.py):
votes posted to a real edge are stored, read back by the index builder (`build --feedback`),
deleted by visitor id; and with the database stopped in the middle of a load of votes, every
vote is in the database once it is back (counted)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from moviemind_core.bundle import Bundle
from moviemind_core.feedback import open_store
from tests.support.postgres import PostgresCluster, new_database, running_postgres
from tests.support.servers import ROOT, Server, free_port, start_edge

pytestmark = pytest.mark.slow

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def popular(sample_index: Path) -> list[int]:
    """The sample catalog's 300 most-voted movie ids (what `build --limit 300` keeps)."""
    movies = Bundle.load(sample_index).movies
    return [m.id for m in sorted(movies, key=lambda m: (-m.vote_count, m.id))[:300]]


def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if backend == "sqlite":
        return str(tmp_path / f"{name}.sqlite3")
    return new_database(request.getfixturevalue("pg"), name)


@contextmanager
def feedback_edge(logs: Path, index: Path, url: str, tmp_path: Path) -> Iterator[Server]:
    """An edge storing feedback at `url`, quick to notice an outage and to retry."""
    with start_edge(
        logs,
        [f"http://127.0.0.1:{free_port()}"],
        index=str(index),
        MOVIEMIND_EDGE_PRIME_PREFIX="false",
        MOVIEMIND_EDGE_FEEDBACK_URL=url,
        MOVIEMIND_EDGE_FEEDBACK_SPOOL=str(tmp_path / "spool.jsonl"),
        MOVIEMIND_EDGE_FEEDBACK_FLUSH_INTERVAL_S="0.05",
        MOVIEMIND_EDGE_FEEDBACK_BATCH_SIZE="50",
        MOVIEMIND_EDGE_FEEDBACK_RETRY_INTERVAL_S="0.3",
        MOVIEMIND_EDGE_FEEDBACK_TIMEOUT_S="1",
    ) as s:
        yield s


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stored(url: str) -> int:
    store = open_store(url)
    try:
        return store.count()
    finally:
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_votes_are_stored_read_by_the_builder_and_deleted_by_visitor(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    logs: Path,
    sample_index: Path,
    models_dir: Path,
    popular: list[int],
) -> None:
    url = database(backend, request, tmp_path, "roundtrip")
    liked, picked, chosen = popular[0], popular[1], popular[2]
    with (
        feedback_edge(logs, sample_index, url, tmp_path) as edge,
        httpx.Client(base_url=edge.url, timeout=30) as api,
    ):
        for v in range(4):
            visitor = f"visitor-{v:04d}-x"
            for movie, signal in ((picked, "like"), (chosen, "chose"), (picked, "like")):
                r = api.post(
                    "/v1/feedback",
                    json={
                        "visitor": visitor,
                        "movie_id": movie,
                        "signal": signal,
                        "request": {"liked_ids": [liked], "query": "tense heist"},
                    },
                )
                assert r.status_code == 202, r.text
                assert r.json() == {"status": "accepted"}
        r = api.post(
            "/v1/feedback", json={"visitor": "visitor-0000-x", "movie_id": liked, "signal": "seen"}
        )
        assert r.status_code == 202
        # Bad input is refused like the rest of the API, and nothing of it is stored.
        for body, status in (
            ({"visitor": "visitor-0000-x", "movie_id": 10**9, "signal": "like"}, 422),
            ({"visitor": "visitor-0000-x", "movie_id": liked, "signal": "love"}, 422),
            ({"visitor": "x", "movie_id": liked, "signal": "like"}, 422),
            ({"visitor": "visitor-0000-x", "movie_id": liked, "signal": "like", "ip": "1"}, 422),
        ):
            r = api.post("/v1/feedback", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["error"]["type"] == "validation_error"
        r = api.post(
            "/v1/feedback", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["type"] == "malformed_json"
        # 4 visitors x (like, chose) + one "seen"; the repeated like is one row.
        wait_for(lambda: stored(url) == 9, 30, "9 stored votes")

        out = tmp_path / "index"
        done = subprocess.run(
            [
                sys.executable, "-m", "index_builder", "build", "--out", str(out), "--limit", "300",
                "--threads", "1", "--models", str(models_dir / "minilm"),
                "--feedback", url, "--feedback-min-support", "3",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        used = re.search(r"feedback: 9 votes, 8 likes/choices.*used (\d+) interactions from (\d+) visitors on (\d+) movies", done.stdout)  # fmt: skip
        assert used, done.stdout[-3000:]
        assert used.groups() == ("12", "4", "3")  # liked, picked, chosen for each visitor
        assert "password" not in done.stdout

        r = api.delete("/v1/feedback/visitor-0000-x")
        assert r.status_code == 200, r.text
        assert r.json() == {"visitor": "visitor-0000-x", "deleted": 3, "complete": True}
        assert stored(url) == 6
        assert api.delete("/v1/feedback/visitor-0000-x").json()["deleted"] == 0
        assert api.delete("/v1/feedback/no").status_code in (400, 422)
        assert metric(edge.url, "moviemind_edge_feedback_store_up") == 1


@contextmanager
def sqlite_locked(path: str) -> Iterator[None]:
    """Hold SQLite's exclusive lock: every other writer fails with "database is locked"."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_vote_is_lost_while_the_database_is_away_mid_load(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    logs: Path,
    sample_index: Path,
    popular: list[int],
) -> None:
    url = database(backend, request, tmp_path, "outage")
    n_visitors, n_movies = 40, 15
    total = n_visitors * n_movies
    sent: list[int] = []
    statuses: list[int] = []
    lock = threading.Lock()
    with feedback_edge(logs, sample_index, url, tmp_path) as edge:
        assert stored(url) == 0

        def post(i: int) -> None:
            body = {
                "visitor": f"load-visitor-{i // n_movies:03d}",
                "movie_id": popular[i % n_movies],
                "signal": "like",
            }
            with httpx.Client(base_url=edge.url, timeout=30) as c:
                status = c.post("/v1/feedback", json=body).status_code
            with lock:
                statuses.append(status)
                sent.append(i)
            time.sleep(0.01)  # a steady stream over a few seconds, not one burst

        outage: AbstractContextManager = nullcontext()
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, i) for i in range(total)]
            wait_for(lambda: len(sent) >= total // 3, 120, "a third of the load")
            if backend == "postgres":
                request.getfixturevalue("pg").stop("immediate")  # as if it crashed
            else:
                outage = sqlite_locked(url)
                outage.__enter__()
            try:
                wait_for(
                    lambda: metric(edge.url, "moviemind_edge_feedback_spooled_total") > 0,
                    60,
                    "votes spooled during the outage",
                )
                wait_for(lambda: len(sent) >= 2 * total // 3, 120, "two thirds of the load")
                assert metric(edge.url, "moviemind_edge_feedback_store_up") == 0
            finally:
                if backend == "postgres":
                    request.getfixturevalue("pg").start()
                else:
                    outage.__exit__(None, None, None)
            for f in futures:
                f.result()
        assert statuses == [202] * total
        wait_for(lambda: stored(url) == total, 60, f"all {total} votes stored")
        wait_for(
            lambda: metric(edge.url, "moviemind_edge_feedback_spool_pending") == 0,
            30,
            "spool empty",
        )
        assert metric(edge.url, "moviemind_edge_feedback_accepted_total") == total
        assert metric(edge.url, "moviemind_edge_feedback_spooled_total") > 0
        for reason in ("queue_full", "spool_full", "torn_spool_line"):
            assert metric(edge.url, "moviemind_edge_feedback_dropped_total", reason=reason) == 0
        assert metric(edge.url, "moviemind_edge_feedback_store_up") == 1
    assert stored(url) == total


def test_votes_share_the_api_rate_limit(limited_edge: Server, popular: list[int]) -> None:
    """30 requests a minute (a burst of 5) per client, as for every /v1 route."""
    body = {"visitor": "rate-limited-visitor", "movie_id": popular[0], "signal": "seen"}
    with httpx.Client(base_url=limited_edge.url, timeout=30) as api:
        answers = [api.post("/v1/feedback", json=body) for _ in range(8)]
    statuses = [r.status_code for r in answers]
    assert 202 in statuses and 429 in statuses, statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
