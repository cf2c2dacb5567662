"""Streaming chat completions from an ordered list of OpenAI-compatible model servers.

The edge asks the nearest model server first and fails over to the next one only while nothing
has been shown to the caller: on a connect error or timeout, HTTP 5xx or 429, an invalid or empty
stream, or no first token in time. Once the first content token has arrived the stream belongs to
that upstream; if it breaks, `UpstreamBroken` carries the text received so far and nothing is
retried (the caller has already streamed it on).

Each upstream has a circuit breaker: after `breaker_failures` consecutive failures it is skipped
for `breaker_cooldown_s`, then a single request is let through as a probe (half-open); a probe
that yields a first token closes the breaker, one that fails opens it for another cooldown.

Failure reasons are short fixed codes (`REASONS`), safe as Prometheus label values; the
human-readable detail goes into `attempts`, `last_error` and exception messages, never into
metric labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Protocol

import httpx
import msgspec

from edge.sse import SSEDecoder, SSEError

log = logging.getLogger("moviemind.edge.upstream")
PRIME_RETRY_S = 2.0  # between attempts to prime a model server that is loading or busy

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
        """Raise ValueError with one clear line if a value is unusable.

        msgspec runs this on construction and on `msgspec.convert` (where it surfaces as a
        ValidationError carrying the same line), so bad env settings fail at start.
        """
        if not self.urls:
            raise ValueError("upstream urls: at least one model server URL is required")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream url {url!r} must start with http:// or https://")
        for name in ("connect_timeout_s", "first_token_timeout_s", "total_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"upstream {name} must be > 0, got {getattr(self, name)!r}")
        if self.breaker_failures < 1:
            raise ValueError(f"upstream breaker_failures must be >= 1, got {self.breaker_failures}")
        if self.breaker_cooldown_s < 0:
            raise ValueError(
                f"upstream breaker_cooldown_s must be >= 0, got {self.breaker_cooldown_s}"
            )


def _tls_context(ca_file: str | None) -> ssl.SSLContext | bool:
    """The system trust store, plus ca_file when one is configured."""
    if not ca_file:
        return True
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=ca_file)
    return ctx


# ---- events the caller receives -------------------------------------------------------------


class StreamStarted(msgspec.Struct):
    """The first content token arrived from `url`; from here on there is no failover."""

    url: str
    model: str | None


class TokenDelta(msgspec.Struct):
    """A piece of the answer, in order."""

    text: str


class StreamEnded(msgspec.Struct):
    """The upstream finished cleanly (`[DONE]` or a finish_reason)."""

    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


UpstreamEvent = StreamStarted | TokenDelta | StreamEnded


# ---- errors ------------------------------------------------------------------------------------

# Failure reason codes (the part before ": " in every attempt reason).
CONNECT_ERROR = "connect_error"
CONNECT_TIMEOUT = "connect_timeout"
HTTP_5XX = "http_5xx"
HTTP_429 = "http_429"
HTTP_4XX = "http_4xx"
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
_TIMEOUT_REASONS = frozenset({FIRST_TOKEN_TIMEOUT, TOTAL_TIMEOUT})


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


# ---- wire format of a chat.completion.chunk (only what we read) --------------------------------


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _ErrorObj(msgspec.Struct):
    message: str = ""


class _Chunk(msgspec.Struct):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    model: str | None = None
    error: _ErrorObj | str | None = None


class _ModelEntry(msgspec.Struct):
    id: str
    # What the server can do beyond plain chat, e.g. {"continue_final_message": true}.
    capabilities: dict[str, bool] = {}


class _ModelList(msgspec.Struct):
    data: list[_ModelEntry] = []


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_models_decoder = msgspec.json.Decoder(_ModelList)
_ERROR_BODY_LIMIT = 16 * 1024
# After [DONE] the rest of the HTTP body (the chunked terminator) is read so the connection can
# be reused; it is normally in the same packet, so this only bounds a misbehaving server.
_DRAIN_S = 0.25


class _Failed(Exception):
    """One attempt failed in a way that allows trying the next upstream."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


