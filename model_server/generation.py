"""One generation as the HTTP layer drives it: a slot, token ids to text, collected or SSE.

Sampling options come from the request, a slot from the scheduler; token ids become text (end
tokens, stop strings), collected whole or streamed as server-sent events.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec
from litestar import Request
from litestar.response import Stream

from model_server.api_types import PromptTokensDetails, Usage, _GenerationFields
from model_server.errors import HttpErrorReply, error_body
from model_server.guided import ChoiceSpec
from model_server.sampling import SamplingOptions
from model_server.scheduler import (
    DeadlineExceeded,
    Generation,
    GenerationFailed,
    Hold,
    QueueFull,
    Scheduler,
)
from model_server.state import ServerState
from model_server.textstream import StopMatcher
from model_server.tokenizer import IncrementalDecoder
from moviemind_core.disconnect import ClientGone, cancel_on_disconnect

_json = msgspec.json.Encoder()
# Content-Type is set here because Litestar lets a handler's default media type override the
# one given to Stream().
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _queue_full(state: ServerState, retry_after: int) -> HttpErrorReply:
    return HttpErrorReply(
        429,
        "queue_full",
        f"all {state.settings.slots} slot(s) busy and {state.settings.queue} request(s) "
        "queued; retry later",
        {"Retry-After": str(retry_after)},
    )


def refuse_when_full(state: ServerState, req: _GenerationFields) -> None:
    """429 at once when the request could not get a slot or a queue place anyway: before the
    template, the tokenizer and guided choice's tables are put to work for it. A full server
    answers "busy" in the time it takes to read the request, and spends its CPU on the
    generations it has."""
    scheduler = ready_scheduler(state)
    answer = req.moviemind_answer.id if req.moviemind_answer is not None else None
    if scheduler.full(answer):
        raise _queue_full(state, scheduler.retry_after())


def ready_scheduler(state: ServerState) -> Scheduler:
    """The scheduler, or 503 while the model is still loading."""
    if state.scheduler is None:
        raise HttpErrorReply(503, "not_ready", "the model is still loading", {"Retry-After": "1"})
    return state.scheduler


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


def sampling(
    state: ServerState, req: _GenerationFields, max_tokens: int, continues: bool = False
) -> SamplingOptions:
    """The engine's sampling options for `req`."""
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


def budget(state: ServerState, n_prompt: int, requested: int | None) -> int:
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


async def start(
    request: Request,
    state: ServerState,
    prompt_ids: Sequence[int],
    opts: SamplingOptions,
    started: float,
    hold: Hold | None = None,
) -> Generation:
    """A slot and a running generation, or the HTTP error that says why not (429, 504, ...)."""
    scheduler = ready_scheduler(state)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.settings.deadline_s - (time.perf_counter() - started)
    try:
        async with cancel_on_disconnect(request.receive):
            return await scheduler.start(prompt_ids, opts, deadline, hold)
    except ClientGone:
        state.metrics.cancelled.labels(reason="disconnect").inc()
        raise HttpErrorReply(
            400, "client_disconnected", "the client hung up while queued"
        ) from None
    except QueueFull as exc:
        raise _queue_full(state, exc.retry_after) from None
    except DeadlineExceeded:
        raise HttpErrorReply(
            504, "deadline_exceeded", f"no slot became free within {state.settings.deadline_s} s"
        ) from None


def _observe_ttft(state: ServerState, gen: Generation, loop_started: float) -> None:
    if gen.first_token_at is not None:
        state.metrics.ttft.observe(max(0.0, gen.first_token_at - loop_started))


async def collect(
    request: Request, state: ServerState, run: TextRun, gen: Generation, t0: float
) -> str:
    """The whole reply text (a non-streamed request)."""
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
        _observe_ttft(state, gen, t0)
    return "".join(parts)


def _sse(doc: Any) -> bytes:
    return b"data: " + _json.encode(doc) + b"\n\n"


async def stream_events(
    state: ServerState,
    run: TextRun,
    gen: Generation,
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
        _observe_ttft(state, gen, t0)
    yield b"data: [DONE]\n\n"


def usage(n_prompt: int, run: TextRun, gen: Generation) -> Usage:
    """Token counts of a finished reply."""
    return Usage(
        prompt_tokens=n_prompt,
        completion_tokens=run.completion_tokens,
        total_tokens=n_prompt + run.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=gen.stats.cached_tokens),
    )


def sse_response(events: AsyncIterator[bytes], gen: Generation) -> Stream:
    """The streamed reply; the slot is freed even if the client hangs up before it starts."""
    # If the client hangs up before the stream's first iteration, the generator's `finally`
    # never runs; aborting when it is collected still frees the slot (no-op once finished).
    weakref.finalize(events, gen.abort, "disconnect")
    return Stream(events, media_type="text/event-stream", headers=SSE_HEADERS)
