"""edge.feedback: the bounded queue, batches, the disk spool during outages and its replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from edge.feedback.metrics import FeedbackMetrics
from edge.feedback.settings import FeedbackSettings
from edge.feedback.spool import Spool, SpoolFull, SpoolLine
from edge.feedback.writer import FeedbackWriter
from moviemind_core.feedback import FeedbackEvent, StoreUnavailable


class FakeStore:
    """An in-memory FeedbackStore that can be switched off like a stopped database."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int, str], FeedbackEvent] = {}
        self.up = True
        self.batches: list[int] = []
        self.purged: list[float] = []

    def _check(self) -> None:
        if not self.up:
            raise StoreUnavailable("fake database is down")

    def write(self, events: Sequence[FeedbackEvent]) -> None:
        self._check()
        if events:
            self.batches.append(len(events))
        for e in events:
            self.rows[(e.visitor, e.movie_id, e.signal)] = e

    def delete_visitor(self, visitor: str) -> int:
        self._check()
        gone = [k for k in self.rows if k[0] == visitor]
        for k in gone:
            del self.rows[k]
        return len(gone)

    def purge_before(self, cutoff: float) -> int:
        self._check()
        self.purged.append(cutoff)
        old = [k for k, e in self.rows.items() if e.at < cutoff]
        for k in old:
            del self.rows[k]
        return len(old)

    def read(self) -> Iterator[FeedbackEvent]:
        self._check()
        return iter(sorted(self.rows.values(), key=lambda e: e.at))

    def count(self) -> int:
        self._check()
        return len(self.rows)

    def close(self) -> None:
        pass


def vote(visitor: str, movie: int, signal: str = "like", at: float | None = None) -> FeedbackEvent:
    return FeedbackEvent(
        visitor=visitor, movie_id=movie, signal=signal, at=time.time() if at is None else at
    )  # type: ignore[arg-type]


def make(
    tmp_path: Path, store: FakeStore, **kw: object
) -> tuple[FeedbackWriter, CollectorRegistry]:
    settings = FeedbackSettings(
        url="unused",
        spool=str(tmp_path / "spool.jsonl"),
        **{"flush_interval_s": 0.01, "retry_interval_s": 0.05, **kw},  # type: ignore[arg-type]
    )
    registry = CollectorRegistry()
    return FeedbackWriter(settings, FeedbackMetrics(registry), store=store), registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(f"moviemind_edge_feedback_{name}", labels or None) or 0.0


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_votes_are_written_in_batches(tmp_path: Path) -> None:
    store = FakeStore()
    writer, reg = make(tmp_path, store, batch_size=4)

    async def scenario() -> None:
        for m in range(10):
            assert writer.offer(vote("visitor-a", m))
        await writer.start()
        await until(lambda: len(store.rows) == 10)
        await writer.stop()

    asyncio.run(scenario())
    assert store.batches == [4, 4, 2]
    assert value(reg, "written_total") == 10
    assert value(reg, "accepted_total") == 10
    assert value(reg, "queue_depth") == 0


def test_a_full_queue_refuses_and_counts_the_drop(tmp_path: Path) -> None:
    writer, reg = make(tmp_path, FakeStore(), queue_size=3)
    accepted = [writer.offer(vote("visitor-a", m)) for m in range(5)]
    assert accepted == [True, True, True, False, False]
    assert value(reg, "dropped_total", reason="queue_full") == 2
    assert value(reg, "queue_depth") == 3


