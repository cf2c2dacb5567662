"""The reason gate: each rule on a small case, then the corpus of real SmolLM2 output.

tests/data/reason_corpus.jsonl holds what SmolLM2-135M wrote for guided reasons on the sample
catalog (benchmarks/reason_requests.py), each labelled by a person as junk (with why) or fit to
show, plus good sentences written for the same picks. The gate must reject every junk line and
pass every good one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from edge import reason_gate as g
from edge.index_store import catalog_vocabulary
from moviemind_core.bundle import Bundle
from moviemind_core.catalog import Movie

CORPUS = Path(__file__).resolve().parents[2] / "data" / "reason_corpus.jsonl"

HEAT = Movie(
    id=6,
    title="Heat",
    year=1995,
    genres=("Action", "Crime", "Thriller"),
    overview="A disciplined professional thief and an obsessive LAPD detective circle each other.",
    keywords=("heist", "cops and robbers", "los angeles", "crime epic", "shootout"),
    director="Michael Mann",
    cast=("Al Pacino", "Robert De Niro"),
)
LORD_OF_WAR = Movie(id=2, title="Lord of War", year=2005, genres=("Action", "Crime", "Drama"))
ALIEN = Movie(id=3, title="Alien", year=1979, genres=("Horror", "Sci-Fi"))
CTX = g.GateContext(picks=(HEAT, LORD_OF_WAR), liked=(ALIEN,), prompt="I enjoyed: Alien (1979).")
GOOD = "A patient crime epic where a thief and a detective circle each other across Los Angeles."


def test_a_good_sentence_passes() -> None:
    assert g.check(GOOD, HEAT, CTX) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", g.EMPTY),
        ("A great heist.", g.TOO_SHORT),
        (" ".join(["A long heist story"] * 15) + ".", g.TOO_LONG),
        ("comedy, drama. [1] Lord of War: action, crime, drama.", g.LIST_MARKER),
        ("A heist shootout in the city. 2. Lord of War: a crime drama.", g.LIST_MARKER),
        ("Like Lord of War, a crime epic with a shootout in the streets.", g.OTHER_TITLE),
        ("I loved this crime epic and its heist shootout in the city.", g.FIRST_PERSON),
        ("Action, crime, thriller; heist, shootout, los angeles.", g.KEYWORD_LIST),
        ("A romantic crime epic about a heist that goes wrong in the city.", g.WRONG_GENRE),
        ("A horror-tinged heist with a shootout in the city streets.", g.WRONG_GENRE),
        ("A crime epic directed by Christopher Nolan with a great shootout.", g.UNKNOWN_NAME),
        ("A crime epic from 2004 with a heist and a shootout downtown.", g.WRONG_YEAR),
        ("A crime epic with 3 heists and a shootout in the city streets.", g.NUMBER),
        ("A funny heist movie with a shootout in the city streets.", g.WRONG_GENRE),
        ("A disciplined professional thief and an obsessive LAPD detective meet.", g.ECHO),
        ("You will enjoy its plot and characters and the way it ends.", g.UNSUPPORTED),
        ("A crime epic about a young woman who can control water in a heist.", g.INVENTED_PLOT),
        ("A crime epic that was reimagined as a remake with a heist shootout.", g.META),
        ("A heist crime epic that remains one of the most iconic franchises.", g.META),
        ("A crime epic with a heist and a shootout... it was great!", g.CHATTY),
        ("A slow crime epic about music and a heist that goes wrong.", g.INVENTED_PLOT),
        ("A heist with a shootout that leaves you laughing at every turn.", g.WRONG_GENRE),
        ("A delightful rompione of a crime epic with a heist and a shootout.", g.UNKNOWN_WORD),
    ],
)
def test_each_rule(text: str, rule: str) -> None:
    # The unknown-word rule only where it is the case (the test vocabulary is small).
    vocabulary = VOCABULARY if rule == g.UNKNOWN_WORD else frozenset()
    ctx = g.GateContext(CTX.picks, CTX.liked, prompt=HEAT.overview, vocabulary=vocabulary)
    assert g.check(text, HEAT, ctx) == rule


# A stand-in for the catalog's and MiniLM's words (edge/index_store.catalog_vocabulary).
VOCABULARY = g.known_words(
    [GOOD, HEAT.overview, " ".join(HEAT.keywords)],
    [
        "a",
        "an",
        "the",
        "with",
        "and",
        "that",
        "of",
        "at",
        "every",
        "turn",
        "you",
        "leaves",
        "slow",
        "great",
        "city",
        "streets",
        "gripping",
        "film",
        "blend",
        "sharp",
        "delightful",
        "tense",
        "where",
        "each",
        "across",
        "other",
        "thief",
        "settle",
        "heart",
    ],
)


@pytest.mark.parametrize(
    "text",
    [
        "Heat is a gripping crime epic where a thief and a detective circle each other.",
        "Heat is a tense, unsettling crime epic with a heist at its heart.",  # affixes
        "Heat is a film of captivating shootouts and a relatable crime epic.",
    ],
)
def test_real_words_pass_the_unknown_word_rule(text: str) -> None:
    ctx = g.GateContext(CTX.picks, CTX.liked, vocabulary=VOCABULARY)
    assert g.check(text, HEAT, ctx) is None


def test_words_with_accents_are_whole_words() -> None:
    """The catalog's names and words outside ASCII ("Ramón Menéndez", "Amélie") are words of
    their own: not split into made-up fragments ("Men", "ndez") the name and word rules flag."""
    stand = Movie(
        id=12,
        title="Stand and Deliver",
        year=1988,
        genres=("Drama",),
        overview="A teacher in East Los Angeles inspires his students to learn calculus.",
        keywords=("teacher", "calculus", "inspirational"),
        director="Ramón Menéndez",
        cast=("Edward James Olmos",),
    )
    vocabulary = g.known_words(
        [stand.overview, *stand.keywords, stand.director or "", "drama from"]
    )
    ctx = g.GateContext((stand,), (), vocabulary=vocabulary)
    assert (
        g.check("Stand and Deliver is an inspirational drama from Ramón Menéndez.", stand, ctx)
        is None
    )
    assert "menéndez" in vocabulary and "ndez" not in vocabulary
    assert (
        g.check("Stand and Deliver is an inspirational drama from Ramón Ménendezo.", stand, ctx)
        == g.UNKNOWN_NAME
    )


def test_without_a_vocabulary_the_unknown_word_rule_is_off() -> None:
    text = "A delightful rompione of a crime epic with a heist and a shootout."
    assert g.check(text, HEAT, CTX) is None


def test_the_movies_own_title_is_not_an_echo_a_number_or_a_list_marker() -> None:
    odyssey = Movie(
        id=9,
        title="2001: A Space Odyssey (1968)",
        year=1968,
        genres=("Adventure", "Sci-Fi"),
        overview="Astronauts and a computer on a mission to Jupiter.",
        keywords=("space travel", "artificial intelligence", "jupiter"),
    )
    prompt = "Pick: 2001: A Space Odyssey (1968) - the monolith"
    ctx = g.GateContext((odyssey,), (), prompt=prompt)
    ok = "2001: A Space Odyssey is a slow, awe-struck voyage of space travel to Jupiter."
    assert g.check(ok, odyssey, ctx) is None
    assert g.check(ok.replace("slow", "slow 3-hour"), odyssey, ctx) == g.NUMBER


def test_a_sentence_ending_in_a_list_is_not_a_keyword_list() -> None:
    text = "Heat is a crime epic that offers a blend of heist, shootout, and cops and robbers."
    assert g.check(text, HEAT, CTX) is None
    assert g.check("Heist, shootout, cops and robbers, crime epic.", HEAT, CTX) == g.KEYWORD_LIST


def test_the_same_reason_twice_in_one_answer_is_a_repeat() -> None:
    assert g.check(GOOD, HEAT, CTX, earlier=[GOOD.replace("patient", "careful")]) == g.REPEAT


def test_a_liked_movie_named_in_a_comparison_is_allowed_but_not_alone() -> None:
    # "Alien" is a one-word title: indistinguishable from the word, so never counted as a title.
    assert g.check("A crime epic with an alien heist crew and a shootout.", HEAT, CTX) is None
    liked2 = Movie(id=9, title="Reservoir Dogs", year=1992, genres=("Crime",))
    ctx = g.GateContext(CTX.picks, (liked2,))
    assert g.check("Reservoir Dogs is a crime epic with a heist shootout.", HEAT, ctx) == (
        g.OTHER_TITLE
    )


def test_a_one_word_title_in_the_movies_own_plot_is_a_word_not_a_mention() -> None:
    world = Movie(
        id=20, title="Jurassic World", year=2015, genres=("Action", "Adventure", "Sci-Fi"),
        overview="A genetically engineered dinosaur escapes at a dinosaur theme park.",
        keywords=("dinosaurs",),
    )  # fmt: skip
    dinosaur = Movie(id=21, title="Dinosaur", year=2000, genres=("Animation",))
    memento = Movie(id=22, title="Memento", year=2000, genres=("Thriller",))
    ctx = g.GateContext((world, dinosaur, memento), ())
    text = (
        "Jurassic World is a sci-fi adventure in which a genetically engineered dinosaur escapes."
    )
    assert g.check(text, world, ctx) is None
    # Another pick's one-word title the movie's own text never uses is still a mention.
    assert g.check(text.replace("dinosaur", "Memento"), world, ctx) == g.OTHER_TITLE


def test_a_title_of_ordinary_words_is_a_mention_only_with_its_capitals() -> None:
    primer = Movie(id=23, title="Primer", year=2004, genres=("Sci-Fi",), keywords=("time travel",))
    about_time = Movie(id=24, title="About Time", year=2013, genres=("Drama", "Romance"))
    ctx = g.GateContext((primer, about_time), ())
    assert g.check("Primer is a mind-bending sci-fi film about time travel.", primer, ctx) is None
    assert g.check("Primer is a sci-fi film like About Time, on time travel.", primer, ctx) == (
        g.OTHER_TITLE
    )


def test_clean_keeps_whole_sentences_only() -> None:
    assert g.clean(" a heist epic. Then the", finished=False) == "A heist epic."
    assert g.clean(" a heist epic that never", finished=False) == ""
    assert g.clean(' "a heist epic."', finished=True) == "A heist epic."
    assert g.clean(" a heist epic", finished=True) == ""


def corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def _movie(d: dict) -> Movie:
    return Movie(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@pytest.fixture(scope="module")
def vocabulary(sample_index: Path, models_dir: Path) -> frozenset[str]:
    """The words the edge's gate knows when it serves the sample catalog."""
    pieces = Tokenizer.from_file(str(models_dir / "minilm" / "tokenizer.json")).get_vocab()
    return catalog_vocabulary(Bundle.load(sample_index).movies, pieces)


