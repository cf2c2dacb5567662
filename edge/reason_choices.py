"""The sentences a guided reason may be, built from one movie's catalog facts.

With an upstream that offers guided choice, the edge begins a pick's sentence ("Fargo is") and the
model finishes it with one of these continuations (" a darkly funny crime thriller from Joel
Coen."). The model chooses, token by token, which descriptor, which genre phrase and which fact to
tell; every continuation is assembled from the catalog (its genres, keywords, rating, director,
cast and plot) so none can invent a fact, name a stranger or drift into a list. The reason gate
still judges what comes back. The English (genre nouns and modifiers, tone words, which keywords
are topics) is the lexicon's: moviemind_core/lexicon/data/*/genres.toml, tone.toml, choices.toml.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from edge import mood
from edge.index_store import catalog_people
from edge.prompt import short_title
from edge.reason_gate import MIN_WORDS, forbidden_words
from moviemind_core.catalog import Movie
from moviemind_core.lexicon import lexicon
from moviemind_core.lexicon.normalise import alternation
from moviemind_core.lexicon.schema import Genre

_LEX = lexicon()
_CH = _LEX.choices
# Plots that open with their subject ("A desperate car salesman arranges ...").
_SUBJECT_LEADS = _CH.subject_leads
# First words of a plot that are lower case after "in which" or a colon (anything else is a
# name: "James").
_LOWER_LEADS = frozenset({w.capitalize() for w in _SUBJECT_LEADS}) | _CH.lower_leads
# How many of each part a pick offers: enough for the model to choose, few enough that the
# request stays small (about a thousand sentences at most).
MAX_DESCRIPTORS = 6
MAX_GENRE_PHRASES = 4
MAX_TOPICS = 4
ACCLAIMED_RATING = 7.8  # TMDB's 0..10 scale (MovieLens stars doubled)
ACCLAIMED_VOTES = 20
# Well inside the reason gate's bounds (MIN_WORDS is the gate's own), title included.
MAX_CHARS = 220
MAX_WORDS = 40


def _article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _genres(m: Movie) -> list[Genre]:
    """The lexicon's genres of `m`, in the catalog's order, each once."""
    return [g for n in _LEX.canonical_genres(m.genres) if (g := _LEX.genre(n)) is not None]


def genre_phrases(m: Movie) -> list[str]:
    """Noun phrases for the movie's genres, the most telling first: "crime thriller" before
    "comedy-drama" for Fargo (MovieLens lists genres alphabetically, so their order says
    nothing). A phrase reads best with the more telling genre as its modifier ("war drama",
    not "dramatic war film"); at most two phrases share a modifier, so that a film tagged with
    one odd genre is not described by it alone."""
    spec = _LEX.specificity
    genres = sorted((g for g in _genres(m) if g.head or g.modifier), key=lambda g: spec[g.id])
    pairs = {p.genres: p.phrase for p in _LEX.genre_pairs}
    found: dict[str, tuple[int, int, int]] = {}
    # "comedy-drama" or "comedy" alone only names a film that nothing more telling describes:
    # Pulp Fiction is a crime film before it is a comedy.
    telling = any(not g.broad for g in genres)
    for pair, phrase in pairs.items():
        if pair <= {g.id for g in genres} and not telling:
            found[phrase] = (0, *sorted(spec[g] for g in pair))
    for head in genres:
        if not head.head or head.weak_head:
            continue
        for mod in genres:
            if mod is not head and mod.modifier and frozenset({mod.id, head.id}) not in pairs:
                backwards = int(spec[mod.id] > spec[head.id])
                key = (backwards, spec[mod.id], spec[head.id])
                found.setdefault(f"{mod.modifier} {head.head}", key)
    for g in genres:
        if g.head and not (telling and g.broad):
            found.setdefault(g.head, (0, spec[g.id], len(spec)))
    out: list[str] = []
    per_modifier: dict[str, int] = {}
    for phrase in sorted(found, key=found.__getitem__):
        first = phrase.split()[0] if " " in phrase else phrase
        if per_modifier.get(first, 0) < 2:
            per_modifier[first] = per_modifier.get(first, 0) + 1
            out.append(phrase)
    for g in genres:
        if g.always_named:  # "an animated comedy", never a bare "comedy" for a cartoon
            out = [p if g.modifier in p else f"{g.modifier} {p}" for p in out]
    return list(dict.fromkeys(out))[:MAX_GENRE_PHRASES]


def descriptors(m: Movie, wanted: frozenset[str] = frozenset()) -> list[str]:
    """Words that may go before the genre: tone keywords, what its genres promise, acclaim.
    With `wanted` (the word forms a mood asks for), only those that answer it, however many
    the movie has ("tense" for a thriller that is also darkly funny, quirky and acclaimed)."""
    tone = _LEX.tone
    tones = [tone.words[k.lower()] for k in m.keywords if k.lower() in tone.words]
    promised = [w for g in _genres(m) for w in g.promises]
    rated = []
    if m.vote_average >= ACCLAIMED_RATING and m.vote_count >= ACCLAIMED_VOTES:
        rated.append("acclaimed")
    singles = list(dict.fromkeys([*tones, *rated, *promised]))
    praise = [t for t in tones if t not in tone.classifiers]
    kinds = [t for t in tones if t in tone.classifiers]
    pairs = [f"{a}, {b}" for a in (rated + praise[:2]) for b in praise[:3] if a != b]
    pairs += [f"{a} {b}" for a in (rated + praise[:2]) for b in kinds[:2]]
    if wanted:
        return [d for d in dict.fromkeys([*singles, *pairs]) if mood.word_forms(d) & wanted]
    return list(dict.fromkeys([*singles[:MAX_DESCRIPTORS], *pairs[: MAX_DESCRIPTORS // 2]]))


def topics(m: Movie, people: frozenset[str] = frozenset()) -> list[str]:
    """Keywords that say what the movie is about ("kidnapping", "time travel"); `people` are
    names (lower case) that a keyword may be and a topic is not."""
    found = []
    banned = {w.lower() for w in forbidden_words(m)}
    people = people | catalog_people((m,))
    for k in m.keywords:
        low = k.lower()
        if low in _LEX.not_topics or low in _LEX.tone.words or low in _CH.places or low in people:
            continue
        if _words(k) & banned:
            continue
        if re.search(r"\d", k) or low.endswith("ous"):  # "early 1980s", "humorous"
            continue
        last = low.split()[-1] if low.split() else ""
        plural = last.endswith("s") and not last.endswith(("ss", "us", "is"))  # "crisis", "bus"
        gerund = last.endswith("ing") and last not in _CH.ing_nouns | _CH.ing_adjectives
        bare = low in _CH.mass_nouns or plural or gerund
        # A keyword the plot spells with capitals is a name ("about titanic"): left out.
        if bare and (low not in m.overview.lower() or k in m.overview):
            found.append(k)
    return found[:MAX_TOPICS]


def plot_clauses(m: Movie) -> list[str]:
    """The plot's first sentence as it reads after a colon ("...: a desperate car salesman
    arranges ..."), and that sentence's first half where it has two."""
    first = _first_sentence(m.overview.strip())
    if not first:
        return []
    lead = first.split(maxsplit=1)[0]
    if lead.rstrip(",") in _LOWER_LEADS:
        first = lead.lower() + first[len(lead) :]
    body = first[:-1]
    out = [body]
    for sep in (", and ", "; ", ", but "):
        head, found, _ = body.partition(sep)
        if found and len(head.split()) >= 6:
            out.append(head)
            break
    return [c for c in out if len(c.split()) <= 32]


