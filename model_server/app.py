"""The HTTP API: OpenAI-compatible completions and chat, tokenizer endpoints, health, metrics.

Over 400 lines on purpose: the OpenAI-compatible request handling (chat and completions, streamed
and not, prefill, disconnects) shares one preparation and one error mapping; engines, scheduler,
templates and tokenizer are their own modules.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Stream

from model_server.api_types import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequest,
    Delta,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    ResponseMessage,
    TokenizeRequest,
    Usage,
    _GenerationFields,
)
from model_server.chat_template import ChatTemplate, ChatTemplateError
from model_server.engines.base import Engine
from model_server.errors import (
    HttpErrorReply,
    error_body,
    handle_error_reply,
    handle_http_exception,
    handle_unexpected,
)
from model_server.guided import ChoiceSpec, TokenTable
from model_server.metrics import Metrics
from model_server.sampling import SamplingOptions
from model_server.scheduler import (
    DeadlineExceeded,
    Generation,
    GenerationFailed,
    QueueFull,
    Scheduler,
)
from model_server.settings import Settings
from model_server.textstream import StopMatcher
from model_server.tokenizer import IncrementalDecoder, ServerTokenizer
from moviemind_core.disconnect import ClientGone, cancel_on_disconnect

log = logging.getLogger("model_server.app")

_json = msgspec.json.Encoder()
# Content-Type is set here because Litestar lets a handler's default media type override the
# one given to Stream().
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class ServerState:
    """Everything request handlers share; `scheduler` is set once the engines are loaded."""

    def __init__(
        self,
        settings: Settings,
        tokenizer: ServerTokenizer,
        template: ChatTemplate,
        model_name: str,
        context: int,
        engine_factory: Callable[[int], Engine],
    ):
        self.settings = settings
        self.tokenizer = tokenizer
        self.template = template
        self.model_name = model_name
        self.context = context
        self.engine_factory = engine_factory
        self.metrics = Metrics()
        self.scheduler: Scheduler | None = None
        self.created = int(time.time())
        self.tokenizer_json = tokenizer.to_json().encode()
        self._token_table: TokenTable | None = None

    @property
    def token_table(self) -> TokenTable:
        """The vocabulary by bytes, for guided choice (built on first use, ~50 ms)."""
        if self._token_table is None:
            self._token_table = TokenTable.of(self.tokenizer)
        return self._token_table

    def load_engines(self) -> None:
        """Load one engine per slot (blocking; run in a thread). Sets `scheduler` when done."""
        engines: list[Engine] = []
        try:
            for slot in range(self.settings.slots):
                engine = self.engine_factory(slot)
                engines.append(engine)
                engine.load()
        except BaseException:
            for engine in engines:
                engine.close()
            raise
        self.scheduler = Scheduler(engines, self.settings.queue, self.metrics)
        self.metrics.ready.set(1)


# ---- auth -------------------------------------------------------------------------------------


def auth_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Require `Authorization: Bearer TOKEN` when a token is configured (constant-time check)."""
    token = connection.app.state.server.settings.token
    if not token:
        return
    header = connection.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    if not ok:
        raise HttpErrorReply(
            401,
            "authentication_error",
            "missing or wrong bearer token",
            {"WWW-Authenticate": "Bearer"},
        )


# ---- request decoding -------------------------------------------------------------------------


_DECODERS = {
    t: msgspec.json.Decoder(t) for t in (ChatCompletionRequest, CompletionRequest, TokenizeRequest)
}


