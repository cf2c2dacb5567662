"""Where the model servers are and how patient the edge is with them (MOVIEMIND_EDGE_*)."""

from __future__ import annotations

import ssl
from typing import Annotated

import msgspec

_Positive = Annotated[float, msgspec.Meta(gt=0)]


class UpstreamSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the model servers are and how patient to be with them."""

    # Nearest region first; each is a base URL such as http://10.0.0.5:8001 (a trailing /v1 is fine).
    urls: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)] = ("http://127.0.0.1:8001",)
    token: str | None = None
    # The "model" field sent; None -> the first id the upstream's /v1/models lists (cached per URL).
    model: str | None = None
    connect_timeout_s: _Positive = 0.5
    # Per upstream, from the moment it is tried until its first content token.
    first_token_timeout_s: _Positive = 10.0
    # Per stream_chat call, across every upstream tried, until the stream ends.
    total_timeout_s: _Positive = 60.0
    breaker_failures: Annotated[int, msgspec.Meta(ge=1)] = 3
    breaker_cooldown_s: Annotated[float, msgspec.Meta(ge=0)] = 15.0
    # Extra CA bundle (PEM) trusted for https:// upstreams, e.g. a deployment's private CA.
    ca_file: str | None = None

    def __post_init__(self) -> None:
        """Raise ValueError "field: why" if a value is unusable (also when built in code, where
        msgspec does not check the Meta constraints)."""
        if not self.urls:
            raise ValueError("urls: at least one model server URL is required")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"urls: {url!r} must start with http:// or https://")
        for name in ("connect_timeout_s", "first_token_timeout_s", "total_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        if self.breaker_failures < 1:
            raise ValueError(f"breaker_failures: must be >= 1, got {self.breaker_failures}")
        if self.breaker_cooldown_s < 0:
            raise ValueError(f"breaker_cooldown_s: must be >= 0, got {self.breaker_cooldown_s}")


def tls_context(ca_file: str | None) -> ssl.SSLContext | bool:
    """The system trust store, plus ca_file when one is configured."""
    if not ca_file:
        return True
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=ca_file)
    return ctx