def _first_sentence(text: str) -> str:
    """The first sentence of `text` if it ends in a period, else "". A period after an
    abbreviation ("Dr.", "U.S.") does not end a sentence."""
    for m in re.finditer(r"[.!?](?=\s+[A-Z\"“]|$)", text):
        words = text[: m.start()].split()
        if words and re.fullmatch(r"[A-Z][a-z]{0,2}|(?:[A-Za-z]\.)+[A-Za-z]?", words[-1]):
            continue  # "Dr", "Mrs", "U.S"
        sentence = text[: m.end()]
        return sentence if sentence.endswith(".") else ""
    return ""


# A plot that opens "A documentary about ..." or "A series of ..." names the film, not a scene:
# it has no verb to follow "in which".
_NOUN_PLOT = re.compile(
    rf"^an? (?:{alternation(_CH.noun_plots)})(?: film)? (?:{alternation(_CH.noun_plot_links)})\b"
)


def _plot_tail(clause: str) -> str:
    """How a plot clause follows the genre: "in which a car salesman arranges ..." where the plot
    opens with its subject and has a verb, else after a colon ("in 1280, ...", "a portrait of
    ..."), which reads right after any phrase. A small model also picks "in which" far more
    readily than a colon."""
    subject_first = clause.split(maxsplit=1)[0] in _SUBJECT_LEADS
    if subject_first and not _NOUN_PLOT.match(clause):
        return f" in which {clause}"
    return f": {clause}"


