"""The one place that decides whether a model-written reason may be shown.

A reason is shown only if it is a sentence about this movie. Small models put many other things
where a reason belongs: other candidates' titles, "[3]" list markers, genre lists, genres the
movie does not have, names the catalog never mentions, the prompt echoed back, the user's voice
("I loved it"), the line before repeated. Each is a named predicate in `RULES`; the first one a
reason breaks is its rejection, the caller keeps the catalog reason and counts the name. The
words the rules read (genre claims, film talk, persons, glue words) are the lexicon's
(moviemind_core/lexicon/data/*/gate.toml, genres.toml). The tests run this gate over a corpus
of real SmolLM2 output (tests/data/reason_corpus.jsonl).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cached_property

import msgspec

from moviemind_core.catalog import Movie, lookup_key
from moviemind_core.lexicon import lexicon
from moviemind_core.lexicon.normalise import WORD, alternation

_LEX = lexicon()
_GATE = _LEX.gate
_NORM = _LEX.normaliser

MIN_WORDS = 5
MAX_WORDS = 45
MAX_CHARS = 280
# Claims (words beyond film talk) the catalog does not back that make a sentence fiction rather
# than a reason. Read off SmolLM2's sentences on the benchmark set: from 7 on, every one was
# invented detail or filler ("humans controlled by powerful corporations" for The Matrix); at 6
# true sentences start to fall ("a gritty portrayal of racial violence" for American History X).
MAX_UNBACKED = 7

# Rejection names (the `reason` label of the edge's rejection counter).
EMPTY = "empty"
TRUNCATED = "truncated"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
LIST_MARKER = "list_marker"
OTHER_TITLE = "other_title"
FIRST_PERSON = "first_person"
KEYWORD_LIST = "keyword_list"
WRONG_GENRE = "wrong_genre"
UNKNOWN_NAME = "unknown_name"
UNKNOWN_WORD = "unknown_word"
UNBACKED = "unbacked"
WRONG_YEAR = "wrong_year"
NUMBER = "number"
ECHO = "echo"
REPEAT = "repeat"
UNSUPPORTED = "unsupported"
INVENTED_PLOT = "invented_plot"
META = "meta"
CHATTY = "chatty"

_LIST_MARKER = re.compile(
    r"\[\d{1,3}\]|\(\d{4}\)|^\s*(?:\d{1,2}[.)]|[-*•])\s|(?:^|\s)\d{1,2}[.)]\s+[A-Z\"“]|\*\*|\|"
)
_FIRST_PERSON = re.compile(rf"\b(?:{alternation(_GATE.first_person)})\b")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)s?\b")
# Talk about the film as a product (its genre, release, remakes) instead of about the film:
# SmolLM2's way of filling a line ("reimagined in various ways to fit different genres").
_META = re.compile(rf"\b(?:{alternation(_GATE.meta)})\b", re.I)
# Trailing off and exclaiming: the model chatting ("... it was hilarious!"), not describing.
_CHATTY = re.compile(r"\.\.\.|…|!")
_SENTENCE_END = re.compile(r"[.!?](?=[\"'”’)]?(?:\s|$))")
_ECHO_LABEL = re.compile(rf"\s*(?:{alternation(_GATE.echo_labels)})\b")
# "about X", "follows X": what the sentence says the movie is about (its last word of 4+).
_SUBJECT = re.compile(
    rf"\b(?:{alternation(_GATE.subject_cues)})\s+"
    r"((?:[A-Za-z'’\-]+\s+){0,3}?)([A-Za-z'’\-]{4,})"
)


class GateContext(msgspec.Struct, frozen=True):
    """What the gate knows about one answer: the picks, the liked movies, the prompt."""

    picks: tuple[Movie, ...]
    liked: tuple[Movie, ...]
    prompt: str = ""
    # Lower-case words known to exist (see known_words); empty turns the unknown-word rule off.
    vocabulary: frozenset[str] = frozenset()


def forbidden_words(m: Movie) -> list[str]:
    """Words a reason about `m` can only use to break a rule: genre claims the catalog does not
    back for it, talk about the film as a product, the user's voice. The edge steers the model
    away from them (edge/steering.py); the rules below still judge whatever it writes. Only
    plain single words: a steering ban is per token."""
    plain = [w for w in (*_GATE.meta, *_GATE.first_person) if w.isascii() and " " not in w]
    return [*_unbacked_genre_words(m), *plain]


def _unbacked_genre_words(m: Movie) -> list[str]:
    """The genre claims ("funny", "horror") that no genre or keyword of `m` backs."""
    have = {g.lower() for g in (*m.genres, *_LEX.canonical_genres(m.genres), *m.keywords)}
    return [
        w for w, needs in _LEX.claim_backing.items() if not any(n in h for n in needs for h in have)
    ]


def _main_title(m: Movie) -> str:
    """The title without a trailing part in brackets ("Twelve Monkeys (a.k.a. 12 Monkeys)")."""
    return re.sub(r"\s*\(.*\)\s*$", "", m.title)


def _norm(text: str) -> str:
    return " " + lookup_key(text) + " "


def _title_keys(m: Movie) -> set[str]:
    """Lookup keys a mention of `m` may take: the full title and its main part."""
    keys = {lookup_key(m.title)}
    keys.add(lookup_key(_main_title(m)))
    # A one-word title that is also an ordinary word ("Heat", "Smoke") cannot be told from the
    # word; only titles of two words or a long single word count as mentions.
    return {k for k in keys if len(k) >= 6 or " " in k}


def _capitalised(m: Movie, text: str) -> bool:
    """`m`'s title appears in `text` with its own capitals: "About Time" the film, not "about
    time travel" (a title of ordinary words is only a title when written as one)."""
    words = [w for w in re.findall(r"\w+", _main_title(m)) if w[:1].isupper()]
    return all(re.search(rf"\b{re.escape(w)}\b", text) for w in words)


