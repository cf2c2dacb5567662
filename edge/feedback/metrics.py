"""The feedback writer's Prometheus series, registered in the edge's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class FeedbackMetrics:
    """Queue depth, spool backlog, and every vote's fate: written, spooled or dropped."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.queue_depth = Gauge(
            "moviemind_edge_feedback_queue_depth", "votes waiting in memory", registry=r
        )
        self.spool_pending = Gauge(
            "moviemind_edge_feedback_spool_pending",
            "operations in the disk spool waiting for the database",
            registry=r,
        )
        self.store_up = Gauge(
            "moviemind_edge_feedback_store_up",
            "1 while the feedback database takes writes, 0 while it is away",
            registry=r,
        )
        self.accepted = Counter(
            "moviemind_edge_feedback_accepted", "votes accepted (202)", registry=r
        )
        self.written = Counter(
            "moviemind_edge_feedback_written",
            "votes written to the database (replayed ones included)",
            registry=r,
        )
        self.spooled = Counter(
            "moviemind_edge_feedback_spooled",
            "votes written to the disk spool because the database was away",
            registry=r,
        )
        self.dropped = Counter(
            "moviemind_edge_feedback_dropped",
            "votes lost: queue_full (answered 429), spool_full, torn_spool_line",
            ["reason"],
            registry=r,
        )
        self.purged = Counter(
            "moviemind_edge_feedback_purged", "votes deleted by the retention limit", registry=r
        )
