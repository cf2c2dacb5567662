"""OpenAI's frequency and presence penalties in the shared sampler (issue 12, bug 7)."""

from __future__ import annotations

import numpy as np

from model_server.sampling import Sampler, SamplingOptions


def _greedy_run(steps: int, **penalties: float) -> list[int]:
    # Token 0 is always a little more likely than token 1, token 1 than token 2.
    logits = np.array([3.0, 2.5, 2.0, -5.0], dtype=np.float32)
    sampler = Sampler(SamplingOptions(max_tokens=steps, temperature=0.0, **penalties))
    picks = [sampler.sample(logits, []) for _ in range(steps)]
    assert logits.tolist() == [3.0, 2.5, 2.0, -5.0]  # the engine's buffer is left alone
    return picks


def test_without_penalties_greedy_repeats_itself() -> None:
    assert _greedy_run(4) == [0, 0, 0, 0]


def test_frequency_penalty_grows_with_each_repeat() -> None:
    # 3.0 - 0.3 * n: token 0 keeps winning until it has been picked twice (3.0 - 0.6 < 2.5).
    assert _greedy_run(5, frequency_penalty=0.3) == [0, 0, 1, 0, 1]


def test_presence_penalty_is_paid_once_per_token() -> None:
    # 3.0 - 0.75 < 2.5: after one pick of each, the original order holds again.
    assert _greedy_run(4, presence_penalty=0.75) == [0, 1, 0, 0]


def test_negative_penalties_encourage_repeats() -> None:
    steps = [np.array([2.5, 2.0], dtype=np.float32), np.array([2.0, 2.4], dtype=np.float32)]

    def run(**penalties: float) -> list[int]:
        sampler = Sampler(SamplingOptions(max_tokens=2, temperature=0.0, **penalties))
        return [sampler.sample(logits, []) for logits in steps]

    assert run() == [0, 1]
    assert run(presence_penalty=-1.0) == [0, 0]
    assert run(frequency_penalty=-0.5) == [0, 0]


def test_logit_bias_bans_and_favours_tokens() -> None:
    logits = np.array([3.0, 2.5, 2.0, -5.0], dtype=np.float32)

    def pick(bias: tuple[tuple[int, float], ...]) -> int:
        opts = SamplingOptions(max_tokens=1, temperature=0.0, logit_bias=bias)
        return Sampler(opts).sample(logits, [])

    assert pick(()) == 0
    assert pick(((0, -100.0),)) == 1  # OpenAI's "ban"
    assert pick(((0, -100.0), (1, -100.0), (2, -100.0))) == 3  # absolute, even for the last one
    assert pick(((3, 9.0),)) == 3  # -5 + 9 beats 3
    assert pick(((0, -0.6),)) == 1  # a mild bias only shifts the logit
    assert pick(((99, -100.0),)) == 0  # ids past the vocabulary are ignored
    assert logits.tolist() == [3.0, 2.5, 2.0, -5.0]


def test_logit_bias_ban_holds_when_sampling() -> None:
    logits = np.array([1.0, 1.0, 1.0], dtype=np.float32)
    opts = SamplingOptions(max_tokens=1, temperature=1.0, seed=3, logit_bias=((1, -100.0),))
    sampler = Sampler(opts)
    assert 1 not in {sampler.sample(logits, []) for _ in range(200)}
