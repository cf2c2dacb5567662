"""The normalised movie record every catalog source yields and every bundle stores."""

from __future__ import annotations

import functools
import re
import unicodedata

import msgspec

# MovieLens and some exports move leading articles to the end: "Matrix, The (1999)", and do it
# in the film's own language too: "Haine, La", "Boot, Das", "Sjunde inseglet, Det". The articles
# are word knowledge: moviemind_core/lexicon/data/<version>/titles.toml.


@functools.cache
def articles() -> tuple[str, ...]:
    """Every article a title may start with, in any of the catalog's languages."""
    from moviemind_core.lexicon import lexicon

    return lexicon().titles.articles.all


@functools.cache
def _trailing_article() -> re.Pattern[str]:
    return re.compile(r"^(?P<body>.+), (?P<art>" + "|".join(map(re.escape, articles())) + r")$")


@functools.cache
def _sentence_case_articles() -> frozenset[str]:
    """Articles of languages that write titles in sentence case ("Le fabuleux destin d'Amélie
    Poulain"): the word after the article is lower case again once it is back in front."""
    from moviemind_core.lexicon import lexicon

    return frozenset(lexicon().titles.articles.sentence_case)


_YEAR_SUFFIX = re.compile(r"\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")


class Movie(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One catalog entry, the same shape whichever source it came from."""

    id: int
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    overview: str = ""
    keywords: tuple[str, ...] = ()
    director: str | None = None
    cast: tuple[str, ...] = ()
    popularity: float = 0.0
    # 0..10, TMDB's scale; MovieLens' 0.5..5 stars are doubled.
    vote_average: float = 0.0
    vote_count: int = 0
    source_ids: dict[str, int | str] = {}
    # The title in the film's own language ("Le fabuleux destin d'Amélie Poulain"), when the
    # source gives one; `title` is the name an English-speaking film lover uses ("Amélie").
    original_title: str | None = None
    # Every other name the film is found by: the original title, a.k.a. forms, the English
    # release title when `title` is the original one ("Hate" beside "La Haine").
    alt_titles: tuple[str, ...] = ()
    # TMDB's poster path ("/abc.jpg": image base + size + path), TMDB and IMDb ids ("tt0114369").
    poster_path: str | None = None
    tmdb_id: int | None = None
    imdb_id: str | None = None
    # Ids of movies the source itself relates to this one (TMDB's recommendations), best first.
    # The index builder turns them into neighbour lists and strips them from the stored catalog.
    related: tuple[int, ...] = ()


def title_names(m: Movie) -> tuple[str, ...]:
    """Every name `m` goes by, the display title first, each once (by lookup key)."""
    names: dict[str, str] = {}
    for name in (m.title, *m.alt_titles, m.original_title or ""):
        key = lookup_key(name)
        if key:
            names.setdefault(key, name)
    return tuple(names.values())


def display_title(raw: str) -> str:
    """'Matrix, The' -> 'The Matrix'; 'Fabuleux destin d'Amélie Poulain, Le' -> 'Le fabuleux
    destin d'Amélie Poulain'. A title with alternates in brackets ('Amelie (Fabuleux destin
    d'Amélie Poulain, Le)') has only its main part reordered."""
    raw = raw.strip()
    # "Human Centipede II (Full Sequence), The": the article follows the whole title.
    whole = _trailing_article().match(raw)
    if whole and "(" in whole.group("body") and raw.rfind(")") < whole.start("art"):
        return _article_in_front(whole)
    main, sep, rest = raw.partition(" (")
    m = _trailing_article().match(main)
    if m:
        main = _article_in_front(m)
    return main + (sep + rest if sep else "")


def _article_in_front(m: re.Match[str]) -> str:
    art, body = m.group("art"), m.group("body")
    joiner = "" if art.endswith("'") else " "
    # "Fabuleux destin d'Amélie Poulain, Le": a later word in lower case shows the title is in
    # sentence case, so its first word was only capitalised for being first. Short words ("en",
    # "di") are lower case in title case too: "Vie en Rose, La" stays "La Vie en Rose".
    if (
        art in _sentence_case_articles()
        and joiner
        and any(w[:1].islower() and len(w) >= 4 for w in body.split()[1:])
    ):
        body = body[:1].lower() + body[1:]
    return f"{art}{joiner}{body}"


def split_title_year(raw: str) -> tuple[str, int | None]:
    """'Troy (2004)' -> ('Troy', 2004); a title without a year keeps year None."""
    m = _YEAR_SUFFIX.search(raw)
    if not m:
        return raw.strip(), None
    return raw[: m.start()].strip(), int(m.group("year"))


def lookup_key(title: str) -> str:
    """The form titles are compared in: display order, no accents, no punctuation, lower case."""
    text = display_title(title)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^0-9a-z]+", " ", text)
    return " ".join(text.split())
