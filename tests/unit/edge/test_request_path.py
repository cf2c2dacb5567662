"""The edge's request path (prepare -> reason writer -> typed events) against a fake model tier
(tests/support/fake_chat.py): strategies, the slot hold between picks, and how an answer ends
when the tier is full, breaks or is slow: at once, picks standing, catalog reasons for the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from edge.events import Degraded, Failure, Reason, Result, Token
from edge.index_store import IndexStore, Snapshot
from edge.metrics import EdgeMetrics
from edge.reasons.call import HOLD_FIELD
from edge.service import Prepared, Recommender
from edge.settings import EdgeSettings
from edge.wire import RecommendRequest
from moviemind_core.storage import S3Settings
from tests.support.fake_chat import Broken, FakeChat, Hang, Text, Unavailable, first_choice

# Needs the exported MiniLM and the sample index (built by `make index`), so not in test-fast.
pytestmark = pytest.mark.slow

K = 4


@pytest.fixture(scope="module")
def snapshot(
    models_dir: Path, sample_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Snapshot:
    store = IndexStore(
        str(sample_index),
        models_dir / "minilm",
        cache_dir=tmp_path_factory.mktemp("cache"),
        s3=S3Settings(),
        embed_threads=1,
        bayes_votes=20.0,
    )
    assert store.refresh(), store.last_error
    assert store.current is not None
    return store.current


def ask(
    snapshot: Snapshot, tier: FakeChat, settings: EdgeSettings | None = None, **req: object
) -> tuple[Recommender, Prepared]:
    rec = Recommender(settings or EdgeSettings(), tier, EdgeMetrics())  # type: ignore[arg-type]
    body = {"liked": ["Heat", "The Godfather"], "query": "crime saga", "k": K, **req}
    return rec, rec.prepare(snapshot, msgspec.convert(body, RecommendRequest))


def run(rec: Recommender, p: Prepared) -> list:
    async def go() -> list:
        return [ev async for ev in rec.answer(p)]

    return asyncio.run(go())


def result(events: list) -> Result:
    assert isinstance(events[-1], Result), events
    assert sum(isinstance(e, Result) for e in events) == 1
    return events[-1]


def test_guided_choice_writes_one_reason_per_pick_holding_the_slot_between_picks(
    snapshot: Snapshot,
) -> None:
    tier = FakeChat(
        capabilities={"continue_final_message": True, "guided_choice": True, "answer_hold": True}
    )
    rec, p = ask(snapshot, tier)
    events = run(rec, p)
    answer = result(events).response
    assert not answer.degraded and answer.degraded_reason is None
    assert answer.model == "fake-model"
    assert [r.reason_source for r in answer.recommendations] == ["model"] * K
    reasons = [e.event for e in events if isinstance(e, Reason)]
    assert [r.rank for r in reasons] == list(range(1, K + 1))
    assert not any(isinstance(e, Token) for e in events)  # raw text only with debug
    # One call per pick, each continuing an assistant line the edge began with the title.
    assert len(tier.calls) == K
    for call, rec_ in zip(tier.calls, answer.recommendations, strict=True):
        assert call.messages[-1]["role"] == "assistant"
        assert call.extra["guided_choice"]
        assert rec_.reason.startswith(call.messages[-1]["content"].strip()[:5])
    # The answer names itself; more follow on every pick but the last, and each call after the
    # first asks the server of the previous one first. The last pick said "no more": nothing
    # is left to end.
    ids = {c.extra[HOLD_FIELD]["id"] for c in tier.calls}
    assert len(ids) == 1
    assert [c.extra[HOLD_FIELD]["more"] for c in tier.calls][:-1] == [True] * (K - 1)
    assert [c.prefer for c in tier.calls] == [None] + [tier.urls[0]] * (K - 1)


def test_no_hold_fields_for_servers_that_do_not_advertise_it(snapshot: Snapshot) -> None:
    tier = FakeChat()
    rec, p = ask(snapshot, tier)
    run(rec, p)
    assert tier.calls and all(HOLD_FIELD not in c.extra for c in tier.calls)


def test_free_text_strategy_steers_nothing_without_a_tokenizer_and_gates_each_line(
    snapshot: Snapshot,
) -> None:
    tier = FakeChat(default=Text(" 1234 5678 9999"))  # gibberish: the gate turns it down
    rec, p = ask(snapshot, tier, EdgeSettings(reason_style="free"), debug=True)
    events = run(rec, p)
    answer = result(events).response
    assert all(r.reason_source == "catalog" for r in answer.recommendations)
    assert not any(isinstance(e, Reason) for e in events)
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert tokens and all("1234" in t for t in tokens)
    assert all("guided_choice" not in c.extra and c.stop for c in tier.calls)
    assert answer.raw_model_text and not answer.degraded


def test_single_call_when_the_upstream_cannot_continue_a_message(snapshot: Snapshot) -> None:
    tier = FakeChat(capabilities={})
    rec, p = ask(snapshot, tier, debug=True)
    picks = [s.movie for s in p.ranked[:K]]
    lines = "".join(
        f"{i}. {m.title} - a gripping crime story about loyalty and ambition.\n"
        for i, m in enumerate(picks, 1)
    )
    tier.default = Text(lines)
    events = run(rec, p)
    assert len(tier.calls) == 1 and tier.calls[0].messages[-1]["role"] == "user"
    answer = result(events).response
    assert [r.id for r in answer.recommendations] == [m.id for m in picks]
    assert answer.raw_model_text == lines and not answer.degraded


def test_explain_false_asks_no_model(snapshot: Snapshot) -> None:
    tier = FakeChat()
    rec, p = ask(snapshot, tier, explain=False)
    events = run(rec, p)
    assert len(events) == 1 and not result(events).response.degraded
    assert tier.calls == []


def test_a_full_tier_mid_answer_ends_it_at_once_with_catalog_reasons(snapshot: Snapshot) -> None:
    """Pick 1 gets a model reason; the tier is full for pick 2 (429 everywhere): no retry, no
    wait; the picks stand, the rest keep catalog reasons, and the slot kept for the answer
    is given back."""
    tier = FakeChat(
        replies=[first_choice, Unavailable()],
        capabilities={"continue_final_message": True, "guided_choice": True, "answer_hold": True},
    )
    rec, p = ask(snapshot, tier)
    loop_end: list[float] = []

    async def go() -> list:
        evs = [ev async for ev in rec.answer(p)]
        loop_end.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0)  # let the background "answer done" note run
        return evs

    events = asyncio.run(go())
    answer = result(events).response
    assert len(tier.calls) == 2  # nothing asked after the failure
    assert answer.degraded and answer.degraded_reason is not None
    assert answer.degraded_reason.startswith(Degraded.UPSTREAM_BROKEN.value + ":")
    assert [r.reason_source for r in answer.recommendations] == ["model"] + ["catalog"] * (K - 1)
    assert [type(e) for e in events] == [Reason, Failure, Result]
    assert tier.failed_at is not None and loop_end[0] - tier.failed_at < 0.2
    assert tier.ended == [(tier.urls[0], tier.calls[0].extra[HOLD_FIELD]["id"])]
    assert (
        'moviemind_edge_degraded_total{reason="upstream_broken"} 1.0'
        in rec.metrics.render().decode()
    )


def test_a_full_tier_from_the_start_is_unavailable_not_broken(snapshot: Snapshot) -> None:
    tier = FakeChat(default=Unavailable())
    rec, p = ask(snapshot, tier)
    events = run(rec, p)
    answer = result(events).response
    assert [type(e) for e in events] == [Result]
    assert answer.degraded_reason == Degraded.UPSTREAM_UNAVAILABLE.wire()
    assert answer.model is None and len(tier.calls) == 1
    assert all(r.reason_source == "catalog" and r.reason for r in answer.recommendations)


def test_a_stream_broken_mid_answer_is_upstream_broken(snapshot: Snapshot) -> None:
    tier = FakeChat(replies=[first_choice, Broken()])
    rec, p = ask(snapshot, tier)
    events = run(rec, p)
    answer = result(events).response
    assert isinstance(events[-2], Failure) and events[-2].type == "upstream_broken"
    assert answer.degraded_reason == Degraded.UPSTREAM_BROKEN.wire()
    assert len(tier.calls) == 2 and len(answer.recommendations) == K


def test_every_upstream_timing_out_is_upstream_timeout(snapshot: Snapshot) -> None:
    tier = FakeChat(default=Unavailable("first_token_timeout: no first token", timeout=True))
    rec, p = ask(snapshot, tier)
    answer = result(run(rec, p)).response
    assert answer.degraded_reason == Degraded.UPSTREAM_TIMEOUT.wire()


def test_the_reasons_budget_ends_a_slow_model_without_degrading(snapshot: Snapshot) -> None:
    tier = FakeChat(replies=[first_choice, Hang(30)])
    rec, p = ask(snapshot, tier, EdgeSettings(reasons_timeout_s=0.3))
    events = asyncio.run(asyncio.wait_for(_collect(rec, p), 5))
    answer = result(events).response
    assert not answer.degraded and answer.recommendations[0].reason_source == "model"
    assert 'moviemind_edge_reasons_total{verdict="timeout"} 1.0' in rec.metrics.render().decode()


async def _collect(rec: Recommender, p: Prepared) -> list:
    return [ev async for ev in rec.answer(p)]