class _Rejected(Exception):
    """The upstream answered 4xx (not 429): our request is wrong, another upstream won't differ."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---- per-upstream state ------------------------------------------------------------------------

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class _Upstream:
    __slots__ = (
        "chat_url",
        "consecutive_failures",
        "continues",
        "last_error",
        "model",
        "model_known",
        "models_url",
        "opened_at",
        "probing",
        "state",
        "tokenizer_url",
        "url",
    )

    def __init__(self, url: str) -> None:
        self.url = url
        base = url.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        self.chat_url = f"{base}/v1/chat/completions"
        self.models_url = f"{base}/v1/models"
        self.tokenizer_url = f"{base}/v1/tokenizer"
        self.state = CLOSED
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.opened_at = 0.0
        self.probing = False
        self.model: str | None = None
        self.model_known = False
        self.continues: bool | None = None  # advertises continue_final_message (prefill)


class _Stream:
    """An open SSE response: reads `data` payloads against a deadline, never across a yield."""

    __slots__ = ("_decoder", "_eof", "_it", "_pending", "response")

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._it = response.aiter_bytes()
        self._decoder = SSEDecoder()
        self._pending: deque[str] = deque()
        self._eof = False

    async def next_data(self, deadline: float) -> str | None:
        """The next event's data, or None at end of stream. Raises TimeoutError at `deadline`."""
        while not self._pending:
            if self._eof:
                return None
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(self._it)
            except StopAsyncIteration:
                self._eof = True
                self._pending.extend(self._decoder.flush())
                continue
            self._pending.extend(self._decoder.feed(chunk))
        return self._pending.popleft()

    async def drain(self, deadline: float) -> None:
        """Read to the end of the HTTP body so the keep-alive connection goes back to the pool."""
        try:
            async with asyncio.timeout_at(deadline):
                async for _ in self._it:
                    pass
        except (TimeoutError, httpx.HTTPError):
            pass  # the response is closed right after; the connection is simply not reused

    async def aclose(self) -> None:
        await self.response.aclose()


class _Parsed:
    """What one chunk says, reduced to the fields we use."""

    __slots__ = ("done", "finish_reason", "model", "text", "usage")

    def __init__(self) -> None:
        self.done = False
        self.text = ""
        self.finish_reason: str | None = None
        self.usage: _Usage | None = None
        self.model: str | None = None


def _parse_data(data: str) -> _Parsed:
    """One SSE `data` payload -> _Parsed; raises _Failed on invalid JSON or an in-stream error."""
    out = _Parsed()
    if data.strip() == "[DONE]":
        out.done = True
        return out
    try:
        chunk = _chunk_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _Failed(INVALID_STREAM, f"bad chunk {data[:80]!r}: {exc}") from None
    if chunk.error is not None:
        msg = chunk.error if isinstance(chunk.error, str) else chunk.error.message
        raise _Failed(UPSTREAM_ERROR, msg[:200] or "error event without a message")
    if chunk.choices:
        choice = chunk.choices[0]
        if choice.delta is not None and choice.delta.content:
            out.text = choice.delta.content
        out.finish_reason = choice.finish_reason
    out.usage = chunk.usage
    out.model = chunk.model
    return out


