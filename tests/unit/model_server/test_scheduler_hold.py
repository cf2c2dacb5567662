"""An answer written in several requests keeps its slot between them (`Hold`): with one slot and
no queue, a newcomer arriving between two picks is refused (429) instead of breaking the answer
that is half written; the slot goes on when the answer says it is done, or after `hold_s`."""

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
from model_server.scheduler import Hold, QueueFull, Scheduler
from model_server.settings import load_settings
from model_server.tokenizer import ServerTokenizer
from tests.support.model_server_helpers import ScriptedEngine, embedded_info, shared_cache

OPTS = SamplingOptions(max_tokens=3, temperature=0.0)


def _engine() -> ScriptedEngine:
    loaded = threading.Event()
    loaded.set()
    return ScriptedEngine([5], 0.0, loaded, 64)


async def _run(sched: Scheduler, hold: Hold | None) -> None:
    gen = await sched.start([1, 2, 3], OPTS, asyncio.get_running_loop().time() + 30, hold)
    assert len([t async for t in gen.tokens()]) == 3
    await asyncio.sleep(0.05)  # the worker's done-callback hands the slot on


def test_a_newcomer_between_two_picks_is_refused_and_the_answer_goes_on() -> None:
    async def scenario() -> None:
        sched = Scheduler([_engine()], queue_limit=0, metrics=Metrics(), hold_s=5.0)
        await _run(sched, Hold("answer-a", more=True))
        with pytest.raises(QueueFull):
            await sched.start([9], OPTS, asyncio.get_running_loop().time() + 30)
        await _run(sched, Hold("answer-a", more=False))  # its next pick gets the kept slot
        await _run(sched, None)  # the last pick said "no more": the slot is free again
        sched.close()

    asyncio.run(scenario())


def test_without_a_hold_the_newcomer_takes_the_slot_between_picks() -> None:
    """The behaviour the hold fixes (and what `hold_s=0`, or a client that names no answer, gets)."""

    async def scenario() -> None:
        sched = Scheduler([_engine()], queue_limit=0, metrics=Metrics(), hold_s=0.0)
        await _run(sched, Hold("answer-a", more=True))
        await _run(sched, None)  # the newcomer got in
        sched.close()

    asyncio.run(scenario())


def test_a_kept_slot_goes_on_after_hold_s_or_when_the_answer_ends() -> None:
    async def scenario() -> None:
        sched = Scheduler([_engine()], queue_limit=0, metrics=Metrics(), hold_s=0.2)
        await _run(sched, Hold("answer-a", more=True))
        with pytest.raises(QueueFull):
            await sched.start([9], OPTS, asyncio.get_running_loop().time() + 30)
        await asyncio.sleep(0.3)  # answer-a never came back
        await _run(sched, None)
        sched._hold_s = 30.0
        await _run(sched, Hold("answer-b", more=True))
        assert sched.release_hold("answer-b") is True  # DELETE /v1/answers/answer-b
        assert sched.release_hold("answer-b") is False
        await _run(sched, None)
        sched.close()

    asyncio.run(scenario())


def test_close_closes_a_kept_engine() -> None:
    async def scenario() -> None:
        engine = _engine()
        sched = Scheduler([engine], queue_limit=0, metrics=Metrics(), hold_s=30.0)
        await _run(sched, Hold("answer-a", more=True))
        sched.close()
        assert engine.closed == 1

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> ServerTokenizer:
    return ServerTokenizer(embedded_info(shared_cache(tmp_path_factory)))


