"""The feedback writer: requests only append to a bounded in-memory queue; one background task
writes it to the database in batches, off the event loop.

While the database is away every batch goes to the disk spool (fsync'd), and the database is
tried again every `retry_interval_s`; once it answers, the spool is replayed in order before
anything newer, so votes and deletions apply in the order they were made. One lock orders
batches, replays and deletions: a visitor deleted while a batch of theirs waits cannot have that
batch written afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from edge.feedback.metrics import FeedbackMetrics
from edge.feedback.settings import FeedbackSettings
from edge.feedback.spool import Spool, SpoolFull, SpoolLine
from moviemind_core.feedback import FeedbackEvent, FeedbackStore, StoreUnavailable, open_store

log = logging.getLogger("moviemind.edge.feedback")


class FeedbackWriter:
    """Bounded queue -> batches -> store, with the spool for outages and a retention purge."""

    def __init__(
        self,
        settings: FeedbackSettings,
        metrics: FeedbackMetrics,
        store: FeedbackStore | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store or open_store(settings.url, timeout_s=settings.timeout_s)
        self.spool = Spool(settings.spool, settings.spool_max_mb * 1024 * 1024)
        self.items: deque[FeedbackEvent] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._retry_at = 0.0  # monotonic time before which the store is not tried
        self._down = False
        self._stopping = False
        self._tasks: list[asyncio.Task] = []
        self._torn_seen = 0
        metrics.queue_depth.set_function(lambda: len(self.items))
        metrics.spool_pending.set_function(lambda: self.spool.pending)
        metrics.store_up.set(1)

    # -- the request side: never waits on the database ---------------------------------------

    def offer(self, event: FeedbackEvent) -> bool:
        """Queue a vote; False (counted as dropped) when the queue is full."""
        if len(self.items) >= self.settings.queue_size:
            self.metrics.dropped.labels("queue_full").inc()
            return False
        self.items.append(event)
        self.metrics.accepted.inc()
        self._wake.set()
        return True

    async def delete_visitor(self, visitor: str) -> tuple[int, bool]:
        """Forget a visitor: queued votes at once, stored ones now or, while the database is
        away, through the spool. Returns (votes deleted so far, whether it is complete)."""
        async with self._lock:
            kept = [e for e in self.items if e.visitor != visitor]
            queued = len(self.items) - len(kept)
            self.items = deque(kept)
            if await self._store_ready():
                try:
                    stored = await asyncio.to_thread(self.store.delete_visitor, visitor)
                    self._came_back()
                    return queued + stored, True
                except StoreUnavailable as exc:
                    self._went_down(exc)
            # Raises SpoolFull when it cannot be kept: the caller must not claim success.
            await asyncio.to_thread(self.spool.append, [SpoolLine(delete=visitor)])
            return queued, False

    # -- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer and the maintenance loop (replay after outages, retention)."""
        self._tasks = [
            asyncio.create_task(self._run(), name="feedback-writer"),
            asyncio.create_task(self._maintain(), name="feedback-maintenance"),
        ]

    async def stop(self) -> None:
        """Write out what is queued (to the database, or the spool) and close the store."""
        self._stopping = True
        self._wake.set()
        writer, *others = self._tasks or [None]
        for task in others:
            task.cancel()
        if writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        while self.items:  # never started, or the writer failed: nothing queued is lost
            await self._write_batch()
        await asyncio.to_thread(self.store.close)

    # -- the background side -----------------------------------------------------------------

    async def _run(self) -> None:
        s = self.settings
        while True:
            while not self.items:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
            if len(self.items) < s.batch_size and not self._stopping:
                await asyncio.sleep(s.flush_interval_s)  # gather a batch
            try:
                await self._write_batch()
            except Exception:  # a bug must not stop the writer; the batch is in the log
                log.exception("feedback batch failed")

    async def _write_batch(self) -> None:
        async with self._lock:
            n = min(self.settings.batch_size, len(self.items))
            batch = [self.items.popleft() for _ in range(n)]
            if not batch:
                return
            if await self._store_ready():
                try:
                    await asyncio.to_thread(self.store.write, batch)
                    self.metrics.written.inc(len(batch))
                    self._came_back()
                    return
                except StoreUnavailable as exc:
                    self._went_down(exc)
            await self._to_spool(batch)

    async def _to_spool(self, batch: list[FeedbackEvent]) -> None:
        try:
            await asyncio.to_thread(self.spool.append, [SpoolLine(event=e) for e in batch])
            self.metrics.spooled.inc(len(batch))
        except (SpoolFull, OSError) as exc:
            self.metrics.dropped.labels("spool_full").inc(len(batch))
            log.error("feedback: %d votes dropped: %s", len(batch), exc)

    async def _store_ready(self) -> bool:
        """True when the store may take a write now: not in a back-off after a failure, and
        the spool (older operations) replayed first. Called with the lock held."""
        if self._down and time.monotonic() < self._retry_at:
            return False
        if self.spool.pending:
            try:
                await asyncio.to_thread(self._replay)
            except StoreUnavailable as exc:
                self._went_down(exc)
                return False
            self._came_back()
        return True

    def _replay(self) -> None:
        """Apply the spool in order (in a thread), then empty it. All or nothing per call: a
        failure half-way keeps the whole file, and a rerun's repeats are harmless upserts."""
        with self.spool.locked():
            self._replay_locked()

    def _replay_locked(self) -> None:
        batch: list[FeedbackEvent] = []
        written = 0
        for line in self.spool.read():
            if line.event is not None:
                batch.append(line.event)
                if len(batch) >= self.settings.batch_size:
                    self.store.write(batch)
                    written += len(batch)
                    batch = []
            elif line.delete is not None:
                self.store.write(batch)
                written += len(batch)
                batch = []
                self.store.delete_visitor(line.delete)
        self.store.write(batch)
        written += len(batch)
        torn = self.spool.torn - self._torn_seen
        self._torn_seen = self.spool.torn
        if torn:
            self.metrics.dropped.labels("torn_spool_line").inc(torn)
        self.spool.clear()
        self.metrics.written.inc(written)
        log.info("feedback: replayed %d spooled votes", written)

    def _went_down(self, exc: Exception) -> None:
        if not self._down:
            log.warning("feedback database unavailable, spooling: %s", exc)
        self._down = True
        self._retry_at = time.monotonic() + self.settings.retry_interval_s
        self.metrics.store_up.set(0)

    def _came_back(self) -> None:
        if self._down:
            log.info("feedback database is back")
        self._down = False
        self.metrics.store_up.set(1)

    async def _maintain(self) -> None:
        """Replay the spool once the database is back even when no new votes come, and apply
        the retention limit every purge_interval_s."""
        s = self.settings
        next_purge = time.monotonic()
        while True:
            await asyncio.sleep(min(s.retry_interval_s, s.purge_interval_s))
            try:
                async with self._lock:
                    ready = await self._store_ready()
                    if ready and self._down:
                        # Nothing was spooled to try: probe with a write that changes nothing
                        # (a read can succeed where writes fail, e.g. a locked SQLite file).
                        await asyncio.to_thread(self.store.purge_before, 0.0)
                        self._came_back()
                    if ready and s.retention_days and time.monotonic() >= next_purge:
                        cutoff = time.time() - s.retention_days * 86400
                        gone = await asyncio.to_thread(self.store.purge_before, cutoff)
                        self.metrics.purged.inc(gone)
                        self._came_back()
                        next_purge = time.monotonic() + s.purge_interval_s
            except StoreUnavailable as exc:
                async with self._lock:
                    self._went_down(exc)
            except Exception:
                log.exception("feedback maintenance failed")
