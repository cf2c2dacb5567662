"""TMDB against the fake's real wire behaviour: both credentials, sparse records, filters and
languages, the 500-page cap, 429s without Retry-After, a CDN's HTML 502 pages, pacing."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from index_builder.sources import SourceStats, tmdb_client
from index_builder.sources.tmdb_api import TmdbReport, iter_tmdb_api
from index_builder.sources.tmdb_client import (
    TmdbAuthError,
    TmdbSettings,
    TmdbUnavailableError,
    auth_kind,
)
from moviemind_core.catalog import Movie

try:
    from fake_tmdb import API_KEY, FakeTmdb, make_movie, make_sparse_movie
except ImportError:  # tests/ became a package
    from tests.support.fake_tmdb import API_KEY, FakeTmdb, make_movie, make_sparse_movie

pytestmark = pytest.mark.timeout(120)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJlX2hlcmU"


def settings_for(fake: FakeTmdb, **overrides: object) -> TmdbSettings:
    """The fake's settings, one page a run."""
    return fake.settings(**({"pages": 1, "timeout_s": 5.0} | overrides))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seen: list[float] = []

    def sleep(seconds: float) -> None:
        seen.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(tmdb_client, "_sleep", sleep)
    return seen


def run(settings: TmdbSettings, checkpoint: Path, **kwargs: object) -> list[Movie]:
    return list(iter_tmdb_api(settings, checkpoint, SourceStats(), **kwargs))  # type: ignore[arg-type]


# -- credentials ----------------------------------------------------------------------------


def test_credential_kind_is_detected() -> None:
    assert auth_kind(API_KEY) == "api_key"
    assert auth_kind(JWT) == "bearer"
    assert auth_kind("  " + API_KEY + " ") == "api_key"
    assert auth_kind(API_KEY.upper()) == "bearer"  # TMDB's keys are lower-case hex
    s = TmdbSettings(token=API_KEY, auth="bearer")
    assert s.auth_method == "bearer" and API_KEY not in repr(s)


def test_v3_api_key_is_sent_as_the_query_parameter(tmp_path: Path) -> None:
    with FakeTmdb([make_movie(i) for i in range(3)]) as fake:
        movies = run(settings_for(fake, token=API_KEY), tmp_path / "ck.json")
    assert [m.id for m in movies] == [1000, 1001, 1002]
    assert all(q["api_key"] == API_KEY for _, q in fake.requests)
    assert set(fake.auth_headers) == {None}  # not also as Bearer


def test_read_access_token_is_sent_as_bearer(tmp_path: Path) -> None:
    with FakeTmdb([make_movie(i) for i in range(3)], token=JWT) as fake:
        movies = run(settings_for(fake, token=JWT), tmp_path / "ck.json")
    assert len(movies) == 3 and set(fake.auth_headers) == {f"Bearer {JWT}"}
    assert not any("api_key" in q for _, q in fake.requests)


def test_a_v3_key_forced_into_bearer_gets_a_clear_401(tmp_path: Path) -> None:
    with FakeTmdb([make_movie(0)]) as fake, pytest.raises(TmdbAuthError) as err:
        run(settings_for(fake, token=API_KEY, auth="bearer"), tmp_path / "ck.json")
    message = str(err.value)
    assert "sent as a Bearer token" in message and "looks like a v3 API key" in message
    assert "Invalid API key" in message and API_KEY not in message


def test_a_wrong_api_key_is_a_401_without_the_key_in_the_message(tmp_path: Path) -> None:
    wrong = "f" * 32
    fake = FakeTmdb([make_movie(0)])
    with fake, pytest.raises(TmdbAuthError, match="sent as the api_key parameter") as err:
        run(settings_for(fake, token=wrong), tmp_path / "ck.json")
    assert wrong not in str(err.value) and len(fake.requests) == 1


# -- records --------------------------------------------------------------------------------


