"""Steering with logit_bias in SmolLM2's real vocabulary: what is banned for a pick, what is not."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from edge.steering import BAN, Steering
from model_server.tokenizer import ServerTokenizer
from moviemind_core.catalog import Movie
from tests.support.model_server_helpers import embedded_info, shared_cache

HEAT = Movie(
    id=6,
    title="Heat",
    year=1995,
    genres=("Action", "Crime", "Thriller"),
    keywords=("heist", "cops and robbers"),
)
TOY_STORY = Movie(id=1, title="Toy Story", year=1995, genres=("Animation", "Children", "Comedy"))


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """SmolLM2's tokenizer as the edge gets it: the model server's /v1/tokenizer document."""
    return Tokenizer.from_str(
        ServerTokenizer(embedded_info(shared_cache(tmp_path_factory))).to_json()
    )


@pytest.fixture(scope="module")
def steering(smollm2: Tokenizer) -> Steering:
    return Steering(smollm2)


def _id(tok: Tokenizer, text: str) -> int:
    ids = tok.encode(text, add_special_tokens=False).ids
    assert len(ids) == 1, (text, ids)
    return ids[0]


def test_genre_words_the_pick_lacks_are_banned_and_its_own_are_not(
    steering: Steering, smollm2: Tokenizer
) -> None:
    heat = steering.bias_for(HEAT)
    toy = steering.bias_for(TOY_STORY)
    for word in (" comedy", " Comedy", " hilarious", " animated", " horror", " romantic"):
        assert heat.get(str(_id(smollm2, word))) == BAN, word
    for word in (" crime", " action"):
        assert str(_id(smollm2, word)) not in heat, word
    assert str(_id(smollm2, " comedy")) not in toy and str(_id(smollm2, " animated")) not in toy
    assert toy.get(str(_id(smollm2, " horror"))) == BAN


def test_first_person_markup_and_meta_words_are_banned_for_every_pick(
    steering: Steering, smollm2: Tokenizer
) -> None:
    for m in (HEAT, TOY_STORY):
        bias = steering.bias_for(m)
        for text in (" I", " my", "!", " [", "**", " genre", " released"):
            assert bias.get(str(_id(smollm2, text))) == BAN, text
        # Ordinary words, digits and sentence punctuation stay free.
        for text in (" film", " the", " tense", ".", ",", "1"):
            assert str(_id(smollm2, text)) not in bias, text


def test_the_bias_is_small_enough_to_send_with_every_call(steering: Steering) -> None:
    bias = steering.bias_for(HEAT)
    assert 100 < len(bias) < 2000  # well under the model server's limit of 4096 entries
    assert all(k.isdigit() and v == BAN for k, v in bias.items())
