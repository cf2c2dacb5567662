"""Keeping a TMDB catalog current: /movie/changes refreshes, and TMDB's daily ID export read as
a list of ids to fetch (adult and video rows left out, --limit by popularity)."""

from __future__ import annotations

import argparse
import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from index_builder.__main__ import _movies
from index_builder.sources import SourceStats, tmdb_api, tmdb_id_export
from index_builder.sources.tmdb_api import TmdbReport, iter_tmdb_api, iter_tmdb_ids
from index_builder.sources.tmdb_client import TmdbSettings
from index_builder.sources.tmdb_id_export import ExportedId, is_id_export, read_id_export
from moviemind_core.catalog import Movie

try:
    from fake_tmdb import API_KEY, FakeTmdb, make_movie
except ImportError:  # tests/ became a package
    from tests.support.fake_tmdb import API_KEY, FakeTmdb, make_movie

pytestmark = pytest.mark.timeout(120)

TODAY = datetime.now(UTC).date()


def settings_for(fake: FakeTmdb, **overrides: object) -> TmdbSettings:
    """The fake's settings, two pages a run, one retry that waits a millisecond."""
    return fake.settings(**({"pages": 2, "max_retries": 1, "backoff_max_s": 0.001} | overrides))


def discover(
    fake: FakeTmdb, checkpoint: Path, **kwargs: object
) -> tuple[list[Movie], TmdbReport, SourceStats]:
    report, stats = TmdbReport(), SourceStats()
    settings = settings_for(fake)
    movies = list(iter_tmdb_api(settings, checkpoint, stats, report=report, **kwargs))  # type: ignore[arg-type]
    return movies, report, stats


def set_synced(checkpoint: Path, when: datetime) -> None:
    state = json.loads(checkpoint.read_text())
    state["synced_at"] = state["started_at"] = when.isoformat(timespec="seconds")
    checkpoint.write_text(json.dumps(state))


def changes_ranges(fake: FakeTmdb) -> list[tuple[date, date, int]]:
    return [
        (date.fromisoformat(q["start_date"]), date.fromisoformat(q["end_date"]), int(q["page"]))
        for q in fake.queries("/movie/changes")
    ]


# -- refresh through /movie/changes ---------------------------------------------------------


def test_refresh_fetches_only_what_changed(tmp_path: Path) -> None:
    ck = tmp_path / "ck.json"
    with FakeTmdb([make_movie(i) for i in range(50)]) as fake:
        first, report, _ = discover(fake, ck)
        assert len(first) == 40 and report.fetched == 40
        synced = json.loads(ck.read_text())["synced_at"]
        assert synced and datetime.fromisoformat(synced).date() == TODAY

        # A plain rerun asks TMDB nothing, even though TMDB has changed since.
        fake.movies[1003]["title"] = "Fake Movie 3: Director's Cut"
        fake.change(1003)
        fake.change(1010)
        fake.change(4242)  # not in this catalog: nothing to refetch
        fake.movies[1005]["popularity"] = 993.0  # a popularity update is not an edit
        before = len(fake.requests)
        again, report, _ = discover(fake, ck)
        assert again == first and len(fake.requests) == before and report.requests == 0

        refreshed, report, stats = discover(fake, ck, refresh=True)
        assert sorted(fake.detail_requests()[40:]) == [1003, 1010]
        assert (report.changed, report.fetched, report.replayed) == (2, 2, 38)
        assert changes_ranges(fake) == [(TODAY, TODAY, 1)]
        # Discover was read again: one request per page, no more.
        assert len(fake.queries("/discover/movie")) == 4
    by_id = {m.id: m for m in refreshed}
    assert by_id[1003].title == "Fake Movie 3: Director's Cut"
    assert by_id[1005].popularity == 993.0  # from the listing, without a details request
    assert stats.yielded == 40
    assert json.loads(ck.read_text())["complete"] is True


