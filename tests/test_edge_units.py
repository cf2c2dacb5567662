"""Unit tests of the edge's pure modules: catalog titles, title resolution, ranking, prompt,
grounding, settings and protection. No servers, no model; small synthetic catalogs built here.
"""

from __future__ import annotations

import pytest

import edge.protection as protection
from edge.grounding import ground
from edge.prompt import (
    SYSTEM_PROMPT,
    TEMPLATE_OVERHEAD,
    ApproxCounter,
    HFCounter,
    build_prompt,
    short_title,
)
from edge.protection import ApiKeyGuard, RateLimiter
from edge.settings import EdgeSettings, SettingsError, load_settings
from edge.titles import TitleIndex
from moviemind_core.bundle import build_title_table
from moviemind_core.catalog import Movie, display_title, lookup_key, split_title_year
from tests.servers import ROOT

# ------------------------------------------------------------------------------------ catalog


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Matrix, The", "The Matrix"),
        ("Good, the Bad and the Ugly, The", "The Good, the Bad and the Ugly"),
        ("Avventura, L'", "L'Avventura"),
        (
            "Amelie (Fabuleux destin d'Amélie Poulain, Le)",
            "Amelie (Fabuleux destin d'Amélie Poulain, Le)",
        ),
        ("Matrix, The (1999)", "The Matrix (1999)"),
        ("Heat", "Heat"),
    ],
)
def test_display_title_moves_trailing_articles_to_the_front(raw: str, shown: str) -> None:
    assert display_title(raw) == shown


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("Troy (2004)", ("Troy", 2004)),
        ("troy (2004) ", ("troy", 2004)),
        ("Mini-series (1999-2001)", ("Mini-series", 1999)),
        ("Troy", ("Troy", None)),
        ("1984 (1984)", ("1984", 1984)),
        ("(1999)", ("", 1999)),
    ],
)
def test_split_title_year(raw: str, parts: tuple[str, int | None]) -> None:
    assert split_title_year(raw) == parts


def test_lookup_key_normalises_case_accents_punctuation_and_articles() -> None:
    assert lookup_key("Matrix, The") == lookup_key("the MATRIX") == "the matrix"
    assert lookup_key("Amélie") == "amelie"
    assert lookup_key("Fast & Furious") == "fast and furious"
    assert lookup_key("Godfather: Part II, The") == "the godfather part ii"
    assert lookup_key("!!!") == ""


# ------------------------------------------------------------------------------------- titles


def movie(id: int, title: str, year: int | None = None, votes: int = 10, **kw) -> Movie:
    return Movie(id=id, title=title, year=year, vote_count=votes, **kw)


TITLE_MOVIES = [
    movie(1, "Troy", 2004, votes=80),
    movie(2, "Troy", 1987, votes=2),
    movie(3, "The Matrix", 1999, votes=250),
    movie(4, "The Matrix Reloaded", 2003, votes=90),
    movie(5, "The Godfather", 1972, votes=200),
    movie(6, "The Godfather: Part II", 1974, votes=130),
    movie(7, "Amelie (Fabuleux destin d'Amélie Poulain, Le)", 2001, votes=100),
    movie(8, "The Shawshank Redemption", 1994, votes=300),
    movie(9, "Up", 2009, votes=60),
    movie(10, "X-Men", 2000, votes=70),
    movie(11, "Heat", 1995, votes=110),
]


@pytest.fixture(scope="module")
def titles() -> TitleIndex:
    return TitleIndex(TITLE_MOVIES, build_title_table(TITLE_MOVIES))


@pytest.mark.parametrize(
    ("typed", "movie_id"),
    [
        ("Troy", 1),
        ("troy (2004)", 1),
        ("TROY", 1),
        ("Troy (1987)", 2),
        ("Matrix, The", 3),
        ("the matrix (1999)", 3),
        ("godfather", 5),
        ("Godfather: Part II, The", 6),
        ("Amelie", 7),
        ("Fabuleux destin d'Amélie Poulain, Le", 7),
        ("Up", 9),
    ],
)
def test_resolve_exact_titles_in_every_spelling(
    titles: TitleIndex, typed: str, movie_id: int
) -> None:
    r = titles.resolve(typed)
    assert r is not None and r.id == movie_id
    assert r.input == typed


