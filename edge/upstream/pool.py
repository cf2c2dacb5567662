"""Streaming chat completions from an ordered list of OpenAI-compatible model servers.

The edge asks the nearest model server first and fails over to the next one only while nothing
has been shown to the caller: on a connect error or timeout, HTTP 5xx, 429, 401/403, an invalid
or empty stream, or no first token in time. Once the first content token has arrived the stream
belongs to that upstream; if it breaks, `UpstreamBroken` carries the text received so far and
nothing is retried (the caller has already streamed it on).

Every request to a model server (chat, tokenizer fetch, prefix priming) goes through the pool
and that server's circuit breaker (breaker.py).

This module is over 400 lines because failover, the mid-stream relay, the tokenizer fetch and
priming share one rule set (admission, verdict, metrics, last_error); the HTTP of one attempt
lives in endpoint.py, the stream parsing in openai_stream.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx

from edge.sse import SSEError
from edge.upstream.breaker import Admission, CircuitBreaker
from edge.upstream.endpoint import Endpoint
from edge.upstream.errors import (
    CIRCUIT_OPEN,
    CONNECT_ERROR,
    CONNECT_TIMEOUT,
    FIRST_TOKEN_TIMEOUT,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_429,
    HTTP_AUTH,
    INVALID_STREAM,
    READ_ERROR,
    STREAM_ENDED,
    TIMEOUT_REASONS,
    TOTAL_TIMEOUT,
    AttemptFailed,
    Rejected,
    UpstreamBroken,
    UpstreamMetrics,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from edge.upstream.events import StreamEnded, StreamStarted, TokenDelta, UpstreamEvent
from edge.upstream.openai_stream import DRAIN_S, EventStream, Parsed, Usage, parse_data
from edge.upstream.settings import UpstreamSettings, tls_context

log = logging.getLogger("moviemind.edge.upstream")
PRIME_RETRY_S = 2.0  # between attempts to prime a model server that is loading or busy


class _Upstream:
    """One model server as the pool sees it: how to reach it, its breaker, its last failure."""

    __slots__ = ("breaker", "endpoint", "last_error", "url")

    def __init__(self, endpoint: Endpoint, breaker: CircuitBreaker) -> None:
        self.url = endpoint.url
        self.endpoint = endpoint
        self.breaker = breaker
        self.last_error: str | None = None


class UpstreamPool:
    """Ordered model servers behind one keep-alive HTTP/1.1 client, with failover and breakers."""

    def __init__(
        self,
        settings: UpstreamSettings,
        metrics: UpstreamMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
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
            verify=tls_context(settings.ca_file),
        )
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._upstreams = [
            _Upstream(
                Endpoint(url, self._client, headers, settings),
                CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s, clock),
            )
            for url in settings.urls
        ]
        self._tokenizer: bytes | None = None
        self._tokenizer_known = False
        self._tokenizer_fetch: asyncio.Task[bytes | None] | None = None

    def _failed(self, up: _Upstream, admission: Admission, kind: str, reason: str) -> None:
        """Record a failed attempt: last_error, the metric, and the breaker's count."""
        up.last_error = reason
        if self._metrics is not None:
            self._metrics.failure(up.url, kind)
        if kind == HTTP_429:
            up.breaker.busy(admission)  # busy, not broken: it answered, so it is alive
            return
        if up.breaker.failed(admission):
            log.warning(
                "upstream %s taken out of rotation for %g s: %s",
                up.url,
                self._settings.breaker_cooldown_s,
                reason,
            )
            if self._metrics is not None:
                self._metrics.breaker_open(up.url)

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
        prefer: str | None = None,
    ) -> AsyncIterator[UpstreamEvent]:
        """Stream a chat completion: StreamStarted, TokenDelta..., StreamEnded.

        `prefer`: the URL of an upstream to try first (the one that served the same answer's
        previous call and may be keeping a slot for it); the rest follow in their order.

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

        order = self._upstreams
        if prefer is not None:
            order = sorted(order, key=lambda u: u.url != prefer)  # stable: the rest keep order
        for up in order:
            if loop.time() >= call_deadline:
                attempts.append((up.url, f"{TOTAL_TIMEOUT}: not tried, total budget spent"))
                tried_kinds.append(TOTAL_TIMEOUT)
                break
            admission = up.breaker.admit()
            if admission is Admission.REFUSED:
                wait = up.breaker.retry_in()
                detail = "probe in flight" if up.breaker.probing else f"retry in {wait:.1f} s"
                attempts.append((up.url, f"{CIRCUIT_OPEN}: {detail}"))
                continue
            if previous is not None and self._metrics is not None:
                self._metrics.failover(*previous)
            try:
                stream, first, model, rest = await up.endpoint.open(request, call_deadline)
            except AttemptFailed as exc:
                self._failed(up, admission, exc.kind, exc.reason)
                attempts.append((up.url, exc.reason))
                tried_kinds.append(exc.kind)
                previous = (up.url, exc.kind)
                continue
            except Rejected as exc:
                up.breaker.no_verdict(admission)
                reason = f"{HTTP_4XX}: HTTP {exc.status}: {exc.message}"
                # Not the upstream's health, but a bug or a version mismatch someone must see.
                up.last_error = reason
                if self._metrics is not None:
                    self._metrics.failure(up.url, HTTP_4XX)
                log.warning("upstream %s rejected the request: %s", up.url, reason)
                attempts.append((up.url, reason))
                raise UpstreamUnavailable(
                    f"upstream {up.url} rejected the request (HTTP {exc.status}): {exc.message}",
                    attempts,
                    status=exc.status,
                ) from None
            except BaseException:
                # Cancelled by the caller: says nothing about the upstream.
                up.breaker.no_verdict(admission)
                raise
            up.breaker.succeeded(admission)
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
        if tried_kinds and all(k in TIMEOUT_REASONS for k in tried_kinds):
            raise UpstreamTimeout(f"upstreams timed out: {summary}", attempts)
        raise UpstreamUnavailable(f"no upstream could answer: {summary}", attempts)

    async def _relay(
        self,
        up: _Upstream,
        stream: EventStream,
        first: Parsed,
        model: str | None,
        rest: list[Parsed],
        call_deadline: float,
    ) -> AsyncIterator[UpstreamEvent]:
        """Yield the started stream to the caller; every failure from here is UpstreamBroken."""
        parts: list[str] = []
        finish: str | None = None
        usage: Usage | None = None
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
                        raise AttemptFailed(
                            TOTAL_TIMEOUT,
                            f"stream exceeded the {self._settings.total_timeout_s:g} s total budget",
                        ) from None
                    except SSEError as exc:
                        raise AttemptFailed(INVALID_STREAM, str(exc)) from None
                    except httpx.HTTPError as exc:
                        raise AttemptFailed(READ_ERROR, str(exc) or type(exc).__name__) from None
                    if data is None:
                        if finish is None:
                            raise AttemptFailed(
                                STREAM_ENDED, "stream closed without [DONE] or finish_reason"
                            )
                        break  # a finish_reason without [DONE] is a complete answer
                    parsed = parse_data(data)
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
                await stream.drain(min(call_deadline, loop.time() + DRAIN_S))
        except AttemptFailed as exc:
            self._failed(up, Admission.ALLOWED, exc.kind, exc.reason)
            raise UpstreamBroken(up.url, "".join(parts), exc.reason) from None
        finally:
            await stream.aclose()
        yield StreamEnded(
            finish_reason=finish,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    async def end_answer(self, url: str, answer: str) -> bool:
        """Tell the upstream at `url` that `answer` is done, so the slot it keeps for the
        answer's next call is free at once (the keep expires by itself otherwise). Best effort:
        False on any failure, which is not the upstream's health and is not counted."""
        up = next((u for u in self._upstreams if u.url == url), None)
        if up is None:
            return False
        try:
            async with asyncio.timeout(self._settings.connect_timeout_s * 2):
                resp = await up.endpoint.client.delete(
                    up.endpoint.answer_url(answer), headers=up.endpoint.headers
                )
        except (TimeoutError, httpx.HTTPError) as exc:
            log.debug("ending answer %s on %s failed: %s", answer, url, exc)
            return False
        return resp.is_success

    async def tokenizer_json(self) -> bytes | None:
        """The model's HF tokenizer.json from GET {url}/v1/tokenizer, in upstream order.

        None if no upstream offers it. A result is cached; a None is cached only when every
        upstream answered (so an outage at start-up does not hide the tokenizer forever).
        Concurrent callers share one fetch instead of queueing for their own.
        """
        if self._tokenizer_known:
            return self._tokenizer
        if self._tokenizer_fetch is None or self._tokenizer_fetch.done():
            self._tokenizer_fetch = asyncio.create_task(self._fetch_tokenizer())
        # shield: one caller going away must not cancel the fetch the others wait for.
        return await asyncio.shield(self._tokenizer_fetch)

    async def _fetch_tokenizer(self) -> bytes | None:
        """One pass over the upstreams, through their breakers (an open one is not asked)."""
        all_answered = True
        budget = self._settings.connect_timeout_s + self._settings.first_token_timeout_s
        for up in self._upstreams:
            admission = up.breaker.admit()
            if admission is Admission.REFUSED:
                all_answered = False
                continue
            try:
                async with asyncio.timeout(budget):
                    resp = await up.endpoint.client.get(
                        up.endpoint.tokenizer_url, headers=up.endpoint.headers
                    )
            except TimeoutError:
                reason = f"{FIRST_TOKEN_TIMEOUT}: GET /v1/tokenizer: no answer in {budget:g} s"
                self._failed(up, admission, FIRST_TOKEN_TIMEOUT, reason)
                all_answered = False
                continue
            except httpx.HTTPError as exc:
                reason = f"GET /v1/tokenizer: {exc or type(exc).__name__}"
                kind = CONNECT_TIMEOUT if isinstance(exc, httpx.ConnectTimeout) else CONNECT_ERROR
                self._failed(up, admission, kind, f"{kind}: {reason}")
                all_answered = False
                continue
            if resp.status_code in (401, 403, 429) or resp.status_code >= 500:
                kind = {401: HTTP_AUTH, 403: HTTP_AUTH, 429: HTTP_429}.get(
                    resp.status_code, HTTP_5XX
                )
                self._failed(
                    up, admission, kind, f"{kind}: GET /v1/tokenizer: HTTP {resp.status_code}"
                )
                all_answered = False
                continue
            up.breaker.succeeded(admission)  # it answered: alive, whether or not it has a tokenizer
            if resp.is_success and resp.content:
                self._tokenizer, self._tokenizer_known = resp.content, True
                return self._tokenizer
        if all_answered:
            self._tokenizer_known = True
        return None

    async def prime(self, messages: list[dict], patience_s: float = 120.0) -> int:
        """Send `messages` once to every upstream (one answer token, not streamed) so each model
        server's prefix cache holds them; returns how many upstreams took it.

        Priming goes through the breakers like any request: an upstream that is still loading or
        unreachable counts failures (and is skipped by users meanwhile); one whose breaker is
        open is asked again when it admits a probe. Every few seconds until `patience_s` runs out.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience_s
        body = {"messages": messages, "max_tokens": 1, "temperature": 0.0}

        async def attempt(up: _Upstream, admission: Admission) -> bool | None:
            """True: primed; False: it will not take it (4xx); None: try again later."""
            try:
                async with asyncio.timeout_at(
                    min(deadline, loop.time() + self._settings.total_timeout_s)
                ):
                    req, _ = await up.endpoint.chat_request(body, deadline)
                    resp = await up.endpoint.client.send(req)
            except TimeoutError:
                self._failed(
                    up, admission, TOTAL_TIMEOUT, f"{TOTAL_TIMEOUT}: priming got no answer"
                )
                return None
            except httpx.HTTPError as exc:
                reason = f"{CONNECT_ERROR}: priming: {exc or type(exc).__name__}"
                self._failed(up, admission, CONNECT_ERROR, reason)
                return None
            except AttemptFailed as exc:
                self._failed(up, admission, exc.kind, exc.reason)
                return None
            if resp.is_success:
                up.breaker.succeeded(admission)
                return True
            if resp.status_code == 429 or resp.status_code >= 500:
                kind = HTTP_429 if resp.status_code == 429 else HTTP_5XX
                self._failed(up, admission, kind, f"{kind}: priming: HTTP {resp.status_code}")
                return None
            up.breaker.no_verdict(admission)
            log.info("prefix priming: %s answered %d", up.url, resp.status_code)
            return False

        async def one(up: _Upstream) -> bool:
            while True:
                admission = up.breaker.admit()
                if admission is not Admission.REFUSED:
                    done = await attempt(up, admission)
                    if done is not None:
                        return done
                if loop.time() + PRIME_RETRY_S >= deadline:
                    return False
                await asyncio.sleep(PRIME_RETRY_S)

        primed = await asyncio.gather(*(one(up) for up in self._upstreams))
        return sum(primed)

    async def supports(self, capability: str, patience_s: float = 2.0) -> bool:
        """True when every upstream that answers GET /v1/models advertises `capability` (and at
        least one answers): then any failover target can take a request that relies on it.
        Asked once per upstream; an unreachable one is asked again later."""
        deadline = asyncio.get_running_loop().time() + patience_s
        known = [
            c
            for c in [await up.endpoint.capability(capability, deadline) for up in self._upstreams]
            if c is not None
        ]
        return bool(known) and all(known)

    async def continues_final_message(self, patience_s: float = 2.0) -> bool:
        """Every answering upstream continues a final assistant message (prefill)."""
        return await self.supports("continue_final_message", patience_s)

    def status(self) -> list[dict]:
        """Per upstream: url, state (closed/open/half_open), consecutive_failures, last_error."""
        return [
            {
                "url": up.url,
                "state": up.breaker.shown_state().value,
                "consecutive_failures": up.breaker.consecutive_failures,
                "last_error": up.last_error,
            }
            for up in self._upstreams
        ]

    async def aclose(self) -> None:
        """Stop a tokenizer fetch in flight and close every pooled connection."""
        if self._tokenizer_fetch is not None:
            self._tokenizer_fetch.cancel()
        await self._client.aclose()
