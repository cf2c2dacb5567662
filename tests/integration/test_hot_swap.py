"""Index hot-swap on a real edge serving a local bundle directory: no request fails while the
bundle is rebuilt under load, SIGHUP reloads at once, a corrupt bundle is refused and the old
one keeps serving until a good one appears."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moviemind_core.bundle import INDEX, Bundle
from tests.support.servers import Server, start_edge
from tests.unit.core.test_bundle import flip_byte, rewrite, small_bundle

DEAD_UPSTREAM = ["http://127.0.0.1:9"]  # explain:false and /v1/search never call a model


def readyz(edge: Server) -> dict:
    return httpx.get(edge.url + "/readyz", timeout=5).json()


def wait_for(edge: Server, predicate, what: str, timeout: float = 30.0) -> dict:
    """Poll /readyz until predicate(body) holds (bounded); fails with the edge's log otherwise."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        if edge.proc.poll() is not None:
            raise AssertionError(f"edge exited:\n{edge.log()}")
        try:
            body = readyz(edge)
            if predicate(body):
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last /readyz {body}\n{edge.log()}")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A small real bundle (200 most-voted movies) whose content the rebuilds below rewrite."""
    path = tmp_path_factory.mktemp("hot-swap-base") / "index"
    small_bundle(path)
    return Bundle.load(path)


@pytest.fixture(scope="module")
def polling_edge(
    base: Bundle, logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    index = tmp_path_factory.mktemp("hot-swap") / "index"
    rewrite(index, base)
    edge = start_edge(logs, DEAD_UPSTREAM, index=str(index), MOVIEMIND_EDGE_RELOAD_INTERVAL_S="0.2")
    try:
        yield edge, index
    finally:
        edge.stop()


class Hammer:
    """Threads that send /v1/search and /v1/recommend (explain:false) until stopped, checking each reply."""

    def __init__(self, url: str, ids: set[int], liked_id: int, threads: int = 4) -> None:
        self.url = url
        self.ids = ids
        self.liked_id = liked_id
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures: list[str] = []
        self.versions: list[str] = []  # index_version of each recommend reply, in arrival order
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> Hammer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)

    def _run(self, n: int) -> None:
        queries = [
            "space adventure",
            "funny romance in new york",
            "dark crime thriller",
            "animated family film",
        ]
        with httpx.Client(base_url=self.url, timeout=20) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    if (n + i) % 2:
                        self._search(client, queries[i % len(queries)])
                    else:
                        self._recommend(client, queries[i % len(queries)])
                except Exception as exc:  # any transport error is a failed request too
                    self._fail(f"{type(exc).__name__}: {exc}")

    def _search(self, client: httpx.Client, q: str) -> None:
        r = client.get("/v1/search", params={"q": q, "k": 5})
        if r.status_code != 200:
            return self._fail(f"search {r.status_code}: {r.text[:200]}")
        results = r.json()["results"]
        if len(results) != 5 or not all(
            h["id"] in self.ids and h["title"] and isinstance(h["score"], float) for h in results
        ):
            return self._fail(f"search body: {r.text[:300]}")
        with self.lock:
            self.ok += 1

    def _recommend(self, client: httpx.Client, q: str) -> None:
        body = {
            "liked": ["The Matrix"],
            "liked_ids": [self.liked_id],
            "query": q,
            "k": 5,
            "explain": False,
        }
        r = client.post("/v1/recommend", json=body)
        if r.status_code != 200:
            return self._fail(f"recommend {r.status_code}: {r.text[:200]}")
        data = r.json()
        recs = data["recommendations"]
        ids = [x["id"] for x in recs]
        resolved = {x["id"] for x in data["resolved_liked"]}
        if (
            len(recs) != 5
            or not set(ids) <= self.ids
            or resolved & set(ids)
            or resolved != {self.liked_id, 2571}
            or data["degraded"]
            or not all(x["reason"] for x in recs)
        ):
            return self._fail(f"recommend body: {r.text[:300]}")
        with self.lock:
            self.ok += 1
            self.versions.append(data["index_version"])