def test_resolve_ambiguous_title_takes_the_most_popular_and_says_so(titles: TitleIndex) -> None:
    r = titles.resolve("Troy")
    assert r is not None and (r.id, r.year) == (1, 2004)
    assert r.note and "most popular" in r.note


def test_resolve_with_a_year_not_in_the_catalog_says_which_year_it_took(titles: TitleIndex) -> None:
    r = titles.resolve("The Matrix (2021)")
    assert r is not None and r.id == 3
    assert r.note and "2021" in r.note and "1999" in r.note


@pytest.mark.parametrize(
    ("typed", "movie_id"), [("godfahter", 5), ("the matirx", 3), ("shawshank redemtion", 8)]
)
def test_resolve_small_typos(titles: TitleIndex, typed: str, movie_id: int) -> None:
    r = titles.resolve(typed)
    assert r is not None and r.id == movie_id
    assert r.note == "closest title match"


@pytest.mark.parametrize(("typed", "movie_id"), [("shawshank", 8), ("matrix relo", 4)])
def test_resolve_completes_a_partial_title(titles: TitleIndex, typed: str, movie_id: int) -> None:
    r = titles.resolve(typed)
    assert r is not None and r.id == movie_id
    assert r.note == "completed a partial title"


@pytest.mark.parametrize("typed", ["zzqqxx unknown", "", "   ", "!!!", "(1999)", "x", "the", "a"])
def test_resolve_refuses_to_guess(titles: TitleIndex, typed: str) -> None:
    assert titles.resolve(typed) is None


def test_search_autocomplete_prefix_then_words_then_typos(titles: TitleIndex) -> None:
    assert [m.id for m in titles.search("the matri", 5)] == [3, 4]
    # A word inside the title: "matri" is not a prefix of "the matrix", the word search finds it.
    assert [m.id for m in titles.search("matri", 5)][:2] == [3, 4]
    assert [m.id for m in titles.search("godfather", 5)] == [5, 6]
    assert [m.id for m in titles.search("Troy (1987)", 5)] == [2]
    assert 5 in [m.id for m in titles.search("godfahter", 5)]
    # A typo in a title still being typed: compared with the start of each title.
    assert [m.id for m in titles.search("godfahter pa", 5)][0] == 6
    assert [m.id for m in titles.search("shawshnk", 5)] == [8]
    assert titles.search("!!!", 5) == []
    assert len(titles.search("t", 2)) <= 2


# ------------------------------------------------------------------------------------- prompt


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


@pytest.mark.parametrize(
    ("title", "short"),
    [
        ("Amelie (Fabuleux destin d'Amélie Poulain, Le)", "Amelie"),
        ("Léon: The Professional (a.k.a. The Professional) (Léon)", "Léon: The Professional"),
        ("Seven (a.k.a. Se7en)", "Seven"),
        ("(500) Days of Summer", "(500) Days of Summer"),
        ("Monsters, Inc.", "Monsters, Inc."),
    ],
)
def test_liked_titles_lose_their_alternative_titles_in_the_prompt(title: str, short: str) -> None:
    assert short_title(title) == short
    p = build_prompt([movie(9, title, 2001)], "", PROMPT_CANDIDATES, 5, WordCounter(), 512)
    assert f"I enjoyed: {short} (2001)." in p.messages[1]["content"]


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


# ---------------------------------------------------------------------------------- grounding


GROUND_CANDIDATES = [
    movie(1, "Heat", 1995),
    movie(2, "Heat", 1986),
    movie(3, "Mission: Impossible", 1996),
    movie(4, "The Machinist", 2004),
    movie(5, "Collateral", 2004),
    movie(6, "Thief", 1981),
]


def test_ground_keeps_model_order_and_reasons_and_fills_from_retrieval() -> None:
    text = "[1] Collateral (2004) - a night in LA\n[2] Mission: Impossible (1996) - spies\n"
    g = ground(text, GROUND_CANDIDATES, 4)
    assert [p.movie.id for p in g.picks] == [5, 3, 1, 2]
    assert [p.from_model for p in g.picks] == [True, True, False, False]
    assert g.picks[0].reason == "a night in LA"
    assert g.picks[2].reason is None
    assert g.dropped == []


