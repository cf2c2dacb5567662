"""TMDB v3 over HTTP: settings, authentication, pacing and the retry policy.

One job: turn "GET this path" into TMDB's decoded JSON, or into an error a person can act on.
What to fetch and how to resume lives in `tmdb_api`.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import msgspec

from moviemind_core.config import SettingsError, env_names, reject_unknown

__all__ = [
    "TmdbAuthError",
    "TmdbError",
    "TmdbSettings",
    "TmdbSettingsError",
    "TmdbUnavailableError",
    "auth_kind",
]

# TMDB refuses list pages above 500 (discover, changes): "Pages start at 1 and max at 500".
MAX_PAGE = 500
ENV_PREFIX = "MOVIEMIND_TMDB_"
_LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
# A v3 "API key" is 32 hex digits and goes in the `api_key` query parameter; the v4 "API Read
# Access Token" is a JWT (three dot-separated base64url parts) and goes in a Bearer header.
_V3_KEY = re.compile(r"^[0-9a-f]{32}$")
_JWT = re.compile(r"^[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}$")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)

# Indirections so tests can observe (and shorten) waits without patching the time module.
_sleep: Callable[[float], None] = time.sleep
_monotonic: Callable[[], float] = time.monotonic


class TmdbSettingsError(ValueError):
    """A TMDB setting is missing or invalid; the message is one line naming the variable."""


class TmdbError(RuntimeError):
    """TMDB answered in a way the source cannot continue from."""


class TmdbAuthError(TmdbError):
    """TMDB rejected the credential (HTTP 401). Retrying cannot help."""


class TmdbUnavailableError(TmdbError):
    """TMDB kept failing (5xx, 429, connection errors) after every allowed retry."""


def auth_kind(credential: str) -> Literal["bearer", "api_key"]:
    """How TMDB expects this credential: a 32-hex-digit v3 key as `api_key`, anything else
    (the JWT read-access token, or a token of a TMDB-compatible mirror) as a Bearer header."""
    value = credential.strip()
    if _V3_KEY.match(value):
        return "api_key"
    return "bearer"


class TmdbSettings(msgspec.Struct, frozen=True):
    """How to reach TMDB and how much to fetch. Read from `MOVIEMIND_TMDB_*` by `from_env`."""

    # The API Read Access Token (a JWT, sent as Bearer) or the v3 API key (32 hex digits, sent
    # as the api_key query parameter); `auth` says which when guessing is not wanted.
    token: str
    auth: str = "auto"
    base_url: str = "https://api.themoviedb.org/3"
    pages: int = 5
    language: str = "en-US"
    min_vote_count: int = 0
    timeout_s: float = 10.0
    max_retries: int = 5
    # First retry waits about backoff_s, doubling per retry up to backoff_max_s (with jitter).
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    # A Retry-After beyond this is capped, so a confused server cannot park the build for hours.
    retry_after_max_s: float = 120.0
    # 429s are TMDB saying "slower", not "broken": one request keeps retrying them (backing
    # off, jittered) until it has waited this long in total, independently of max_retries.
    rate_limit_budget_s: float = 600.0
    # TMDB allows about 40 requests/s per IP; staying under it avoids the 429s altogether.
    # 0 turns pacing off.
    requests_per_s: float = 30.0
    checkpoint_every: int = 20

    def __post_init__(self) -> None:
        def bad(field: str, why: str, value: object) -> TmdbSettingsError:
            return TmdbSettingsError(f"{ENV_PREFIX}{field.upper()} {why} (got {value!r})")

        if not self.token.strip():
            raise TmdbSettingsError(
                f"{ENV_PREFIX}TOKEN is not set: use your TMDB API Read Access Token "
                "or v3 API key (themoviedb.org/settings/api)"
            )
        if any(c.isspace() for c in self.token.strip()):
            raise TmdbSettingsError(f"{ENV_PREFIX}TOKEN must not contain whitespace")
        if self.auth not in ("auto", "bearer", "api_key"):
            raise bad("auth", "must be auto, bearer or api_key", self.auth)
        if not self.base_url.startswith(("http://", "https://")):
            raise bad("base_url", "must start with http:// or https://", self.base_url)
        if not 1 <= self.pages <= MAX_PAGE:
            raise bad("pages", f"must be between 1 and {MAX_PAGE}", self.pages)
        if not _LANGUAGE.match(self.language):
            raise bad("language", "must look like en or en-US", self.language)
        if self.min_vote_count < 0:
            raise bad("min_vote_count", "must be >= 0", self.min_vote_count)
        if not 0 < self.timeout_s <= 600:
            raise bad("timeout_s", "must be > 0 and <= 600", self.timeout_s)
        if not 0 <= self.max_retries <= 20:
            raise bad("max_retries", "must be between 0 and 20", self.max_retries)
        if not 0 <= self.backoff_s <= 60:
            raise bad("backoff_s", "must be between 0 and 60", self.backoff_s)
        if not self.backoff_s <= self.backoff_max_s <= 600:
            raise bad("backoff_max_s", "must be >= BACKOFF_S and <= 600", self.backoff_max_s)
        if not 0 <= self.retry_after_max_s <= 3600:
            raise bad("retry_after_max_s", "must be between 0 and 3600", self.retry_after_max_s)
        if not 0 <= self.rate_limit_budget_s <= 86_400:
            raise bad(
                "rate_limit_budget_s", "must be between 0 and 86400", self.rate_limit_budget_s
            )
        if not 0 <= self.requests_per_s <= 1000:
            raise bad("requests_per_s", "must be between 0 (off) and 1000", self.requests_per_s)
        if self.checkpoint_every < 1:
            raise bad("checkpoint_every", "must be >= 1", self.checkpoint_every)

    @property
    def auth_method(self) -> Literal["bearer", "api_key"]:
        """The method actually used: `auth` when set, else guessed from the credential."""
        if self.auth == "bearer":
            return "bearer"
        if self.auth == "api_key":
            return "api_key"
        return auth_kind(self.token)

    def __repr__(self) -> str:
        # The token is a credential: keep it out of logs and tracebacks.
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__ if name != "token"
        )
        return f"TmdbSettings(token='***', {fields})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TmdbSettings:
        """Build settings from `MOVIEMIND_TMDB_*`; raise `TmdbSettingsError` on a bad value."""
        env = os.environ if environ is None else environ
        try:  # a misspelt name would otherwise silently leave its default
            reject_unknown(env, ENV_PREFIX, env_names(cls).values())
        except SettingsError as exc:
            raise TmdbSettingsError(str(exc)) from None
        kwargs: dict[str, Any] = {"token": env.get(f"{ENV_PREFIX}TOKEN", "")}
        for info in msgspec.structs.fields(cls):
            name, kind = info.name, info.type
            if name == "token":
                continue
            raw = env.get(f"{ENV_PREFIX}{name.upper()}")
            if raw is None or not raw.strip():
                continue
            raw = raw.strip()
            if kind is str:
                kwargs[name] = raw
                continue
            try:
                kwargs[name] = int(raw) if kind is int else float(raw)
            except ValueError:
                noun = "an integer" if kind is int else "a number"
                raise TmdbSettingsError(
                    f"{ENV_PREFIX}{name.upper()} must be {noun} (got {raw!r})"
                ) from None
        return cls(**kwargs)


class TmdbClient:
    """A TMDB GET with the retry policy: 429 waits Retry-After or backs off within the rate
    budget; 5xx (JSON or a CDN's HTML page), bad JSON and transport errors back off
    exponentially with jitter up to max_retries; 401 and other 4xx fail at once.
    `requests` counts every HTTP attempt, for the run's summary."""

    def __init__(self, settings: TmdbSettings) -> None:
        self._settings = settings
        credential = settings.token.strip()
        headers = {"Accept": "application/json"}
        params: dict[str, str] = {}
        if settings.auth_method == "bearer":
            headers["Authorization"] = f"Bearer {credential}"
        else:
            params["api_key"] = credential
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            params=params,
            timeout=settings.timeout_s,
        )
        self._interval = 1.0 / settings.requests_per_s if settings.requests_per_s > 0 else 0.0
        self._next_at = 0.0
        self.requests = 0

    def __enter__(self) -> TmdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _backoff(self, attempt: int) -> float:
        s = self._settings
        ceiling = min(s.backoff_max_s, s.backoff_s * (2**attempt))
        # Half fixed, half random: retries from parallel builders spread out but never hammer.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.0), self._settings.retry_after_max_s)

    def _pace(self) -> None:
        """Space requests at least 1/requests_per_s apart (one builder per IP stays under
        TMDB's limit without ever seeing a 429)."""
        if not self._interval:
            return
        now = _monotonic()
        if self._next_at > now:
            _sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self._interval

    def get(self, path: str, params: Mapping[str, str | int], *, missing_ok: bool = False) -> Any:
        """GET `path` under the base URL and decode its JSON; None for a 404 when `missing_ok`.

        Raises `TmdbAuthError` (401), `TmdbError` (other 4xx), `TmdbUnavailableError` (retries
        or the rate-limit budget exhausted). Messages name the path, never the credential.
        """
        s = self._settings
        failures = 0  # 5xx, transport errors, bad JSON: bounded by max_retries
        limited = 0  # 429s: bounded by the time budget instead
        waited_429 = 0.0
        while True:
            self._pace()
            self.requests += 1
            try:
                response = self._http.get(path, params=dict(params))
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return msgspec.json.decode(response.content)
                    except msgspec.DecodeError:
                        # A proxy cutting the body short, or a CDN's HTML page with status 200.
                        problem = "reply was not valid JSON" + _html_note(response)
                elif status == 401:
                    raise TmdbAuthError(self._auth_message(response))
                elif status == 404 and missing_ok:
                    return None
                elif status == 429:
                    retry_after = self._retry_after(response)
                    delay = self._backoff(limited) if retry_after is None else retry_after
                    limited += 1
                    if waited_429 + delay > s.rate_limit_budget_s:
                        raise TmdbUnavailableError(
                            f"TMDB {path} kept answering 429 (rate limited) for "
                            f"{waited_429:.1f} s over {limited} tries; TMDB allows about 40 "
                            "requests/s per IP: is another client sharing this address? "
                            f"(budget {ENV_PREFIX}RATE_LIMIT_BUDGET_S={s.rate_limit_budget_s:g})"
                        )
                    waited_429 += delay
                    _sleep(delay)
                    continue
                elif status >= 500:
                    problem = f"HTTP {status}" + _html_note(response)
                else:
                    raise TmdbError(f"TMDB {path} answered HTTP {status}: {_message(response)}")
            failures += 1
            if failures > s.max_retries:
                raise TmdbUnavailableError(
                    f"TMDB {path} failed after {failures} attempt{'s' if failures > 1 else ''}:"
                    f" {problem}"
                )
            _sleep(self._backoff(failures - 1))

    def _auth_message(self, response: httpx.Response) -> str:
        method = self._settings.auth_method
        sent = "as the api_key parameter" if method == "api_key" else "as a Bearer token"
        text = f"TMDB rejected the credential (401), sent {sent}: check {ENV_PREFIX}TOKEN"
        token = self._settings.token.strip()
        if method == "bearer" and _V3_KEY.match(token):
            text += f" (it looks like a v3 API key, which goes as api_key: {ENV_PREFIX}AUTH=auto)"
        elif method == "api_key" and _JWT.match(token):
            text += (
                f" (it looks like a Read Access Token, which goes as Bearer: {ENV_PREFIX}AUTH=auto)"
            )
        elif method == "bearer" and not _JWT.match(token):
            text += (
                " (it is neither a v3 API key, 32 hex digits, nor an API Read Access Token,"
                " which starts with eyJ)"
            )
        said = _message(response)
        return f"{text}; TMDB says: {said}" if said else text


def _html_note(response: httpx.Response) -> str:
    """' (an HTML page "502 Bad Gateway" ...)' when a proxy or CDN answered instead of TMDB."""
    kind = response.headers.get("Content-Type", "").lower()
    head = response.content[:4096].decode("utf-8", "replace")
    if "html" not in kind and "<html" not in head.lower():
        return ""
    m = _HTML_TITLE.search(head)
    title = " ".join(m.group(1).split())[:80] if m else "untitled"
    return f' (an HTML page "{title}" from a proxy or CDN in front of TMDB, not TMDB\'s JSON)'


def _message(response: httpx.Response) -> str:
    """TMDB's own words from an error body ({status_code, status_message} or {errors: [...]})."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        note = _html_note(response)
        return note.strip(" ()") if note else response.text[:200].strip()
    if isinstance(body, dict):
        if isinstance(body.get("status_message"), str):
            return body["status_message"]
        if isinstance(body.get("errors"), list):
            return "; ".join(str(e) for e in body["errors"])
    return ""
