"""Guided choice in the shared sampler, on a toy byte vocabulary (the HTTP tests use SmolLM2)."""

from __future__ import annotations

import numpy as np
import pytest

from model_server.guided import ChoiceSpec, ChoiceState, TokenTable, constrain
from model_server.sampling import Sampler, SamplingOptions

# id -> bytes; 0 is a control token (adds nothing), 9 the end of text.
VOCAB = [b"", b" a", b" cat", b" c", b"at", b" dog", b".", b" ", b"a", b""]
END = 9
TABLE = TokenTable(VOCAB)


def _encode(texts: list[str]) -> list[list[int]]:
    """The toy tokenizer's own spelling: longest match first."""
    by = {v: i for i, v in enumerate(VOCAB) if v}
    out = []
    for text in texts:
        data, ids = text.encode(), []
        while data:
            piece = max((p for p in by if data.startswith(p)), key=len, default=None)
            if piece is None:  # unspellable: an unknown token, so the spelling does not match
                ids.append(0)
                break
            ids.append(by[piece])
            data = data[len(piece) :]
        out.append(ids)
    return out


def _run(spec: ChoiceSpec, logits_by_step: list[list[float]]) -> list[int]:
    sampler = Sampler(
        SamplingOptions(max_tokens=10, temperature=0.0, end_ids=frozenset({END}), choices=spec)
    )
    picks = []
    for row in logits_by_step:
        token = sampler.sample(np.array(row, dtype=np.float32), picks)
        picks.append(token)
        if token == END or sampler.exhausted:
            break
    return picks


def test_only_tokens_that_continue_a_choice_are_allowed() -> None:
    state = ChoiceState(ChoiceSpec([" a cat.", " a dog."], TABLE))
    assert state.allowed().tolist() == [1, 7]  # " a", or " " then "a"
    state.advance(1)
    assert state.allowed().tolist() == [2, 3, 5, 7]
    state.advance(3)  # " c": the dog is out
    assert state.allowed().tolist() == [4, 8]  # "at", or "a" (then "t" is unspellable)
    state.advance(4)
    assert not state.complete
    state.advance(6)
    assert state.complete and state.exhausted


def test_the_tokenizers_own_spelling_is_the_only_one_offered() -> None:
    spec = ChoiceSpec([" a cat.", " a dog."], TABLE, _encode)
    state = ChoiceState(spec)
    assert state.allowed().tolist() == [1]  # not " " + "a"
    state.advance(1)
    assert state.allowed().tolist() == [2, 5]  # not " c" + "at"


def test_the_model_picks_among_the_choices_and_stops_at_the_end_of_one() -> None:
    spec = ChoiceSpec([" a cat.", " a dog."], TABLE, _encode)
    # The model wants token 8 ("a", not allowed) most, then the dog over the cat.
    row = [0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 0.5, 0.0, 9.0, 0.0]
    picks = _run(spec, [row] * 5)
    assert b"".join(VOCAB[t] for t in picks) == b" a dog."
    assert picks[-1] != END  # the choice ends generation without asking for an end token


def test_an_end_token_is_allowed_where_one_choice_is_a_prefix_of_another() -> None:
    spec = ChoiceSpec([" a", " a cat."], TABLE, _encode)
    row = [0.0, 5.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    assert _run(spec, [row] * 5) == [1, END]
    state = ChoiceState(spec)
    state.advance(1)
    assert state.complete and not state.exhausted


def test_constrain_leaves_the_engines_logits_alone_and_beats_a_full_ban() -> None:
    state = ChoiceState(ChoiceSpec([" dog."], TABLE, _encode))
    logits = np.arange(10, dtype=np.float32)
    out = constrain(logits, state, [END])
    assert logits.tolist() == list(range(10))
    assert np.isfinite(out).nonzero()[0].tolist() == [5]
    banned = logits.copy()
    banned[5] = -np.inf  # logit_bias -100 on the only way forward: the choice still wins
    assert np.isfinite(constrain(banned, state, [END])).nonzero()[0].tolist() == [5]


@pytest.mark.parametrize("strip", [True, False])
def test_sentencepiece_first_space(strip: bool) -> None:
    """At a reply's start, " cat" is how SentencePiece writes "cat"; the decoder drops the space."""
    state = ChoiceState(ChoiceSpec(["cat."], TABLE, strip_first_space=strip))
    assert (2 in state.allowed().tolist()) is strip
    if strip:
        state.advance(2)
        assert state.pos == 3 and state.alive == [0]


def test_a_choice_the_vocabulary_cannot_spell_leaves_only_the_end() -> None:
    state = ChoiceState(ChoiceSpec(["zebra."], TABLE))
    assert state.allowed().size == 0
    out = constrain(np.zeros(10, dtype=np.float32), state, [END])
    assert np.isfinite(out).nonzero()[0].tolist() == [END]
