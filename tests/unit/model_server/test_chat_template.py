"""Assistant prefill: rendering a chat so the model continues the final assistant message."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_server.chat_template import ChatTemplate, ChatTemplateError, chatml_source
from model_server.tokenizer import IncrementalDecoder, ServerTokenizer
from tests.support.model_server_helpers import embedded_info, shared_cache, write_vocab_gguf

# tokenizer_config.json of Open-Orca/Mistral-7B-OpenOrca (the reference model): ChatML.
OPENORCA = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHAT = [
    {"role": "system", "content": "You recommend movies."},
    {"role": "user", "content": "I liked Troy."},
]
PREFIX = "1. Gladiator (2000):"


@pytest.fixture(scope="module")
def smollm2_template(tmp_path_factory: pytest.TempPathFactory) -> ChatTemplate:
    source = embedded_info(shared_cache(tmp_path_factory)).chat_template
    assert source and "<|im_start|>" in source
    return ChatTemplate(source, "gguf")


def _templates(smollm2: ChatTemplate) -> list[ChatTemplate]:
    return [smollm2, ChatTemplate(OPENORCA, "openorca"), ChatTemplate(chatml_source(), "chatml")]


def test_continuation_is_the_generation_prompt_plus_the_prefix(
    smollm2_template: ChatTemplate,
) -> None:
    for t in _templates(smollm2_template):
        opened = t.render(CHAT)  # the turn a new answer would start with
        assert opened.endswith("<|im_start|>assistant\n"), t.name
        text, continues = t.render_request([*CHAT, {"role": "assistant", "content": PREFIX}])
        assert continues and text == opened + PREFIX, t.name
        # Later picks: the earlier lines are kept verbatim, trailing space and newline included.
        longer = PREFIX + " An epic.\n2. Heat (1995): "
        text, _ = t.render_request([*CHAT, {"role": "assistant", "content": longer}])
        assert text == opened + longer and "<|im_end|>" not in text[len(opened) :], t.name


def test_openorca_template_renders_chatml_like_smollm2(smollm2_template: ChatTemplate) -> None:
    ours = ChatTemplate(OPENORCA, "openorca").render_continuation(
        [*CHAT, {"role": "assistant", "content": PREFIX}]
    )
    assert ours == (
        "<|im_start|>system\nYou recommend movies.<|im_end|>\n"
        "<|im_start|>user\nI liked Troy.<|im_end|>\n"
        "<|im_start|>assistant\n1. Gladiator (2000):"
    )
    smol = smollm2_template.render_continuation([*CHAT, {"role": "assistant", "content": PREFIX}])
    assert smol == ours


def test_flags_choose_between_continuing_and_a_new_turn() -> None:
    t = ChatTemplate(chatml_source(), "chatml")
    ended = [*CHAT, {"role": "assistant", "content": "Heat."}]
    new_turn = t.render(ended)
    assert new_turn.endswith("Heat.<|im_end|>\n<|im_start|>assistant\n")
    assert t.render_request(ended, continue_final_message=False) == (new_turn, False)
    assert t.render_request(ended, add_generation_prompt=True) == (new_turn, False)
    vllm = t.render_request(ended, continue_final_message=True, add_generation_prompt=False)
    assert vllm == (t.render(CHAT) + "Heat.", True)
    # No assistant message last: a normal new turn, or none when add_generation_prompt is false.
    assert t.render_request(CHAT) == (t.render(CHAT), False)
    assert t.render_request(CHAT, add_generation_prompt=False) == (
        t.render(CHAT, add_generation_prompt=False),
        False,
    )
    with pytest.raises(ChatTemplateError, match="last message to be the assistant"):
        t.render_request(CHAT, continue_final_message=True)
    with pytest.raises(ChatTemplateError, match="cannot both be true"):
        t.render_request(ended, continue_final_message=True, add_generation_prompt=True)


def test_a_template_that_rewrites_the_message_cannot_continue_it() -> None:
    trims = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] | upper }}\n{% endfor %}"
    t = ChatTemplate("{% for m in messages %}{{ m['role'] }}{% endfor %}", "drops")
    with pytest.raises(ChatTemplateError, match="cannot be continued"):
        t.render_continuation([*CHAT, {"role": "assistant", "content": PREFIX}])
    # A filter that leaves the marker in place still works (upper-casing is the template's choice).
    text = ChatTemplate(trims, "upper").render_continuation(
        [*CHAT, {"role": "assistant", "content": "ab"}]
    )
    assert text.endswith("assistant: AB")


def test_a_continuation_keeps_its_first_space_with_a_sentencepiece_vocabulary(
    tmp_path: Path,
) -> None:
    # Llama/Mistral vocabularies mark word starts with a space that a new reply drops; when the
    # reply continues "1. Gladiator (2000):", the space before the first word is the text's own.
    tokens = ["<unk>", "<s>", "</s>", "\u2581An", "\u2581epic"]
    path = write_vocab_gguf(
        tmp_path / "spm.gguf",
        arch="llama",
        model="llama",
        tokens=tokens,
        types=[2, 3, 3, 1, 1],
        scores=[0.0, 0.0, 0.0, -1.0, -2.0],
        bos=1,
        eos=2,
        unk=0,
        add_space_prefix=True,
    )
    from model_server.gguf_file import read_info

    tok = ServerTokenizer(read_info(path, tmp_path, "spm"))
    assert tok.strip_first_space

    def text(reply_start: bool) -> str:
        dec = IncrementalDecoder(tok, reply_start=reply_start)
        return "".join(dec.feed(i) for i in (3, 4)) + dec.flush()

    assert text(reply_start=True) == "An epic"
    assert text(reply_start=False) == " An epic"


def test_the_edges_reason_prompts_render_with_a_shared_prefix(
    smollm2_template: ChatTemplate,
) -> None:
    """The edge's per-pick requests, rendered by SmolLM2's and the reference model's templates:
    each continues the edge's opening, and two picks' prompts share everything up to "Pick:"
    (what the model server's prefix cache reuses)."""
    from edge.prompt import build_reason_messages, reason_openings
    from moviemind_core.catalog import Movie

    liked = [Movie(id=1, title="Troy", year=2004)]
    picks = [
        Movie(
            id=2, title="Gladiator", year=2000, genres=("Action", "Drama"), overview="A general."
        ),
        Movie(
            id=3, title="Braveheart", year=1995, genres=("Action", "War"), keywords=("scotland",)
        ),
    ]
    for t in _templates(smollm2_template):
        rendered = []
        for m in picks:
            opening = reason_openings(m)[0]
            messages = [
                *build_reason_messages(liked, "epic", m),
                {"role": "assistant", "content": opening},
            ]
            text, continues = t.render_request(messages)
            assert continues and text.endswith("<|im_start|>assistant\n" + opening), t.name
            assert text.count("<|im_end|>") == 2, t.name  # system and user closed, answer open
            rendered.append(text)
        shared = rendered[0][: rendered[0].index("Pick: ") + len("Pick: ")]
        assert rendered[1].startswith(shared) and "Troy (2004)" in shared, t.name
        assert "Gladiator" not in rendered[1], t.name
