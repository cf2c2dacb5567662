"""Prometheus metrics of the edge, in their own registry (no process-global state in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from edge.feedback.metrics import FeedbackMetrics

_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class EdgeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "moviemind_edge_requests", "HTTP requests", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "moviemind_edge_request_seconds",
            "HTTP latency per route",
            ["route"],
            buckets=_FAST + _SLOW[4:],
            registry=r,
        )
        self.embed = Histogram(
            "moviemind_edge_embed_seconds", "query embedding time", buckets=_FAST, registry=r
        )
        self.search = Histogram(
            "moviemind_edge_search_seconds", "ANN search + ranking time", buckets=_FAST, registry=r
        )
        self.first_token = Histogram(
            "moviemind_edge_llm_first_token_seconds",
            "time to the model's first token",
            buckets=_SLOW,
            registry=r,
        )
        self.upstream_failures = Counter(
            "moviemind_edge_upstream_failures",
            "upstream attempts that failed",
            ["upstream", "reason"],
            registry=r,
        )
        self.failovers = Counter(
            "moviemind_edge_failovers", "requests moved to the next upstream", registry=r
        )
        self.breaker_opens = Counter(
            "moviemind_edge_breaker_opens", "circuit breaker openings", ["upstream"], registry=r
        )
        self.degraded = Counter(
            "moviemind_edge_degraded", "answers without the model", ["reason"], registry=r
        )
        self.dropped_titles = Counter(
            "moviemind_edge_dropped_titles",
            "titles in model answers that were not candidates",
            registry=r,
        )
        self.reasons = Counter(
            "moviemind_edge_reasons",
            "picks' model reasons by outcome: shown, or the rule that rejected the last attempt "
            "(timeout: the reasons budget ran out; no_choices: too little in the catalog for a "
            "guided sentence)",
            ["verdict"],
            registry=r,
        )
        self.reason_attempts = Counter(
            "moviemind_edge_reason_attempts",
            "every model sentence the gate judged, by verdict (a pick may take several)",
            ["verdict"],
            registry=r,
        )
        self.index_reloads = Counter(
            "moviemind_edge_index_reloads", "index loads", ["result"], registry=r
        )
        self.index_movies = Gauge(
            "moviemind_edge_index_movies", "movies in the served index", registry=r
        )
        self.client_gone = Counter(
            "moviemind_edge_client_gone",
            "non-streamed requests whose client hung up before the answer (work cancelled)",
            registry=r,
        )
        self.rate_limited = Counter(
            "moviemind_edge_rate_limited", "requests refused by the rate limit", registry=r
        )
        self.feedback = FeedbackMetrics(r)

    # The UpstreamMetrics callbacks the upstream pool reports through.
    def failover(self, url: str, reason: str) -> None:
        self.failovers.inc()

    def failure(self, url: str, reason: str) -> None:
        self.upstream_failures.labels(url, reason).inc()

    def breaker_open(self, url: str) -> None:
        self.breaker_opens.labels(url).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
