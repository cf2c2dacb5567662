"""Split a free-text mood into what the person wants and what they exclude.

"slow-burn sci-fi, nothing gory" -> wanted "slow-burn sci-fi", excluded "gory". Embedding the
whole text would pull results toward "gory": a sentence embedding has no notion of "not". The
wanted part is embedded as the query; each excluded phrase becomes a genre exclusion when it
names a catalog genre ("no horror", "not animated") and a negative direction in the ranking
otherwise ("nothing too dark"). The words (negation cues, genre phrases, related terms) come
from the lexicon (moviemind_core/lexicon/data/*/mood.toml, genres.toml, related.toml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from moviemind_core.lexicon import lexicon
from moviemind_core.lexicon.normalise import alternation

_LEX = lexicon()
_NEG = _LEX.mood.negation
# Words too short to say anything a catalog describes ("a", "of", "it").
_MIN_WORD = 3


# A negation opens an excluded phrase; intensifiers after it carry no meaning of their own.
_NEGATION = re.compile(
    rf"\b(?:{alternation(_NEG.cues)})\b(?:\s+(?:{alternation(_NEG.intensifiers)})(?=\s|$))*\s*",
    re.IGNORECASE,
)
_CLAUSE = re.compile(
    rf"[,;.!?]|\b(?:{alternation(_NEG.clause_breaks)})\b"
    rf"|\b(?:{alternation(_NEG.joins)})\b(?=\s+(?:{alternation(_NEG.join_cues)})\b)",
    re.IGNORECASE,
)
# Trailing words that turn a genre into a phrase about it: "no horror movies".
_FILLER = re.compile(rf"\s+(?:{alternation(_NEG.fillers)})$", re.IGNORECASE)


def word_groups(phrase: str) -> list[set[str]]:
    """For each word of `phrase` that says something, the catalog words that mean it ("gory"
    -> gore, gory, bloody, ...): the word, its simple forms and its related words."""
    norm = _LEX.normaliser
    groups = []
    for word in norm.terms(phrase):
        if len(word) < _MIN_WORD or word in _LEX.mood.vague:
            continue
        forms = norm.forms(word)
        for related in _LEX.related(word):
            forms.update(related.split())
        groups.append(forms)
    return groups


def word_forms(text: str) -> set[str]:
    """Every catalog word the words of `text` mean, in one set: what an excluded phrase names
    ("gory violence" -> gore, gory, violent, brutal, ...), and what a sentence and a mood are
    compared by."""
    return set().union(*word_groups(text))


def genres_named(phrase: str) -> tuple[str, ...]:
    """Canonical ids of the genres a phrase of a mood names ("cartoons" -> Animation)."""
    return _LEX.genres_named(phrase)


class Mood(msgspec.Struct, frozen=True):
    """The parts of a mood: text to embed, phrases to push away, genres to leave out."""

    wanted: str
    excluded: tuple[str, ...] = ()
    genres_none: tuple[str, ...] = ()


def parse_mood(text: str, catalog_genres: Iterable[str] = ()) -> Mood:
    """Split a mood into wanted text, excluded phrases and excluded catalog genres.

    `catalog_genres` (lower-case names the bundle uses) limits genre exclusions to real genres,
    in the catalog's own spelling; an excluded phrase that is not a genre is kept as a phrase.
    """
    known = {g.lower() for g in catalog_genres}
    wanted: list[str] = []
    excluded: list[str] = []
    genres: list[str] = []
    for clause in _CLAUSE.split(text):
        clause = clause.strip()
        if not clause:
            continue
        m = _NEGATION.search(clause)
        if m is None:
            wanted.append(clause)
            continue
        before, phrase = clause[: m.start()].strip(), clause[m.end() :].strip()
        if before:
            wanted.append(before)
        phrase = _FILLER.sub("", phrase.strip(" -")).strip()
        if not phrase:
            continue
        real = [
            spelling
            for gid in genres_named(phrase)
            # An index built before genre ids were canonical may spell one its own way.
            for spelling in ((gid,) if not known else _LEX.spellings(gid))
            if not known or spelling.lower() in known
        ]
        if real:
            genres.extend(g for g in real if g not in genres)
        else:
            excluded.append(phrase)
    return Mood(" ".join(wanted).strip(), tuple(excluded), tuple(genres))
