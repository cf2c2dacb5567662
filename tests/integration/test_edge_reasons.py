"""Guided per-pick reasons through a real edge: the ranker's picks first, then gated model reasons.

The upstream is the scriptable OpenAI stub (it can be told to advertise continuing a final
assistant message, to die mid-answer, or to hang); the real model server's behaviour is covered
by tests/integration/test_web_page.py and benchmarks/reasons_bench.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from tokenizers import Tokenizer

from model_server.tokenizer import ServerTokenizer
from tests.support.model_server_helpers import embedded_info, shared_cache
from tests.support.openai_stub import Hang, OpenAIStub, Stream
from tests.support.servers import Server, start_edge

JUNK = " comedy, drama, romance. [1] Lord of War: action, crime, drama."

BODY = {"liked": ["Heat"], "query": "tense", "k": 3}


# Ends of "<Title> is a", the edge's first opening; different enough from each other that the
# gate does not take one for a repeat of another.
SHAPES = (
    " patient and careful film of {} and {}, told with care.",
    " story that leads with {} and then {}, keeping you watching to the last scene.",
    " film whose mix of {} with {} makes the evening fly by.",
    " treat for anyone who enjoys {} and how it handles {} here.",
    " film built around {} and {} that rewards a viewer who pays attention.",
)


def fitting_reasons(edge: Server, body: dict) -> list[str]:
    """A sentence per pick of `body` that the gate accepts: built from the pick's own keywords
    (the stub does not read the prompt, so the test writes what a good model would)."""
    picks = httpx.post(edge.url + "/v1/recommend", json={**body, "explain": False}).json()
    out = []
    for i, rec in enumerate(picks["recommendations"]):
        movie = httpx.get(f"{edge.url}/v1/movies/{rec['id']}").json()
        words = [*movie["keywords"], *movie["overview"].lower().split()][i : i + 2]
        out.append(SHAPES[i % len(SHAPES)].format(*words))
    return out


def sse_events(r: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for block in r.read().decode().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = msgspec.json.decode(line[6:])
        if name:
            events.append((name, data))
    return events


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(Stream([JUNK]), capabilities={"continue_final_message": True}) as s:
        yield s


def edge_on(logs: Path, sample_index: Path, url: str, **env: str) -> Server:
    return start_edge(
        logs,
        [url],
        index=str(sample_index),
        MOVIEMIND_EDGE_PRIME_PREFIX="false",
        MOVIEMIND_EDGE_RELOAD_INTERVAL_S="0",
        **env,
    )


@pytest.fixture
def edge(logs: Path, sample_index: Path, stub: OpenAIStub) -> Iterator[Server]:
    s = edge_on(logs, sample_index, stub.url, MOVIEMIND_EDGE_REASONS_TIMEOUT_S="3")
    try:
        yield s
    finally:
        s.stop()


def test_picks_first_then_one_gated_reason_per_pick(edge: Server, stub: OpenAIStub) -> None:
    good = fitting_reasons(edge, BODY)
    GOOD, OTHER = good[0], good[2]  # noqa: N806 -- constants of this test
    # Pick 1 passes at once; pick 2's three attempts are junk; pick 3 passes at once.
    stub.script(Stream([GOOD]), Stream([JUNK]), Stream([JUNK]), Stream([JUNK]), Stream([OTHER]))
    with httpx.stream("POST", edge.url + "/v1/recommend", json={**BODY, "stream": True}) as r:
        assert r.status_code == 200
        events = sse_events(r)
    names = [e for e, _ in events]
    assert names == ["candidates", "reason", "reason", "recommendations", "done"], names
    first = events[0][1]["candidates"]
    assert len(first) == 3 and all(c["reason_source"] == "catalog" and c["reason"] for c in first)
    final = events[-2][1]
    # The ranker picks: the same movies in the same order as shown first.
    assert [c["id"] for c in final["recommendations"]] == [c["id"] for c in first]
    reasons = {d["rank"]: d for e, d in events if e == "reason"}
    assert set(reasons) == {1, 3}
    title1, title3 = first[0]["title"], first[2]["title"]
    assert reasons[1]["reason"] == f"{title1} is a{GOOD}" and reasons[1]["source"] == "model"
    assert reasons[3]["reason"] == f"{title3} is a{OTHER}"
    assert reasons[1]["id"] == first[0]["id"]
    recs = final["recommendations"]
    assert [r["reason_source"] for r in recs] == ["model", "catalog", "model"]
    assert recs[1]["reason"] == first[1]["reason"]  # the junk never shows: the catalog's stays
    assert final["explanation"] == f"{title1} is a{GOOD}\n{title3} is a{OTHER}"
    assert final["raw_model_text"] is None and not final["degraded"]

    # One call per attempt: the edge begins each sentence (assistant prefill), the model ends it.
    calls = [r.body for r in stub.chat_requests]
    assert len(calls) == 5
    openings = [c["messages"][-1] for c in calls]
    assert all(o["role"] == "assistant" for o in openings)
    title2 = first[1]["title"]
    assert [o["content"] for o in openings] == [
        f"{title1} is a",
        f"{title2} is a",
        f"Watch {title2} for its",
        f"{title2} offers",
        f"{title3} is a",
    ]
    # Each call asks about its own pick only, after the shared head (the prefix cache's part).
    users = [c["messages"][-2]["content"] for c in calls]
    assert all(u.startswith("I enjoyed: Heat (1995).\nMood: tense\n\nPick: ") for u in users)
    assert f"Pick: {title2} (" in users[1] and title1 not in users[1]
    assert all(c["stop"] == [".", "!", "?", "\n"] for c in calls)
    # The pick's token budget (80) is shared by its attempts: the stub counts a delta a token.
    assert [c["max_tokens"] for c in calls] == [80, 80, 79, 78, 80]
    # Steering needs the model's tokenizer, which the stub does not serve.
    assert all("logit_bias" not in c for c in calls)
    metrics = httpx.get(edge.url + "/metrics").text
    assert 'moviemind_edge_reasons_total{verdict="list_marker"} 1.0' in metrics
    assert 'moviemind_edge_reasons_total{verdict="shown"} 2.0' in metrics
    assert 'moviemind_edge_reason_attempts_total{verdict="list_marker"} 3.0' in metrics


def test_debug_returns_the_raw_text_and_token_events(edge: Server, stub: OpenAIStub) -> None:
    stub.script(*[Stream([JUNK]) for _ in range(9)])
    body = {**BODY, "stream": True, "debug": True}
    with httpx.stream("POST", edge.url + "/v1/recommend", json=body) as r:
        events = sse_events(r)
    tokens = [d["text"] for e, d in events if e == "token"]
    # Three picks, three openings each, every attempt rejected.
    assert len(tokens) == 9 and all(JUNK.strip() in t for t in tokens)
    assert [t.split(".")[0] for t in tokens] == ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    final = events[-2][1]
    assert JUNK.strip() in final["raw_model_text"]
    assert final["raw_model_text"] == "".join(tokens)
    assert final["explanation"] is None  # nothing passed the gate
    assert all(r["reason_source"] == "catalog" for r in final["recommendations"])


def test_upstream_without_prefill_gets_one_call_and_grounding(
    logs: Path, sample_index: Path
) -> None:
    with OpenAIStub(Stream(["no lines here"])) as plain:
        edge = edge_on(logs, sample_index, plain.url)
        try:
            r = httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=30)
        finally:
            edge.stop()
    assert r.status_code == 200
    body = r.json()
    assert len(plain.chat_requests) == 1
    assert plain.chat_requests[0].body["messages"][-1]["role"] == "user"
    assert len(body["recommendations"]) == 3 and body["explanation"] is None


def test_model_dying_mid_answer_keeps_the_picks(edge: Server, stub: OpenAIStub) -> None:
    stub.script(Stream([fitting_reasons(edge, BODY)[0]]), Stream(["A", " b", " c"], die_after=1))
    with httpx.stream("POST", edge.url + "/v1/recommend", json={**BODY, "stream": True}) as r:
        events = sse_events(r)
    names = [e for e, _ in events]
    assert names == ["candidates", "reason", "error", "recommendations", "done"], names
    final = events[-2][1]
    assert len(final["recommendations"]) == 3 and final["degraded"]
    assert final["recommendations"][0]["reason_source"] == "model"


def test_a_hanging_model_costs_at_most_the_reasons_budget(edge: Server, stub: OpenAIStub) -> None:
    stub.script(Stream([fitting_reasons(edge, BODY)[0]]), Hang(seconds=30))
    t0 = time.perf_counter()
    r = httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=30)
    took = time.perf_counter() - t0
    assert r.status_code == 200 and took < 5, took  # REASONS_TIMEOUT_S=3
    recs = r.json()["recommendations"]
    assert [x["reason_source"] for x in recs] == ["model", "catalog", "catalog"]


def test_llm_rerank_lets_the_model_order_the_candidates(
    logs: Path, sample_index: Path, stub: OpenAIStub
) -> None:
    edge = edge_on(logs, sample_index, stub.url, MOVIEMIND_EDGE_LLM_RERANK="true")
    try:
        # With k=3 the model chooses among 8 candidates (CANDIDATES): the ranker's top 8.
        ranked = httpx.post(
            edge.url + "/v1/recommend", json={**BODY, "k": 8, "explain": False}
        ).json()["recommendations"]
        third, first = ranked[2]["title"], ranked[0]["title"]
        stub.script(Stream([f"[3] {third} - first choice\n[1] {first} - second\n"]))
        r = httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=30).json()
    finally:
        edge.stop()
    assert len(stub.chat_requests) == 1  # one answer for all picks, not one call per pick
    assert stub.chat_requests[0].body["messages"][-1]["role"] == "user"
    ids = [x["id"] for x in r["recommendations"]]
    assert ids[:2] == [ranked[2]["id"], ranked[0]["id"]] and len(ids) == 3


def test_a_model_server_with_a_tokenizer_gets_each_picks_logit_bias(
    logs: Path, sample_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tokenizer = ServerTokenizer(embedded_info(shared_cache(tmp_path_factory))).to_json()
    tok = Tokenizer.from_str(tokenizer)
    comedy = str(tok.encode(" comedy", add_special_tokens=False).ids[0])
    caps = {"continue_final_message": True}
    with OpenAIStub(Stream([JUNK]), capabilities=caps, tokenizer=tokenizer.encode()) as stub:
        edge = edge_on(logs, sample_index, stub.url)
        try:
            # The first request that asks the model starts the tokenizer fetch in the background
            # (without priming, nothing fetched it before); that request is not steered yet.
            httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=30)
            deadline = time.monotonic() + 10
            while not any(r.path == "/v1/tokenizer" for r in stub.requests):
                assert time.monotonic() < deadline, "the edge never fetched the tokenizer"
                time.sleep(0.1)
            time.sleep(0.3)
            stub.requests.clear()
            r = httpx.post(edge.url + "/v1/recommend", json=BODY, timeout=30)
        finally:
            edge.stop()
    assert r.status_code == 200
    picks = {rec["title"]: rec for rec in r.json()["recommendations"]}
    calls = [c.body for c in stub.chat_requests]
    assert len(calls) == 9  # three junk attempts for each of the three picks
    for call in calls:
        user = call["messages"][-2]["content"]
        title = next(t for t in picks if f"Pick: {t} (" in user)
        bias = call["logit_bias"]
        assert bias and all(v == -100 for v in bias.values())
        # " comedy" is banned exactly where the catalog says the pick is no comedy.
        assert (comedy in bias) == ("Comedy" not in picks[title]["genres"]), title


def test_with_guided_choice_the_model_chooses_among_catalog_sentences(
    logs: Path, sample_index: Path
) -> None:
    """The edge opens "<Title> is" and sends the sentences the catalog backs as `guided_choice`,
    with no stop strings (a choice may hold "H. Macy") and no plot in the prompt (the choices
    carry it). An upstream that ignores the choices is still gated; a rejected sentence gets one
    more try, without the rejected sentence among the choices."""
    caps = {"continue_final_message": True, "guided_choice": True}
    with OpenAIStub(Stream([JUNK]), capabilities=caps) as stub:
        edge = edge_on(logs, sample_index, stub.url)
        try:
            picks = httpx.post(edge.url + "/v1/recommend", json={**BODY, "explain": False}).json()
            first, second = picks["recommendations"][:2]
            genre = first["genres"][0].lower()
            # What a conforming server returns for pick 1; pick 2's server ignored the choices
            # once, then chose; pick 3's ignored them twice.
            chosen = f" a {genre} film."
            again = f" a {second['genres'][0].lower()} film."
            stub.script(Stream([chosen]), Stream([JUNK]), Stream([again]))
            r = httpx.post(edge.url + "/v1/recommend", json={**BODY, "debug": True}, timeout=30)
            metrics = httpx.get(edge.url + "/metrics").text
        finally:
            edge.stop()
    assert r.status_code == 200
    recs = r.json()["recommendations"]
    titles = [x["title"] for x in recs]
    calls = [c.body for c in stub.chat_requests]
    # Pick 1 at once, picks 2 and 3 twice each.
    assert [c["messages"][-1]["content"] for c in calls] == [
        f"{titles[0]} is",
        f"{titles[1]} is",
        f"{titles[1]} is",
        f"{titles[2]} is",
        f"{titles[2]} is",
    ]
    for call, title in zip(calls, [titles[0], *titles[1:2] * 2, *titles[2:3] * 2], strict=True):
        assert call["messages"][-1]["role"] == "assistant"
        assert "stop" not in call or call["stop"] is None
        assert call["repetition_penalty"] == 1.0 and "logit_bias" not in call
        choices = call["guided_choice"]
        assert choices and all(c.startswith((" a ", " an ")) and c.endswith(".") for c in choices)
        assert "\nPlot: " not in call["messages"][-2]["content"]
        assert f"Pick: {title} (" in call["messages"][-2]["content"]
    assert [x["reason_source"] for x in recs] == ["model", "model", "catalog"]
    assert recs[0]["reason"] == f"{titles[0]} is{chosen}"
    assert recs[1]["reason"] == f"{titles[1]} is{again}"
    assert 'moviemind_edge_reasons_total{verdict="shown"} 2.0' in metrics
    assert 'moviemind_edge_reason_attempts_total{verdict="shown"} 2.0' in metrics
