"""Edge settings, from environment variables prefixed MOVIEMIND_EDGE_ (see the README table)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from edge.upstream import UpstreamSettings
from moviemind_core.ranking import RankingSettings
from moviemind_core.storage import S3Settings

PREFIX = "MOVIEMIND_EDGE_"


class SettingsError(ValueError):
    """A setting is malformed; the message names the variable and what it should be."""


class EdgeSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8000
    index: str = "var/index"
    index_cache_dir: str = "var/cache/edge_index"
    model_dir: str = "var/models/minilm"
    embed_threads: int = 1
    # Precision of query embeddings: "int8" (the same export's quantized model, 1.6x faster per
    # query on the test VM), "fp32", or "bundle" (whatever the documents were embedded with).
    query_variant: str = "int8"
    reload_interval_s: float = 30.0
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    rate_limit_per_minute: int = 600
    prompt_tokens: int = 512
    max_answer_tokens: int = 256
    candidates: int = 8
    # Guided reasons: the token cap of each pick's reason, and the wall-clock budget for all of
    # a request's reasons (picks whose reason is not written by then keep the catalog reason).
    reason_tokens: int = 48
    reasons_timeout_s: float = 8.0
    # Let the model reorder the ranker's candidates (the older single-answer path). Off: only
    # worth turning on where it was measured to pick better than the ranker.
    llm_rerank: bool = False
    # At start-up, send the fixed prompt prefix to every model server once, so the first user
    # does not pay for evaluating it.
    prime_prefix: bool = True
    log_level: str = "info"
    # Proxies (load balancer, TLS terminator) whose X-Forwarded-For is believed, so the rate
    # limit sees real client addresses; comma-separated addresses or "*".
    trusted_proxies: str = "127.0.0.1"
    upstream: UpstreamSettings = UpstreamSettings()
    ranking: RankingSettings = RankingSettings()
    s3: S3Settings = S3Settings()


def _convert(name: str, raw: str, kind: type):
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def load_settings(env: Mapping[str, str] | None = None) -> EdgeSettings:
    """Read and validate MOVIEMIND_EDGE_* (and MOVIEMIND_S3_*); raises SettingsError."""
    env = os.environ if env is None else env
    top: dict[str, object] = {}
    simple = {
        "HOST": ("host", str),
        "PORT": ("port", int),
        "INDEX": ("index", str),
        "INDEX_CACHE_DIR": ("index_cache_dir", str),
        "MODEL_DIR": ("model_dir", str),
        "EMBED_THREADS": ("embed_threads", int),
        "QUERY_VARIANT": ("query_variant", str),
        "RELOAD_INTERVAL_S": ("reload_interval_s", float),
        "API_KEY": ("api_key", str),
        "MAX_BODY_BYTES": ("max_body_bytes", int),
        "RATE_LIMIT_PER_MINUTE": ("rate_limit_per_minute", int),
        "PROMPT_TOKENS": ("prompt_tokens", int),
        "MAX_ANSWER_TOKENS": ("max_answer_tokens", int),
        "CANDIDATES": ("candidates", int),
        "REASON_TOKENS": ("reason_tokens", int),
        "REASONS_TIMEOUT_S": ("reasons_timeout_s", float),
        "LLM_RERANK": ("llm_rerank", bool),
        "PRIME_PREFIX": ("prime_prefix", bool),
        "LOG_LEVEL": ("log_level", str),
        "TRUSTED_PROXIES": ("trusted_proxies", str),
    }
    for suffix, (field, kind) in simple.items():
        raw = env.get(PREFIX + suffix)
        if raw is not None and raw != "":
            top[field] = _convert(PREFIX + suffix, raw, kind)
    if env.get(PREFIX + "CORS_ORIGINS"):
        top["cors_origins"] = _csv(env[PREFIX + "CORS_ORIGINS"])

    up: dict[str, object] = {}
    if env.get(PREFIX + "UPSTREAMS"):
        urls = _csv(env[PREFIX + "UPSTREAMS"])
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise SettingsError(f"{PREFIX}UPSTREAMS: {u!r} is not an http(s) URL")
        if not urls:
            raise SettingsError(f"{PREFIX}UPSTREAMS needs at least one http(s) URL")
        up["urls"] = tuple(u.rstrip("/") for u in urls)
    up_fields = {
        "UPSTREAM_TOKEN": ("token", str),
        "UPSTREAM_MODEL": ("model", str),
        "UPSTREAM_CA_FILE": ("ca_file", str),
        "CONNECT_TIMEOUT_S": ("connect_timeout_s", float),
        "FIRST_TOKEN_TIMEOUT_S": ("first_token_timeout_s", float),
        "TOTAL_TIMEOUT_S": ("total_timeout_s", float),
        "BREAKER_FAILURES": ("breaker_failures", int),
        "BREAKER_COOLDOWN_S": ("breaker_cooldown_s", float),
    }
    for suffix, (field, kind) in up_fields.items():
        raw = env.get(PREFIX + suffix)
        if raw:
            up[field] = _convert(PREFIX + suffix, raw, kind)

    rank: dict[str, object] = {}
    for field in RankingSettings.__struct_fields__:
        name = PREFIX + "RANK_" + field.upper()
        raw = env.get(name)
        if raw:
            kind = type(getattr(RankingSettings(), field))
            rank[field] = _convert(name, raw, kind)

    try:
        settings = EdgeSettings(
            **top,  # type: ignore[arg-type]
            upstream=UpstreamSettings(**up),  # type: ignore[arg-type]
            ranking=RankingSettings(**rank),  # type: ignore[arg-type]
            s3=S3Settings.from_env(dict(env)),
        )
    except (TypeError, ValueError, msgspec.ValidationError) as exc:
        # UpstreamSettings checks its values in __post_init__ and raises a plain ValueError
        # naming its field ("upstream connect_timeout_s ..."): name the variable instead.
        message = str(exc)
        for suffix, (field, _) in up_fields.items():
            message = message.replace(f"upstream {field}", PREFIX + suffix)
        raise SettingsError(message) from None
    _validate(settings)
    return settings


def _validate(s: EdgeSettings) -> None:
    checks = [
        (1 <= s.port <= 65535, "PORT must be 1..65535"),
        (s.embed_threads >= 1, "EMBED_THREADS must be >= 1"),
        (
            s.query_variant in ("int8", "fp32", "bundle"),
            f"QUERY_VARIANT={s.query_variant!r} must be int8, fp32 or bundle",
        ),
        (s.reload_interval_s >= 0, "RELOAD_INTERVAL_S must be >= 0 (0 turns polling off)"),
        (s.max_body_bytes >= 1024, "MAX_BODY_BYTES must be >= 1024"),
        (s.rate_limit_per_minute >= 0, "RATE_LIMIT_PER_MINUTE must be >= 0 (0 turns it off)"),
        (64 <= s.prompt_tokens <= 32768, "PROMPT_TOKENS must be 64..32768"),
        (8 <= s.max_answer_tokens <= 4096, "MAX_ANSWER_TOKENS must be 8..4096"),
        (5 <= s.candidates <= 200, "CANDIDATES must be 5..200"),
        (8 <= s.reason_tokens <= 256, "REASON_TOKENS must be 8..256"),
        (0 < s.reasons_timeout_s <= 600, "REASONS_TIMEOUT_S must be > 0 and <= 600"),
        (len(s.upstream.urls) >= 1, "UPSTREAMS needs at least one URL"),
        (0.0 <= s.ranking.mmr_lambda <= 1.0, "RANK_MMR_LAMBDA must be 0..1"),
        (s.ranking.oversample >= 1, "RANK_OVERSAMPLE must be >= 1"),
    ]
    if s.upstream.ca_file and not os.path.isfile(s.upstream.ca_file):
        checks.append((False, f"UPSTREAM_CA_FILE {s.upstream.ca_file!r} does not exist"))
    for ok, msg in checks:
        if not ok:
            raise SettingsError(PREFIX + msg)
