"""One model server: its URLs, its model name, and one attempt up to the first token.

The pool decides which endpoint to try and what a failure means for its breaker; an endpoint
only speaks HTTP and reports how an attempt went: it returns the open stream, or raises
AttemptFailed (another upstream may do better) or Rejected (a 4xx: our request is wrong).
"""

from __future__ import annotations

import asyncio

import httpx
import msgspec

from edge.sse import SSEError
from edge.upstream.errors import (
    CONNECT_ERROR,
    CONNECT_TIMEOUT,
    FIRST_TOKEN_TIMEOUT,
    HTTP_5XX,
    HTTP_429,
    HTTP_AUTH,
    HTTP_STATUS,
    INVALID_STREAM,
    READ_ERROR,
    STREAM_ENDED,
    TOTAL_TIMEOUT,
    AttemptFailed,
    Rejected,
)
from edge.upstream.openai_stream import (
    ERROR_BODY_LIMIT,
    MODELS_DECODER,
    EventStream,
    Parsed,
    error_message,
    parse_data,
)
from edge.upstream.settings import UpstreamSettings


class Endpoint:
    """A model server's base URL and the HTTP of a single attempt against it."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        settings: UpstreamSettings,
    ) -> None:
        self.url = url
        self.client = client
        self.headers = headers
        self.settings = settings
        base = url.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        self.chat_url = f"{base}/v1/chat/completions"
        self.models_url = f"{base}/v1/models"
        self.tokenizer_url = f"{base}/v1/tokenizer"
        self._base = base
        self._model: str | None = None
        self.model_known = False
        # What GET /v1/models advertises beyond the OpenAI API (prefill, guided choice); None
        # until the server has been asked.
        self.capabilities: dict[str, bool] | None = None

    def answer_url(self, answer: str) -> str:
        """Where to say that an answer (named in its requests' `moviemind_answer`) is done."""
        return f"{self._base}/v1/answers/{answer}"

    async def model(self, deadline: float) -> str | None:
        """The "model" to send: the configured one, else the first this server lists (cached)."""
        if self.settings.model is not None:
            return self.settings.model
        if self.model_known:
            return self._model
        async with asyncio.timeout_at(deadline):
            resp = await self.client.get(self.models_url, headers=self.headers)
        if resp.status_code == 429 or resp.status_code >= 500:
            kind = HTTP_429 if resp.status_code == 429 else HTTP_5XX
            raise AttemptFailed(kind, f"GET /v1/models: HTTP {resp.status_code}")
        model = None
        if resp.is_success:
            try:
                listed = MODELS_DECODER.decode(resp.content)
            except msgspec.DecodeError as exc:
                raise AttemptFailed(INVALID_STREAM, f"GET /v1/models: {exc}") from None
            model = listed.data[0].id if listed.data else None
        # A server without a model list (4xx) gets no "model" field; most ignore it anyway.
        self._model, self.model_known = model, True
        return model

    async def capability(self, name: str, deadline: float) -> bool | None:
        """Whether this server advertises `name` ("continue_final_message", "guided_choice") in
        GET /v1/models (asked once, then cached), or None when it could not be asked now."""
        if self.capabilities is None:
            try:
                async with asyncio.timeout_at(deadline):
                    resp = await self.client.get(self.models_url, headers=self.headers)
                if resp.is_success:
                    entries = MODELS_DECODER.decode(resp.content).data
                    self.capabilities = dict(entries[0].capabilities) if entries else {}
                elif resp.status_code < 500 and resp.status_code != 429:
                    self.capabilities = {}
            except (TimeoutError, httpx.HTTPError, msgspec.DecodeError):
                pass
        return None if self.capabilities is None else bool(self.capabilities.get(name))

    async def chat_request(
        self, request: dict, deadline: float
    ) -> tuple[httpx.Request, str | None]:
        """The chat-completions POST of `request` to this server, and the model it names."""
        model = await self.model(deadline)
        body = dict(request)
        if model is not None:
            body["model"] = model
        req = self.client.build_request(
            "POST", self.chat_url, content=msgspec.json.encode(body), headers=self.headers
        )
        return req, model

    async def open(
        self, request: dict, call_deadline: float
    ) -> tuple[EventStream, Parsed, str | None, list[Parsed]]:
        """POST to this server and read until the first content token (or a clean empty end).

        Returns the open stream, the chunk that carried the first token (or the end marker),
        the model name to report, and the chunks after it that arrived with it. Raises AttemptFailed
        (try the next upstream) or Rejected (4xx); the response is closed on any error.
        """
        loop = asyncio.get_running_loop()
        first_deadline = min(loop.time() + self.settings.first_token_timeout_s, call_deadline)
        try:
            req, model = await self.chat_request(request, first_deadline)
            async with asyncio.timeout_at(first_deadline):
                resp = await self.client.send(req, stream=True)
        except TimeoutError:
            raise self._timeout(first_deadline, call_deadline) from None
        except httpx.ConnectTimeout as exc:
            raise AttemptFailed(CONNECT_TIMEOUT, str(exc) or "connect timed out") from None
        except httpx.ConnectError as exc:
            raise AttemptFailed(CONNECT_ERROR, str(exc) or type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise AttemptFailed(READ_ERROR, str(exc) or type(exc).__name__) from None

        stream = EventStream(resp)
        try:
            if not resp.is_success:
                await self._reject_or_fail(resp, first_deadline)
            model_seen: str | None = None
            while True:
                data = await stream.next_data(first_deadline)
                if data is None:
                    raise AttemptFailed(STREAM_ENDED, "stream ended before the first token")
                parsed = parse_data(data)
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
            raise AttemptFailed(kind, str(exc) or type(exc).__name__) from None
        except BaseException:
            await stream.aclose()
            raise

    @staticmethod
    async def _tail(stream: EventStream, deadline: float) -> list[Parsed]:
        """After an empty finish: collect chunks up to [DONE] or end of stream."""
        rest: list[Parsed] = []
        while (data := await stream.next_data(deadline)) is not None:
            parsed = parse_data(data)
            rest.append(parsed)
            if parsed.done:
                break
        return rest

    def _timeout(self, first_deadline: float, call_deadline: float) -> AttemptFailed:
        if call_deadline <= first_deadline:
            return AttemptFailed(
                TOTAL_TIMEOUT,
                f"no first token within the {self.settings.total_timeout_s:g} s total budget",
            )
        return AttemptFailed(
            FIRST_TOKEN_TIMEOUT, f"no first token within {self.settings.first_token_timeout_s:g} s"
        )

    async def _reject_or_fail(self, resp: httpx.Response, deadline: float) -> None:
        status = resp.status_code
        body = bytearray()
        try:
            async with asyncio.timeout_at(deadline):
                async for part in resp.aiter_bytes():
                    body += part
                    if len(body) >= ERROR_BODY_LIMIT:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # the status alone decides; the message is a courtesy
        message = error_message(bytes(body[:ERROR_BODY_LIMIT]))
        if status == 429:
            retry = resp.headers.get("retry-after")
            extra = f" (Retry-After {retry})" if retry else ""
            raise AttemptFailed(HTTP_429, f"HTTP 429{extra}: {message}")
        if status >= 500:
            raise AttemptFailed(HTTP_5XX, f"HTTP {status}: {message}")
        if status in (401, 403):
            # A wrong or missing token is this upstream's configuration, not the request: fail
            # over, and let the breaker take it out of rotation until a probe gets through.
            raise AttemptFailed(
                HTTP_AUTH, f"HTTP {status} (check MOVIEMIND_EDGE_UPSTREAM_TOKEN): {message}"
            )
        if 400 <= status < 500:
            raise Rejected(status, message)
        raise AttemptFailed(HTTP_STATUS, f"HTTP {status}: {message}")
