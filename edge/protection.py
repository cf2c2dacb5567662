"""API key check and a per-client token-bucket rate limit."""

from __future__ import annotations

import hmac
import math
import time


class ApiKeyGuard:
    """Accepts `X-API-Key: KEY` or `Authorization: Bearer KEY` when a key is set."""

    def __init__(self, key: str | None) -> None:
        self.key = key.encode() if key else None

    def allows(self, headers: dict[bytes, bytes]) -> bool:
        if self.key is None:
            return True
        given = headers.get(b"x-api-key")
        if given is None:
            auth = headers.get(b"authorization", b"")
            if auth[:7].lower() == b"bearer ":
                given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given, self.key)


class RateLimiter:
    """Each client may burst 10 seconds' worth of its per-minute allowance, then waits."""

    def __init__(self, per_minute: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 6.0)
        self.max_clients = max_clients
        self.buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> int | None:
        """None if allowed, else seconds to wait (for Retry-After)."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        if len(self.buckets) >= self.max_clients and client not in self.buckets:
            self.buckets.clear()  # bounded memory under an address sweep
        self.buckets[client] = (tokens - 1.0, now)
        return None