async def _decode(request: Request, type_: type) -> Any:
    body = await request.body()
    if not body.strip():
        raise HttpErrorReply(400, "invalid_request_error", "request body is empty; send JSON")
    try:
        return _DECODERS[type_].decode(body)
    except msgspec.ValidationError as exc:
        raise HttpErrorReply(422, "validation_error", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise HttpErrorReply(400, "invalid_request_error", f"malformed JSON: {exc}") from None


def _state(request: Request) -> ServerState:
    return request.app.state.server


def _ready_scheduler(state: ServerState) -> Scheduler:
    if state.scheduler is None:
        raise HttpErrorReply(503, "not_ready", "the model is still loading", {"Retry-After": "1"})
    return state.scheduler


# ---- generation ---------------------------------------------------------------------------------


class TextRun:
    """Turns one generation's token ids into text pieces, applying end tokens and stop strings."""

    def __init__(
        self,
        state: ServerState,
        stops: list[str],
        ignore_eos: bool,
        max_tokens: int,
        continues: bool = False,
    ):
        self.state = state
        self.decoder = IncrementalDecoder(state.tokenizer, reply_start=not continues)
        self.matcher = StopMatcher(stops)
        self.ignore_eos = ignore_eos
        self.max_tokens = max_tokens
        self.completion_tokens = 0
        self.finish_reason = "length"

    async def pieces(self, gen: Any) -> AsyncIterator[str]:
        """Text pieces as they become certain; `finish_reason` is set when this ends."""
        end_ids = self.state.tokenizer.end_ids
        count = 0
        tokens = gen.tokens()
        try:
            async for token in tokens:
                count += 1
                if token in end_ids and not self.ignore_eos:
                    self.finish_reason = "stop"
                    break
                self.completion_tokens = count
                text = self.matcher.feed(self.decoder.feed(token))
                if text:
                    yield text
                if self.matcher.stopped:
                    self.finish_reason = "stop"
                    gen.abort("stop")
                    return
            else:
                # A guided reply that wrote a whole choice ended by itself, even at max_tokens.
                cut = count >= self.max_tokens and not gen.stats.choice_complete
                self.finish_reason = "length" if cut else "stop"
        finally:
            await tokens.aclose()
        tail = self.matcher.feed(self.decoder.flush())
        tail += self.matcher.flush()
        if self.matcher.stopped:
            self.finish_reason = "stop"
        if tail:
            yield tail


def _sampling(
    state: ServerState, req: _GenerationFields, max_tokens: int, continues: bool = False
) -> SamplingOptions:
    choices = None
    if req.guided_choice:
        choices = ChoiceSpec(
            req.guided_choice,
            state.token_table,
            state.tokenizer.encode_batch,
            # The decoder drops a SentencePiece reply's first space; the choices never have it.
            strip_first_space=state.tokenizer.strip_first_space and not continues,
        )
    return SamplingOptions(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        top_k=0 if req.top_k is None else req.top_k,
        repetition_penalty=1.0 if req.repetition_penalty is None else req.repetition_penalty,
        frequency_penalty=req.frequency_penalty or 0.0,
        presence_penalty=req.presence_penalty or 0.0,
        seed=None if req.seed is None else req.seed % (1 << 63),
        logit_bias=tuple((int(t), b) for t, b in (req.logit_bias or {}).items()),
        end_ids=state.tokenizer.end_ids,
        ignore_eos=req.ignore_eos,
        cache_prompt=req.cache_prompt,
        choices=choices,
    )


def _budget(state: ServerState, n_prompt: int, requested: int | None) -> int:
    """Tokens the reply may have; 400 when the prompt leaves no room in the context."""
    room = state.context - n_prompt
    if n_prompt == 0:
        raise HttpErrorReply(400, "invalid_request_error", "the prompt is empty")
    if room < 1:
        raise HttpErrorReply(
            400,
            "invalid_request_error",
            f"the prompt has {n_prompt} tokens but the context holds {state.context} "
            f"(prompt plus at least 1 generated token must fit)",
        )
    return room if requested is None else min(requested, room)


async def _start(
    request: Request,
    state: ServerState,
    prompt_ids: Sequence[int],
    opts: SamplingOptions,
    started: float,
) -> Any:
    scheduler = _ready_scheduler(state)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.settings.deadline_s - (time.perf_counter() - started)
    try:
        async with cancel_on_disconnect(request.receive):
            return await scheduler.start(prompt_ids, opts, deadline)
    except ClientGone:
        state.metrics.cancelled.labels(reason="disconnect").inc()
        raise HttpErrorReply(
            400, "client_disconnected", "the client hung up while queued"
        ) from None
    except QueueFull as exc:
        raise HttpErrorReply(
            429,
            "queue_full",
            f"all {state.settings.slots} slot(s) busy and {state.settings.queue} request(s) "
            "queued; retry later",
            {"Retry-After": str(exc.retry_after)},
        ) from None
    except DeadlineExceeded:
        raise HttpErrorReply(
            504, "deadline_exceeded", f"no slot became free within {state.settings.deadline_s} s"
        ) from None


def _observe_ttft(state: ServerState, gen: Any, started: float, loop_started: float) -> None:
    if gen.first_token_at is not None:
        state.metrics.ttft.observe(max(0.0, gen.first_token_at - loop_started))


async def _collect(
    request: Request, state: ServerState, run: TextRun, gen: Any, started: float, t0: float
) -> str:
    parts: list[str] = []
    try:
        async with cancel_on_disconnect(request.receive):
            async for piece in run.pieces(gen):
                parts.append(piece)
    except ClientGone:
        raise HttpErrorReply(400, "client_disconnected", "the client hung up") from None
    except DeadlineExceeded:
        raise HttpErrorReply(
            504,
            "deadline_exceeded",
            f"generation did not finish within {state.settings.deadline_s} s",
        ) from None
    except GenerationFailed:
        raise HttpErrorReply(500, "server_error", "the engine failed; see the server log") from None
    finally:
        gen.abort("disconnect")  # no-op when finished; frees the slot if we got here early
        _observe_ttft(state, gen, started, t0)
    return "".join(parts)


def _sse(doc: Any) -> bytes:
    return b"data: " + _json.encode(doc) + b"\n\n"


async def _stream_events(
    state: ServerState,
    run: TextRun,
    gen: Any,
    started: float,
    t0: float,
    first: Callable[[], list[Any]],
    piece_doc: Callable[[str], Any],
    final_docs: Callable[[], list[Any]],
) -> AsyncIterator[bytes]:
    """SSE bytes of one streamed reply; on a mid-stream failure an error event, then [DONE]."""
    try:
        for doc in first():
            yield _sse(doc)
        async for piece in run.pieces(gen):
            yield _sse(piece_doc(piece))
        for doc in final_docs():
            yield _sse(doc)
    except DeadlineExceeded:
        state.metrics.errors.labels(type="deadline_exceeded").inc()
        yield (
            b"data: "
            + error_body(
                "deadline_exceeded",
                f"generation did not finish within {state.settings.deadline_s} s",
            )
            + b"\n\n"
        )
    except GenerationFailed:
        state.metrics.errors.labels(type="server_error").inc()
        yield (
            b"data: "
            + error_body("server_error", "the engine failed; see the server log")
            + b"\n\n"
        )
    finally:
        # Reached early when the client disconnected (the task is cancelled inside `pieces`).
        gen.abort("disconnect")
        _observe_ttft(state, gen, started, t0)
    yield b"data: [DONE]\n\n"


def _usage(n_prompt: int, run: TextRun, gen: Generation) -> Usage:
    return Usage(
        prompt_tokens=n_prompt,
        completion_tokens=run.completion_tokens,
        total_tokens=n_prompt + run.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=gen.stats.cached_tokens),
    )