def test_an_outage_spools_every_vote_and_replays_them_when_the_database_is_back(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    writer, reg = make(tmp_path, store, batch_size=3)

    async def scenario() -> None:
        await writer.start()
        writer.offer(vote("visitor-a", 1))
        await until(lambda: len(store.rows) == 1)
        store.up = False
        for m in range(2, 12):
            writer.offer(vote("visitor-a", m))
        await until(lambda: value(reg, "spooled_total") == 10)
        assert value(reg, "store_up") == 0
        assert value(reg, "spool_pending") == 10
        assert len(store.rows) == 1
        store.up = True  # no new votes: the maintenance loop replays on its own
        await until(lambda: value(reg, "store_up") == 1 and value(reg, "written_total") == 11)
        await writer.stop()

    asyncio.run(scenario())
    assert value(reg, "spool_pending") == 0
    assert value(reg, "store_up") == 1
    assert value(reg, "written_total") == 11
    assert Path(tmp_path / "spool.jsonl").stat().st_size == 0


def test_a_deletion_during_an_outage_applies_after_the_votes_before_it(tmp_path: Path) -> None:
    store = FakeStore()
    store.up = False
    writer, _ = make(tmp_path, store)

    async def scenario() -> None:
        await writer.start()
        writer.offer(vote("visitor-a", 1))
        writer.offer(vote("visitor-b", 1))
        await until(lambda: writer.spool.pending == 2)
        deleted, complete = await writer.delete_visitor("visitor-a")
        assert (deleted, complete) == (0, False)
        writer.offer(vote("visitor-a", 2))  # a new vote after the deletion is kept
        await until(lambda: writer.spool.pending == 4)
        store.up = True
        await until(lambda: writer.spool.pending == 0)
        await writer.stop()

    asyncio.run(scenario())
    assert sorted(store.rows) == [("visitor-a", 2, "like"), ("visitor-b", 1, "like")]


def test_deleting_a_visitor_removes_their_queued_and_stored_votes(tmp_path: Path) -> None:
    store = FakeStore()
    store.rows[("visitor-a", 9, "seen")] = vote("visitor-a", 9, "seen")
    writer, _ = make(tmp_path, store)

    async def scenario() -> tuple[int, bool]:
        writer.offer(vote("visitor-a", 1))
        writer.offer(vote("visitor-b", 1))
        writer.offer(vote("visitor-a", 2))
        return await writer.delete_visitor("visitor-a")

    assert asyncio.run(scenario()) == (3, True)
    assert [e.visitor for e in writer.items] == ["visitor-b"]
    assert store.rows == {}


def test_stopping_while_the_database_is_away_loses_nothing(tmp_path: Path) -> None:
    """Votes queued at shutdown go to the spool; the next edge process replays them."""
    store = FakeStore()
    store.up = False
    writer, _ = make(tmp_path, store)

    async def first_run() -> None:
        await writer.start()
        for m in range(7):
            writer.offer(vote("visitor-a", m))
        await writer.stop()

    asyncio.run(first_run())
    assert store.rows == {}
    store.up = True
    again, _ = make(tmp_path, store)
    assert again.spool.pending == 7

    async def second_run() -> None:
        await again.start()
        await until(lambda: len(store.rows) == 7)
        await again.stop()

    asyncio.run(second_run())


def test_retention_purges_old_votes(tmp_path: Path) -> None:
    store = FakeStore()
    store.rows[("visitor-a", 1, "like")] = vote("visitor-a", 1, at=time.time() - 10 * 86400)
    store.rows[("visitor-a", 2, "like")] = vote("visitor-a", 2)
    writer, reg = make(tmp_path, store, retention_days=7, purge_interval_s=0.02)

    async def scenario() -> None:
        await writer.start()
        await until(lambda: value(reg, "purged_total") == 1)
        await writer.stop()

    asyncio.run(scenario())
    assert list(store.rows) == [("visitor-a", 2, "like")]
    assert value(reg, "purged_total") == 1


def test_the_spool_skips_a_torn_last_line_and_keeps_appending_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    good = msgspec.json.encode(SpoolLine(event=vote("visitor-a", 1)))
    path.write_bytes(good + b"\n" + good[:20])  # a crash in the middle of an append
    spool = Spool(path, 10_000)
    spool.append([SpoolLine(delete="visitor-a")])
    lines = list(spool.read())
    assert [(x.event is not None, x.delete) for x in lines] == [(True, None), (False, "visitor-a")]
    assert spool.torn == 1


def test_a_full_spool_refuses_whole_appends(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl", 200)
    spool.append([SpoolLine(event=vote("visitor-a", 1))])
    with pytest.raises(SpoolFull):
        spool.append([SpoolLine(event=vote("visitor-a", m)) for m in range(5)])
    assert spool.pending == 1
    assert len(list(spool.read())) == 1


def test_votes_spooled_when_the_spool_is_full_are_counted_as_dropped(tmp_path: Path) -> None:
    store = FakeStore()
    store.up = False
    writer, reg = make(tmp_path, store)
    writer.spool.max_bytes = 150  # room for about one vote

    async def scenario() -> None:
        await writer.start()
        writer.offer(vote("visitor-a", 1))
        await until(lambda: value(reg, "spooled_total") == 1)
        for m in range(2, 5):
            writer.offer(vote("visitor-a", m))
        await until(lambda: value(reg, "dropped_total", reason="spool_full") == 3)
        await writer.stop()

    asyncio.run(scenario())


def test_stop_writes_out_votes_even_if_the_writer_never_ran(tmp_path: Path) -> None:
    store = FakeStore()
    writer, _ = make(tmp_path, store, batch_size=2)
    for m in range(3):
        writer.offer(vote("visitor-a", m))
    asyncio.run(writer.stop())
    assert len(store.rows) == 3


def test_store_up_reports_the_database_not_the_back_off_timer(tmp_path: Path) -> None:
    """With nothing spooled, the gauge only goes back to 1 once the database answers."""
    store = FakeStore()
    store.up = False
    writer, reg = make(tmp_path, store, retention_days=0)
    writer.spool.max_bytes = 10  # nothing fits: the vote is dropped, the spool stays empty

    async def scenario() -> None:
        await writer.start()
        writer.offer(vote("visitor-a", 1))
        await until(lambda: value(reg, "dropped_total", reason="spool_full") == 1)
        await asyncio.sleep(0.3)  # several retry intervals
        assert value(reg, "store_up") == 0
        store.up = True
        await until(lambda: value(reg, "store_up") == 1)
        await writer.stop()

    asyncio.run(scenario())
