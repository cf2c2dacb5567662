"""Wire types of the OpenAI-compatible API (the subset this server implements).

Unknown request fields are ignored, as OpenAI-compatible servers do, so clients that send
newer fields keep working. `top_k`, `repetition_penalty`, `ignore_eos`, `cache_prompt` and
`guided_choice` are extensions (llama.cpp and vLLM accept the same names; `guided_choice` is
vLLM's).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]
TopP = Annotated[float, Meta(gt=0.0, le=1.0)]
TopK = Annotated[int, Meta(ge=0, le=100_000)]
Penalty = Annotated[float, Meta(gt=0.0, le=10.0)]
MaxTokens = Annotated[int, Meta(ge=1, le=1 << 20)]
StopList = Annotated[list[Annotated[str, Meta(min_length=1)]], Meta(max_length=8)]
# OpenAI's logit_bias: token id (as a JSON object key) -> bias added to that token's logit;
# -100 bans a token in practice, 100 all but forces it.
LogitBias = Annotated[
    dict[Annotated[str, Meta(pattern=r"^\d{1,9}$")], Annotated[float, Meta(ge=-100.0, le=100.0)]],
    Meta(max_length=4096),
]

# vLLM's guided_choice: the reply is exactly one of these strings.
GuidedChoice = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=2000)]], Meta(min_length=1, max_length=4096)
]


class TextPart(msgspec.Struct, kw_only=True):
    """One part of a multi-part message content; only text parts are supported."""

    type: Literal["text"]
    text: str


class ChatMessage(msgspec.Struct, kw_only=True):
    """One conversation turn."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The content as one string."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(msgspec.Struct, kw_only=True):
    """`stream_options`: whether to send a last chunk with usage."""

    include_usage: bool = False


class AnswerHold(msgspec.Struct, kw_only=True):
    """moviemind's extension: the answer a request belongs to, and whether more of its
    requests follow (then the slot waits for them; see model_server/scheduler.py)."""

    id: Annotated[str, Meta(min_length=1, max_length=128)]
    more: bool = False


class _GenerationFields(msgspec.Struct, kw_only=True):
    model: str | None = None
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    repetition_penalty: Penalty | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2.0, le=2.0)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2.0, le=2.0)] | None = None
    stop: Annotated[str, Meta(min_length=1)] | StopList | None = None
    seed: int | None = None
    logit_bias: LogitBias | None = None
    guided_choice: GuidedChoice | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Meta(ge=1, le=1)] = 1
    user: str | None = None
    ignore_eos: bool = False
    cache_prompt: bool = True
    moviemind_answer: AnswerHold | None = None

    def stop_list(self) -> list[str]:
        """Stop sequences as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatCompletionRequest(_GenerationFields, kw_only=True):
    """POST /v1/chat/completions."""

    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    max_completion_tokens: MaxTokens | None = None
    # vLLM's names. None: continue a final assistant message, else open the assistant's turn.
    continue_final_message: bool | None = None
    add_generation_prompt: bool | None = None


class CompletionRequest(_GenerationFields, kw_only=True):
    """POST /v1/completions. `prompt` is text, a one-element list of text, or token ids."""

    prompt: str | Annotated[list[str | int], Meta(min_length=1)]
    echo: bool = False


class TokenizeRequest(msgspec.Struct, kw_only=True):
    """POST /tokenize."""

    content: str
    add_special: bool = False  # prepend BOS when the vocabulary uses one


class PromptTokensDetails(msgspec.Struct, kw_only=True):
    """OpenAI's breakdown of the prompt tokens."""

    cached_tokens: int  # taken from the KV cache: prompt_tokens - cached_tokens were evaluated


class Usage(msgspec.Struct, kw_only=True):
    """Token counts of one request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class ResponseMessage(msgspec.Struct, kw_only=True):
    """The assistant's reply."""

    role: str
    content: str


class ChatChoice(msgspec.Struct, kw_only=True):
    """One non-streamed chat choice."""

    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(msgspec.Struct, kw_only=True):
    """Non-streamed chat reply."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one streamed chunk adds."""

    role: str | None = None
    content: str | None = None


class ChatChunkChoice(msgspec.Struct, kw_only=True):
    """One choice of a streamed chat chunk."""

    index: int
    delta: Delta
    finish_reason: str | None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True):
    """One SSE `data:` document of a streamed chat reply."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(msgspec.Struct, kw_only=True):
    """One text-completion choice (also used for streamed chunks)."""

    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None


class Completion(msgspec.Struct, kw_only=True):
    """Text-completion reply or streamed chunk (`usage` absent on chunks but the last)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCapabilities(msgspec.Struct, kw_only=True):
    """What a client may rely on beyond the OpenAI API (detect before using it)."""

    continue_final_message: bool = True  # a final assistant message is continued (prefill)
    guided_choice: bool = True  # `guided_choice`: the reply is one of the given strings
    answer_hold: bool = True  # `moviemind_answer`: a slot waits for the answer's next request


class ModelCard(msgspec.Struct, kw_only=True):
    """One entry of GET /v1/models."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "moviemind"
    context_length: int = 0
    engine: str = ""
    capabilities: ModelCapabilities = msgspec.field(default_factory=ModelCapabilities)


class ModelList(msgspec.Struct, kw_only=True):
    """GET /v1/models."""

    data: list[ModelCard]
    object: str = "list"
