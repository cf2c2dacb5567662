"""edge.prompt: the prompt, its token budget and counters."""

from __future__ import annotations

import pytest

from edge.prompt import (
    REASON_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    TEMPLATE_OVERHEAD,
    ApproxCounter,
    HFCounter,
    build_prompt,
    build_reason_messages,
    reason_openings,
)
from tests.support.catalog import movie
from tests.support.servers import ROOT


class WordCounter:
    """Whitespace words: additive, so the prompt's arithmetic can be checked exactly."""

    def count(self, text: str) -> int:
        return len(text.split())


PROMPT_CANDIDATES = [
    movie(
        200 + i,
        f"Candidate Film {i}",
        1990 + i,
        genres=("Drama", "Crime", "Thriller", "Mystery"),
        director=f"Director {i}",
        keywords=("heist", "city", "night", "chase", "rain"),
        overview="A long overview " * 10,
    )
    for i in range(30)
]
LIKED = [movie(1, "Heat", 1995), movie(2, "The Matrix", 1999)]


def recount(messages: list[dict[str, str]], counter) -> int:
    return sum(counter.count(m["content"]) for m in messages) + TEMPLATE_OVERHEAD


def test_prompt_starts_with_the_fixed_system_prompt_and_names_the_request() -> None:
    a = build_prompt(LIKED, "something tense", PROMPT_CANDIDATES, 5, WordCounter(), 512)
    b = build_prompt([movie(3, "Up", 2009)], "", PROMPT_CANDIDATES[5:], 2, WordCounter(), 300)
    assert a.messages[0] == b.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = a.messages[1]["content"]
    assert a.messages[1]["role"] == "user"
    assert "Heat (1995)" in user and "The Matrix (1999)" in user
    assert "Mood: something tense" in user
    # The request line follows the system prompt, so requests with the same k share it as a
    # prefix (cached by the model server); the per-user part comes after it.
    assert user.startswith("Pick the 5 best candidates for me.\nI enjoyed: ")
    assert b.messages[1]["content"].startswith("Pick the 2 best candidates for me.\n")
    assert "[1] Candidate Film 0 (1990)" in user
    assert "Mood:" not in b.messages[1]["content"]


def test_candidate_years_only_where_the_title_is_ambiguous() -> None:
    ambiguous = {203}
    p = build_prompt(
        LIKED,
        "",
        PROMPT_CANDIDATES[:5],
        5,
        WordCounter(),
        512,
        needs_year=lambda m: m.id in ambiguous,
    )
    user = p.messages[1]["content"]
    assert "[1] Candidate Film 0: drama" in user
    assert "[4] Candidate Film 3 (1993): drama" in user
    assert user.count("(19") == 1 + 2  # that one candidate, and both liked movies


@pytest.mark.parametrize("budget", [150, 200, 300, 512, 2000])
def test_prompt_fits_the_budget_counted_in_the_counters_tokens(budget: int) -> None:
    counter = WordCounter()
    p = build_prompt(LIKED, "tense", PROMPT_CANDIDATES, 5, counter, budget)
    assert p.tokens <= budget
    assert recount(p.messages, counter) <= budget
    assert len(p.candidates) + p.dropped == len(PROMPT_CANDIDATES)
    assert len(p.candidates) >= 5
    assert p.messages[1]["content"].count("\n[") == len(p.candidates)


def test_prompt_trims_to_the_budget_and_keeps_at_least_k() -> None:
    counter = WordCounter()
    roomy = build_prompt(LIKED, "", PROMPT_CANDIDATES, 5, counter, 5000)
    assert roomy.dropped == 0
    assert (
        "[1] Candidate Film 0 (1990): drama, crime; heist, city, night"
        in (roomy.messages[1]["content"])
    )
    mid = build_prompt(LIKED, "", PROMPT_CANDIDATES, 5, counter, 300)
    assert 5 <= len(mid.candidates) < len(PROMPT_CANDIDATES)
    assert mid.tokens <= 300
    # k candidates with every detail would not fit: details go, the k candidates stay.
    tight = build_prompt(LIKED, "", PROMPT_CANDIDATES, 5, counter, 140)
    assert len(tight.candidates) >= 5 and tight.tokens <= 140
    assert "heist" not in tight.messages[1]["content"]
    assert "[1] Candidate Film 0 (1990): drama, crime, thriller\n" in tight.messages[1]["content"]
    # Even a budget the fixed part alone exceeds keeps k bare candidates: the model must choose.
    starved = build_prompt(LIKED, "", PROMPT_CANDIDATES, 7, counter, 64)
    assert len(starved.candidates) == 7
    assert "[7] Candidate Film 6 (1996)" in starved.messages[1]["content"]
    assert "drama" not in starved.messages[1]["content"]


def test_liked_titles_are_the_records_display_titles_without_alternates() -> None:
    """The catalog split MovieLens' alternates off at build: the prompt shows the display title
    and none of the alternate or original titles the record also carries."""
    amelie = movie(
        9,
        "Amélie",
        2001,
        original_title="Le fabuleux destin d'Amélie Poulain",
        alt_titles=("Le fabuleux destin d'Amélie Poulain", "Amelie"),
    )
    p = build_prompt([amelie], "", PROMPT_CANDIDATES, 5, WordCounter(), 512)
    assert "I enjoyed: Amélie (2001)." in p.messages[1]["content"]
    assert "fabuleux" not in p.messages[1]["content"]


def test_approx_counter_and_hf_counter_without_padding() -> None:
    assert ApproxCounter().count("") == 1
    assert ApproxCounter().count("x" * 36) == 10
    tok = ROOT / "var" / "models" / "minilm" / "tokenizer.json"
    if not tok.is_file():
        pytest.skip("var/models/minilm not built (make index)")
    hf = HFCounter(tok.read_bytes())
    # MiniLM's tokenizer.json pads to 128: the counter must count real tokens only.
    assert hf.count("hello world") == 2
    assert hf.count("hello world " * 100) == 200


def test_reason_messages_share_everything_before_the_pick() -> None:
    picks = PROMPT_CANDIDATES[:3]
    calls = [build_reason_messages(LIKED, " slow and rainy ", m) for m in picks]
    assert all(c[0] == {"role": "system", "content": REASON_SYSTEM_PROMPT} for c in calls)
    users = [c[1]["content"] for c in calls]
    head = "I enjoyed: Heat (1995); The Matrix (1999).\nMood: slow and rainy\n\nPick: "
    assert all(u.startswith(head) for u in users)  # the model server's cached prefix
    first = users[0][len(head) :].splitlines()
    assert first == [
        "Candidate Film 0 (1990)",
        "Genres: drama, crime, thriller",
        "Keywords: heist, city, night, chase, rain",
        "Plot: " + ("A long overview " * 10)[:400],
        "Why will I enjoy it?",
    ]
    # Each call names its own pick only.
    assert "Candidate Film 1" not in users[0] and "Candidate Film 1 (1991)" in users[1]


def test_reason_messages_without_liked_movies_or_mood_start_at_the_pick() -> None:
    m = movie(5, "Twelve Monkeys", 1995, alt_titles=("12 Monkeys",))
    user = build_reason_messages([], "", m)
    assert user[1]["content"].startswith("Pick: Twelve Monkeys (1995)\n")
    assert "12 Monkeys" not in user[1]["content"]


def test_reason_openings_begin_with_the_display_title() -> None:
    m = movie(5, "Léon: The Professional", 1994, alt_titles=("The Professional", "Léon"))
    assert reason_openings(m) == [
        "Léon: The Professional is a",
        "Watch Léon: The Professional for its",
        "Léon: The Professional offers",
    ]