def test_ground_drops_titles_that_are_not_candidates_and_counts_them() -> None:
    text = "Star Wars (1977) - classic\nCollateral (2004) - night\nTitanic (1997) - boat\n"
    g = ground(text, GROUND_CANDIDATES, 3)
    assert [p.movie.id for p in g.picks] == [5, 1, 2]
    assert g.dropped == ["Star Wars", "Titanic"]
    assert {p.movie.id for p in g.picks} <= {m.id for m in GROUND_CANDIDATES}


@pytest.mark.parametrize(
    ("line", "movie_id"), [("Heat (1995) - the film", 1), ("Heat (1986) - the TV pilot", 2)]
)
def test_ground_uses_the_year_to_pick_between_same_titles(line: str, movie_id: int) -> None:
    assert ground(line, GROUND_CANDIDATES, 1).picks[0].movie.id == movie_id


def test_ground_tolerates_a_typo_in_a_title() -> None:
    assert ground("Colateral (2004) - night drive", GROUND_CANDIDATES, 1).picks[0].movie.id == 5


def test_ground_skips_liked_movies_duplicates_and_stops_at_k() -> None:
    text = (
        "Heat (1995) - liked already\nThief (1981) - yes\nThief (1981) - again\n"
        "Collateral (2004) - yes\nThe Machinist (2004) - over k"
    )
    g = ground(text, GROUND_CANDIDATES, 2, exclude={1})
    assert [p.movie.id for p in g.picks] == [6, 5]
    filled = ground("", GROUND_CANDIDATES, 10, exclude={1, 2})
    assert [p.movie.id for p in filled.picks] == [3, 4, 5, 6]


@pytest.mark.parametrize(
    ("line", "movie_id", "reason"),
    [
        ("[3] Mission: Impossible (1996) - spies on a train", 3, "spies on a train"),
        ("1. **Mission: Impossible** (1996) - spies", 3, "spies"),
        ("- Thief (1981): a safecracker", 6, "a safecracker"),
        ("Thief (1981) – a safecracker", 6, "a safecracker"),
        ("Mission: Impossible - spies", 3, "spies"),
        ("**The Machinist** - insomnia", 4, "insomnia"),
    ],
)
def test_ground_reads_the_usual_answer_shapes(line: str, movie_id: int, reason: str) -> None:
    g = ground(line, GROUND_CANDIDATES, 1)
    assert g.picks[0].movie.id == movie_id
    assert g.picks[0].from_model
    assert g.picks[0].reason == reason
    assert g.dropped == []


def test_ground_echoed_candidate_lines_and_long_reasons() -> None:
    # SmolLM2 often answers by echoing candidate lines ("[n] Title (Year) | genres"); they are
    # picks, not dropped titles.
    g = ground(
        "[1] The Machinist (2004) | Drama, Thriller\n[2] Thief (1981) | Crime", GROUND_CANDIDATES, 2
    )
    assert [p.movie.id for p in g.picks] == [4, 6]
    assert g.dropped == []
    g = ground("Collateral (2004) - " + "x" * 500, GROUND_CANDIDATES, 1)
    assert g.picks[0].movie.id == 5
    assert g.picks[0].reason is not None and len(g.picks[0].reason) <= 300


def test_ground_chatter_is_neither_a_pick_nor_a_dropped_title() -> None:
    g = ground("Here are my picks:\nEnjoy the movies!\n", GROUND_CANDIDATES, 2)
    assert g.dropped == []
    assert [p.from_model for p in g.picks] == [False, False]


# ----------------------------------------------------------------------------------- settings


def test_settings_defaults_match_the_design() -> None:
    s = load_settings({})
    assert s == EdgeSettings()
    assert (s.host, s.port, s.index) == ("127.0.0.1", 8000, "var/index")
    assert s.upstream.urls == ("http://127.0.0.1:8001",)
    assert s.prompt_tokens == 512
    assert s.api_key is None and s.cors_origins == ()