def test_refresh_after_weeks_asks_in_windows_of_at_most_14_days(tmp_path: Path) -> None:
    ck = tmp_path / "ck.json"
    with FakeTmdb([make_movie(i) for i in range(40)]) as fake:
        discover(fake, ck)
        set_synced(ck, datetime.now(UTC) - timedelta(days=40))
        fake.change(1001, TODAY - timedelta(days=39))
        fake.change(1002, TODAY - timedelta(days=20))
        fake.change(1003, TODAY)
        fake.change(1004, TODAY - timedelta(days=41))  # before the last run: not refetched
        # 250 more edits on one day: three pages of 100.
        for i in range(250):
            fake.change(50_000 + i, TODAY - timedelta(days=5))
        _, report, _ = discover(fake, ck, refresh=True)
        ranges = changes_ranges(fake)
    assert sorted(fake.detail_requests()[40:]) == [1001, 1002, 1003]
    assert report.changed == 3
    windows = sorted({(s, e) for s, e, _ in ranges})
    assert windows[0][0] == TODAY - timedelta(days=40) and windows[-1][1] == TODAY
    assert all(0 <= (e - s).days <= 14 for s, e in windows)
    # No day is left out between windows.
    assert all(
        nxt[0] <= cur[1] + timedelta(days=1) for cur, nxt in zip(windows, windows[1:], strict=False)
    )
    paged = [p for s, e, p in ranges if s <= TODAY - timedelta(days=5) <= e]
    assert paged == [1, 2, 3]


def test_a_window_past_page_500_is_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # TMDB's cap, scaled down: 2 pages of 100 instead of 500.
    monkeypatch.setattr(tmdb_api, "MAX_PAGE", 2)
    ck = tmp_path / "ck.json"
    with FakeTmdb([make_movie(i) for i in range(40)]) as fake:
        discover(fake, ck)
        set_synced(ck, datetime.now(UTC) - timedelta(days=10))
        for i in range(150):
            fake.change(60_000 + i, TODAY - timedelta(days=8))
            fake.change(70_000 + i, TODAY - timedelta(days=2))
        fake.change(1007, TODAY - timedelta(days=2))
        _, report, _ = discover(fake, ck, refresh=True)
        ranges = changes_ranges(fake)
    assert fake.detail_requests()[40:] == [1007]
    assert max(p for _, _, p in ranges) == 2  # never asked past the cap
    assert not report.notes  # every day fitted once split


def test_refresh_without_a_finished_run_resumes(tmp_path: Path) -> None:
    ck = tmp_path / "ck.json"
    with FakeTmdb([make_movie(i) for i in range(40)]) as fake:
        it = iter_tmdb_api(settings_for(fake), ck, SourceStats())
        for _ in range(5):
            next(it)
        it.close()
        movies, report, _ = discover(fake, ck, refresh=True)
        assert not fake.queries("/movie/changes")
    assert len(movies) == 40 and report.fetched == 35 and "resumed instead" in report.notes[0]


# -- the daily ID export --------------------------------------------------------------------


