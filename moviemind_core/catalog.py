"""The normalised movie record every catalog source yields and every bundle stores."""

from __future__ import annotations

import re
import unicodedata

import msgspec

# MovieLens and some exports move leading articles to the end: "Matrix, The (1999)".
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+), (?P<art>The|A|An|La|Le|Les|L'|Il|El|Der|Die|Das)$")
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
    # Ids of movies the source itself relates to this one (TMDB's recommendations), best first.
    # The index builder turns them into neighbour lists and strips them from the stored catalog.
    related: tuple[int, ...] = ()
    original_title: str | None = None
    alt_titles: tuple[str, ...] = ()
    poster_path: str | None = None
    tmdb_id: int | None = None
    imdb_id: str | None = None


def display_title(raw: str) -> str:
    """'Matrix, The' -> 'The Matrix'; also handles 'Amelie (Fabuleux destin d'Amélie Poulain, Le)'."""
    raw = raw.strip()
    # An alternate title in parentheses stays as it is; only the main part is reordered.
    main, sep, rest = raw.partition(" (")
    m = _TRAILING_ARTICLE.match(main)
    if m:
        art = m.group("art")
        joiner = "" if art.endswith("'") else " "
        main = f"{art}{joiner}{m.group('body')}"
    return main + (sep + rest if sep else "")


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
