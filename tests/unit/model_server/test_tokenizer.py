"""The server's tokenizer against llama.cpp's own tokenizer on the same GGUF vocabulary.

Byte-level BPE is checked on SmolLM2's real vocabulary; the SentencePiece path on a small
Llama-style vocabulary learnt here and written to a GGUF (Mistral's file is not available).
The llama.cpp reference needs llama-cpp-python (the `llama` extra); without it those
comparisons skip, nothing else does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from model_server.gguf_file import read_info
from model_server.settings import embedded_model_path
from model_server.tokenizer import ServerTokenizer
from tests.support.model_server_helpers import (
    REPO,
    embedded_info,
    shared_cache,
    train_spm_vocab,
    write_vocab_gguf,
)

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
needs_llama_cpp = pytest.mark.skipif(
    not HAVE_LLAMA_CPP, reason="llama-cpp-python (the `llama` extra) is not installed"
)

TEXTS = [
    "Hello, world!",
    "I liked Alien (1979) and Blade Runner; something slow-burn, nothing gory.",
    "numbers 1234567 and 3.14159, dates 2024-05-01",
    "héllo wörld café naïve Ærøskøbing",
    "東京物語 は 小津安二郎 の映画です",
    "emoji 🎬🍿 and a ZWJ family 👩‍👩‍👧 and flags 🇫🇷",
    "new\nline\n\n\ndouble  spaces   and\ttabs\t\tend ",
    "   leading and trailing   ",
    "don't won't it's I'M we'll they'd",
    "<|im_start|>user\nRecommend three movies<|im_end|>\n<|im_start|>assistant\n",
    "def f(x):\n    return {'a': [1, 2]}  # code",
    "",
]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> ServerTokenizer:
    return ServerTokenizer(embedded_info(shared_cache(tmp_path_factory)))


@needs_llama_cpp
def test_byte_level_bpe_matches_llama_cpp_on_smollm2(smollm2: ServerTokenizer) -> None:
    import llama_cpp

    ref = llama_cpp.Llama(str(embedded_model_path()), vocab_only=True, verbose=False)
    for text in TEXTS:
        ours = smollm2.encode(text)
        theirs = ref.tokenize(text.encode(), add_bos=False, special=True)
        assert ours == theirs, text


def test_special_tokens_are_split_out_of_text(smollm2: ServerTokenizer) -> None:
    ids = smollm2.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == smollm2.tokens.index("<|im_start|>")
    assert ids[-1] == smollm2.tokens.index("<|im_end|>")
    assert smollm2.tokens.index("<|im_end|>") in smollm2.end_ids


def test_streaming_decode_round_trips_text(smollm2: ServerTokenizer) -> None:
    for text in TEXTS:
        if "<|" in text:
            continue
        assert smollm2.decode(smollm2.encode(text)) == text


def test_tokenizer_json_reloads_to_the_same_tokenization(smollm2: ServerTokenizer) -> None:
    hf = Tokenizer.from_str(smollm2.to_json())
    for text in TEXTS:
        assert hf.encode(text, add_special_tokens=False).ids == smollm2.encode(text)


@pytest.fixture(scope="module")
def spm_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = (REPO / "model_server" / "tokenizer.py").read_text() + " ".join(TEXTS[:6])
    tokens, scores, types = train_spm_vocab(corpus, 400)
    return write_vocab_gguf(
        tmp_path_factory.mktemp("spm") / "spm-vocab.gguf",
        arch="llama",
        model="llama",
        tokens=tokens,
        types=types,
        scores=scores,
        bos=1,
        eos=2,
        unk=0,
        add_bos=True,
        add_space_prefix=True,
    )


@needs_llama_cpp
def test_sentencepiece_vocabulary_matches_llama_cpp(spm_gguf: Path) -> None:
    import llama_cpp

    ours = ServerTokenizer(read_info(spm_gguf))
    ref = llama_cpp.Llama(str(spm_gguf), vocab_only=True, verbose=False)
    texts = [*TEXTS, "<s>the</s> fox", "the tokenizer", "Tokenizer tokens"]
    for text in texts:
        for add_bos in (True, False):
            want = ref.tokenize(text.encode(), add_bos=add_bos, special=True)
            assert ours.encode(text, add_bos=add_bos) == want, (text, add_bos)


def test_sentencepiece_byte_fallback_and_decoding(spm_gguf: Path) -> None:
    tok = ServerTokenizer(read_info(spm_gguf))
    ids = tok.encode("a 🦖\n", add_bos=False)  # neither is in the learnt vocabulary
    pieces = [tok.tokens[i] for i in ids]
    assert "<0x0A>" in pieces and "<0xF0>" in pieces  # newline and emoji bytes fall back
    for text in TEXTS:
        if "<|" in text:
            continue
        ids = tok.encode(text, add_bos=False)
        assert tok.decode(ids) == text
    assert tok.encode("x")[0] == 1  # BOS added by default for this vocabulary
    assert tok.encode("<s>x")[:2] == [1, tok.encode("x", add_bos=False)[0]]  # no double BOS
