"""Word knowledge as data, read from versioned files through one normaliser.

Genre names and phrases, tone words, negation cues, film talk and related terms live in
data/<version>/*.toml; every module that decides words reads them here.

    from moviemind_core.lexicon import canonical_genre, lexicon
    canonical_genre("Science Fiction")        # "Sci-Fi": the id the index stores
    lexicon().genres_named("cartoons")        # ("Animation",)
    lexicon().normaliser.forms("zombies")     # {"zombies", "zombie", "zombi"}

No module keeps its own word table; a new catalog's genre spellings, another language or
another model's habits are a data change.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from moviemind_core.lexicon.lexicon import Lexicon, genre_key
from moviemind_core.lexicon.loader import load, versions
from moviemind_core.lexicon.normalise import Normaliser

DEFAULT_VERSION = "en-v1"

__all__ = [
    "DEFAULT_VERSION",
    "Lexicon",
    "Normaliser",
    "canonical_genre",
    "canonical_genres",
    "genre_key",
    "lexicon",
    "load",
    "versions",
]


@cache
def lexicon(version: str = DEFAULT_VERSION) -> Lexicon:
    """The lexicon `version`, loaded once per process."""
    return load(version)


def canonical_genre(name: str) -> str:
    """The canonical genre id for a genre name in MovieLens', TMDB's or another catalog's
    spelling ("Science Fiction" -> "Sci-Fi", "Family" -> "Children"); unknown names pass
    through trimmed."""
    return lexicon().canonical_genre(name)


def canonical_genres(names: Iterable[str]) -> tuple[str, ...]:
    """`names` as canonical ids, in order, each once, without "(no genres listed)"."""
    return lexicon().canonical_genres(names)