def _sse_response(events: AsyncIterator[bytes], gen: Any) -> Stream:
    # If the client hangs up before the stream's first iteration, the generator's `finally`
    # never runs; aborting when it is collected still frees the slot (no-op once finished).
    weakref.finalize(events, gen.abort, "disconnect")
    return Stream(events, media_type="text/event-stream", headers=SSE_HEADERS)


# ---- handlers -----------------------------------------------------------------------------------


@post("/v1/chat/completions", guards=[auth_guard], status_code=200)
async def chat_completions(request: Request) -> Any:
    """OpenAI chat completions, streamed (SSE) or not."""
    started = time.perf_counter()
    state = _state(request)
    req: ChatCompletionRequest = await _decode(request, ChatCompletionRequest)
    _ready_scheduler(state)
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in req.messages
    ]
    try:
        prompt, continues = state.template.render_request(
            messages, req.continue_final_message, req.add_generation_prompt
        )
    except ChatTemplateError as exc:
        raise HttpErrorReply(400, "invalid_request_error", str(exc)) from None
    prompt_ids = state.tokenizer.encode(prompt)
    requested = req.max_completion_tokens or req.max_tokens
    max_tokens = _budget(state, len(prompt_ids), requested)
    opts = _sampling(state, req, max_tokens, continues)
    t0 = asyncio.get_running_loop().time()
    gen = await _start(request, state, prompt_ids, opts, started)
    run = TextRun(state, req.stop_list(), req.ignore_eos, max_tokens, continues)
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model = state.model_name
    state.metrics.requests.labels(endpoint="chat", outcome="started").inc()

    if not req.stream:
        text = await _collect(request, state, run, gen, started, t0)
        return ChatCompletion(
            id=cid,
            object="chat.completion",
            created=created,
            model=model,
            choices=[
                ChatChoice(
                    index=0,
                    message=ResponseMessage(role="assistant", content=text),
                    finish_reason=run.finish_reason,
                )
            ],
            usage=_usage(len(prompt_ids), run, gen),
        )

    def chunk(delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=cid,
            object="chat.completion.chunk",
            created=created,
            model=model,
            choices=[ChatChunkChoice(index=0, delta=delta, finish_reason=finish)],
        )

    def final() -> list[Any]:
        docs: list[Any] = [chunk(Delta(), run.finish_reason)]
        if req.stream_options and req.stream_options.include_usage:
            docs.append(
                ChatCompletionChunk(
                    id=cid,
                    object="chat.completion.chunk",
                    created=created,
                    model=model,
                    choices=[],
                    usage=_usage(len(prompt_ids), run, gen),
                )
            )
        return docs

    events = _stream_events(
        state,
        run,
        gen,
        started,
        t0,
        first=lambda: [chunk(Delta(role="assistant", content=""))],
        piece_doc=lambda text: chunk(Delta(content=text)),
        final_docs=final,
    )
    return _sse_response(events, gen)