def test_sparse_records_map_to_empty_fields_not_errors(tmp_path: Path) -> None:
    with FakeTmdb([make_sparse_movie(i) for i in range(4)]) as fake:
        movies = run(settings_for(fake), tmp_path / "ck.json")
    assert len(movies) == 4
    m = movies[1]
    assert m == Movie(
        id=1001,
        title="Fake Movie 1",  # the empty `title` falls back to original_title
        popularity=992.5,
        source_ids={"tmdb": 1001},
        original_title="Fake Movie 1",
        tmdb_id=1001,
    )
    assert (m.year, m.overview, m.poster_path, m.imdb_id, m.genres) == (None, "", None, None, ())


def test_language_is_honoured(tmp_path: Path) -> None:
    with FakeTmdb([make_movie(i) for i in range(3)]) as fake:
        movies = run(settings_for(fake, language="fr-FR"), tmp_path / "ck.json")
        assert {q["language"] for _, q in fake.requests} == {"fr-FR"}
    m = movies[2]
    assert (m.title, m.overview) == ("Film factice 2", "L'histoire du film factice 2.")
    assert m.original_title == "Fake Movie 2" and m.alt_titles == ("Falscher Film 2",)


def test_adult_and_video_titles_stay_out(tmp_path: Path) -> None:
    adult, video = make_movie(0), make_movie(1)
    adult["adult"], video["video"] = True, True
    with FakeTmdb([adult, video] + [make_movie(i) for i in range(2, 6)]) as fake:
        movies = run(settings_for(fake), tmp_path / "ck.json")
        # The fake hides them only because the client asks it to.
        listed = httpx.get(
            f"{fake.url}/discover/movie",
            params={"include_adult": "true", "include_video": "true", "api_key": API_KEY},
        ).json()
    assert [m.id for m in movies] == [1002, 1003, 1004, 1005]
    assert [r["id"] for r in listed["results"]][:2] == [1000, 1001]
    assert fake.queries("/discover/movie")[0]["include_adult"] == "false"


# -- paging ---------------------------------------------------------------------------------


def test_the_fake_spans_thousands_of_pages_and_refuses_page_501() -> None:
    with FakeTmdb(generated=1_000_000) as fake:
        params = {"api_key": API_KEY, "sort_by": "popularity.desc"}
        first = httpx.get(f"{fake.url}/discover/movie", params={**params, "page": 1}).json()
        last = httpx.get(f"{fake.url}/discover/movie", params={**params, "page": 500}).json()
        beyond = httpx.get(f"{fake.url}/discover/movie", params={**params, "page": 501})
        voted = httpx.get(
            f"{fake.url}/discover/movie", params={**params, "vote_count.gte": 100}
        ).json()
    assert (first["total_pages"], first["total_results"]) == (50_000, 1_000_000)
    assert [r["id"] for r in last["results"]] == list(range(1000 + 9980, 1000 + 10_000))
    assert beyond.status_code == 400 and beyond.json()["status_code"] == 22
    assert voted["results"][0]["vote_count"] == 100 and voted["total_results"] == 999_991


def test_discover_stops_cleanly_at_page_500(tmp_path: Path) -> None:
    # One movie a page keeps this at 1,000 requests while TMDB's cap is reached.
    report = TmdbReport()
    with FakeTmdb(generated=620, page_size=1) as fake:
        movies = run(settings_for(fake, pages=500), tmp_path / "ck.json", report=report)
        pages = [int(q["page"]) for q in fake.queries("/discover/movie")]
    assert len(movies) == 500 and pages == list(range(1, 501))
    assert any("discover stops at page 500" in note for note in report.notes)
    assert report.requests == 1000 and report.fetched == 500


# -- faults ---------------------------------------------------------------------------------


