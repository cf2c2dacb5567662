"""POST /v1/chat/completions and /v1/completions: two ways to ask, one way to answer.

Each route only turns its request into a `Job` (prompt token ids, budget, prefill) and a reply
format (the OpenAI document shapes of its endpoint); `serve` runs every job alike: a slot,
the generation, the whole reply or its SSE stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from litestar import Request, post

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
    ResponseMessage,
    Usage,
    _GenerationFields,
)
from model_server.chat_template import ChatTemplateError
from model_server.errors import HttpErrorReply
from model_server.generation import (
    TextRun,
    budget,
    collect,
    refuse_when_full,
    sampling,
    sse_response,
    start,
    stream_events,
    usage,
)
from model_server.http_common import auth_guard, decode, server_state
from model_server.scheduler import Hold
from model_server.state import ServerState


@dataclass(frozen=True)
class Job:
    """One generation request, whichever endpoint it came through."""

    endpoint: str  # the metrics label: "chat" or "completions"
    req: _GenerationFields
    prompt_ids: list[int]
    max_tokens: int
    continues: bool = False  # the reply continues a final assistant message (prefill)


class ReplyFormat(Protocol):
    """The OpenAI documents of one endpoint."""

    def whole(self, text: str, finish: str, used: Usage) -> Any:
        """The non-streamed reply."""
        ...

    def opening(self) -> list[Any]:
        """Chunks sent before the first piece of text."""
        ...

    def piece(self, text: str) -> Any:
        """The chunk carrying one piece of text."""
        ...

    def closing(self, finish: str, used: Usage | None) -> Any:
        """The chunk with the finish reason (`used` is None), or the trailing usage chunk."""
        ...


class ChatFormat:
    """chat.completion and chat.completion.chunk documents."""

    def __init__(self, state: ServerState) -> None:
        self.cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = state.model_name

    def _chunk(self, choices: list[ChatChunkChoice], used: Usage | None = None) -> Any:
        return ChatCompletionChunk(
            id=self.cid,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=choices,
            usage=used,
        )

    def whole(self, text: str, finish: str, used: Usage) -> Any:
        message = ResponseMessage(role="assistant", content=text)
        return ChatCompletion(
            id=self.cid,
            object="chat.completion",
            created=self.created,
            model=self.model,
            choices=[ChatChoice(index=0, message=message, finish_reason=finish)],
            usage=used,
        )

    def opening(self) -> list[Any]:
        delta = Delta(role="assistant", content="")
        return [self._chunk([ChatChunkChoice(index=0, delta=delta, finish_reason=None)])]

    def piece(self, text: str) -> Any:
        delta = Delta(content=text)
        return self._chunk([ChatChunkChoice(index=0, delta=delta, finish_reason=None)])

    def closing(self, finish: str, used: Usage | None) -> Any:
        if used is not None:
            return self._chunk([], used)
        return self._chunk([ChatChunkChoice(index=0, delta=Delta(), finish_reason=finish)])


class CompletionFormat:
    """text_completion documents; `echo` (the prompt's text) comes first when asked for."""

    def __init__(self, state: ServerState, echo: str) -> None:
        self.cid = f"cmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = state.model_name
        self.echo = echo

    def _doc(self, choices: list[CompletionChoice], used: Usage | None = None) -> Completion:
        return Completion(
            id=self.cid,
            object="text_completion",
            created=self.created,
            model=self.model,
            choices=choices,
            usage=used,
        )

    def whole(self, text: str, finish: str, used: Usage) -> Any:
        return self._doc(
            [CompletionChoice(index=0, text=self.echo + text, finish_reason=finish)], used
        )

    def opening(self) -> list[Any]:
        return [self.piece(self.echo)] if self.echo else []

    def piece(self, text: str) -> Any:
        return self._doc([CompletionChoice(index=0, text=text, finish_reason=None)])

    def closing(self, finish: str, used: Usage | None) -> Any:
        if used is not None:
            return self._doc([], used)
        return self._doc([CompletionChoice(index=0, text="", finish_reason=finish)])


async def serve(
    request: Request, state: ServerState, job: Job, fmt: ReplyFormat, started: float
) -> Any:
    """Run `job` on a slot: the whole reply, or its SSE stream."""
    opts = sampling(state, job.req, job.max_tokens, job.continues)
    t0 = asyncio.get_running_loop().time()
    named = job.req.moviemind_answer
    hold = Hold(named.id, named.more) if named is not None else None
    gen = await start(request, state, job.prompt_ids, opts, started, hold)
    run = TextRun(state, job.req.stop_list(), job.req.ignore_eos, job.max_tokens, job.continues)
    state.metrics.requests.labels(endpoint=job.endpoint, outcome="started").inc()
    n_prompt = len(job.prompt_ids)
    if not job.req.stream:
        text = await collect(request, state, run, gen, t0)
        return fmt.whole(text, run.finish_reason, usage(n_prompt, run, gen))

    def final() -> list[Any]:
        docs = [fmt.closing(run.finish_reason, None)]
        if job.req.stream_options and job.req.stream_options.include_usage:
            docs.append(fmt.closing(run.finish_reason, usage(n_prompt, run, gen)))
        return docs

    events = stream_events(state, run, gen, t0, fmt.opening, fmt.piece, final)
    return sse_response(events, gen)


@post("/v1/chat/completions", guards=[auth_guard], status_code=200)
async def chat_completions(request: Request) -> Any:
    """OpenAI chat completions, streamed (SSE) or not."""
    started = time.perf_counter()
    state = server_state(request)
    req: ChatCompletionRequest = await decode(request, ChatCompletionRequest)
    refuse_when_full(state, req)
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
    max_tokens = budget(state, len(prompt_ids), req.max_completion_tokens or req.max_tokens)
    job = Job("chat", req, prompt_ids, max_tokens, continues)
    return await serve(request, state, job, ChatFormat(state), started)


@post("/v1/completions", guards=[auth_guard], status_code=200)
async def completions(request: Request) -> Any:
    """OpenAI text completions, streamed (SSE) or not."""
    started = time.perf_counter()
    state = server_state(request)
    req: CompletionRequest = await decode(request, CompletionRequest)
    refuse_when_full(state, req)
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
    max_tokens = budget(state, len(prompt_ids), req.max_tokens or 16)
    job = Job("completions", req, prompt_ids, max_tokens)
    fmt = CompletionFormat(state, prompt_text if req.echo else "")
    return await serve(request, state, job, fmt, started)
