"""The model server over HTTP on loopback: SmolLM2 through ctransformers (the default engine)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
from tokenizers import Tokenizer

from tests.support.model_server_helpers import RunningServer, model_server, shared_cache, sse_data

TOKEN = "test-token-123"
QUESTION = [{"role": "user", "content": "Recommend one movie like Alien, in one sentence."}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    logs = tmp_path_factory.mktemp("ms_http")
    with model_server(shared_cache(tmp_path_factory), logs, token=TOKEN, queue=1, slots=1) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def oai(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key=TOKEN, max_retries=0, timeout=120)


def _chat(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"messages": QUESTION, **body})


# ---- the OpenAI API ---------------------------------------------------------------------------


def test_chat_non_streaming(client: httpx.Client) -> None:
    r = _chat(client, max_tokens=24, temperature=0)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10 and 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_streaming_matches_non_streaming(client: httpx.Client) -> None:
    full = _chat(client, max_tokens=16, temperature=0).json()["choices"][0]["message"]["content"]
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"messages": QUESTION, "max_tokens": 16, "temperature": 0, "stream": True},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        data = sse_data(list(r.iter_lines()))
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == full
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_openai_client_chat_stream_and_completions(oai: openai.OpenAI) -> None:
    models = oai.models.list()
    assert models.data[0].id == "SmolLM2-135M-Instruct.Q4_1"
    r = oai.chat.completions.create(
        model=models.data[0].id, messages=QUESTION, max_tokens=8, temperature=0
    )
    assert r.choices[0].message.content and r.usage.completion_tokens <= 8
    stream = oai.chat.completions.create(
        model="any",
        messages=QUESTION,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        r.choices[0].message.content
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    c = oai.completions.create(
        model="any", prompt="The three best films of 1979 are", max_tokens=6, temperature=0
    )
    assert c.choices[0].text and c.choices[0].finish_reason == "length"
    assert c.usage.completion_tokens == 6


def test_max_tokens_gives_length(client: httpx.Client) -> None:
    body = client.post(
        "/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 3, "temperature": 0}
    ).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_stop_sequence_cuts_before_the_stop_and_never_leaks_it(client: httpx.Client) -> None:
    prompt = {
        "prompt": "Here is a list of ten famous movies:\n1.",
        "max_tokens": 40,
        "temperature": 0,
    }
    full = client.post("/v1/completions", json=prompt).json()["choices"][0]["text"]
    words = full.split()
    assert len(words) >= 4, full
    stop = f"{words[2]} {words[3]}"  # spans several tokens
    cut = full[: full.index(stop)]
    plain = client.post("/v1/completions", json={**prompt, "stop": [stop]}).json()
    assert plain["choices"][0]["text"] == cut
    assert plain["choices"][0]["finish_reason"] == "stop"
    with client.stream(
        "POST", "/v1/completions", json={**prompt, "stop": stop, "stream": True}
    ) as r:
        data = sse_data(list(r.iter_lines()))
    pieces = [json.loads(d)["choices"][0] for d in data[:-1]]
    streamed = "".join(p["text"] for p in pieces)
    assert streamed == cut  # nothing of the stop sequence, not even its first token
    assert pieces[-1]["finish_reason"] == "stop"


def test_seed_makes_sampling_reproducible(client: httpx.Client) -> None:
    body = {
        "prompt": "My favourite movie is",
        "max_tokens": 12,
        "temperature": 1.0,
        "top_p": 0.95,
        "top_k": 40,
    }
    a = client.post("/v1/completions", json={**body, "seed": 42}).json()["choices"][0]["text"]
    b = client.post("/v1/completions", json={**body, "seed": 42}).json()["choices"][0]["text"]
    assert a == b


def test_token_ids_as_prompt(client: httpx.Client) -> None:
    ids = client.post("/tokenize", json={"content": "The best movie is"}).json()["tokens"]
    by_text = client.post(
        "/v1/completions", json={"prompt": "The best movie is", "max_tokens": 5, "temperature": 0}
    )
    by_ids = client.post("/v1/completions", json={"prompt": ids, "max_tokens": 5, "temperature": 0})
    assert by_ids.json()["choices"][0]["text"] == by_text.json()["choices"][0]["text"]


# ---- tokenizer endpoints ----------------------------------------------------------------------


def test_tokenizer_json_counts_like_the_server(client: httpx.Client) -> None:
    r = client.get("/v1/tokenizer")
    assert r.status_code == 200
    tok = Tokenizer.from_str(r.text)
    for text in ["<|im_start|>user\nI liked Heat (1995) 🎬<|im_end|>\n", "plain text, ünïcödé\n\n"]:
        ids = client.post("/tokenize", json={"content": text}).json()["tokens"]
        assert ids == tok.encode(text, add_special_tokens=False).ids
    assert client.post("/tokenize", json={"content": "<|im_end|>"}).json()["tokens"] == [2]


# ---- errors -----------------------------------------------------------------------------------


def test_auth_required_with_constant_shape(server: RunningServer) -> None:
    for method, path in [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/tokenizer"),
        ("POST", "/tokenize"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = httpx.request(method, server.base + path, headers=headers, json={}, timeout=10)
            assert r.status_code == 401, (path, headers)
            assert r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base + "/v1", api_key="nope", max_retries=0).models.list()
    assert httpx.get(server.base + "/healthz").status_code == 200  # probes need no token


def test_malformed_json_and_validation(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        content=b'{"messages": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "malformed JSON" in r.json()["error"]["message"]
    for bad in (
        {"messages": []},
        {"messages": QUESTION, "temperature": 9},
        {"messages": QUESTION, "max_tokens": 0},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": QUESTION, "n": 2},
    ):
        r = client.post("/v1/chat/completions", json=bad)
        assert r.status_code == 422, bad
        assert r.json()["error"]["type"] == "validation_error"
        assert "Traceback" not in r.text


def test_oversized_body_is_413(client: httpx.Client) -> None:
    huge = "x" * (1 << 20)
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": huge}]})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"


def test_prompt_longer_than_the_context_is_400_with_counts(client: httpx.Client) -> None:
    long = "movie " * 2500
    r = client.post("/v1/completions", json={"prompt": long, "max_tokens": 4})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "2048" in message and "tokens" in message
    n = client.post("/tokenize", json={"content": long}).json()["tokens"]
    assert str(len(n)) in message


def test_unknown_route_is_json_404(client: httpx.Client) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


# ---- scheduling: disconnect, queue ------------------------------------------------------------


LONG = {
    "prompt": "Write a very long story about a movie night.",
    "max_tokens": 1500,
    "temperature": 0,
    "ignore_eos": True,
    "stream": True,
}


def _start_stream(
    server: RunningServer, got_first: threading.Event, release: threading.Event, out: dict
) -> None:
    """Open a long stream, read until the first content, hold it until `release`, then hang up."""
    try:
        with (
            httpx.Client(base_url=server.base, headers=server.headers, timeout=120) as c,
            c.stream("POST", "/v1/completions", json=LONG) as r,
        ):
            out["status"] = r.status_code
            out["headers"] = dict(r.headers)
            lines = r.iter_lines()  # kept open: closing the iterator would hang up early
            for _ in range(100):
                if next(lines).startswith("data: {"):
                    got_first.set()
                    break
            release.wait(60)
    except Exception as exc:  # reported through `out`, asserted by the test
        out["error"] = repr(exc)
    finally:
        got_first.set()


def test_disconnect_mid_stream_frees_the_slot(server: RunningServer, client: httpx.Client) -> None:
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    before = server.metric("moviemind_model_cancelled_total", 'reason="disconnect"')
    tokens_before = server.metric("moviemind_model_completion_tokens_total")
    got_first, release, out = threading.Event(), threading.Event(), {}
    t = threading.Thread(target=_start_stream, args=(server, got_first, release, out))
    t.start()
    assert got_first.wait(120) and out.get("status") == 200, out
    assert server.metric("moviemind_model_slots_busy") == 1
    release.set()  # the client hangs up mid-stream
    t.join(60)
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    assert (
        server.wait_metric("moviemind_model_cancelled_total", before + 1, 'reason="disconnect"')
        == before + 1
    )
    generated = server.metric("moviemind_model_completion_tokens_total") - tokens_before
    assert 0 < generated < 1500  # it stopped long before max_tokens
    r = _chat(client, max_tokens=4, temperature=0)  # the next request gets the slot
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 4


def test_queue_full_is_429_with_retry_after(server: RunningServer) -> None:
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    first, release1, out1 = threading.Event(), threading.Event(), {}
    second, release2, out2 = threading.Event(), threading.Event(), {}
    t1 = threading.Thread(target=_start_stream, args=(server, first, release1, out1))
    t1.start()
    assert first.wait(120) and out1.get("status") == 200, out1
    t2 = threading.Thread(target=_start_stream, args=(server, second, release2, out2))
    t2.start()
    try:
        assert server.wait_metric("moviemind_model_queue_depth", 1) == 1  # slot busy, one waiting
        r = httpx.post(
            server.base + "/v1/completions",
            headers=server.headers,
            json={"prompt": "hi", "max_tokens": 2},
            timeout=10,
        )
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "queue_full"
    finally:
        release1.set()
        t1.join(60)
    # The waiting request gets the freed slot and streams.
    assert second.wait(120) and out2.get("status") == 200, out2
    release2.set()
    t2.join(60)
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    assert server.metric("moviemind_model_queue_depth") == 0
    assert server.metric("moviemind_model_errors_total", 'type="queue_full"') >= 1


def test_metrics_exposition(server: RunningServer) -> None:
    text = httpx.get(server.base + "/metrics").text
    for name in (
        "moviemind_model_queue_depth",
        "moviemind_model_time_to_first_token_seconds_bucket",
        "moviemind_model_decode_tokens_per_second_bucket",
        "moviemind_model_prompt_tokens_total",
        "moviemind_model_completion_tokens_total",
        "moviemind_model_errors_total",
    ):
        assert name in text
    assert server.metric("moviemind_model_prompt_tokens_total") > 0
    assert server.metric("moviemind_model_time_to_first_token_seconds_count") > 0
    assert httpx.get(server.base + "/readyz").json()["status"] == "ready"


def test_server_log_has_no_tracebacks(server: RunningServer) -> None:
    assert "Traceback" not in server.log()


def _hang_up_after(server: RunningServer, seconds: float, body: dict) -> None:
    """A non-streamed request whose client gives up after `seconds`."""
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(
            server.base + "/v1/completions", headers=server.headers, json=body, timeout=seconds
        )


def test_client_hanging_up_while_queued_or_waiting_frees_queue_and_slot(
    server: RunningServer,
) -> None:
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    gone = server.metric("moviemind_model_cancelled_total", 'reason="disconnect"')
    long_plain = {**LONG, "stream": False}
    holder, release, out = threading.Event(), threading.Event(), {}
    t = threading.Thread(target=_start_stream, args=(server, holder, release, out))
    t.start()
    try:
        assert holder.wait(120) and out.get("status") == 200, out
        _hang_up_after(server, 1.0, long_plain)  # waits in the queue, then hangs up
        assert server.wait_metric("moviemind_model_queue_depth", 0) == 0
        assert (
            server.wait_metric("moviemind_model_cancelled_total", gone + 1, 'reason="disconnect"')
            == gone + 1
        )
    finally:
        release.set()
        t.join(60)
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    tokens_before = server.metric("moviemind_model_completion_tokens_total")
    _hang_up_after(server, 2.0, long_plain)  # generating, not streamed, then hangs up
    assert server.wait_metric("moviemind_model_slots_busy", 0) == 0
    assert server.metric("moviemind_model_completion_tokens_total") - tokens_before < 1500