@post("/v1/completions", guards=[auth_guard], status_code=200)
async def completions(request: Request) -> Any:
    """OpenAI text completions, streamed (SSE) or not."""
    started = time.perf_counter()
    state = _state(request)
    req: CompletionRequest = await _decode(request, CompletionRequest)
    _ready_scheduler(state)
    prompt_text = ""
    if isinstance(req.prompt, str):
        prompt_text = req.prompt
        prompt_ids = state.tokenizer.encode(prompt_text)
    elif all(isinstance(p, int) for p in req.prompt):
        prompt_ids = [int(p) for p in req.prompt]  # type: ignore[arg-type]
        vocab = state.tokenizer.vocab_size
        if any(not 0 <= t < vocab for t in prompt_ids):
            raise HttpErrorReply(422, "validation_error", f"token ids must be in [0, {vocab})")
        prompt_text = state.tokenizer.decode(prompt_ids) if req.echo else ""
    elif len(req.prompt) == 1 and isinstance(req.prompt[0], str):
        prompt_text = req.prompt[0]
        prompt_ids = state.tokenizer.encode(prompt_text)
    else:
        raise HttpErrorReply(
            422, "validation_error", "prompt must be a string, one string in a list, or token ids"
        )
    max_tokens = _budget(state, len(prompt_ids), req.max_tokens or 16)
    opts = _sampling(state, req, max_tokens)
    t0 = asyncio.get_running_loop().time()
    gen = await _start(request, state, prompt_ids, opts, started)
    run = TextRun(state, req.stop_list(), req.ignore_eos, max_tokens)
    cid = f"cmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model = state.model_name
    echo = prompt_text if req.echo else ""
    state.metrics.requests.labels(endpoint="completions", outcome="started").inc()

    def doc(text: str, finish: str | None = None, usage: Usage | None = None) -> Completion:
        return Completion(
            id=cid,
            object="text_completion",
            created=created,
            model=model,
            choices=[CompletionChoice(index=0, text=text, finish_reason=finish)],
            usage=usage,
        )

    if not req.stream:
        text = await _collect(request, state, run, gen, started, t0)
        return doc(echo + text, run.finish_reason, _usage(len(prompt_ids), run, gen))

    def final() -> list[Any]:
        docs: list[Any] = [doc("", run.finish_reason)]
        if req.stream_options and req.stream_options.include_usage:
            docs.append(
                Completion(
                    id=cid,
                    object="text_completion",
                    created=created,
                    model=model,
                    choices=[],
                    usage=_usage(len(prompt_ids), run, gen),
                )
            )
        return docs

    events = _stream_events(
        state,
        run,
        gen,
        started,
        t0,
        first=lambda: [doc(echo)] if echo else [],
        piece_doc=lambda text: doc(text),
        final_docs=final,
    )
    return _sse_response(events, gen)