def clean(raw: str, finished: bool) -> str:
    """The shown form of a model's line: trimmed, an unfinished last sentence cut off (when the
    answer hit its token cap), first letter capitalised. "" when no whole sentence remains."""
    text = raw.strip().strip("\"'“”").strip()
    text = re.sub(r"^[:\-–—]\s*", "", text)
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not finished or not ends or ends[-1] < len(text.rstrip("\"'”’) ")):
        # Keep whole sentences only: a reason cut mid-word reads as broken.
        text = text[: ends[-1]] if ends else ""
    text = text.strip()
    return text[:1].upper() + text[1:]


@dataclass
class Draft:
    """One reason under judgement, with the views of it the rules share (computed once)."""

    reason: str
    movie: Movie
    ctx: GateContext
    earlier: Sequence[str] = ()

    @cached_property
    def words(self) -> list[str]:
        return WORD.findall(self.reason)

    @cached_property
    def untitled(self) -> str:
        """The reason with the movie's own title said as "It"."""
        return _without_own_title(self.reason, self.movie)

    @cached_property
    def body(self) -> str:
        """What is said about the movie beyond the catalog's own words: the movie's title may
        hold digits, a year in brackets or six words of the prompt ("2001: A Space Odyssey is
        ..."), and a clause copied from its plot may name years, numbers or words a reason
        could not otherwise use ("released from prison")."""
        return _without_own_title(_without_copies(self.reason, self.movie.overview), self.movie)


Rule = Callable[[Draft], object]

# The rules in the order they are tried: (rejection name, predicate true when broken).
RULES: tuple[tuple[str, Rule], ...] = (
    (EMPTY, lambda d: not d.reason.strip()),
    (TOO_SHORT, lambda d: len(d.words) < MIN_WORDS),
    (TOO_LONG, lambda d: len(d.words) > MAX_WORDS or len(d.reason) > MAX_CHARS),
    (LIST_MARKER, lambda d: _LIST_MARKER.search(d.body)),
    (OTHER_TITLE, lambda d: _names_other_title(d)),
    (FIRST_PERSON, lambda d: _FIRST_PERSON.search(d.body)),
    (KEYWORD_LIST, lambda d: _is_keyword_list(d.untitled, d.movie)),
    (WRONG_GENRE, lambda d: _claims_wrong_genre(d.body, d.movie)),
    (UNKNOWN_NAME, lambda d: _unknown_name(d.reason, d.movie, d.ctx)),
    (UNKNOWN_WORD, lambda d: d.ctx.vocabulary and _unknown_word(d.body, d.ctx.vocabulary)),
    (WRONG_YEAR, lambda d: {int(y) for y in _YEAR.findall(d.body)} - {d.movie.year}),
    # Counts, ages, percentages: the catalog gives the model none, so they are made up.
    (NUMBER, lambda d: re.search(r"\d", _YEAR.sub("", d.body))),
    # Copying the prompt is an echo even where the prompt holds the plot.
    (ECHO, lambda d: _echoes(d.untitled, d.ctx.prompt)),
    (UNSUPPORTED, lambda d: not _supported(d.reason, d.movie)),
    (INVENTED_PLOT, lambda d: _invents_plot(d.body, d.movie)),
    (UNBACKED, lambda d: len(_unbacked_claims(d.body, d.movie)) >= MAX_UNBACKED),
    (META, lambda d: _META.search(d.body)),
    (CHATTY, lambda d: _CHATTY.search(d.body)),
    (REPEAT, lambda d: repeats(d.reason, d.earlier)),
)
# Every rejection name, for the edge's counter: the rules' and the caller's own (TRUNCATED).
REJECTIONS = (TRUNCATED, *(name for name, _ in RULES))


