"""The TMDB API source against a fake TMDB on loopback: paging, mapping, retries, checkpoint."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from index_builder.sources import SourceStats, tmdb_client
from index_builder.sources.tmdb_api import (
    TmdbAuthError,
    TmdbCheckpointError,
    TmdbError,
    TmdbSettings,
    TmdbSettingsError,
    TmdbUnavailableError,
    iter_tmdb_api,
)
from moviemind_core.catalog import Movie

try:
    from fake_tmdb import TOKEN, FakeTmdb, make_movie
except ImportError:  # tests/ became a package
    from tests.support.fake_tmdb import TOKEN, FakeTmdb, make_movie

pytestmark = pytest.mark.timeout(60)


def settings_for(fake: FakeTmdb, **overrides: object) -> TmdbSettings:
    """The fake's settings, five pages a run, a checkpoint every four movies."""
    return fake.settings(**({"pages": 5, "timeout_s": 5.0, "checkpoint_every": 4} | overrides))


@pytest.fixture
def fake():
    with FakeTmdb([make_movie(i) for i in range(45)], token=TOKEN) as server:
        yield server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every wait the client asks for (and still wait, so Retry-After is really honoured)."""
    seen: list[float] = []

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(tmdb_client, "_sleep", sleep)
    return seen


def run(
    settings: TmdbSettings, checkpoint: Path, **kwargs: object
) -> tuple[list[Movie], SourceStats]:
    stats = SourceStats()
    movies = list(iter_tmdb_api(settings, checkpoint, stats, **kwargs))  # type: ignore[arg-type]
    return movies, stats


# -- settings -------------------------------------------------------------------------------


def test_settings_from_env_parses_and_validates() -> None:
    s = TmdbSettings.from_env(
        {
            "MOVIEMIND_TMDB_TOKEN": "abc.def",
            "MOVIEMIND_TMDB_PAGES": "12",
            "MOVIEMIND_TMDB_TIMEOUT_S": "2.5",
            "MOVIEMIND_TMDB_LANGUAGE": "fr-FR",
            "MOVIEMIND_TMDB_MIN_VOTE_COUNT": "50",
        }
    )
    assert (s.pages, s.timeout_s, s.language, s.min_vote_count) == (12, 2.5, "fr-FR", 50)
    assert s.base_url == "https://api.themoviedb.org/3" and s.max_retries == 5
    assert "abc.def" not in repr(s)

    cases = {
        "MOVIEMIND_TMDB_TOKEN": {},
        "MOVIEMIND_TMDB_PAGES must be an integer": {"MOVIEMIND_TMDB_PAGES": "many"},
        "MOVIEMIND_TMDB_PAGES must be between 1 and 500": {"MOVIEMIND_TMDB_PAGES": "0"},
        "MOVIEMIND_TMDB_BASE_URL": {"MOVIEMIND_TMDB_BASE_URL": "api.themoviedb.org"},
        "MOVIEMIND_TMDB_TIMEOUT_S must be a number": {"MOVIEMIND_TMDB_TIMEOUT_S": "soon"},
        "MOVIEMIND_TMDB_MAX_RETRIES": {"MOVIEMIND_TMDB_MAX_RETRIES": "-1"},
        "MOVIEMIND_TMDB_LANGUAGE": {"MOVIEMIND_TMDB_LANGUAGE": "English"},
    }
    for expected, env in cases.items():
        env = {"MOVIEMIND_TMDB_TOKEN": "t", **env} if "TOKEN" not in expected else env
        with pytest.raises(TmdbSettingsError, match=expected) as err:
            TmdbSettings.from_env(env)
        assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


# -- paging and mapping ---------------------------------------------------------------------


def test_discover_pagination_and_details_mapping(fake: FakeTmdb, tmp_path: Path) -> None:
    movies, stats = run(settings_for(fake, pages=5), tmp_path / "ck.json")

    # 45 movies at 20 a page is 3 pages; asking for 5 must stop at TMDB's total_pages.
    assert [m.id for m in movies] == [1000 + i for i in range(45)]
    assert stats.yielded == 45 and stats.skipped == 0
    discover = fake.queries("/discover/movie")
    assert [q["page"] for q in discover] == ["1", "2", "3"]
    assert all(q["sort_by"] == "popularity.desc" and q["language"] == "en-US" for q in discover)
    assert sorted(fake.detail_requests()) == [1000 + i for i in range(45)]
    details = fake.queries("/movie/1003")
    assert details[0]["append_to_response"] == (
        "keywords,credits,recommendations,similar,external_ids,alternative_titles"
    )
    assert set(fake.auth_headers) == {f"Bearer {TOKEN}"}

    m = movies[3]
    assert m == Movie(
        id=1003,
        title="Fake Movie 3",
        year=1983,
        genres=("Drama", "Thriller"),
        overview="The story of fake movie number 3.",
        keywords=("keyword 3", "time travel"),
        director="Director 3",
        cast=("Actor 3-0", "Actor 3-1", "Actor 3-2"),  # billing order, not listing order
        popularity=977.5,
        vote_average=5.3,
        vote_count=40,
        source_ids={"tmdb": 1003, "imdb": "tt9000003"},
        # TMDB's recommendations first, then similar; the index builder keeps the ones it holds.
        related=(1004, 1005, 1006, 99_999_999),
        original_title="Fake Movie 3",
        # The US alternative title repeats the title, so only the others are kept.
        alt_titles=("Film factice 3", "Falscher Film 3"),
        poster_path="/poster1003.jpg",
        tmdb_id=1003,
        imdb_id="tt9000003",
    )
    assert movies[4].source_ids == {"tmdb": 1004}  # no imdb_id
    assert (movies[4].imdb_id, movies[4].poster_path, movies[4].tmdb_id) == (None, None, 1004)


def test_min_vote_count_and_page_limit(fake: FakeTmdb, tmp_path: Path) -> None:
    movies, _ = run(settings_for(fake, pages=1, min_vote_count=100), tmp_path / "ck.json")
    assert fake.queries("/discover/movie")[0]["vote_count.gte"] == "100"
    assert len(movies) == 20 and all(m.vote_count >= 100 for m in movies)


def test_missing_detail_and_duplicate_ids_are_counted(fake: FakeTmdb, tmp_path: Path) -> None:
    fake.missing.add(1005)

    def sink_top_movie(done: int, total: int) -> None:
        # Popularity changing between page requests makes TMDB list a movie on two pages:
        # 1000 (already seen on page 1) drops to the top of page 2.
        if done == 1:
            with fake._lock:
                below = (fake.movies[1020]["popularity"] + fake.movies[1021]["popularity"]) / 2
                fake.movies[1000]["popularity"] = below

    movies, stats = run(settings_for(fake, pages=2), tmp_path / "ck.json", progress=sink_top_movie)
    ids = [m.id for m in movies]
    assert ids == [i for i in range(1000, 1040) if i not in (1005, 1020)]
    assert stats.reasons == {"not_found": 1, "duplicate_id": 1}
    assert stats.yielded == 38 and Counter(fake.detail_requests())[1000] == 1


# -- retries --------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(
    fake: FakeTmdb, tmp_path: Path, sleeps: list[float]
) -> None:
    fake.rate_limit("/discover/movie", retry_after="1", times=1)
    started = time.monotonic()
    movies, _ = run(settings_for(fake, pages=1), tmp_path / "ck.json")
    assert len(movies) == 20
    assert [q["page"] for q in fake.queries("/discover/movie")] == ["1", "1"]
    assert sleeps == [1.0]  # exactly the server's Retry-After, not the (tiny) backoff
    assert time.monotonic() - started >= 0.9


def test_429_without_retry_after_backs_off(
    fake: FakeTmdb, tmp_path: Path, sleeps: list[float]
) -> None:
    fake.rate_limit("/movie/1002", retry_after=None, times=2)
    movies, _ = run(settings_for(fake, pages=1), tmp_path / "ck.json")
    assert len(movies) == 20
    assert Counter(fake.detail_requests())[1002] == 3
    assert len(sleeps) == 2 and all(0 < s <= 0.01 for s in sleeps)


def test_5xx_backs_off_exponentially_then_succeeds(
    fake: FakeTmdb, tmp_path: Path, sleeps: list[float]
) -> None:
    fake.fail("/movie/1003", 502, times=3)
    settings = settings_for(fake, pages=1, max_retries=3, backoff_s=0.002, backoff_max_s=1.0)
    movies, stats = run(settings, tmp_path / "ck.json")
    assert len(movies) == 20 and stats.skipped == 0
    assert Counter(fake.detail_requests())[1003] == 4
    # Each wait is within [ceiling/2, ceiling] of a doubling ceiling: 2, 4, 8 ms.
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        ceiling = 0.002 * 2**attempt
        assert ceiling / 2 <= wait <= ceiling


def test_dropped_connection_is_retried(fake: FakeTmdb, tmp_path: Path, sleeps: list[float]) -> None:
    fake.drop("/movie/1001", times=1)
    movies, _ = run(settings_for(fake, pages=1), tmp_path / "ck.json")
    assert [m.id for m in movies] == [1000 + i for i in range(20)]
    assert Counter(fake.detail_requests())[1001] == 2 and len(sleeps) == 1


def test_5xx_forever_gives_a_clear_error_after_max_retries(
    fake: FakeTmdb, tmp_path: Path, sleeps: list[float]
) -> None:
    fake.fail("/discover/movie", 503, times=None)
    with pytest.raises(
        TmdbUnavailableError, match=r"/discover/movie failed after 4 attempts: HTTP 503"
    ):
        run(settings_for(fake, max_retries=3), tmp_path / "ck.json")
    assert len(fake.queries("/discover/movie")) == 4 and len(sleeps) == 3


def test_unreachable_server_gives_a_clear_error(tmp_path: Path, sleeps: list[float]) -> None:
    # A bound socket that never listens: connections are refused and nobody else gets the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/3"
        settings = TmdbSettings(
            token=TOKEN, base_url=url, max_retries=1, backoff_s=0.001, backoff_max_s=0.001
        )
        with pytest.raises(TmdbUnavailableError, match="failed after 2 attempts: ConnectError"):
            run(settings, tmp_path / "ck.json")


def test_401_is_a_clear_error_without_retries(fake: FakeTmdb, tmp_path: Path) -> None:
    settings = settings_for(fake, token="wrong-token")
    with pytest.raises(TmdbAuthError) as err:
        run(settings, tmp_path / "ck.json")
    message = str(err.value)
    assert message.startswith(
        "TMDB rejected the credential (401), sent as a Bearer token: check MOVIEMIND_TMDB_TOKEN"
    )
    assert "Invalid API key" in message and "wrong-token" not in message
    assert len(fake.requests) == 1


def test_other_4xx_fails_at_once_with_tmdb_message(fake: FakeTmdb, tmp_path: Path) -> None:
    fake.fail("/discover/movie", 422, times=None)
    with pytest.raises(TmdbError, match="HTTP 422") as err:
        run(settings_for(fake), tmp_path / "ck.json")
    assert not isinstance(err.value, TmdbUnavailableError)
    assert len(fake.requests) == 1


# -- checkpoint -----------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def test_checkpoint_resume_fetches_each_detail_once(fake: FakeTmdb, tmp_path: Path) -> None:
    checkpoint = tmp_path / "state" / "tmdb.json"
    settings = settings_for(fake, pages=3, checkpoint_every=4)
    first: list[Movie] = []
    calls: list[tuple[int, int]] = []

    def stop_after_17(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 17:
            raise Interrupt

    stats1 = SourceStats()
    with pytest.raises(Interrupt):
        for movie in iter_tmdb_api(settings, checkpoint, stats1, stop_after_17):
            first.append(movie)
    assert len(first) == 17 and calls[-1] == (17, 45)
    saved = json.loads(checkpoint.read_text())
    assert saved["complete"] is False and len(saved["movies"]) == 17
    assert saved["page_ids"].keys() == {"1"} and saved["pages_done"] == []

    second, stats2 = run(settings, checkpoint)
    assert [m.id for m in second] == [1000 + i for i in range(45)]
    assert second[:17] == first
    assert stats2.yielded == 45
    requested = Counter(fake.detail_requests())
    assert len(requested) == 45 and max(requested.values()) == 1
    # Page 1 was recorded with its ids, so it is not asked for again either.
    assert [q["page"] for q in fake.queries("/discover/movie")] == ["1", "2", "3"]
    saved = json.loads(checkpoint.read_text())
    assert saved["complete"] is True and saved["pages_done"] == [1, 2, 3]
    assert len(saved["movies"]) == 45

    # A finished checkpoint replays without any request; fresh=True starts over.
    before = len(fake.requests)
    third, _ = run(settings, checkpoint)
    assert third == second and len(fake.requests) == before
    fourth, _ = run(settings, checkpoint, fresh=True)
    assert fourth == second and len(fake.detail_requests()) == 90


def test_checkpoint_is_written_while_running(fake: FakeTmdb, tmp_path: Path) -> None:
    checkpoint = tmp_path / "tmdb.json"
    it = iter_tmdb_api(settings_for(fake, pages=1, checkpoint_every=4), checkpoint, SourceStats())
    for _ in range(9):
        next(it)
    # Saved every 4 movies without the generator finishing: a hard kill loses at most 4.
    assert len(json.loads(checkpoint.read_text())["movies"]) >= 8
    it.close()
    assert len(json.loads(checkpoint.read_text())["movies"]) == 9
    assert not list(tmp_path.glob("*.tmp"))


def test_more_pages_extend_a_finished_checkpoint(fake: FakeTmdb, tmp_path: Path) -> None:
    checkpoint = tmp_path / "tmdb.json"
    one, _ = run(settings_for(fake, pages=1), checkpoint)
    two, _ = run(settings_for(fake, pages=2), checkpoint)
    assert len(one) == 20 and two[:20] == one and len(two) == 40
    assert len(fake.detail_requests()) == 40
    assert json.loads(checkpoint.read_text())["complete"] is True


def test_checkpoint_for_another_query_is_refused(fake: FakeTmdb, tmp_path: Path) -> None:
    checkpoint = tmp_path / "tmdb.json"
    run(settings_for(fake, pages=1), checkpoint)
    with pytest.raises(TmdbCheckpointError, match="language 'en-US' -> 'fr-FR'"):
        run(settings_for(fake, pages=1, language="fr-FR"), checkpoint)
    checkpoint.write_text('{"version": 1, "query": ')
    with pytest.raises(TmdbCheckpointError, match="unreadable"):
        run(settings_for(fake, pages=1), checkpoint)


def test_checkpoint_from_before_posters_is_refused(fake: FakeTmdb, tmp_path: Path) -> None:
    """Version 2 checkpoints hold movies without posters and TMDB/IMDb ids: resuming one would
    build a catalog with them for only part of the movies."""
    checkpoint = tmp_path / "tmdb.json"
    run(settings_for(fake, pages=1), checkpoint)
    state = json.loads(checkpoint.read_text())
    state["version"] = 2
    checkpoint.write_text(json.dumps(state))
    with pytest.raises(TmdbCheckpointError, match="has version 2, expected 3"):
        run(settings_for(fake, pages=1), checkpoint)
