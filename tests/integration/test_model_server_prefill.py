"""Assistant prefill, stops, caps and prefix reuse over HTTP, with SmolLM2 on both engines.

The edge writes the start of each recommendation line itself and lets the model finish it, one
request per line, each request's prompt extending the previous one's; these tests run that
sequence against a real server on loopback for each engine.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.model_server_helpers import RunningServer, model_server, shared_cache, sse_data

pytestmark = pytest.mark.slow

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
CHAT = [
    {"role": "system", "content": "You recommend movies. One line per movie with a reason."},
    {"role": "user", "content": "I liked Troy and Kingdom of Heaven. Recommend movies."},
]
PREFIX = "1. Gladiator (2000):"
OPENED = (  # SmolLM2's template with a new assistant turn
    "<|im_start|>system\nYou recommend movies. One line per movie with a reason.<|im_end|>\n"
    "<|im_start|>user\nI liked Troy and Kingdom of Heaven. Recommend movies.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture(
    scope="module",
    params=[
        "ctransformers",
        pytest.param(
            "llama_cpp",
            marks=pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python not installed"),
        ),
    ],
)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    logs = tmp_path_factory.mktemp(f"prefill_{request.param}")
    with model_server(shared_cache(tmp_path_factory), logs, engine=request.param) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=120) as c:
        yield c


def _chat(client: httpx.Client, **body: object) -> dict:
    r = client.post("/v1/chat/completions", json={"temperature": 0, **body})
    assert r.status_code == 200, r.text
    return r.json()


def _stream_chat(client: httpx.Client, **body: object) -> tuple[str, str | None, dict]:
    body = {"temperature": 0, "stream": True, "stream_options": {"include_usage": True}, **body}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        docs = sse_data(list(r.iter_lines()))
    assert docs[-1] == "[DONE]"
    chunks = [json.loads(d) for d in docs[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1]
    return text, finish, chunks[-1]["usage"]


def _tokens(client: httpx.Client, text: str) -> int:
    return len(client.post("/tokenize", json={"content": text}).json()["tokens"])


def test_models_advertise_prefill(client: httpx.Client) -> None:
    card = client.get("/v1/models").json()["data"][0]
    assert card["capabilities"] == {
        "continue_final_message": True,
        "guided_choice": True,
        "answer_hold": True,
    }


def test_final_assistant_message_is_continued_streamed_and_not(client: httpx.Client) -> None:
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]
    body = client.post(
        "/v1/completions", json={"prompt": OPENED + PREFIX, "max_tokens": 12, "temperature": 0}
    ).json()
    expected = body["choices"][0]["text"]  # the raw prompt, continued by the same engine
    assert expected.strip()
    reply = _chat(client, messages=messages, max_tokens=12)
    assert reply["choices"][0]["message"]["content"] == expected
    assert reply["usage"]["prompt_tokens"] == _tokens(client, OPENED + PREFIX)
    text, _, usage = _stream_chat(client, messages=messages, max_tokens=12)
    assert text == expected and usage["prompt_tokens"] == reply["usage"]["prompt_tokens"]
    vllm = _chat(
        client,
        messages=messages,
        max_tokens=12,
        continue_final_message=True,
        add_generation_prompt=False,
    )
    assert vllm["choices"][0]["message"]["content"] == expected
    # Asking for a new turn closes the message and opens another one: a longer, other prompt.
    closed = _chat(client, messages=messages, max_tokens=12, continue_final_message=False)
    assert closed["usage"]["prompt_tokens"] == _tokens(
        client, OPENED + PREFIX + "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_conflicting_prefill_flags_are_400(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={"messages": CHAT, "continue_final_message": True})
    assert r.status_code == 400 and "assistant" in r.json()["error"]["message"]
    r = client.post(
        "/v1/chat/completions",
        json={
            "messages": [*CHAT, {"role": "assistant", "content": PREFIX}],
            "continue_final_message": True,
            "add_generation_prompt": True,
        },
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_stop_and_max_tokens_streamed_and_not(client: httpx.Client) -> None:
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]
    free = _chat(client, messages=messages, max_tokens=16)["choices"][0]["message"]["content"]
    stop = next(ch for ch in (",", ".", " a", " the", "\n") if ch in free[1:])
    cut = free[: free.index(stop, 1)]
    for stops in ([stop], [stop, "\n"]):
        reply = _chat(client, messages=messages, max_tokens=16, stop=stops)
        choice = reply["choices"][0]
        assert choice["message"]["content"] == cut and choice["finish_reason"] == "stop"
        text, finish, _ = _stream_chat(client, messages=messages, max_tokens=16, stop=stops)
        assert (text, finish) == (cut, "stop")  # the stop itself is never sent
    capped = _chat(client, messages=messages, max_tokens=3)
    assert capped["usage"]["completion_tokens"] == 3
    assert capped["choices"][0]["finish_reason"] == "length"
    assert free.startswith(capped["choices"][0]["message"]["content"])
    text, finish, usage = _stream_chat(client, messages=messages, max_tokens=3)
    assert (text, finish) == (capped["choices"][0]["message"]["content"], "length")
    assert usage["completion_tokens"] == 3


def test_each_continuation_evaluates_only_its_new_tokens(client: httpx.Client) -> None:
    """The edge's guided answer: one request per pick, each extending the previous prompt by
    the previous reply and the next line's start. Only the new text is evaluated, plus the
    previous reply's last token (sampled but never evaluated)."""
    content = ""
    previous_prompt = 0
    for i, title in enumerate(["Gladiator (2000)", "Braveheart (1995)", "Troy (2004)"]):
        line = ("\n" if content else "") + f"{i + 1}. {title}:"
        content += line
        messages = [*CHAT, {"role": "assistant", "content": content}]
        reply = _chat(client, messages=messages, max_tokens=8, stop=["\n"], cache_prompt=True)
        usage = reply["usage"]
        evaluated = usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
        if i > 0:
            assert usage["prompt_tokens_details"]["cached_tokens"] >= previous_prompt
            assert evaluated <= _tokens(client, line) + 1, (i, usage)
        previous_prompt = usage["prompt_tokens"]
        content += reply["choices"][0]["message"]["content"]
    # The same last request with the cache off evaluates everything.
    cold = _chat(client, messages=messages, max_tokens=1, cache_prompt=False)["usage"]
    assert cold["prompt_tokens_details"]["cached_tokens"] == 0