def write_export(path: Path, rows: list[dict | str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def export_row(movie_id: int, popularity: float, **flags: bool) -> dict:
    row = {"adult": False, "id": movie_id, "original_title": f"T{movie_id}"}
    row.update({"popularity": popularity, "video": False, **flags})
    return row


def test_id_export_is_detected_and_read_most_popular_first(tmp_path: Path) -> None:
    rows = [
        export_row(1001, 5.0),
        export_row(1002, 80.0, adult=True),
        export_row(1003, 40.0, video=True),
        export_row(1004, 40.0),
        export_row(1000, 40.0),
        '{"id": "x"}',
        export_row(1004, 1.0),  # a repeated id
        export_row(1005, 0.6),
    ]
    path = write_export(tmp_path / "movie_ids_12_05_2026.json.gz", rows)
    renamed = write_export(tmp_path / "ids.jsonl.gz", rows)
    assert is_id_export(path) and is_id_export(renamed)
    assert not is_id_export(Path(__file__).parents[2] / "data" / "tmdb" / "details.jsonl")

    everything = read_id_export(path)
    assert [e.id for e in everything.ids] == [1000, 1004, 1001, 1005]  # ties: lower id first
    assert (everything.rows, everything.adult, everything.video, everything.bad) == (8, 1, 1, 2)
    top = read_id_export(path, limit=2)
    assert top.ids == [ExportedId(1000, 40.0, "T1000"), ExportedId(1004, 40.0, "T1004")]
    assert top.over_limit == 2 and "2 ids to fetch" in top.summary()


def test_id_export_lines_split_across_read_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [export_row(2000 + i, float(i % 7)) for i in range(50)]
    path = write_export(tmp_path / "movie_ids_01_02_2027.json.gz", rows)
    whole = read_id_export(path)
    monkeypatch.setattr(tmdb_id_export, "_BLOCK", 13)  # every line crosses a block edge
    assert read_id_export(path) == whole and whole.rows == 50 and len(whole.ids) == 50


def test_id_list_fetches_new_ids_only_and_takes_todays_popularity(tmp_path: Path) -> None:
    ck = tmp_path / "ids.json"
    adult = make_movie(3)
    adult["adult"] = True  # the export said otherwise; the details decide
    with FakeTmdb([make_movie(i) for i in range(3)] + [adult, make_movie(4)]) as fake:
        settings = settings_for(fake)
        day1 = [ExportedId(1000, 50.0), ExportedId(1001, 20.0), ExportedId(1003, 10.0)]
        stats = SourceStats()
        movies = list(iter_tmdb_ids(settings, day1, ck, stats))
        assert [m.id for m in movies] == [1000, 1001] and stats.reasons == {"adult": 1}
        assert movies[0].popularity == 50.0  # the export's figure
        assert fake.detail_requests() == [1000, 1001, 1003]

        day2 = [ExportedId(1000, 70.0), ExportedId(1004, 30.0), ExportedId(1001, 20.0)]
        report = TmdbReport()
        movies = list(iter_tmdb_ids(settings, day2, ck, SourceStats(), report=report))
        assert fake.detail_requests()[3:] == [1004]
        assert [(m.id, m.popularity) for m in movies] == [(1000, 70.0), (1004, 30.0), (1001, 20.0)]
        assert (report.fetched, report.replayed, report.requests) == (1, 2, 1)

        fake.change(1001)
        report = TmdbReport()
        list(iter_tmdb_ids(settings, day2, ck, SourceStats(), refresh=True, report=report))
        assert fake.detail_requests()[4:] == [1001] and report.changed == 1


def test_build_reads_a_daily_export_with_limit_by_popularity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [export_row(1000 + i, float(i)) for i in range(30)]
    rows[29]["adult"] = True  # the most popular row is adult: left out
    export = write_export(tmp_path / "movie_ids_12_05_2026.json.gz", rows)
    with FakeTmdb([make_movie(i) for i in range(30)]) as fake:
        for name, value in {
            "MOVIEMIND_TMDB_TOKEN": API_KEY,
            "MOVIEMIND_TMDB_BASE_URL": fake.url,
            "MOVIEMIND_TMDB_REQUESTS_PER_S": "0",
        }.items():
            monkeypatch.setenv(name, value)
        args = argparse.Namespace(
            source="tmdb-export",
            input=str(export),
            limit=5,
            refresh=False,
            tmdb_fresh=False,
            checkpoint=str(tmp_path / "ck.json"),
        )
        stats = SourceStats()
        movies = _movies(args, stats, None)
    # The five most popular non-adult rows, and only those were fetched.
    assert sorted(fake.detail_requests()) == [1024, 1025, 1026, 1027, 1028]
    assert [m.id for m in movies] == [1024, 1025, 1026, 1027, 1028]
    assert stats.reasons == {"adult": 1}


def test_limit_keeps_the_most_popular_not_the_most_voted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "details.jsonl"
    lines = [
        {"id": 1, "title": "Voted", "popularity": 1.0, "vote_count": 9000},
        {"id": 2, "title": "Popular", "popularity": 90.0, "vote_count": 10},
        {"id": 3, "title": "Middling", "popularity": 50.0, "vote_count": 500},
    ]
    export.write_text("\n".join(json.dumps(row) for row in lines))
    args = argparse.Namespace(
        source="tmdb-export", input=str(export), limit=2, refresh=False, tmdb_fresh=False
    )
    assert [m.title for m in _movies(args, SourceStats(), None)] == ["Popular", "Middling"]
