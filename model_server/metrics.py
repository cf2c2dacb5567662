"""Prometheus metrics of one server process (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000)


class Metrics:
    """Queue and slot state, latency, throughput, token counts and errors."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge(
            "moviemind_model_queue_depth", "Requests waiting for a free slot", registry=r
        )
        self.slots_busy = Gauge("moviemind_model_slots_busy", "Slots generating now", registry=r)
        self.slots_total = Gauge("moviemind_model_slots", "Configured slots", registry=r)
        self.ready = Gauge("moviemind_model_ready", "1 once the model is loaded", registry=r)
        self.ttft = Histogram(
            "moviemind_model_time_to_first_token_seconds",
            "From request accepted to first generated token (queue wait included)",
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.decode_rate = Histogram(
            "moviemind_model_decode_tokens_per_second",
            "Decode speed of each generation after its first token",
            buckets=_RATE_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "moviemind_model_prompt_tokens", "Prompt tokens received", registry=r
        )
        self.cached_prompt_tokens = Counter(
            "moviemind_model_prompt_tokens_cached",
            "Prompt tokens served from the prefix KV cache",
            registry=r,
        )
        self.completion_tokens = Counter(
            "moviemind_model_completion_tokens", "Tokens generated", registry=r
        )
        self.requests = Counter(
            "moviemind_model_requests",
            "Generation requests by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "moviemind_model_errors", "Error replies by error type", ["type"], registry=r
        )
        self.cancelled = Counter(
            "moviemind_model_cancelled",
            "Generations stopped early, by reason (disconnect, deadline, stop sequence)",
            ["reason"],
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