@post("/tokenize", guards=[auth_guard], status_code=200)
async def tokenize(request: Request) -> dict[str, list[int]]:
    """Token ids of `content` in the model's own vocabulary (special tokens split out)."""
    state = _state(request)
    req: TokenizeRequest = await _decode(request, TokenizeRequest)
    return {"tokens": state.tokenizer.encode(req.content, add_bos=req.add_special)}


@get("/v1/tokenizer", guards=[auth_guard])
async def tokenizer_json(request: Request) -> Response[bytes]:
    """The model's tokenizer as a Hugging Face tokenizer.json (load with Tokenizer.from_str)."""
    return Response(_state(request).tokenizer_json, media_type="application/json")


@get("/v1/models", guards=[auth_guard])
async def list_models(request: Request) -> ModelList:
    """The one model this server runs."""
    state = _state(request)
    return ModelList(
        data=[
            ModelCard(
                id=state.model_name,
                created=state.created,
                context_length=state.context,
                engine=state.settings.engine,
            )
        ]
    )


@get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    """Readiness: 200 once the model is loaded, 503 before."""
    state = _state(request)
    _ready_scheduler(state)
    return {"status": "ready", "model": state.model_name}


@get("/metrics")
async def metrics(request: Request) -> Response[bytes]:
    """Prometheus text exposition."""
    m = _state(request).metrics
    return Response(m.render(), media_type=m.content_type)


def create_app(state: ServerState, load_in_background: bool = True) -> Litestar:
    """The Litestar application around `state`; engines load in a thread after start-up."""

    def start_loading(app: Litestar) -> None:
        if not load_in_background:
            return

        def load() -> None:
            try:
                state.load_engines()
                log.info(
                    "ready: %s on %s with %d slot(s), %d thread(s) each, context %d",
                    state.model_name,
                    state.settings.engine,
                    state.settings.slots,
                    state.settings.threads_per_slot,
                    state.context,
                )
            except Exception as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("model failed to load: %s", reason)
                on_fail = getattr(app.state, "on_load_failure", None)
                if on_fail is not None:
                    on_fail(reason)

        threading.Thread(target=load, name="model-load", daemon=True).start()

    def shutdown(app: Litestar) -> None:
        if state.scheduler is not None:
            state.scheduler.close()

    return Litestar(
        route_handlers=[
            chat_completions,
            completions,
            tokenize,
            tokenizer_json,
            list_models,
            healthz,
            readyz,
            metrics,
        ],
        exception_handlers={
            HttpErrorReply: handle_error_reply,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        on_startup=[start_loading],
        on_shutdown=[shutdown],
        request_max_body_size=state.settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,  # keep the process's own one-line log format
        state=_app_state(state),
        debug=False,
    )


def _app_state(state: ServerState) -> Any:
    from litestar.datastructures import State

    return State({"server": state, "settings": state.settings, "metrics": state.metrics})
