"""The engine interface: load a GGUF, evaluate token ids, expose the last logits.

Tokenization is not an engine's job (the server's tokenizer does it). An engine implements four
primitives; `generate` on top of them is shared, and gives every engine the same sampling, the
same cancellation points (between tokens, and between prompt batches) and the same prefix reuse:
the engine remembers which tokens its KV cache holds, and a prompt that starts with them only
evaluates the rest.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import msgspec
import numpy as np

from model_server.sampling import Sampler, SamplingOptions


class EngineError(RuntimeError):
    """The engine failed to load a model or to evaluate tokens."""


class Cancelled(Exception):
    """The generation was cancelled (client gone, deadline, stop sequence) before it finished."""


class EngineConfig(msgspec.Struct, kw_only=True, frozen=True):
    """What every engine is loaded with."""

    model_path: str
    context: int
    threads: int
    batch: int = 512  # prompt tokens evaluated per engine call


class GenerationStats(msgspec.Struct, kw_only=True):
    """Filled in by `Engine.generate` for metrics and logs."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV entries were reused
    generated: int = 0
    choice_complete: bool = False  # the reply ended by writing a whole guided choice


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Engine(ABC):
    """One model instance with one KV cache: one generation at a time."""

    name = "engine"

    def __init__(self, config: EngineConfig):
        self.config = config
        self._cached: list[int] = []  # tokens whose KV entries are valid, in order

    @abstractmethod
    def load(self) -> None:
        """Load the model; raise EngineError with a one-line reason on failure."""

    @abstractmethod
    def _eval(self, ids: Sequence[int], n_past: int) -> None:
        """Evaluate `ids` at positions n_past.. (KV entries past n_past are overwritten)."""

    @abstractmethod
    def _logits(self) -> np.ndarray:
        """Logits of the last evaluated position (a view; callers must not modify it)."""

    def _truncate(self, n: int) -> None:  # noqa: B027 - optional hook
        """Forget KV entries from position `n` on (engines that track it themselves override)."""

    @property
    def cached_tokens(self) -> Sequence[int]:
        """Tokens currently in the KV cache."""
        return self._cached

    def reset(self) -> None:
        """Drop the whole KV cache."""
        self._truncate(0)
        self._cached.clear()

    def eval_tokens(self, ids: Sequence[int], cancel: threading.Event | None = None) -> None:
        """Append `ids` to the context in batches, checking `cancel` between batches."""
        batch = max(1, self.config.batch)
        for start in range(0, len(ids), batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            chunk = list(ids[start : start + batch])
            try:
                self._eval(chunk, len(self._cached))
            except Exception:
                # A failed evaluation leaves the KV cache in an unknown state.
                self.reset()
                raise
            self._cached.extend(chunk)

    def generate(
        self,
        prompt_ids: Sequence[int],
        opts: SamplingOptions,
        cancel: threading.Event | None = None,
        stats: GenerationStats | None = None,
    ) -> Iterator[int]:
        """Yield generated token ids; stop after an end id, after `opts.max_tokens`, or when
        `cancel` is set (checked before each token; raises Cancelled)."""
        if not prompt_ids:
            raise ValueError("empty prompt")
        if len(prompt_ids) + opts.max_tokens > self.config.context:
            raise ValueError("prompt plus max_tokens exceed the context")
        stats = stats if stats is not None else GenerationStats()
        stats.prompt_tokens = len(prompt_ids)
        # Keep at least one prompt token to evaluate: its logits pick the first new token.
        keep = min(common_prefix(self._cached, prompt_ids), len(prompt_ids) - 1)
        if not opts.cache_prompt:
            keep = 0
        if keep < len(self._cached):
            self._truncate(keep)
            del self._cached[keep:]
        stats.cached_tokens = keep
        self.eval_tokens(prompt_ids[keep:], cancel)

        sampler = Sampler(opts)
        for i in range(opts.max_tokens):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            token = sampler.sample(self._logits(), self._cached)
            stats.generated = i + 1
            yield token
            if sampler.exhausted:
                stats.choice_complete = True
                return
            if token in opts.end_ids and not opts.ignore_eos or i + 1 == opts.max_tokens:
                return
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            self.eval_tokens([token])

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources (optional)."""