def _error_message(body: bytes) -> str:
    """The upstream's own error text from an OpenAI / Litestar / plain error body."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace").strip()[:300] or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:300]
        if isinstance(err, str):
            return err[:300]
        if isinstance(obj.get("detail"), str):
            return obj["detail"][:300]
        if isinstance(obj.get("message"), str):
            return obj["message"][:300]
    return body.decode("utf-8", "replace").strip()[:300]


class UpstreamPool:
    """Ordered model servers behind one keep-alive HTTP/1.1 client, with failover and breakers."""

    def __init__(self, settings: UpstreamSettings, metrics: UpstreamMetrics | None = None) -> None:
        self._settings = settings
        self._metrics = metrics
        # Breaker clock; tests substitute a fake one to step over cooldowns without sleeping.
        self._clock = time.monotonic
        self._upstreams = [_Upstream(u) for u in settings.urls]
        # read/write/pool are unbounded here on purpose: every wait is bounded by our own
        # first-token and total deadlines (asyncio.timeout_at), which httpx's per-read timeout
        # cannot express. trust_env=False: a proxy configured for package downloads must not sit
        # between the edge and its model servers (it would also buffer the SSE stream).
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s, read=None, write=None, pool=None
            ),
            # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them
            # server-side, so a request never races a connection the server is closing.
            limits=httpx.Limits(
                max_connections=256, max_keepalive_connections=64, keepalive_expiry=4.0
            ),
            http1=True,
            http2=False,
            trust_env=False,
            follow_redirects=False,
            verify=_tls_context(settings.ca_file),
        )
        self._headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if settings.token:
            self._headers["Authorization"] = f"Bearer {settings.token}"
        self._tokenizer: bytes | None = None
        self._tokenizer_known = False
        self._tokenizer_lock = asyncio.Lock()

    # ---- breaker ---------------------------------------------------------------------------

    def _admit(self, up: _Upstream, now: float) -> bool | None:
        """May a request go to `up` now? None: no; True: yes, as the half-open probe; False: yes.

        An open breaker turns half-open after the cooldown and admits exactly one probe.
        """
        if up.state == CLOSED:
            return False
        if up.probing:
            return None  # a half-open probe is in flight; its verdict decides
        if now - up.opened_at >= self._settings.breaker_cooldown_s:
            up.state = HALF_OPEN
            up.probing = True
            return True
        return None

    def _succeeded(self, up: _Upstream, probe: bool) -> None:
        # Any first token proves the upstream works, even from a request admitted before the
        # breaker opened; only the probe's own slot is released here.
        up.state = CLOSED
        up.consecutive_failures = 0
        if probe:
            up.probing = False

    def _failed(self, up: _Upstream, probe: bool, kind: str, reason: str) -> None:
        up.last_error = reason
        if self._metrics is not None:
            self._metrics.failure(up.url, kind)
        if kind == HTTP_429:
            # Busy, not broken: this request fails over, but a full queue must not take a
            # healthy server out of rotation for a whole cooldown. It answered, so it is alive.
            if probe:
                up.probing = False
                up.state = CLOSED
                up.consecutive_failures = 0
            return
        up.consecutive_failures += 1
        if probe:
            up.probing = False
        if probe or (
            up.state == CLOSED and up.consecutive_failures >= self._settings.breaker_failures
        ):
            up.state = OPEN
            up.opened_at = self._clock()
            if self._metrics is not None:
                self._metrics.breaker_open(up.url)

    def _no_verdict(self, up: _Upstream, probe: bool) -> None:
        """The attempt ended without telling us anything (caller went away, or a 4xx)."""
        if probe:
            # Back to open with the old opened_at, so the next request probes straight away.
            up.probing = False
            if up.state == HALF_OPEN:
                up.state = OPEN

    # ---- model name ------------------------------------------------------------------------

    async def _model_for(self, up: _Upstream, deadline: float) -> str | None:
        if self._settings.model is not None:
            return self._settings.model
        if up.model_known:
            return up.model
        async with asyncio.timeout_at(deadline):
            resp = await self._client.get(up.models_url, headers=self._headers)
        if resp.status_code == 429 or resp.status_code >= 500:
            kind = HTTP_429 if resp.status_code == 429 else HTTP_5XX
            raise _Failed(kind, f"GET /v1/models: HTTP {resp.status_code}")
        model = None
        if resp.is_success:
            try:
                listed = _models_decoder.decode(resp.content)
            except msgspec.DecodeError as exc:
                raise _Failed(INVALID_STREAM, f"GET /v1/models: {exc}") from None
            model = listed.data[0].id if listed.data else None
        # A server without a model list (4xx) gets no "model" field; most ignore it anyway.
        up.model, up.model_known = model, True
        return model

    async def _chat_request(
        self, up: _Upstream, request: dict, deadline: float
    ) -> tuple[httpx.Request, str | None]:
        """The chat-completions POST of `request` to `up`, and the model it names (if known)."""
        model = await self._model_for(up, deadline)
        body = dict(request)
        if model is not None:
            body["model"] = model
        req = self._client.build_request(
            "POST", up.chat_url, content=msgspec.json.encode(body), headers=self._headers
        )
        return req, model

    # ---- one attempt, up to the first token ------------------------------------------------

    async def _open(
        self, up: _Upstream, request: dict, call_deadline: float
    ) -> tuple[_Stream, _Parsed, str | None, list[_Parsed]]:
        """POST to `up` and read until the first content token (or a clean empty end).

        Returns the open stream, the chunk that carried the first token (or the end marker),
        the model name to report, and the chunks after it that arrived with it. Raises _Failed
        (try the next upstream) or _Rejected (4xx); the response is closed on any error.
        """
        loop = asyncio.get_running_loop()
        first_deadline = min(loop.time() + self._settings.first_token_timeout_s, call_deadline)
        try:
            req, model = await self._chat_request(up, request, first_deadline)
            async with asyncio.timeout_at(first_deadline):
                resp = await self._client.send(req, stream=True)
        except TimeoutError:
            raise self._timeout(first_deadline, call_deadline) from None
        except httpx.ConnectTimeout as exc:
            raise _Failed(CONNECT_TIMEOUT, str(exc) or "connect timed out") from None
        except httpx.ConnectError as exc:
            raise _Failed(CONNECT_ERROR, str(exc) or type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise _Failed(READ_ERROR, str(exc) or type(exc).__name__) from None

        stream = _Stream(resp)
        try:
            if not resp.is_success:
                await self._reject_or_fail(resp, first_deadline)
            model_seen: str | None = None
            while True:
                data = await stream.next_data(first_deadline)
                if data is None:
                    raise _Failed(STREAM_ENDED, "stream ended before the first token")
                parsed = _parse_data(data)
                model_seen = model_seen or parsed.model
                if parsed.text or parsed.done:
                    return stream, parsed, model_seen or model, []
                if parsed.finish_reason is not None:
                    # Finished without any text (e.g. an immediate end-of-sequence): a valid,
                    # empty answer. Read on only for a trailing usage chunk and [DONE].
                    return (
                        stream,
                        parsed,
                        model_seen or model,
                        await self._tail(stream, first_deadline),
                    )
        except TimeoutError:
            await stream.aclose()
            raise self._timeout(first_deadline, call_deadline) from None
        except (SSEError, httpx.HTTPError) as exc:
            await stream.aclose()
            kind = INVALID_STREAM if isinstance(exc, SSEError) else READ_ERROR
            raise _Failed(kind, str(exc) or type(exc).__name__) from None
        except BaseException:
            await stream.aclose()
            raise

    @staticmethod
    async def _tail(stream: _Stream, deadline: float) -> list[_Parsed]:
        """After an empty finish: collect chunks up to [DONE] or end of stream."""
        rest: list[_Parsed] = []
        while (data := await stream.next_data(deadline)) is not None:
            parsed = _parse_data(data)
            rest.append(parsed)
            if parsed.done:
                break
        return rest

    def _timeout(self, first_deadline: float, call_deadline: float) -> _Failed:
        if call_deadline <= first_deadline:
            return _Failed(
                TOTAL_TIMEOUT,
                f"no first token within the {self._settings.total_timeout_s:g} s total budget",
            )
        return _Failed(
            FIRST_TOKEN_TIMEOUT, f"no first token within {self._settings.first_token_timeout_s:g} s"
        )

    async def _reject_or_fail(self, resp: httpx.Response, deadline: float) -> None:
        status = resp.status_code
        body = bytearray()
        try:
            async with asyncio.timeout_at(deadline):
                async for part in resp.aiter_bytes():
                    body += part
                    if len(body) >= _ERROR_BODY_LIMIT:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # the status alone decides; the message is a courtesy
        message = _error_message(bytes(body[:_ERROR_BODY_LIMIT]))
        if status == 429:
            retry = resp.headers.get("retry-after")
            extra = f" (Retry-After {retry})" if retry else ""
            raise _Failed(HTTP_429, f"HTTP 429{extra}: {message}")
        if status >= 500:
            raise _Failed(HTTP_5XX, f"HTTP {status}: {message}")
        if 400 <= status < 500:
            raise _Rejected(status, message)
        raise _Failed(HTTP_STATUS, f"HTTP {status}: {message}")

    # ---- public API ------------------------------------------------------------------------

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        seed: int | None = None,
        extra: dict | None = None,
    ) -> AsyncIterator[UpstreamEvent]:
        """Stream a chat completion: StreamStarted, TokenDelta..., StreamEnded.

        Raises UpstreamUnavailable (or its UpstreamTimeout) before anything is yielded when no
        upstream produced a first token, and UpstreamBroken after StreamStarted if the chosen
        upstream fails mid-stream. Close the iterator (`aclose`) to abandon a stream early: the
        connection is dropped, which tells the model server to cancel the generation.
        """
        request: dict = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            # Standard OpenAI option: a final chunk with token counts for StreamEnded.
            "stream_options": {"include_usage": True},
        }
        if stop:
            request["stop"] = stop
        if seed is not None:
            request["seed"] = seed
        # Server-specific sampling fields (e.g. repetition_penalty), which OpenAI-compatible
        # servers accept or ignore.
        request.update(extra or {})
        loop = asyncio.get_running_loop()
        call_deadline = loop.time() + self._settings.total_timeout_s
        attempts: list[tuple[str, str]] = []
        tried_kinds: list[str] = []
        # (url, kind) of the failure we are failing over from, reported when the next one is tried
        previous: tuple[str, str] | None = None

        for up in self._upstreams:
            if loop.time() >= call_deadline:
                attempts.append((up.url, f"{TOTAL_TIMEOUT}: not tried, total budget spent"))
                tried_kinds.append(TOTAL_TIMEOUT)
                break
            now = self._clock()
            probe = self._admit(up, now)
            if probe is None:
                wait = max(0.0, self._settings.breaker_cooldown_s - (now - up.opened_at))
                detail = "probe in flight" if up.probing else f"retry in {wait:.1f} s"
                attempts.append((up.url, f"{CIRCUIT_OPEN}: {detail}"))
                continue
            if previous is not None and self._metrics is not None:
                self._metrics.failover(*previous)
            try:
                stream, first, model, rest = await self._open(up, request, call_deadline)
            except _Failed as exc:
                self._failed(up, probe, exc.kind, exc.reason)
                attempts.append((up.url, exc.reason))
                tried_kinds.append(exc.kind)
                previous = (up.url, exc.kind)
                continue
            except _Rejected as exc:
                self._no_verdict(up, probe)
                attempts.append((up.url, f"{HTTP_4XX}: HTTP {exc.status}: {exc.message}"))
                raise UpstreamUnavailable(
                    f"upstream {up.url} rejected the request (HTTP {exc.status}): {exc.message}",
                    attempts,
                    status=exc.status,
                ) from None
            except BaseException:
                # Cancelled by the caller: says nothing about the upstream.
                self._no_verdict(up, probe)
                raise
            self._succeeded(up, probe)
            # aclosing: when the caller abandons us, the inner generator (and with it the
            # response) is closed now, not whenever the garbage collector gets to it.
            async with contextlib.aclosing(
                self._relay(up, stream, first, model, rest, call_deadline)
            ) as events:
                async for event in events:
                    yield event
            return

        # Nothing could start. All-open breakers fail fast without contacting anyone: the breaker
        # exists so a known-dead fleet costs the caller no time (the edge must answer degraded
        # within 1 s, and a hanging upstream would burn the whole first-token timeout); recovery
        # is found by the half-open probe once a cooldown has passed, not by user requests.
        summary = "; ".join(f"{u} {r}" for u, r in attempts)
        if tried_kinds and all(k in _TIMEOUT_REASONS for k in tried_kinds):
            raise UpstreamTimeout(f"upstreams timed out: {summary}", attempts)
        raise UpstreamUnavailable(f"no upstream could answer: {summary}", attempts)

    async def _relay(
        self,
        up: _Upstream,
        stream: _Stream,
        first: _Parsed,
        model: str | None,
        rest: list[_Parsed],
        call_deadline: float,
    ) -> AsyncIterator[UpstreamEvent]:
        """Yield the started stream to the caller; every failure from here is UpstreamBroken."""
        parts: list[str] = []
        finish: str | None = None
        usage: _Usage | None = None
        done = False
        try:
            yield StreamStarted(url=up.url, model=model)
            queue = deque([first, *rest])
            while True:
                if queue:
                    parsed = queue.popleft()
                else:
                    if done:
                        break
                    try:
                        data = await stream.next_data(call_deadline)
                    except TimeoutError:
                        raise _Failed(
                            TOTAL_TIMEOUT,
                            f"stream exceeded the {self._settings.total_timeout_s:g} s total budget",
                        ) from None
                    except SSEError as exc:
                        raise _Failed(INVALID_STREAM, str(exc)) from None
                    except httpx.HTTPError as exc:
                        raise _Failed(READ_ERROR, str(exc) or type(exc).__name__) from None
                    if data is None:
                        if finish is None:
                            raise _Failed(
                                STREAM_ENDED, "stream closed without [DONE] or finish_reason"
                            )
                        break  # a finish_reason without [DONE] is a complete answer
                    parsed = _parse_data(data)
                if parsed.done:
                    done = True
                    continue
                if parsed.text:
                    parts.append(parsed.text)
                    yield TokenDelta(parsed.text)
                if parsed.finish_reason is not None:
                    finish = parsed.finish_reason
                if parsed.usage is not None:
                    usage = parsed.usage
            if done:
                loop = asyncio.get_running_loop()
                await stream.drain(min(call_deadline, loop.time() + _DRAIN_S))
        except _Failed as exc:
            self._failed(up, False, exc.kind, exc.reason)
            raise UpstreamBroken(up.url, "".join(parts), exc.reason) from None
        finally:
            await stream.aclose()
        yield StreamEnded(
            finish_reason=finish,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    async def tokenizer_json(self) -> bytes | None:
        """The model's HF tokenizer.json from GET {url}/v1/tokenizer, first healthy upstream first.

        None if no upstream offers it. A result is cached; a None is cached only when every
        upstream answered (so an outage at start-up does not hide the tokenizer forever).
        """
        async with self._tokenizer_lock:
            if self._tokenizer_known:
                return self._tokenizer
            # Healthy ones first, but a fleet with every breaker open is still asked.
            order = [u for u in self._upstreams if u.state == CLOSED] + [
                u for u in self._upstreams if u.state != CLOSED
            ]
            all_answered = True
            budget = self._settings.connect_timeout_s + self._settings.first_token_timeout_s
            for up in order:
                try:
                    async with asyncio.timeout(budget):
                        resp = await self._client.get(up.tokenizer_url, headers=self._headers)
                except (TimeoutError, httpx.HTTPError):
                    all_answered = False
                    continue
                if resp.is_success and resp.content:
                    self._tokenizer, self._tokenizer_known = resp.content, True
                    return self._tokenizer
                if resp.status_code == 429 or resp.status_code >= 500:
                    all_answered = False
            if all_answered:
                self._tokenizer_known = True
            return None

    async def prime(self, messages: list[dict], patience_s: float = 120.0) -> int:
        """Send `messages` once to every upstream (one answer token, not streamed) so each model
        server's prefix cache holds them; returns how many upstreams took it.

        An upstream that is still loading, busy or unreachable is asked again every few seconds
        until `patience_s` runs out. Breakers and failure metrics are left alone: this is not a
        user's request, and an upstream that is down at start-up is the breaker's business later.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience_s

        async def one(up: _Upstream) -> bool:
            while True:
                try:
                    async with asyncio.timeout_at(
                        min(deadline, loop.time() + self._settings.total_timeout_s)
                    ):
                        body = {"messages": messages, "max_tokens": 1, "temperature": 0.0}
                        req, _ = await self._chat_request(up, body, deadline)
                        resp = await self._client.send(req)
                    if resp.is_success:
                        return True
                    if resp.status_code != 429 and resp.status_code < 500:
                        log.info("prefix priming: %s answered %d", up.url, resp.status_code)
                        return False
                except (TimeoutError, httpx.HTTPError, _Failed):
                    pass
                if loop.time() + PRIME_RETRY_S >= deadline:
                    return False
                await asyncio.sleep(PRIME_RETRY_S)

        done = await asyncio.gather(*(one(up) for up in self._upstreams))
        return sum(done)

    async def continues_final_message(self, patience_s: float = 2.0) -> bool:
        """True when every upstream that answers GET /v1/models advertises continuing a final
        assistant message (and at least one answers): then any failover target can take a
        prefilled request. Asked once per upstream; an unreachable one is asked again later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience_s
        for up in self._upstreams:
            if up.continues is None:
                try:
                    async with asyncio.timeout_at(deadline):
                        resp = await self._client.get(up.models_url, headers=self._headers)
                    if resp.is_success:
                        entries = _models_decoder.decode(resp.content).data
                        up.continues = bool(
                            entries and entries[0].capabilities.get("continue_final_message")
                        )
                    elif resp.status_code < 500 and resp.status_code != 429:
                        up.continues = False
                except (TimeoutError, httpx.HTTPError, msgspec.DecodeError):
                    pass
        known = [up.continues for up in self._upstreams if up.continues is not None]
        return bool(known) and all(known)

    def status(self) -> list[dict]:
        """Per upstream: url, state (closed/open/half_open), consecutive_failures, last_error."""
        now = self._clock()
        out = []
        for up in self._upstreams:
            state = up.state
            # An open breaker whose cooldown has passed admits the next request as a probe.
            if (
                state == OPEN
                and not up.probing
                and now - up.opened_at >= self._settings.breaker_cooldown_s
            ):
                state = HALF_OPEN
            out.append(
                {
                    "url": up.url,
                    "state": state,
                    "consecutive_failures": up.consecutive_failures,
                    "last_error": up.last_error,
                }
            )
        return out

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._client.aclose()
