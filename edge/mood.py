"""Split a free-text mood into what the person wants and what they exclude.

"slow-burn sci-fi, nothing gory" -> wanted "slow-burn sci-fi", excluded "gory". Embedding the
whole text would pull results toward "gory": a sentence embedding has no notion of "not". The
wanted part is embedded as the query; each excluded phrase becomes a genre exclusion when it
names a catalog genre ("no horror", "not animated") and a negative direction in the ranking
otherwise ("nothing too dark").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

# A negation opens an excluded phrase; intensifiers after it carry no meaning of their own.
_NEGATION = re.compile(
    r"\b(?:no|not|nothing|none|without|never|avoid|avoiding|except|minus|skip|"
    r"don'?t want|do not want|no more|isn'?t|aren'?t|rather not|less)\b"
    r"(?:\s+(?:too|very|so|overly|that|any|more|really|particularly|a|an|the|of|with|"
    r"at all|remotely|much|heavy|heavily)(?=\s|$))*\s*",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[,;.!?]|\bbut\b|\band\b(?=\s+(?:no|not|nothing|without|never)\b)", re.I)

# Words people use for a genre -> the genre names catalogs use (MovieLens and TMDB spellings).
GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "horror": ("Horror",),
    "scary": ("Horror",),
    "slasher": ("Horror",),
    "slashers": ("Horror",),
    "animated": ("Animation",),
    "animation": ("Animation",),
    "cartoon": ("Animation",),
    "cartoons": ("Animation",),
    "anime": ("Animation",),
    "kids": ("Children",),
    "kid": ("Children",),
    "children": ("Children",),
    "childrens": ("Children",),
    "family": ("Children", "Family"),
    "romance": ("Romance",),
    "romantic": ("Romance",),
    "romcom": ("Romance",),
    "romcoms": ("Romance",),
    "love story": ("Romance",),
    "musical": ("Musical", "Music"),
    "musicals": ("Musical", "Music"),
    "documentary": ("Documentary",),
    "documentaries": ("Documentary",),
    "war": ("War",),
    "western": ("Western",),
    "westerns": ("Western",),
    "comedy": ("Comedy",),
    "comedies": ("Comedy",),
    "sci-fi": ("Sci-Fi", "Science Fiction"),
    "scifi": ("Sci-Fi", "Science Fiction"),
    "science fiction": ("Sci-Fi", "Science Fiction"),
    "fantasy": ("Fantasy",),
    "thriller": ("Thriller",),
    "thrillers": ("Thriller",),
    "crime": ("Crime",),
    "mystery": ("Mystery",),
    "noir": ("Film-Noir",),
    "action": ("Action",),
    "drama": ("Drama",),
    "dramas": ("Drama",),
}
# Trailing words that turn a genre into a phrase about it: "no horror movies", "not animated films".
_FILLER = re.compile(r"\s+(?:movies?|films?|stuff|ones?|please|pls|stories|story)$", re.I)


# Words the catalog uses for what people commonly exclude: "without gore" must also find "gory",
# "violent" and "bloody" in keywords. Other words match themselves and their simple forms.
RELATED_WORDS: dict[str, tuple[str, ...]] = {
    "gore": ("gore", "gory", "bloody", "blood", "gruesome", "splatter", "grisly"),
    "gory": ("gore", "gory", "bloody", "blood", "gruesome", "splatter", "grisly"),
    "blood": ("gore", "gory", "bloody", "blood", "gruesome"),
    "violence": ("violence", "violent", "brutal", "brutality", "bloody", "gore", "gory"),
    "violent": ("violence", "violent", "brutal", "brutality", "bloody", "gore", "gory"),
    "dark": ("dark", "bleak", "grim", "disturbing", "nihilistic", "harrowing", "depressing"),
    "depressing": ("depressing", "bleak", "tragic", "tragedy", "harrowing", "grim"),
    "sad": ("sad", "tragic", "tragedy", "tearjerker", "depressing", "bittersweet"),
    "scary": ("scary", "horror", "terrifying", "frightening", "creepy", "supernatural"),
    "creepy": ("creepy", "scary", "unsettling", "eerie", "disturbing"),
    "sex": ("sex", "sexual", "erotic", "nudity", "sexuality"),
    "slow": ("slow", "meditative", "contemplative"),
    "long": ("epic", "long"),
    "childish": ("childish", "kids", "children", "family", "family friendly"),
    "cheesy": ("cheesy", "campy", "camp", "corny"),
    "war": ("war", "combat", "battle", "military"),
    "swearing": ("profanity", "swearing", "crude"),
}


# Words of a mood that name nothing a catalog describes.
VAGUE = frozenset(
    {"the", "and", "any", "too", "with", "for", "movie", "movies", "film", "films", "stuff",
     "something", "anything", "but", "that", "this", "very", "really", "kind", "sort", "like",
     "good", "great", "nice", "night", "friday", "whole", "more", "less", "some", "one", "ones",
     "lot", "bit", "watch", "want", "please", "about", "from", "into", "not", "all", "just",
     # when to watch, not what: "a summer blockbuster" is not about summer
     "summer", "weekend", "tonight", "evening", "afternoon", "sunday", "saturday", "rainy", "day"}
)  # fmt: skip


def word_groups(phrase: str) -> list[set[str]]:
    """For each word of `phrase` that says something, the catalog words that mean it ("gory"
    -> gore, gory, bloody, ...): the word, its simple forms and its related words."""
    groups = []
    for word in re.findall(r"[a-z0-9]+", phrase.lower()):
        if len(word) < 3 or word in VAGUE:
            continue
        forms = {word}
        for suffix in ("s", "es", "y", "ly", "ing", "ful"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                forms.add(word[: -len(suffix)])
        for related in RELATED_WORDS.get(word, ()):
            forms.update(related.split())
        groups.append(forms)
    return groups


def word_forms(text: str) -> set[str]:
    """Every catalog word the words of `text` mean, in one set: what an excluded phrase names
    ("gory violence" -> gore, gory, violent, brutal, ...), and what a sentence and a mood are
    compared by."""
    return set().union(*word_groups(text))


class Mood(msgspec.Struct, frozen=True):
    """The parts of a mood: text to embed, phrases to push away, genres to leave out."""

    wanted: str
    excluded: tuple[str, ...] = ()
    genres_none: tuple[str, ...] = ()


def parse_mood(text: str, catalog_genres: Iterable[str] = ()) -> Mood:
    """Split a mood into wanted text, excluded phrases and excluded catalog genres.

    `catalog_genres` (lower-case names the bundle uses) limits genre exclusions to real genres;
    an excluded phrase that is not a genre is kept as a phrase.
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
        names = GENRE_WORDS.get(phrase.lower(), ())
        real = [g for g in names if not known or g.lower() in known]
        if real:
            genres.extend(g for g in real if g not in genres)
        else:
            excluded.append(phrase)
    return Mood(" ".join(wanted).strip(), tuple(excluded), tuple(genres))