def test_rebuilds_under_load_fail_no_request(
    polling_edge: tuple[Server, Path], base: Bundle
) -> None:
    edge, index = polling_edge
    first = readyz(edge)["index_version"]
    ids = {m.id for m in base.movies}
    liked_id = base.movies[-1].id  # rebuilds drop movies from the front, never this one
    assert 2571 in ids
    written = [first]
    started = time.monotonic()
    with Hammer(edge.url, ids, liked_id) as hammer:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(hammer.versions) < 2 and not hammer.failures:
            time.sleep(0.05)
        for i in range(5):
            # Alternate 200 and 198 movies, each a new version.
            written.append(rewrite(index, base, drop=0 if i % 2 else 2).version)
            time.sleep(0.4)
        wait_for(edge, lambda b: b["index_version"] == written[-1], "the last rebuild to be served")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            time.monotonic() - started < 3 or written[-1] not in hammer.versions[-4:]
        ):
            time.sleep(0.1)
    seen = set(hammer.versions)
    print(
        f"hot swap: {hammer.ok} requests ok, {len(hammer.failures)} failed, {len(seen)} of {len(written)} versions seen in replies"
    )
    assert hammer.failures == [], hammer.failures[:5]
    assert hammer.ok >= 20, hammer.ok
    assert seen <= set(written), seen - set(written)
    assert first in seen and written[-1] in seen  # the swap happened while requests were flowing
    body = readyz(edge)
    assert body["ready"] and body["index_version"] == written[-1] and body["movies"] == 198
    assert body["index_error"] is None


def test_corrupt_bundle_in_place_is_refused_then_fixed(
    polling_edge: tuple[Server, Path], base: Bundle
) -> None:
    edge, index = polling_edge
    served = wait_for(edge, lambda b: b["ready"] and b["index_error"] is None, "a settled edge")[
        "index_version"
    ]
    assert Bundle.load(index).version == served

    # Build elsewhere, damage one file, swap the directory in the way a careless deploy would.
    staged = index.with_name("staged")
    corrupt = rewrite(staged, base, drop=3)
    flip_byte(staged / INDEX)
    previous = index.with_name("previous")
    os.rename(index, previous)
    os.rename(staged, index)

    body = wait_for(
        edge,
        lambda b: b["index_error"] and INDEX in b["index_error"],
        "the corrupt bundle to be refused",
    )
    assert body["index_version"] == served and body["ready"] is True
    assert "sha256" in body["index_error"] and corrupt.version not in (body["index_version"] or "")
    r = httpx.get(edge.url + "/v1/search", params={"q": "heist", "k": 3}, timeout=10)
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    assert f"index not loaded, still serving {served}" in edge.log()

    # Putting back the bundle being served clears the error (nothing new to load).
    shutil.rmtree(index)
    os.rename(previous, index)
    body = wait_for(edge, lambda b: b["index_error"] is None, "the error to clear")
    assert body["index_version"] == served

    # A good new bundle is picked up.
    fixed = rewrite(index, base, drop=3)
    body = wait_for(edge, lambda b: b["index_version"] == fixed.version, "the fixed bundle")
    assert body["movies"] == 197 and body["index_error"] is None
    assert "Traceback" not in edge.log()


def test_sighup_reloads_at_once_when_polling_is_off(
    base: Bundle, logs: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    v0 = rewrite(index, base).version
    edge = start_edge(logs, DEAD_UPSTREAM, index=str(index), MOVIEMIND_EDGE_RELOAD_INTERVAL_S="0")
    try:
        assert readyz(edge)["index_version"] == v0
        v1 = rewrite(index, base, drop=1).version
        # Polling is off: without a signal the new bundle is not looked at.
        time.sleep(1.5)
        assert readyz(edge)["index_version"] == v0
        os.kill(edge.proc.pid, signal.SIGHUP)
        body = wait_for(
            edge, lambda b: b["index_version"] == v1, "the reload after SIGHUP", timeout=20
        )
        assert body["movies"] == 199 and body["index_error"] is None
        # A SIGHUP with nothing new is harmless; the edge is still up and serving.
        os.kill(edge.proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert edge.proc.poll() is None
        body = readyz(edge)
        assert body["index_version"] == v1 and body["index_error"] is None
        r = httpx.get(edge.url + "/v1/search", params={"q": "war", "k": 3}, timeout=10)
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        # A corrupt bundle announced by SIGHUP is refused; v1 keeps serving.
        staged = tmp_path / "staged"
        rewrite(staged, base, drop=2)
        flip_byte(staged / INDEX)
        shutil.rmtree(index)
        os.rename(staged, index)
        os.kill(edge.proc.pid, signal.SIGHUP)
        body = wait_for(
            edge, lambda b: b["index_error"] is not None, "the refusal after SIGHUP", timeout=20
        )
        assert body["index_version"] == v1 and INDEX in body["index_error"]
    finally:
        edge.stop()
