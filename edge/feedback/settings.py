"""Feedback settings, from MOVIEMIND_EDGE_FEEDBACK_* (see the README table)."""

from __future__ import annotations

from typing import Annotated

import msgspec

PREFIX = "FEEDBACK_"


class FeedbackSettings(msgspec.Struct, frozen=True, kw_only=True):
    # A SQLite file (embedded, created on start) or a postgresql:// URL.
    url: str = "var/feedback/feedback.sqlite3"
    # Append-only JSON lines holding what the database could not take; replayed when it is back.
    spool: str = "var/feedback/spool.jsonl"
    # Past this size the spool refuses more (counted as dropped): a long outage cannot fill the disk.
    spool_max_mb: Annotated[int, msgspec.Meta(ge=1)] = 256
    # Votes waiting in memory; a full queue answers 429 rather than grow.
    queue_size: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # How long the writer waits to gather a batch when fewer than batch_size are queued.
    flush_interval_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    # While the database is down: how often to try it again (events meanwhile go to the spool).
    retry_interval_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 2.0
    # Connect and statement timeout of the database calls (they run off the event loop).
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    # Votes older than this are deleted (checked every purge_interval_s); 0 keeps them forever.
    retention_days: Annotated[int, msgspec.Meta(ge=0)] = 365
    purge_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
