"""Edge settings, from environment variables prefixed MOVIEMIND_EDGE_ (see the README table).

Read by moviemind_core.config like every tier's: the structs below are the one place where
names, defaults, types and ranges are stated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

from edge.feedback.settings import PREFIX as FEEDBACK
from edge.feedback.settings import FeedbackSettings
from edge.upstream import UpstreamSettings
from moviemind_core.config import SettingsError, env_names, read_env, reject_unknown
from moviemind_core.ranking import RankingSettings
from moviemind_core.storage import S3Settings

PREFIX = "MOVIEMIND_EDGE_"
# Upstream fields whose variable is not simply the field name.
UPSTREAM_NAMES = {
    "urls": "UPSTREAMS",
    "token": "UPSTREAM_TOKEN",
    "model": "UPSTREAM_MODEL",
    "ca_file": "UPSTREAM_CA_FILE",
}
RANK = "RANK_"

__all__ = ["PREFIX", "EdgeSettings", "SettingsError", "load_settings", "variables"]


class EdgeSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    index: str = "var/index"
    index_cache_dir: str = "var/cache/edge_index"
    model_dir: str = "var/models/minilm"
    embed_threads: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Precision of query embeddings: "int8" (the same export's quantized model, 1.6x faster per
    # query on the test VM), "fp32", or "bundle" (whatever the documents were embedded with).
    query_variant: Literal["int8", "fp32", "bundle"] = "int8"
    # 0 turns polling off (SIGHUP still reloads).
    reload_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    # 0 turns the rate limit off.
    rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 600
    prompt_tokens: Annotated[int, msgspec.Meta(ge=64, le=32768)] = 512
    max_answer_tokens: Annotated[int, msgspec.Meta(ge=8, le=4096)] = 256
    candidates: Annotated[int, msgspec.Meta(ge=5, le=200)] = 8
    # Guided reasons: the token cap of each pick's reason (shared by its attempts: a sentence
    # takes about 25), and the wall-clock budget for all of a request's reasons (picks whose
    # reason is not written by then keep the catalog reason).
    reason_tokens: Annotated[int, msgspec.Meta(ge=8, le=256)] = 80
    reasons_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 8.0
    # How the model writes a reason where the model server offers guided choice: "choice" (it
    # picks one of the sentences the catalog backs; no invented facts) or "free" (its own words,
    # judged by the reason gate; only worth it with a model stronger than SmolLM2).
    reason_style: Literal["choice", "free"] = "choice"
    # Let the model reorder the ranker's candidates (the older single-answer path). Off: only
    # worth turning on where it was measured to pick better than the ranker.
    llm_rerank: bool = False
    # At start-up, send the fixed prompt prefix to every model server once, so the first user
    # does not pay for evaluating it.
    prime_prefix: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Proxies (load balancer, TLS terminator) whose X-Forwarded-For is believed, so the rate
    # limit sees real client addresses; comma-separated addresses or "*".
    trusted_proxies: str = "127.0.0.1"
    upstream: UpstreamSettings = UpstreamSettings()
    ranking: RankingSettings = RankingSettings()
    s3: S3Settings = S3Settings()
    feedback: FeedbackSettings = FeedbackSettings()

    def __post_init__(self) -> None:
        # RankingSettings is shared with the offline evaluation; its ranges for serving are here.
        r = self.ranking
        for field, ok, why in (
            ("mmr_lambda", 0.0 <= r.mmr_lambda <= 1.0, "must be 0..1"),
            ("oversample", r.oversample >= 1, "must be >= 1"),
            ("hub_discount", r.hub_discount >= 0.0, "must be >= 0"),
            ("thin_discount", 0.0 <= r.thin_discount < 1.0, "must be 0..1 (1 excluded)"),
        ):
            if not ok:
                raise ValueError(f"{PREFIX}{RANK}{field.upper()} {why}")
        ca = self.upstream.ca_file
        if ca and not os.path.isfile(ca):
            raise ValueError(f"{PREFIX}UPSTREAM_CA_FILE {ca!r} does not exist")


def variables() -> dict[str, object]:
    """Every MOVIEMIND_EDGE_* variable the edge reads, with its default (for the README check)."""
    out: dict[str, object] = {}
    for cls, prefix, names in (
        (EdgeSettings, PREFIX, None),
        (UpstreamSettings, PREFIX, UPSTREAM_NAMES),
        (RankingSettings, PREFIX + RANK, None),
        (FeedbackSettings, PREFIX + FEEDBACK, None),
    ):
        defaults = cls()
        for field, suffix in env_names(cls, names).items():
            if field not in ("upstream", "ranking", "s3", "feedback"):
                out[prefix + suffix] = getattr(defaults, field)
    return out


def load_settings(env: Mapping[str, str] | None = None) -> EdgeSettings:
    """Read and validate MOVIEMIND_EDGE_* (and MOVIEMIND_S3_*); raises SettingsError."""
    env = os.environ if env is None else env
    reject_unknown(env, PREFIX, {name[len(PREFIX) :] for name in variables()})
    upstream = read_env(UpstreamSettings, env, PREFIX, names=UPSTREAM_NAMES)
    upstream = msgspec.structs.replace(upstream, urls=tuple(u.rstrip("/") for u in upstream.urls))
    ranking = read_env(RankingSettings, env, PREFIX + RANK)
    return read_env(
        EdgeSettings,
        env,
        PREFIX,
        skip=("upstream", "ranking", "s3", "feedback"),
        upstream=upstream,
        ranking=ranking,
        feedback=read_env(FeedbackSettings, env, PREFIX + FEEDBACK),
        s3=S3Settings.from_env(dict(env)),
    )