def test_settings_from_env() -> None:
    s = load_settings(
        {
            "MOVIEMIND_EDGE_PORT": "9000",
            "MOVIEMIND_EDGE_UPSTREAMS": " http://a:1/ , https://b:2/v1,",
            "MOVIEMIND_EDGE_UPSTREAM_TOKEN": "tok",
            "MOVIEMIND_EDGE_API_KEY": "k",
            "MOVIEMIND_EDGE_CORS_ORIGINS": "http://x.test, http://y.test",
            "MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE": "0",
            "MOVIEMIND_EDGE_CONNECT_TIMEOUT_S": "0.25",
            "MOVIEMIND_EDGE_BREAKER_FAILURES": "2",
            "MOVIEMIND_EDGE_RANK_MMR_LAMBDA": "0.7",
            "MOVIEMIND_EDGE_RANK_OVERSAMPLE": "8",
            "MOVIEMIND_EDGE_PROMPT_TOKENS": "",  # empty means default
        }
    )
    assert s.port == 9000
    assert s.upstream.urls == ("http://a:1", "https://b:2/v1")
    assert s.upstream.token == "tok" and s.upstream.connect_timeout_s == 0.25
    assert s.upstream.breaker_failures == 2
    assert s.api_key == "k"
    assert s.cors_origins == ("http://x.test", "http://y.test")
    assert s.rate_limit_per_minute == 0
    assert s.ranking.mmr_lambda == 0.7 and s.ranking.oversample == 8
    assert s.prompt_tokens == 512


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("PORT", "eighty", "MOVIEMIND_EDGE_PORT"),
        ("PORT", "70000", "PORT"),
        ("MAX_BODY_BYTES", "10", "MAX_BODY_BYTES"),
        ("RATE_LIMIT_PER_MINUTE", "-1", "RATE_LIMIT_PER_MINUTE"),
        ("PROMPT_TOKENS", "10", "PROMPT_TOKENS"),
        ("UPSTREAMS", "ftp://x", "UPSTREAMS"),
        ("UPSTREAMS", ",", "UPSTREAMS"),
        ("CONNECT_TIMEOUT_S", "0", "MOVIEMIND_EDGE_CONNECT_TIMEOUT_S"),
        ("FIRST_TOKEN_TIMEOUT_S", "soon", "FIRST_TOKEN_TIMEOUT_S"),
        ("BREAKER_FAILURES", "0", "MOVIEMIND_EDGE_BREAKER_FAILURES"),
        ("RANK_MMR_LAMBDA", "1.5", "RANK_MMR_LAMBDA"),
        ("RANK_OVERSAMPLE", "2.5", "RANK_OVERSAMPLE"),
        ("QUERY_VARIANT", "int4", "QUERY_VARIANT"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_setting(
    name: str, value: str, mentions: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"MOVIEMIND_EDGE_" + name: value})
    message = str(info.value)
    assert mentions in message
    assert "\n" not in message


# --------------------------------------------------------------------------------- protection


def test_api_key_guard() -> None:
    assert ApiKeyGuard(None).allows({})
    g = ApiKeyGuard("s3cret")
    assert not g.allows({})
    assert g.allows({b"x-api-key": b"s3cret"})
    assert g.allows({b"authorization": b"Bearer s3cret"})
    assert g.allows({b"authorization": b"bearer  s3cret "})
    assert not g.allows({b"x-api-key": b"wrong"})
    assert not g.allows({b"authorization": b"Basic s3cret"})
    assert not g.allows({b"authorization": b"Bearer s3cre"})


def test_rate_limiter_bursts_then_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(protection.time, "monotonic", lambda: now[0])
    limiter = RateLimiter(60)  # one a second, a burst of 10
    assert all(limiter.check("a") is None for _ in range(10))
    retry = limiter.check("a")
    assert retry == 1
    assert limiter.check("b") is None  # clients are counted apart
    now[0] += 2.0
    assert limiter.check("a") is None
    assert limiter.check("a") is None
    assert limiter.check("a") is not None
    slow = RateLimiter(6)  # one per 10 s, burst 1
    assert slow.check("c") is None
    assert slow.check("c") == 10


def test_rate_limiter_off_and_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(RateLimiter(0).check("a") is None for _ in range(1000))
    limiter = RateLimiter(600, max_clients=50)
    for i in range(200):
        assert limiter.check(f"10.0.0.{i}") is None
    assert len(limiter.buckets) <= 50


def test_ground_takes_the_title_a_line_starts_with() -> None:
    cands = [
        Movie(id=1, title="The Incredibles", year=2004),
        Movie(id=2, title="A Family Thing", year=1996),
    ]
    text = "A Family Thing (1996) - a warm comedy; better than The Incredibles (2004), say some."
    g = ground(text, cands, 1)
    assert [p.movie.id for p in g.picks] == [2]
    assert g.picks[0].reason.startswith("a warm comedy")
