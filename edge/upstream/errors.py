"""Failure reasons and the errors of the upstream pool.

Reasons are short fixed codes (`REASONS`), safe as Prometheus label values; the human-readable
detail goes into `attempts`, `last_error` and exception messages, never into metric labels.
"""

from __future__ import annotations

from typing import Protocol

# Failure reason codes (the part before ": " in every attempt reason).
CONNECT_ERROR = "connect_error"
CONNECT_TIMEOUT = "connect_timeout"
HTTP_5XX = "http_5xx"
HTTP_429 = "http_429"
HTTP_4XX = "http_4xx"
HTTP_AUTH = "http_auth"  # 401/403: this upstream does not take our token
HTTP_STATUS = "http_status"  # anything else that is not 2xx (a redirect: a wrong URL)
FIRST_TOKEN_TIMEOUT = "first_token_timeout"
TOTAL_TIMEOUT = "total_timeout"
READ_ERROR = "read_error"
INVALID_STREAM = "invalid_stream"
STREAM_ENDED = "stream_ended"  # closed without [DONE] or finish_reason
UPSTREAM_ERROR = "upstream_error"  # an {"error": ...} object inside the stream
CIRCUIT_OPEN = "circuit_open"
REASONS = frozenset(
    {
        CONNECT_ERROR,
        CONNECT_TIMEOUT,
        HTTP_5XX,
        HTTP_429,
        HTTP_4XX,
        HTTP_AUTH,
        HTTP_STATUS,
        FIRST_TOKEN_TIMEOUT,
        TOTAL_TIMEOUT,
        READ_ERROR,
        INVALID_STREAM,
        STREAM_ENDED,
        UPSTREAM_ERROR,
        CIRCUIT_OPEN,
    }
)
TIMEOUT_REASONS = frozenset({FIRST_TOKEN_TIMEOUT, TOTAL_TIMEOUT})


class UpstreamUnavailable(Exception):
    """No upstream could start a stream.

    `attempts` lists `(url, reason)` in the order tried (skipped ones say `circuit_open`);
    `status` is the upstream's HTTP status when it rejected the request itself (a 4xx other
    than 429, which is not retried elsewhere because every upstream would reject it too).
    """

    def __init__(
        self, message: str, attempts: list[tuple[str, str]], status: int | None = None
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class UpstreamTimeout(UpstreamUnavailable):
    """Every upstream that was tried timed out (first token or total budget): maps to 504."""


class UpstreamBroken(Exception):
    """The stream started (the caller saw tokens) and then broke; nothing was retried."""

    def __init__(self, url: str, partial_text: str, reason: str) -> None:
        super().__init__(f"upstream {url} broke mid-stream: {reason}")
        self.url = url
        self.partial_text = partial_text
        self.reason = reason


class UpstreamMetrics(Protocol):
    """Callbacks the edge wires to Prometheus counters (reasons are codes from `REASONS`)."""

    def failover(self, url: str, reason: str) -> None:
        """`url` failed before its first token and the next upstream is being tried."""

    def failure(self, url: str, reason: str) -> None:
        """`url` failed (before or after its first token); counted once per failed attempt."""

    def breaker_open(self, url: str) -> None:
        """`url`'s breaker opened (threshold reached, or a half-open probe failed)."""


class AttemptFailed(Exception):
    """One attempt failed in a way that allows trying the next upstream."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


class Rejected(Exception):
    """The upstream answered 4xx (not 429): our request is wrong, another upstream won't differ."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