def test_429_without_retry_after_outlasts_max_retries(tmp_path: Path, sleeps: list[float]) -> None:
    with FakeTmdb([make_movie(i) for i in range(3)]) as fake:
        fake.rate_limit("/movie/1001", retry_after=None, times=9)
        movies = run(settings_for(fake, max_retries=2), tmp_path / "ck.json")
    assert len(movies) == 3 and Counter(fake.detail_requests())[1001] == 10
    # Jittered and growing: each wait within [ceiling/2, ceiling] of a doubling ceiling.
    assert len(sleeps) == 9 and len(set(sleeps)) > 1
    for n, wait in enumerate(sleeps):
        ceiling = min(0.01, 0.001 * 2**n)
        assert ceiling / 2 <= wait <= ceiling


def test_429_forever_ends_at_the_rate_budget(tmp_path: Path, sleeps: list[float]) -> None:
    with FakeTmdb([make_movie(0)]) as fake:
        fake.rate_limit("/discover/movie", retry_after=None, times=None)
        settings = settings_for(fake, rate_limit_budget_s=0.1, backoff_max_s=0.02)
        with pytest.raises(TmdbUnavailableError, match="kept answering 429") as err:
            run(settings, tmp_path / "ck.json")
    assert "40 requests/s per IP" in str(err.value)
    assert 0.05 < sum(sleeps) <= 0.1 and len(sleeps) >= 5


def test_html_502_pages_are_retried(tmp_path: Path, sleeps: list[float]) -> None:
    with FakeTmdb([make_movie(i) for i in range(3)]) as fake:
        fake.html("/movie/1002", times=2)
        fake.html("/discover/movie", times=1)
        movies = run(settings_for(fake), tmp_path / "ck.json")
    assert len(movies) == 3 and Counter(fake.detail_requests())[1002] == 3 and len(sleeps) == 3


def test_html_502_forever_is_a_clear_error(tmp_path: Path, sleeps: list[float]) -> None:
    with FakeTmdb([make_movie(0)]) as fake:
        fake.html("/movie/1000", times=None)
        with pytest.raises(TmdbUnavailableError) as err:
            run(settings_for(fake, max_retries=2), tmp_path / "ck.json")
    assert str(err.value) == (
        'TMDB /movie/1000 failed after 3 attempts: HTTP 502 (an HTML page "502 Bad Gateway" '
        "from a proxy or CDN in front of TMDB, not TMDB's JSON)"
    )


def test_requests_are_paced(tmp_path: Path, sleeps: list[float]) -> None:
    with FakeTmdb([make_movie(i) for i in range(9)]) as fake:
        started = time.monotonic()
        movies = run(settings_for(fake, requests_per_s=40), tmp_path / "ck.json")
        took = time.monotonic() - started
    # 10 requests at most 40/s: at least 9 intervals of 25 ms.
    assert len(movies) == 9 and took >= 9 / 40 * 0.95 and sleeps


def test_the_fake_changes_endpoint_speaks_tmdbs_rules() -> None:
    today = datetime.now(UTC).date()
    with FakeTmdb([make_movie(0)]) as fake:
        fake.change(1000, today - timedelta(days=3))
        fake.change(1000, today)
        fake.change(77, today)

        def changes(**params: object) -> httpx.Response:
            return httpx.get(f"{fake.url}/movie/changes", params={"api_key": API_KEY, **params})

        default = changes().json()  # the last day
        assert default["results"] == [{"id": 77, "adult": False}, {"id": 1000, "adult": False}]
        assert (default["page"], default["total_pages"], default["total_results"]) == (1, 1, 2)
        span = changes(start_date=str(today - timedelta(days=14)), end_date=str(today))
        too_long = changes(start_date=str(today - timedelta(days=15)), end_date=str(today))
        backwards = changes(start_date=str(today), end_date=str(today - timedelta(days=1)))
    assert span.status_code == 200 and span.json()["total_results"] == 2
    assert too_long.status_code == 400 and "14 days" in too_long.json()["status_message"]
    assert backwards.status_code == 400
