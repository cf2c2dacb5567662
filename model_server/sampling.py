"""Sampling options and the one sampler every engine uses, on the engine's logits with numpy.

Sampling here rather than inside each engine keeps `seed`, `top_k`, `top_p` and the repetition
penalty meaning exactly the same whichever engine runs; greedy decoding is a plain argmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from model_server.guided import ChoiceSpec, ChoiceState, constrain


class SamplingOptions(msgspec.Struct, kw_only=True, frozen=True):
    """How to pick each next token and when to stop, for one generation."""

    max_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: no limit
    repetition_penalty: float = 1.0  # 1: off; >1 discourages tokens seen in the last window
    repeat_last_n: int = 64
    # OpenAI's: subtract count * frequency_penalty + presence_penalty from the logit of every
    # token this generation has already produced (negative values encourage repeats).
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    # Added to the logits before any other rule; -100 or less bans the token outright.
    logit_bias: tuple[tuple[int, float], ...] = ()
    end_ids: frozenset[int] = frozenset()  # generation stops after yielding one of these
    ignore_eos: bool = False  # never pick an end id (fixed-length runs for benchmarks)
    cache_prompt: bool = True  # reuse the engine's cached prefix
    # Guided choice: the reply must be one of these strings (applied after every other rule).
    choices: ChoiceSpec | None = None


class Sampler:
    """Picks tokens for one generation; owns its random generator so `seed` is reproducible."""

    def __init__(self, opts: SamplingOptions):
        self.opts = opts
        self._rng = np.random.default_rng(opts.seed)
        self._greedy = opts.temperature <= 0.0 or opts.top_k == 1
        self._banned = np.fromiter(opts.end_ids, dtype=np.int64) if opts.ignore_eos else None
        self._counts: dict[int, int] = {}  # tokens this sampler picked, for the OpenAI penalties
        self._openai_penalties = opts.frequency_penalty != 0.0 or opts.presence_penalty != 0.0
        self._bias_ids = np.fromiter((t for t, _ in opts.logit_bias), dtype=np.int64)
        # OpenAI documents -100 as "ban"; a finite logit minus 100 can still win when every
        # other token is lower, so the ban is made absolute.
        self._bias = np.fromiter(
            (-np.inf if b <= -100.0 else b for _, b in opts.logit_bias), dtype=np.float32
        )
        self._choice = ChoiceState(opts.choices) if opts.choices is not None else None

    @property
    def exhausted(self) -> bool:
        """A guided choice is fully written and nothing can follow it: stop without asking the
        model for an end token."""
        return self._choice is not None and self._choice.exhausted

    def sample(self, logits: np.ndarray, recent: Sequence[int]) -> int:
        """Next token id from the last position's logits (not modified) and the tokens so far."""
        token = self._pick(logits, recent)
        if self._choice is not None:
            self._choice.advance(token)
        if self._openai_penalties:
            self._counts[token] = self._counts.get(token, 0) + 1
        return token

    def _pick(self, logits: np.ndarray, recent: Sequence[int]) -> int:
        opts = self.opts
        penalize = opts.repetition_penalty != 1.0 and opts.repeat_last_n > 0 and len(recent) > 0
        produced = self._openai_penalties and bool(self._counts)
        if penalize or produced or self._banned is not None or self._bias_ids.size:
            logits = np.array(logits, dtype=np.float32, copy=True)
            if self._bias_ids.size:
                inside = self._bias_ids < logits.shape[0]
                logits[self._bias_ids[inside]] += self._bias[inside]
            if penalize:
                seen = np.unique(np.asarray(recent[-opts.repeat_last_n :], dtype=np.int64))
                seen = seen[(seen >= 0) & (seen < logits.shape[0])]
                vals = logits[seen]
                # The CTRL/llama.cpp rule: shrink positive logits, push negative ones further down.
                logits[seen] = np.where(
                    vals > 0, vals / opts.repetition_penalty, vals * opts.repetition_penalty
                )
            if produced:
                ids = np.fromiter(self._counts, dtype=np.int64, count=len(self._counts))
                counts = np.fromiter(self._counts.values(), dtype=np.float32, count=len(ids))
                inside = ids < logits.shape[0]
                logits[ids[inside]] -= (
                    counts[inside] * opts.frequency_penalty + opts.presence_penalty
                )
            if self._banned is not None and self._banned.size:
                logits[self._banned[self._banned < logits.shape[0]]] = -np.inf
        if self._choice is not None:
            logits = constrain(logits, self._choice, opts.end_ids)
        if self._greedy:
            return int(np.argmax(logits))
        return self._sample_random(logits)

    def _sample_random(self, logits: np.ndarray) -> int:
        opts = self.opts
        n = logits.shape[0]
        if 0 < opts.top_k < n:
            idx = np.argpartition(logits, n - opts.top_k)[n - opts.top_k :]
        else:
            idx = np.arange(n)
        scaled = logits[idx].astype(np.float64) / opts.temperature
        order = np.argsort(-scaled, kind="stable")
        idx, scaled = idx[order], scaled[order]
        probs = np.exp(scaled - scaled[0])
        probs /= probs.sum()
        if opts.top_p < 1.0:
            # Keep the smallest head whose mass reaches top_p (always at least one token).
            keep = int(np.searchsorted(np.cumsum(probs), opts.top_p) + 1)
            idx, probs = idx[:keep], probs[:keep] / probs[:keep].sum()
        return int(idx[self._rng.choice(len(idx), p=probs)])