def _verdict(rec: dict, vocabulary: frozenset[str]) -> str | None:
    movie = _movie(rec["movie"])
    ctx = g.GateContext(
        tuple(_movie(m) for m in rec["picks"]),
        tuple(_movie(m) for m in rec["liked"]),
        rec["prompt"],
        vocabulary,
    )
    text = g.clean(rec["raw"], rec["finished"])
    return g.check(text, movie, ctx, rec["earlier"]) if text else g.TRUNCATED


def test_the_corpus_is_big_enough_and_real() -> None:
    recs = corpus()
    bad = [r for r in recs if r["junk"]]
    assert len(bad) >= 40 and len(recs) - len(bad) >= 15
    assert all(r["why"] for r in bad)
    assert {r["source"] for r in bad} >= {"smollm2-ctransformers"}


@pytest.mark.parametrize("rec", [r for r in corpus() if r["junk"]], ids=lambda r: r["raw"][:40])
def test_no_junk_from_the_corpus_passes(rec: dict, vocabulary: frozenset[str]) -> None:
    assert _verdict(rec, vocabulary) is not None, f"junk shown ({rec['why']}): {rec['raw']!r}"


@pytest.mark.parametrize("rec", [r for r in corpus() if not r["junk"]], ids=lambda r: r["raw"][:40])
def test_good_sentences_from_the_corpus_pass(rec: dict, vocabulary: frozenset[str]) -> None:
    assert _verdict(rec, vocabulary) is None, f"good reason rejected: {rec['raw']!r}"


def test_the_rules_are_named_predicates_tried_in_order() -> None:
    names = [name for name, _ in g.RULES]
    assert len(set(names)) == len(names) and set(g.REJECTIONS) == {g.TRUNCATED, *names}
    assert names[0] == g.EMPTY and names[-1] == g.REPEAT  # cheapest first, the slowest last
    draft = g.Draft("A funny heist movie with a shootout in the city streets.", HEAT, CTX)
    broken = [name for name, rule in g.RULES if rule(draft)]
    assert broken[0] == g.check(draft.reason, HEAT, CTX) == g.WRONG_GENRE


def test_a_genre_claim_is_judged_by_the_genre_whatever_its_spelling() -> None:
    # TMDB's "Science Fiction" backs "sci-fi" as MovieLens' "Sci-Fi" does; "Family" backs "kids".
    tmdb = Movie(id=9, title="Contact", year=1997, genres=("Science Fiction", "Family", "Drama"))
    lens = Movie(id=9, title="Contact", year=1997, genres=("Sci-Fi", "Children", "Drama"))
    for m in (tmdb, lens):
        lacks = set(g.forbidden_words(m))
        assert not lacks & {"sci-fi", "kids", "drama"} and {"horror", "funny"} <= lacks