def check(reason: str, movie: Movie, ctx: GateContext, earlier: Sequence[str] = ()) -> str | None:
    """None if `reason` may be shown for `movie`, else the name of the first rule it breaks."""
    draft = Draft(reason, movie, ctx, earlier)
    return next((name for name, broken in RULES if broken(draft)), None)


def _names_other_title(d: Draft) -> bool:
    """Another pick's or a liked movie's title, written as a title."""
    padded = _norm(d.reason)
    own = _title_keys(d.movie)
    # A one-word title ("Dinosaur") is a word of the movie's own catalog text as often as a
    # mention: "Jurassic World ... a genetically engineered dinosaur escapes".
    own_words = set(_norm(" ".join((d.movie.overview, *d.movie.keywords))).split())
    return any(
        other.id != d.movie.id
        and any(
            f" {k} " in padded and not any(k in o for o in own) and (" " in k or k not in own_words)
            for k in _title_keys(other)
        )
        and _capitalised(other, d.reason)
        for other in (*d.ctx.picks, *d.ctx.liked)
    )


def _claims_wrong_genre(body: str, movie: Movie) -> bool:
    """A genre claim ("hilarious", "horror") the movie's genres and keywords do not back."""
    lacks = set(_unbacked_genre_words(movie))
    return any(
        part in lacks
        for w in re.findall(r"[A-Za-z][A-Za-z\-]*", body)
        for part in (w.lower(), *w.lower().split("-"))
    )


def repeats(reason: str, earlier: Sequence[str]) -> bool:
    """`reason` reads almost like one shown before it in the same answer (80% alike)."""
    key = lookup_key(reason)
    for e in earlier:
        sm = SequenceMatcher(None, key, lookup_key(e))
        # The quick upper bounds rule most pairs out before the full comparison.
        if sm.real_quick_ratio() >= 0.8 and sm.quick_ratio() >= 0.8 and sm.ratio() >= 0.8:
            return True
    return False


def _without_own_title(reason: str, movie: Movie) -> str:
    """`reason` with mentions of the movie's own title (full or short) replaced by "It"."""
    out = reason
    for title in sorted({movie.title, _main_title(movie)}, key=len)[::-1]:
        if title:
            # Whole words only: "M" is a title, and the m of "film" is not a mention of it.
            pattern = (r"\b" if title[0].isalnum() else "") + re.escape(title)
            pattern += r"\b" if title[-1].isalnum() else ""
            out = re.sub(pattern, "It", out, flags=re.I)
    return out


def _without_copies(text: str, source: str, min_words: int = 6) -> str:
    """`text` with every run of `min_words` or more words copied from `source` (the movie's
    plot) replaced by "it", longest runs first."""
    words = source.rstrip(".").split()
    if len(words) < min_words:
        return text
    low = text.lower()
    for n in range(len(words), min_words - 1, -1):
        for i in range(len(words) - n + 1):
            span = " ".join(words[i : i + n]).rstrip(".,;:").lower()
            at = low.find(span)
            while at >= 0:
                text = text[:at] + "it" + text[at + len(span) :]
                low = text.lower()
                at = low.find(span)
    return text


def _is_keyword_list(reason: str, movie: Movie) -> bool:
    """A bare list ("Action, adventure; space marines, sequel") rather than a sentence. A
    sentence that ends in a list ("... offers a blend of humor, adventure, and heart") has one
    long clause before it, and is not one."""
    segments = [s.strip() for s in re.split(r"[,;]", reason.rstrip(".")) if s.strip()]
    short = sum(len(s.split()) <= 3 for s in segments)
    if (
        len(segments) >= 3
        and short >= len(segments) - 1
        and max(len(s.split()) for s in segments) <= 6
    ):
        return True
    facts = {w.lower() for t in (*movie.genres, *movie.keywords) for w in WORD.findall(t)}
    words = [w.lower() for w in WORD.findall(reason)]
    # Glue words hold a sentence together; a bare list of keywords has almost none.
    glue = sum(w in _GATE.glue for w in words)
    return bool(words) and glue < 3 and sum(w in facts for w in words) / len(words) > 0.6