def test_frequency_and_presence_penalties_change_a_repetitive_answer(client: httpx.Client) -> None:
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]

    def words(**penalties: float) -> list[str]:
        reply = _chat(client, messages=messages, max_tokens=24, **penalties)
        return reply["choices"][0]["message"]["content"].lower().split()

    def repeats(ws: list[str]) -> int:
        return len(ws) - len(set(ws))

    plain = words()
    assert repeats(plain) >= 2  # greedy SmolLM2 repeats itself here ("epic fantasy ... epic")
    for penalties in ({"frequency_penalty": 1.5}, {"presence_penalty": 2.0}):
        varied = words(**penalties)
        assert varied != plain and repeats(varied) < repeats(plain), (penalties, varied)
    assert words(frequency_penalty=0.0, presence_penalty=0.0) == plain


def test_logit_bias_steers_the_continuation_streamed_and_not(client: httpx.Client) -> None:
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]
    free = _chat(client, messages=messages, max_tokens=8)["choices"][0]["message"]["content"]
    first = client.post("/tokenize", json={"content": free}).json()["tokens"][0]
    # The token the model wanted first is banned: the greedy reply must start otherwise.
    bias = {str(first): -100}
    steered = _chat(client, messages=messages, max_tokens=8, logit_bias=bias)
    text = steered["choices"][0]["message"]["content"]
    assert text and text != free
    assert client.post("/tokenize", json={"content": text}).json()["tokens"][0] != first
    streamed, _, _ = _stream_chat(client, messages=messages, max_tokens=8, logit_bias=bias)
    assert streamed == text
    # A strong positive bias all but forces a token.
    forced = _chat(client, messages=messages, max_tokens=3, logit_bias={str(first + 1): 100})
    ids = client.post("/tokenize", json={"content": forced["choices"][0]["message"]["content"]})
    assert ids.json()["tokens"][:1] == [first + 1]


