"""Engines are closed on shutdown (issue 12, bug 7): idle ones at once, busy ones when their
generation returns, never under a running generation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from litestar.testing import TestClient

from model_server.app import ServerState, create_app
from model_server.chat_template import ChatTemplate, chatml_source
from model_server.metrics import Metrics
from model_server.sampling import SamplingOptions
from model_server.scheduler import Scheduler
from model_server.settings import load_settings
from model_server.tokenizer import ServerTokenizer
from tests.support.model_server_helpers import ScriptedEngine, embedded_info, shared_cache


def _loaded() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def test_close_closes_idle_engines_now_and_busy_ones_after_their_generation() -> None:
    idle, busy = (ScriptedEngine([5], 0.02, _loaded(), 64) for _ in range(2))
    busy._cached[:] = [1, 2]  # routes the request below to `busy`

    async def scenario() -> None:
        sched = Scheduler([idle, busy], queue_limit=1, metrics=Metrics())
        loop = asyncio.get_running_loop()
        opts = SamplingOptions(max_tokens=500, temperature=0.0)
        gen = await sched.start([1, 2, 3], opts, loop.time() + 30)
        tokens = gen.tokens()
        await tokens.__anext__()  # generating now
        sched.close()
        assert (idle.closed, busy.closed) == (1, 0)  # not freed under the running generation
        rest = [t async for t in tokens]
        assert len(rest) < 100 and gen.cancel_reason == "shutdown"
        for _ in range(200):
            if busy.closed:
                break
            await asyncio.sleep(0.01)
        assert (idle.closed, busy.closed) == (1, 1)

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> ServerTokenizer:
    return ServerTokenizer(embedded_info(shared_cache(tmp_path_factory)))


def test_app_shutdown_closes_every_engine(tok: ServerTokenizer) -> None:
    made: list[ScriptedEngine] = []

    def factory(slot: int) -> ScriptedEngine:
        made.append(ScriptedEngine([tok.encode(" movie")[0]], 0.0, _loaded(), tok.vocab_size))
        return made[-1]

    state = ServerState(
        settings=load_settings({"MOVIEMIND_MODEL_SLOTS": "2"}),
        tokenizer=tok,
        template=ChatTemplate(chatml_source(), "chatml"),
        model_name="scripted",
        context=2048,
        engine_factory=factory,
    )
    with TestClient(create_app(state)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        r = client.post("/v1/completions", json={"prompt": "a", "max_tokens": 2, "temperature": 0})
        assert r.json()["choices"][0]["text"] == " movie movie"
        assert [e.closed for e in made] == [0, 0]
    assert [e.closed for e in made] == [1, 1]
