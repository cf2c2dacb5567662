"""Both engines: same greedy tokens, prefix KV reuse, the llama_cpp engine over HTTP, and the
HTTP layer's readiness and deadline behaviour with a scripted engine."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from model_server.app import ServerState, create_app
from model_server.chat_template import select_template
from model_server.compat import ensure_compatible
from model_server.engines.base import Engine, EngineConfig
from model_server.engines.ctransformers_engine import CTransformersEngine
from model_server.sampling import SamplingOptions
from model_server.settings import embedded_model_path, load_settings
from model_server.tokenizer import ServerTokenizer
from tests.support.model_server_helpers import (
    RunningServer,
    ScriptedEngine,
    embedded_info,
    model_server,
    shared_cache,
)

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
needs_llama_cpp = pytest.mark.skipif(
    not HAVE_LLAMA_CPP, reason="llama-cpp-python (the `llama` extra) is not installed"
)
PREFIX = (
    "<|im_start|>system\nYou recommend movies. Answer with titles and one reason each.<|im_end|>\n"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def tok(cache: Path) -> ServerTokenizer:
    return ServerTokenizer(embedded_info(cache))


def _engines(cache: Path) -> list[Engine]:
    info = embedded_info(cache)
    engines: list[Engine] = [
        CTransformersEngine(
            EngineConfig(model_path=str(ensure_compatible(info, cache)), context=512, threads=1)
        )
    ]
    if HAVE_LLAMA_CPP:
        from model_server.engines.llama_cpp_engine import LlamaCppEngine

        engines.append(
            LlamaCppEngine(
                EngineConfig(model_path=str(embedded_model_path()), context=512, threads=1)
            )
        )
    for e in engines:
        e.load()
    return engines


@pytest.fixture(scope="module")
def engines(cache: Path) -> Iterator[list[Engine]]:
    loaded = _engines(cache)
    yield loaded
    for e in loaded:
        e.close()


def test_prefix_reuse_evaluates_only_the_new_part_and_changes_nothing(
    engines: list[Engine], tok: ServerTokenizer
) -> None:
    first = tok.encode(PREFIX + "<|im_start|>user\nLike Alien?<|im_end|>\n<|im_start|>assistant\n")
    second = tok.encode(PREFIX + "<|im_start|>user\nLike Heat?<|im_end|>\n<|im_start|>assistant\n")
    shared = len(tok.encode(PREFIX + "<|im_start|>user\nLike"))
    greedy = SamplingOptions(max_tokens=6, temperature=0.0, end_ids=tok.end_ids)
    for engine in engines:
        from model_server.engines.base import GenerationStats

        list(engine.generate(first, greedy))
        stats = GenerationStats()
        cached = list(engine.generate(second, greedy, stats=stats))
        assert stats.cached_tokens >= shared - 1 and stats.cached_tokens < len(second), engine.name
        cold = GenerationStats()
        uncached = list(
            engine.generate(
                second, SamplingOptions(**{**_fields(greedy), "cache_prompt": False}), stats=cold
            )
        )
        assert cold.cached_tokens == 0
        assert cached == uncached, engine.name  # reusing the KV cache gives the same tokens


def _fields(opts: SamplingOptions) -> dict:
    return {f: getattr(opts, f) for f in opts.__struct_fields__}


@needs_llama_cpp
def test_both_engines_give_the_same_greedy_tokens(
    engines: list[Engine], tok: ServerTokenizer
) -> None:
    prompt = tok.encode(
        PREFIX + "<|im_start|>user\nOne film like Jaws?<|im_end|>\n<|im_start|>assistant\n"
    )
    opts = SamplingOptions(max_tokens=10, temperature=0.0, end_ids=tok.end_ids)
    outs = [list(e.generate(prompt, opts)) for e in engines]
    assert outs[0] == outs[1]


def test_cancel_stops_between_tokens(engines: list[Engine], tok: ServerTokenizer) -> None:
    from model_server.engines.base import Cancelled

    cancel = threading.Event()
    got = []
    opts = SamplingOptions(max_tokens=100, temperature=0.0, end_ids=tok.end_ids, ignore_eos=True)
    with pytest.raises(Cancelled):
        for t in engines[0].generate(tok.encode("Tell me a story"), opts, cancel):
            got.append(t)
            if len(got) == 3:
                cancel.set()
    assert len(got) == 3


@pytest.fixture(scope="module")
def llama_server(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python (the `llama` extra) is not installed")
    with model_server(cache, tmp_path_factory.mktemp("ms_llama"), engine="llama_cpp") as s:
        yield s


@pytest.mark.slow
def test_llama_cpp_engine_over_http(
    llama_server: RunningServer, engines: list[Engine], tok: ServerTokenizer
) -> None:
    models = httpx.get(llama_server.base + "/v1/models").json()["data"][0]
    assert models["engine"] == "llama_cpp"
    prompt = PREFIX + "<|im_start|>user\nA comedy please.<|im_end|>\n<|im_start|>assistant\n"
    body = {"prompt": prompt, "max_tokens": 8, "temperature": 0}
    r = httpx.post(llama_server.base + "/v1/completions", json=body, timeout=120).json()
    opts = SamplingOptions(max_tokens=8, temperature=0.0, end_ids=tok.end_ids)
    expected = list(engines[0].generate(tok.encode(prompt), opts))  # ctransformers, in-process
    assert r["choices"][0]["text"] == tok.decode(t for t in expected if t not in tok.end_ids)
    with httpx.stream(
        "POST", llama_server.base + "/v1/completions", json={**body, "stream": True}
    ) as s:
        lines = [line for line in s.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and len(lines) > 2
    assert llama_server.metric("moviemind_model_prompt_tokens_cached_total") > 0  # prefix reused


# ---- the HTTP layer with a scripted engine ------------------------------------------------------


def _scripted_app(tok: ServerTokenizer, delay_s: float, loaded: threading.Event, **env: str):
    settings = load_settings({f"MOVIEMIND_MODEL_{k.upper()}": v for k, v in env.items()})
    info = tok.info
    word = tok.encode(" movie")[0]
    state = ServerState(
        settings=settings,
        tokenizer=tok,
        template=select_template(info, "chatml", tok.tokens),
        model_name="scripted",
        context=2048,
        engine_factory=lambda slot: ScriptedEngine([word], delay_s, loaded, tok.vocab_size),
    )
    return create_app(state), state


def test_not_ready_until_loaded(tok: ServerTokenizer) -> None:
    loaded = threading.Event()
    app, state = _scripted_app(tok, 0.0, loaded)
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["error"]["type"] == "not_ready"
        r = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        )
        assert r.status_code == 503 and r.headers["retry-after"]
        assert client.get("/healthz").status_code == 200
        assert client.post("/tokenize", json={"content": "hi"}).status_code == 200
        loaded.set()
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        assert client.get("/readyz").status_code == 200
        r = client.post("/v1/completions", json={"prompt": "a", "max_tokens": 3, "temperature": 0})
        assert r.json()["choices"][0]["text"] == " movie movie movie"


def test_deadline_gives_504_or_a_stream_error_event(tok: ServerTokenizer) -> None:
    loaded = threading.Event()
    loaded.set()
    app, state = _scripted_app(tok, 0.05, loaded, deadline_s="0.5")
    with TestClient(app) as client:
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        r = client.post("/v1/completions", json={"prompt": "a", "max_tokens": 200})
        assert r.status_code == 504 and r.json()["error"]["type"] == "deadline_exceeded"
        r = client.post("/v1/completions", json={"prompt": "a", "max_tokens": 200, "stream": True})
        events = [line for line in r.text.splitlines() if line.startswith("data: ")]
        assert '"deadline_exceeded"' in events[-2] and events[-1] == "data: [DONE]"
        assert 0 < sum('"text"' in e for e in events) < 200
        for _ in range(100):
            if state.scheduler is not None and state.scheduler.busy == 0:
                break
            time.sleep(0.05)
        assert state.scheduler is not None and state.scheduler.busy == 0  # slot given back


def test_scheduler_slots_queue_and_prefix_routing(tok: ServerTokenizer) -> None:
    import asyncio

    from model_server.metrics import Metrics
    from model_server.scheduler import QueueFull, Scheduler

    loaded = threading.Event()
    loaded.set()
    a, b = (ScriptedEngine([5], 0.01, loaded, 64) for _ in range(2))
    a._cached[:] = [1, 2, 3]
    b._cached[:] = [7, 8]
    metrics = Metrics()
    opts = SamplingOptions(max_tokens=3, temperature=0.0)

    async def scenario() -> None:
        sched = Scheduler([a, b], queue_limit=0, metrics=metrics)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        g1 = await sched.start([7, 8, 9], opts, deadline)  # b holds its prefix
        assert sched.busy == 1 and a in sched._free
        g2 = await sched.start([1, 2, 4], opts, deadline)
        assert sched.busy == 2
        with pytest.raises(QueueFull):
            await sched.start([1], opts, deadline)
        assert [t async for t in g1.tokens()] == [5, 5, 5]
        assert [t async for t in g2.tokens()] == [5, 5, 5]
        for _ in range(100):
            if sched.busy == 0:
                break
            await asyncio.sleep(0.01)
        assert sched.busy == 0
        assert g1.stats.cached_tokens == 2 and g2.stats.cached_tokens == 2
        sched.close()

    asyncio.run(scenario())
