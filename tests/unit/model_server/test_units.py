"""Model server parts that need no model: settings, stop strings, decoding, sampling, templates."""

from __future__ import annotations

import numpy as np
import pytest

from model_server.chat_template import ChatTemplate, ChatTemplateError, chatml_source
from model_server.sampling import Sampler, SamplingOptions
from model_server.settings import Settings, SettingsError, load_settings
from model_server.textstream import StopMatcher
from model_server.tokenizer import _complete_utf8_prefix

# ---- settings -----------------------------------------------------------------------------------


def test_settings_defaults_match_the_documented_contract() -> None:
    s = load_settings({})
    assert (s.host, s.port, s.engine, s.context, s.slots, s.queue) == (
        "127.0.0.1",
        8001,
        "ctransformers",
        2048,
        1,
        8,
    )
    assert s.max_body_bytes == 1 << 20 and s.deadline_s == 120.0 and s.chat_template == "auto"
    assert s.token == "" and s.cache_dir == "var/cache/model_server"
    assert s.effective_threads >= 1


def test_settings_parse_and_split_threads_between_slots() -> None:
    s = load_settings(
        {
            "MOVIEMIND_MODEL_PORT": "9000",
            "MOVIEMIND_MODEL_ENGINE": "LLAMA_CPP",
            "MOVIEMIND_MODEL_THREADS": "8",
            "MOVIEMIND_MODEL_SLOTS": "3",
            "MOVIEMIND_MODEL_DEADLINE_S": "2.5",
        }
    )
    assert s.port == 9000 and s.engine == "llama_cpp" and s.deadline_s == 2.5
    assert s.threads_per_slot == 2


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MOVIEMIND_MODEL_PORT": "eighty"}, "MOVIEMIND_MODEL_PORT='eighty' is not an integer"),
        ({"MOVIEMIND_MODEL_PORT": "70000"}, "out of range"),
        ({"MOVIEMIND_MODEL_SLOTS": "0"}, "MOVIEMIND_MODEL_SLOTS=0 is out of range"),
        ({"MOVIEMIND_MODEL_ENGINE": "vllm"}, "must be one of ctransformers, llama_cpp"),
        ({"MOVIEMIND_MODEL_CHAT_TEMPLATE": "x"}, "must be one of auto, chatml, gguf"),
        (
            {"MOVIEMIND_MODEL_WEIGHTS": "q8"},
            "MOVIEMIND_MODEL_WEIGHTS='q8' must be one of as_is, f16",
        ),
        ({"MOVIEMIND_MODEL_DEADLINE_S": "soon"}, "is not a number"),
        ({"MOVIEMIND_MODEL_URL": "http://127.0.0.1/x.gguf"}, "SHA256 must be"),
        ({"MOVIEMIND_MODEL_SHA256": "ab" * 32}, "without MOVIEMIND_MODEL_URL"),
        ({"MOVIEMIND_MODEL_URL": "ftp://x/y", "MOVIEMIND_MODEL_SHA256": "ab" * 32}, "http://"),
        ({"MOVIEMIND_MODEL_TYPO": "1"}, "unknown setting MOVIEMIND_MODEL_TYPO"),
    ],
)
def test_bad_settings_give_one_clear_line(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


# ---- stop sequences -----------------------------------------------------------------------------


def _run_stop(stops: list[str], pieces: list[str]) -> tuple[list[str], bool]:
    m = StopMatcher(stops)
    out = [m.feed(p) for p in pieces]
    out.append(m.flush())
    return [o for o in out if o], m.stopped


def test_stop_sequence_split_across_pieces_never_leaks() -> None:
    out, stopped = _run_stop(["END"], ["Hello E", "N", "D and more"])
    assert stopped and "".join(out) == "Hello "
    assert all("E" not in o for o in out)


def test_held_back_text_is_released_when_it_is_not_a_stop() -> None:
    out, stopped = _run_stop(["END"], ["Hello E", "NX", " tail"])
    assert not stopped and "".join(out) == "Hello ENX tail"
    assert out[0] == "Hello "  # "E" was held back until it could not start "END"


def test_earliest_of_several_stops_wins_and_partial_at_end_is_flushed() -> None:
    out, stopped = _run_stop(["\n\n", "User:"], ["a User", ": b\n\nc"])
    assert stopped and "".join(out) == "a "
    out, stopped = _run_stop(["User:"], ["a Use"])
    assert not stopped and "".join(out) == "a Use"


# ---- incremental UTF-8 ------------------------------------------------------------------------


def test_incomplete_utf8_is_held_back() -> None:
    film = "🎬".encode()
    assert _complete_utf8_prefix(b"ab" + film[:2]) == 2
    assert _complete_utf8_prefix(b"ab" + film) == 6
    assert _complete_utf8_prefix("é".encode()[:1]) == 0
    assert _complete_utf8_prefix(b"plain") == 5


# ---- sampling ---------------------------------------------------------------------------------


def test_greedy_and_seeded_sampling() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=500).astype(np.float32)
    greedy = Sampler(SamplingOptions(max_tokens=1, temperature=0.0))
    assert greedy.sample(logits, []) == int(np.argmax(logits))
    assert Sampler(SamplingOptions(max_tokens=1, top_k=1)).sample(logits, []) == int(
        np.argmax(logits)
    )

    opts = SamplingOptions(max_tokens=1, temperature=1.0, top_p=0.9, top_k=50, seed=7)
    a, b = Sampler(opts), Sampler(opts)
    seq_a = [a.sample(logits, []) for _ in range(20)]
    seq_b = [b.sample(logits, []) for _ in range(20)]
    assert seq_a == seq_b
    top50 = set(np.argsort(-logits)[:50].tolist())
    assert set(seq_a) <= top50
    assert len(set(seq_a)) > 1  # it does sample, not argmax


def test_repetition_penalty_and_ignore_eos_change_the_choice() -> None:
    logits = np.array([0.0, 5.0, 4.9, 1.0], dtype=np.float32)
    plain = SamplingOptions(max_tokens=1, temperature=0.0)
    assert Sampler(plain).sample(logits, [1]) == 1
    penal = SamplingOptions(max_tokens=1, temperature=0.0, repetition_penalty=1.5)
    assert Sampler(penal).sample(logits, [1]) == 2
    banned = SamplingOptions(max_tokens=1, temperature=0.0, end_ids=frozenset({1}), ignore_eos=True)
    assert Sampler(banned).sample(logits, []) == 2
    assert logits[1] == 5.0  # the engine's buffer is not modified


# ---- chat templates ---------------------------------------------------------------------------


def test_chatml_template_renders_turns_and_generation_prompt() -> None:
    t = ChatTemplate(chatml_source(), "chatml")
    text = t.render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert (
        text
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )


def test_gguf_templates_run_sandboxed() -> None:
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ChatTemplateError):
        ChatTemplate(evil, "gguf").render([{"role": "user", "content": "x"}])
    raising = "{{ raise_exception('only user turns') }}"
    with pytest.raises(ChatTemplateError, match="only user turns"):
        ChatTemplate(raising, "gguf").render([{"role": "user", "content": "x"}])
    with pytest.raises(ChatTemplateError, match="does not compile"):
        ChatTemplate("{% for %}", "gguf")


def test_settings_struct_is_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