def _names(people: str) -> str:
    """'Lana Wachowski, Lilly Wachowski' -> 'Lana Wachowski and Lilly Wachowski'."""
    parts = [p.strip() for p in people.split(",") if p.strip()]
    return " and ".join(parts[:2])


def _tails(m: Movie, people: frozenset[str], focus: Focus) -> list[str]:
    about = topics(m, people)
    director = _names(m.director) if m.director else None
    facts: list[str] = [_plot_tail(c) for c in plot_clauses(m)]
    asked = [t for t in about if mood.word_forms(t) & focus.topics]
    if asked:
        # What the request asks for, or what the liked movies are about: the reason to tell.
        # The plot stays on offer; the credits and the other topics go.
        about = asked
        return [
            *facts,
            *(f" about {t}" for t in about),
            *(f" from {director} about {t}" for t in about if director),
        ]
    facts += [f" about {t}" for t in about]
    facts += [f" about {a} and {b}" for i, a in enumerate(about) for b in about[i + 1 :]]
    credits: list[str] = []
    if director:
        credits.append(f" from {director}")
    # "from Mel Gibson, starring Mel Gibson" says one name twice.
    cast = [c for c in m.cast if c not in (m.director or "")]
    if cast:
        credits.append(f" starring {cast[0]}")
        if len(cast) > 1:
            credits.append(f" starring {cast[0]} and {cast[1]}")
    if director and cast:
        credits.append(f" from {director}, starring {cast[0]}")
    out = [*facts, *credits]
    if director:
        out += [f" from {director} about {t}" for t in about]
    if not out and m.year:
        out.append(f" from {m.year}")  # "Heat is a thriller." alone is too short to show
    return out or [""]


@dataclass(frozen=True)
class Focus:
    """What a request asks for, as the words a pick's sentence may answer it with."""

    # The mood's wanted words in every form (mood.word_forms): "tense", "heist", "romance".
    wanted: frozenset[str] = frozenset()
    # What the request is about, in every form: the mood's words and the liked movies'
    # keywords.
    topics: frozenset[str] = frozenset()
    # Words the mood excludes and their kin ("nothing gory": gore, bloody, ...).
    avoid: frozenset[str] = frozenset()
    # The words a genre phrase uses for the genres the mood names ("a western": western).
    genre_words: frozenset[str] = frozenset()


NO_FOCUS = Focus()


def focus_of(wanted: mood.Mood, liked: Sequence[Movie] = ()) -> Focus:
    """The Focus of a request: its parsed mood and the movies the person enjoyed."""
    words = mood.word_forms(wanted.wanted)
    named = {
        g
        for w in re.findall(r"[a-z\-]+", wanted.wanted.lower())
        for n in mood.genres_named(w)
        if (g := _LEX.genre(n)) is not None
    }
    # "horror film" names horror; "film" names nothing (it is a filler word).
    genre_words = {
        w for g in named for w in f"{g.head} {g.modifier}".split()
    } - _LEX.mood.negation.fillers
    return Focus(
        wanted=frozenset(words),
        topics=frozenset(words | mood.word_forms(" ".join(k for lm in liked for k in lm.keywords))),
        avoid=frozenset(mood.word_forms(" ".join(wanted.excluded))),
        genre_words=frozenset(genre_words),
    )


