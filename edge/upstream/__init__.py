"""The edge's client for its model servers: failover, circuit breakers, stream parsing.

- settings.py: `UpstreamSettings` (where the model servers are, how patient to be)
- events.py: what `stream_chat` yields (`StreamStarted`, `TokenDelta`, `StreamEnded`)
- errors.py: failure reason codes and `UpstreamUnavailable` / `UpstreamTimeout` / `UpstreamBroken`
- openai_stream.py: reading an OpenAI chat-completions SSE stream
- breaker.py: `CircuitBreaker`, pure state with an injected clock
- endpoint.py: one model server's URLs and one attempt up to the first token
- pool.py: `UpstreamPool`, through which every request to a model server goes
"""

from edge.upstream.errors import (
    REASONS,
    UpstreamBroken,
    UpstreamMetrics,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from edge.upstream.events import StreamEnded, StreamStarted, TokenDelta, UpstreamEvent
from edge.upstream.pool import UpstreamPool
from edge.upstream.settings import UpstreamSettings

__all__ = [
    "REASONS",
    "StreamEnded",
    "StreamStarted",
    "TokenDelta",
    "UpstreamBroken",
    "UpstreamEvent",
    "UpstreamMetrics",
    "UpstreamPool",
    "UpstreamSettings",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]
