"""A full or broken model tier mid-answer, through a real edge and real sockets on loopback:
the picks already sent stand and the answer ends with catalog reasons within a second of the
failure (issue 21: no retry loop holding a degraded answer).

The upstreams are OpenAI stubs that advertise prefill and guided choice (the per-pick strategy)
and answer the first pick, then refuse (429, as a model server with a full queue does) or cut
the stream mid-answer. `Recorded.at` is when a stub received a call, on the clock the test reads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.openai_stub import OpenAIStub, Status, Stream
from tests.support.servers import Server, start_edge, start_model_server

BODY = {"liked": ["Heat", "The Godfather"], "query": "crime saga", "k": 4}
CAPS = {"continue_final_message": True, "guided_choice": True}
FULL = Status(429, "all 1 slot(s) busy and 0 request(s) queued; retry later", retry_after=5)
# Within a second of the failure, as the load test's objective asks of every degraded answer.
BOUND_S = 1.0


@pytest.fixture
def tier() -> Iterator[tuple[OpenAIStub, OpenAIStub]]:
    """Near and far model servers, both full once they have answered one call."""
    with OpenAIStub(FULL, capabilities=CAPS) as near, OpenAIStub(FULL, capabilities=CAPS) as far:
        yield near, far


@pytest.fixture
def edge(logs: Path, sample_index: Path, tier: tuple[OpenAIStub, OpenAIStub]) -> Iterator[Server]:
    near, far = tier
    s = start_edge(
        logs,
        [near.url, far.url],
        index=str(sample_index),
        MOVIEMIND_EDGE_PRIME_PREFIX="false",
        MOVIEMIND_EDGE_RELOAD_INTERVAL_S="0",
        # Patient defaults, so that only the failure handling can make the answer quick.
        MOVIEMIND_EDGE_REASONS_TIMEOUT_S="30",
        MOVIEMIND_EDGE_FIRST_TOKEN_TIMEOUT_S="20",
    )
    try:
        yield s
    finally:
        s.stop()


def stream_answer(edge: Server) -> list[tuple[str, dict, float]]:
    """The SSE events of a streamed recommend, each with time.monotonic() at its arrival."""
    events: list[tuple[str, dict, float]] = []
    with httpx.stream(
        "POST", edge.url + "/v1/recommend", json={**BODY, "stream": True}, timeout=60
    ) as r:
        assert r.status_code == 200
        name, data = None, None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif not line and name:
                events.append((name, data, time.monotonic()))
                name, data = None, None
    return events


def chat_calls(*stubs: OpenAIStub) -> list:
    return sorted((r for s in stubs for r in s.chat_requests), key=lambda r: r.at)


def test_a_full_tier_mid_answer_ends_it_within_a_second(
    edge: Server, tier: tuple[OpenAIStub, OpenAIStub]
) -> None:
    near, far = tier
    near.script(Stream([" gripping crime saga."]))  # pick 1 answered; from then on: full
    events = stream_answer(edge)
    names = [e for e, _, _ in events]
    assert names[0] == "candidates" and names[-3:] == ["error", "recommendations", "done"], names
    calls = chat_calls(near, far)
    # Pick 1 on near; pick 2 asked near (where the answer's slot would be kept), then far; both
    # were full: nothing more was asked, and no call was repeated.
    assert len(calls) == 3, calls
    assert [c in near.chat_requests for c in calls] == [True, True, False]
    refused_at = calls[-1].at
    done_at = events[-1][2]
    print(f"degraded answer ended {1000 * (done_at - refused_at):.0f} ms after the last 429")
    assert done_at - refused_at < BOUND_S
    final = events[-2][1]
    assert final["degraded"] and final["degraded_reason"].startswith("upstream_broken")
    candidates = [c["id"] for c in events[0][1]["candidates"]]
    recs = final["recommendations"]
    assert [r["id"] for r in recs] == candidates  # the picks already sent stand
    assert all(r["reason"] for r in recs)
    assert [r["reason_source"] for r in recs][1:] == ["catalog"] * (len(recs) - 1)


def test_a_stream_cut_mid_answer_ends_it_within_a_second(
    edge: Server, tier: tuple[OpenAIStub, OpenAIStub]
) -> None:
    near, far = tier
    near.script(Stream([" gripping crime saga."]), Stream(["A", " b", " c"], die_after=1))
    t0 = time.monotonic()
    r = httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=60)
    answered_at = time.monotonic()
    assert r.status_code == 200
    body = r.json()
    assert body["degraded"] and body["degraded_reason"].startswith("upstream_broken")
    calls = chat_calls(near, far)
    assert len(calls) == 2, calls  # the broken pick is not retried, elsewhere or again
    cut_at = calls[-1].at  # the stub cuts the stream ~5 ms after this
    print(
        f"answer {1000 * (answered_at - t0):.0f} ms in all, "
        f"{1000 * (answered_at - cut_at):.0f} ms after the broken call"
    )
    assert answered_at - cut_at < BOUND_S
    assert len(body["recommendations"]) == BODY["k"]


def test_a_tier_full_from_the_start_answers_degraded_within_a_second(
    edge: Server, tier: tuple[OpenAIStub, OpenAIStub]
) -> None:
    near, far = tier
    t0 = time.monotonic()
    r = httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=60)
    took = time.monotonic() - t0
    body = r.json()
    assert body["degraded"] and body["degraded_reason"].startswith("upstream_unavailable")
    assert body["model"] is None and len(chat_calls(near, far)) == 2
    assert took < BOUND_S, took


@pytest.mark.slow
def test_a_real_model_server_keeps_the_slot_for_an_answer_it_has_begun(
    logs: Path, sample_index: Path
) -> None:
    """One slot, no queue, and a client taking the slot whenever it is free: the answer's later
    picks still get it (the slot is kept for them between picks) and the answer is complete;
    the newcomer is refused meanwhile. Without the hold the newcomer gets in between two picks
    and the answer ends degraded."""
    model = start_model_server(logs, MOVIEMIND_MODEL_QUEUE="0", MOVIEMIND_MODEL_SLOTS="1")
    edge = None
    stop = threading.Event()
    outcomes: list[tuple[int, float]] = []  # (status, time.monotonic() at the reply)

    def newcomer() -> None:
        with httpx.Client(base_url=model.url, timeout=60) as c:
            while not stop.is_set():
                r = c.post("/v1/completions", json={"prompt": "a", "max_tokens": 1})
                outcomes.append((r.status_code, time.monotonic()))

    try:
        edge = start_edge(
            logs,
            [model.url],
            index=str(sample_index),
            MOVIEMIND_EDGE_PRIME_PREFIX="false",
            MOVIEMIND_EDGE_RELOAD_INTERVAL_S="0",
            MOVIEMIND_EDGE_REASONS_TIMEOUT_S="120",
            MOVIEMIND_EDGE_FIRST_TOKEN_TIMEOUT_S="60",
        )
        body = {**BODY, "k": 4, "stream": True, "debug": True}
        # Warm up (the edge learns the server's capabilities, the model its prompt head).
        assert httpx.post(edge.url + "/v1/recommend", json=body, timeout=120).status_code == 200
        thread = threading.Thread(target=newcomer, daemon=True)
        events: list[tuple[str, dict]] = []
        with httpx.stream("POST", edge.url + "/v1/recommend", json=body, timeout=120) as r:
            name = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name or "", json.loads(line[6:])))
                    # Pick 1 is written: from now on the newcomer takes every free moment.
                    if name == "token" and not thread.is_alive():
                        thread.start()
        answered_at = time.monotonic()
        # The answer is done: its slot goes on at once (DELETE /v1/answers/{id}), well before
        # the 2 s the server would keep it for a pick that never comes.
        deadline = answered_at + 10
        while not any(status == 200 for status, _ in outcomes) and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        thread.join(60)
    finally:
        stop.set()
        if edge is not None:
            edge.stop()
        model.stop()
    answer = next(data for name, data in events if name == "recommendations")
    assert not answer["degraded"], (answer["degraded_reason"], outcomes)
    assert answer["model"] and sum(name == "token" for name, _ in events) >= 4
    # The newcomer was refused while the answer was written, and got in soon after it.
    statuses = [status for status, _ in outcomes]
    assert statuses[0] == 429 and 200 in statuses, statuses
    first_in = next(at for status, at in outcomes if status == 200)
    assert first_in - answered_at < 1.5, (first_in - answered_at, statuses)