@pytest.mark.parametrize(
    "bias", [{"word": -100}, {"5": -101}, {"5": "ban"}, [5]], ids=["key", "range", "value", "list"]
)
def test_malformed_logit_bias_is_422(client: httpx.Client, bias: object) -> None:
    r = client.post("/v1/chat/completions", json={"messages": CHAT, "logit_bias": bias})
    assert r.status_code == 422, r.text  # the server's answer to every schema error
    assert r.json()["error"]["type"] == "validation_error"
    assert "logit_bias" in r.json()["error"]["message"]


GLADIATOR_CHOICES = [
    " a Roman general's fight for revenge in the arena.",
    " an epic about a slave who becomes a gladiator.",
    " a sweeping tale of Rome, honour and betrayal.",
]


def test_guided_choice_continues_with_one_whole_choice_streamed_and_not(
    client: httpx.Client,
) -> None:
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]
    reply = _chat(client, messages=messages, max_tokens=40, guided_choice=GLADIATOR_CHOICES)
    text = reply["choices"][0]["message"]["content"]
    assert text in GLADIATOR_CHOICES
    assert reply["choices"][0]["finish_reason"] == "stop"
    # The reply ends with its choice: no token is spent asking the model for an end.
    assert reply["usage"]["completion_tokens"] <= _tokens(client, text)
    streamed, finish, usage = _stream_chat(
        client, messages=messages, max_tokens=40, guided_choice=GLADIATOR_CHOICES
    )
    assert (streamed, finish) == (text, "stop")
    assert usage["completion_tokens"] == reply["usage"]["completion_tokens"]


def test_guided_choice_follows_the_models_logits(client: httpx.Client) -> None:
    """The model (here pushed by logit_bias) decides which choice is written, token by token."""
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]
    plain = _chat(client, messages=messages, max_tokens=40, guided_choice=GLADIATOR_CHOICES)
    plain_text = plain["choices"][0]["message"]["content"]
    other = next(c for c in GLADIATOR_CHOICES if c.split()[:2] != plain_text.split()[:2])
    # The second word's token decides between the choices; push the model towards `other`'s.
    word = client.post("/tokenize", json={"content": " " + other.split()[1]}).json()["tokens"][0]
    pushed = _chat(
        client,
        messages=messages,
        max_tokens=40,
        guided_choice=GLADIATOR_CHOICES,
        logit_bias={str(word): 50},
    )
    assert pushed["choices"][0]["message"]["content"] == other


def test_guided_choice_at_the_start_of_a_reply_and_in_completions(client: httpx.Client) -> None:
    choices = ["Yes, watch Gladiator.", "No, skip it.", "Amélie, for a change."]
    reply = _chat(client, messages=CHAT, max_tokens=20, guided_choice=choices)
    assert reply["choices"][0]["message"]["content"] in choices
    r = client.post(
        "/v1/completions",
        json={
            "prompt": "Q: Should I watch Gladiator?\nA:",
            "max_tokens": 20,
            "temperature": 0,
            "guided_choice": [" Yes.", " No.", " Amélie is better."],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] in {" Yes.", " No.", " Amélie is better."}
    assert r.json()["choices"][0]["finish_reason"] == "stop"


def test_guided_choice_cut_by_max_tokens_is_a_length_finish(client: httpx.Client) -> None:
    messages = [*CHAT, {"role": "assistant", "content": PREFIX}]
    reply = _chat(client, messages=messages, max_tokens=2, guided_choice=GLADIATOR_CHOICES)
    text = reply["choices"][0]["message"]["content"]
    assert reply["choices"][0]["finish_reason"] == "length"
    assert any(c.startswith(text) and c != text for c in GLADIATOR_CHOICES)


@pytest.mark.parametrize(
    "choices",
    [[], [""], "Yes", [1, 2], ["x" * 2001]],
    ids=["empty", "blank", "str", "ints", "long"],
)
def test_malformed_guided_choice_is_422(client: httpx.Client, choices: object) -> None:
    r = client.post("/v1/chat/completions", json={"messages": CHAT, "guided_choice": choices})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "validation_error"
    assert "guided_choice" in r.json()["error"]["message"]