def test_over_http_the_answer_keeps_its_slot_until_it_says_it_is_done(
    tok: ServerTokenizer,
) -> None:
    """The request field, the capability and DELETE /v1/answers/{id}, through the app (whose
    non-streamed replies abort their finished generation: that must not drop the hold)."""

    def factory(slot: int) -> ScriptedEngine:
        loaded = threading.Event()
        loaded.set()
        return ScriptedEngine([tok.encode(" movie")[0]], 0.0, loaded, tok.vocab_size)

    state = ServerState(
        settings=load_settings({"MOVIEMIND_MODEL_QUEUE": "0"}),
        tokenizer=tok,
        template=ChatTemplate(chatml_source(), "chatml"),
        model_name="scripted",
        context=2048,
        engine_factory=factory,
    )

    def chat(client: TestClient, answer: dict | None, stream: bool = False) -> int:
        body: dict = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        if answer is not None:
            body["moviemind_answer"] = answer
        if stream:
            body |= {"stream": True, "stop": [" movie"]}  # ends by a stop string
        return client.post("/v1/chat/completions", json=body).status_code

    def idle() -> None:
        """Wait until the last reply's worker has handed its slot back (it may lag the reply)."""
        assert state.scheduler is not None
        deadline = time.monotonic() + 10
        while state.scheduler.busy and time.monotonic() < deadline:
            time.sleep(0.005)

    with TestClient(create_app(state)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        caps = client.get("/v1/models").json()["data"][0]["capabilities"]
        assert caps["answer_hold"] is True
        for stream in (False, True):
            idle()
            assert chat(client, {"id": "a1", "more": True}, stream) == 200
            assert chat(client, None) == 429  # a newcomer between two picks
            assert chat(client, {"id": "a1", "more": True}, stream) == 200
            # Released now, or (its worker still winding down) as soon as the worker is back.
            assert client.delete("/v1/answers/a1").status_code == 200
            idle()
            assert chat(client, None) == 200
        assert client.delete("/v1/answers/a1").json() == {"released": False}
        # A refused request costs no prompt work: it is turned away before the tokenizer runs.
        idle()
        assert chat(client, {"id": "a2", "more": True}) == 200
        encoded: list[str] = []
        encode = tok.encode
        state.tokenizer.encode = lambda text, **kw: encoded.append(text) or encode(text, **kw)  # type: ignore[method-assign]
        try:
            assert chat(client, None) == 429
            r = client.post("/v1/completions", json={"prompt": "a", "max_tokens": 1})
            assert r.status_code == 429 and r.headers["retry-after"]
            assert encoded == []
            assert chat(client, {"id": "a2", "more": False}) == 200  # its own answer gets in
            assert len(encoded) == 1
        finally:
            del state.tokenizer.encode


def test_an_answer_said_done_while_its_request_winds_down_keeps_no_slot() -> None:
    """The edge abandons a pick (client gone, stream broken) and says the answer is done before
    the engine has noticed: the slot goes on when the generation returns, not `hold_s` later."""

    async def scenario() -> None:
        loaded = threading.Event()
        loaded.set()
        slow = ScriptedEngine([5], 0.05, loaded, 64)
        sched = Scheduler([slow], queue_limit=0, metrics=Metrics(), hold_s=30.0)
        loop = asyncio.get_running_loop()
        gen = await sched.start([1, 2, 3], OPTS, loop.time() + 30, Hold("answer-a", more=True))
        assert sched.release_hold("answer-a") is False  # nothing kept yet: still generating
        assert len([t async for t in gen.tokens()]) == 3
        await asyncio.sleep(0.05)
        await _run(sched, None)  # free, though the request said more would follow
        sched.close()

    asyncio.run(scenario())


def test_the_next_pick_waits_for_its_own_slot_while_the_last_one_winds_down() -> None:
    """The reply is out (a stop string matched) but the worker has not handed the slot back
    yet when the answer's next request arrives: it gets that slot, not a 429."""

    async def scenario() -> None:
        loaded = threading.Event()
        loaded.set()
        slow = ScriptedEngine([5], 0.05, loaded, 64)
        sched = Scheduler([slow], queue_limit=0, metrics=Metrics(), hold_s=5.0)
        loop = asyncio.get_running_loop()
        opts = SamplingOptions(max_tokens=50, temperature=0.0)
        gen = await sched.start([1, 2, 3], opts, loop.time() + 30, Hold("answer-a", more=True))
        tokens = gen.tokens()
        await tokens.__anext__()
        gen.abort("stop")  # the HTTP layer saw its stop string; the engine stops at its next token
        await tokens.aclose()
        assert sched.full() and not sched.full("answer-a")
        await _run(sched, Hold("answer-a", more=False))
        sched.close()

    asyncio.run(scenario())