def _supported(reason: str, movie: Movie) -> bool:
    """At least one word of the reason is backed by the catalog's facts about this movie (its
    genres, keywords, overview): "You will enjoy its plot and characters" says nothing."""
    facts = _NORM.stems(" ".join((*movie.genres, *movie.keywords, movie.overview)))
    facts -= _LEX.generic_stems
    # Short genre names ("war") are below the stem length; as whole words they are facts too.
    named = {w.lower() for w in re.findall(r"[A-Za-z]+", reason)} & _LEX.genre_terms(movie.genres)
    return bool(_NORM.stems(reason) & facts or named)


def _invents_plot(reason: str, movie: Movie) -> bool:
    """Names a person the catalog does not (a small model invents them freely: "a young woman
    who can control water"), or says what the movie is about with a word the catalog does not
    back ("a documentary about music" for one about a family trial)."""
    text = " ".join((movie.title, *movie.keywords, movie.overview, *movie.genres))
    facts = _NORM.stems(text) | {w.lower() for w in WORD.findall(text)}
    # A "family film" is its genre, not a person in its plot.
    facts |= {_NORM.stem(t) for t in _LEX.genre_terms(movie.genres)}
    # Capitalised words are names ("Adrienne King"): the name rule judges those.
    for w in (w for w in WORD.findall(reason) if not w[0].isupper()):
        if w in _GATE.persons and not {_NORM.stem(w), _NORM.stem(w.rstrip("s"))} & facts:
            return True
    return any(
        _NORM.stem(m.group(2)) not in facts | _LEX.generic_stems for m in _SUBJECT.finditer(reason)
    )


def _unbacked_claims(reason: str, movie: Movie) -> list[str]:
    """Words of the reason that are neither film talk nor backed by the catalog's facts."""
    facts = _NORM.stems(
        " ".join(
            (movie.title, *movie.genres, *movie.keywords, movie.overview, *movie.cast)
            + ((movie.director,) if movie.director else ())
        )
    )
    return [
        w
        for w in WORD.findall(reason)
        if len(w) >= 4
        and not w[0].isupper()
        and w.lower() not in _GATE.film_talk
        and _NORM.stem(w) not in facts
    ]


def _unknown_name(reason: str, movie: Movie, ctx: GateContext) -> bool:
    """A capitalised word mid-sentence that nothing in the catalog says about this movie or the
    liked ones: the model inventing a director, a character or another film."""
    texts = [movie.title, movie.overview, " ".join(movie.keywords), " ".join(movie.genres)]
    texts += [" ".join(movie.cast), movie.director or ""] + [lm.title for lm in ctx.liked]
    allowed = {w.lower().strip("'’") for t in texts for w in WORD.findall(t)}
    for sentence in re.split(r"(?<=[.!?])\s+", reason):
        for i, w in enumerate(WORD.findall(sentence)):
            if i == 0 or not w[0].isupper() or w in _GATE.common_caps:
                continue
            if w.lower().strip("'’") not in allowed and w.lower().split("'")[0] not in allowed:
                return True
    return False


def _echoes(reason: str, prompt: str) -> bool:
    """Six words in a row copied from the prompt, or the prompt's own labels."""
    if _ECHO_LABEL.match(reason):
        return True
    if not prompt:
        return False
    words = lookup_key(reason).split()
    source = _norm(prompt)
    return any(f" {' '.join(words[i : i + 6])} " in source for i in range(len(words) - 5))


def known_words(texts: Iterable[str], extra: Iterable[str] = ()) -> frozenset[str]:
    """The vocabulary the unknown-word rule accepts: every word of `texts` (a catalog's titles,
    overviews, keywords, people), `extra` (e.g. the embedder's word pieces) and film talk."""
    words = {w.lower() for t in texts for w in WORD.findall(t)}
    words |= {w.lower() for w in extra if w.isalpha()}
    return frozenset(words | _GATE.review_words)


def _unknown_word(reason: str, vocabulary: frozenset[str]) -> bool:
    """A word no dictionary here knows ("a delightful rompione"): a small model's typing error
    or an invented word. Capitalised words are the name rule's business."""
    for w in WORD.findall(reason):
        if w[0].isupper():
            continue
        for part in re.split(r"[-'’]", w.lower()):
            if part and not _NORM.is_word(part, vocabulary):
                return True
    return False