def reason_choices(
    m: Movie, people: frozenset[str] = frozenset(), focus: Focus = NO_FOCUS
) -> list[str]:
    """Every continuation of "{title} is" the model may choose for `m`, each one sentence that
    ends with a period. `people`: the catalog's names, lower case (Snapshot.people). `focus`
    narrows the choice to the sentences that answer the request, where the catalog has any: a
    descriptor the mood asks for ("tense"), a genre it names, a topic it or the liked movies
    share, a director or actor it names; and none that sells the movie on what the mood
    excludes."""
    banned = {w.lower() for w in forbidden_words(m)}
    found = ["", *descriptors(m)]
    asked = descriptors(m, focus.wanted) if focus.wanted else []
    every = genre_phrases(m) or ["film"]
    named = [g for g in every if _words(g) & focus.genre_words]
    phrases: list[str] = []
    # The narrowest pairing the catalog allows: the asked descriptor with the named genre
    # ("action" asks for both, and "an action-packed action film" says one thing twice), then
    # either alone, then neither.
    for ds, gs in ((asked, named), (asked, every), (found, named), (found, every)):
        phrases = [
            f"{d} {g}" if d else g
            for g in gs
            for d in ds
            if (not d or not _words(d) & _words(g)) and not _words(f"{d} {g}") & banned
        ]
        if phrases:
            break
    tails = _tails(m, people, focus)
    out = [
        f" {_article(p)} {p}{tail}" + ("" if tail.endswith(".") else ".")  # "Robert Downey Jr."
        for p in phrases
        for tail in tails
    ]
    title_words = len(short_title(m.title).split()) + 1  # the opening, "<Title> is"
    fitting = [
        c
        for c in dict.fromkeys(out)
        if len(c) <= MAX_CHARS and MIN_WORDS <= title_words + len(c.split()) <= MAX_WORDS
    ]
    # A person the mood names ("Hitchcock suspense", "something with Tom Hanks"): say them.
    people_named = [
        name
        for name in (*(n.strip() for n in (m.director or "").split(",")), *m.cast)
        if name and name.split()[-1].lower() in focus.wanted
    ]
    fitting = [c for c in fitting if any(n in c for n in people_named)] or fitting
    if not focus.avoid:
        return fitting
    return [c for c in fitting if not mood.word_forms(c) & focus.avoid] or fitting


def _words(text: str) -> set[str]:
    """Lower-case words and the parts of hyphenated ones."""
    return {t for w in re.findall(r"[a-z][a-z\-]*", text.lower()) for t in (w, *w.split("-"))}


_CREDIT = re.compile(r" starring | from (?!\d)")
_FACT = re.compile(r" about | in which |: ")


def credits_only(sentence: str) -> bool:
    """The sentence's tail names only people ("... from Joel Coen, starring Frances McDormand."),
    no plot or topic. `sentence` may start with its title ("Fargo is a ...")."""
    _, _, rest = sentence.partition(" is ")
    rest = rest or sentence
    return bool(_CREDIT.search(rest)) and not _FACT.search(rest)


_ABOUT = re.compile(r" about (?P<topic>[^.,:]+)\.$")


def _topic(sentence: str) -> str | None:
    """What a sentence ending "... about X." says the movie is about."""
    found = _ABOUT.search(sentence)
    return found.group("topic") if found else None


def varied(choices: list[str], earlier: list[str], most: int = 2) -> list[str]:
    """`choices` without those that would make this answer read alike, where others remain: a
    topic an earlier reason already gave ("about time travel" once, not for every pick of a
    time-travel request), and the credits-only ones once `most` reasons shown were such (a
    small model likes "starring X and Y" for every pick)."""
    out = choices
    said = {t for e in earlier if (t := _topic(e))}
    if said:
        out = [c for c in out if _topic(c) not in said] or out
    if sum(credits_only(e) for e in earlier) >= most:
        out = [c for c in out if not credits_only(c)] or out
    return out
