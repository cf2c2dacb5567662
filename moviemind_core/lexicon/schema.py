"""The shapes of a lexicon version's data files (moviemind_core/lexicon/data/<version>/*.toml).

Each file decodes into one of these structs, so a misspelt field or a string where a list
belongs fails at load time with the file's name, not later as a silently empty table.
"""

from __future__ import annotations

import msgspec


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """manifest.toml: which lexicon this is."""

    version: str
    language: str


class Genre(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One genre of genres.toml (the file documents each field)."""

    id: str
    aliases: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    backing: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    promises: tuple[str, ...] = ()
    head: str = ""
    modifier: str = ""
    weak_head: bool = False
    broad: bool = False
    always_named: bool = False
    spoken: bool = True

    @property
    def spellings(self) -> tuple[str, ...]:
        """The canonical id first, then the other catalogs' spellings."""
        return (self.id, *self.aliases)


class GenrePair(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Two genres with a name of their own ("comedy-drama")."""

    genres: frozenset[str]
    phrase: str


class GenresFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """genres.toml."""

    genre: tuple[Genre, ...]
    pair: tuple[GenrePair, ...] = ()
    not_genres: frozenset[str] = frozenset()


class Morphology(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """morphology.toml: the normaliser's affixes and stem length."""

    stem_length: int
    min_stem_word: int
    form_suffixes: tuple[str, ...]
    min_base: int
    word_suffixes: tuple[str, ...]
    word_prefixes: tuple[str, ...]


class Negation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a mood excludes things ("nothing too gory", "but not childish")."""

    cues: tuple[str, ...]
    intensifiers: tuple[str, ...]
    clause_breaks: tuple[str, ...]
    joins: tuple[str, ...]
    join_cues: tuple[str, ...]
    fillers: frozenset[str]


class MoodFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """mood.toml."""

    negation: Negation
    vague: frozenset[str]


class RelatedFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """related.toml: a word -> the catalog words that mean it."""

    related: dict[str, tuple[str, ...]]


class ToneFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """tone.toml: tone keyword -> the descriptor said before a genre."""

    words: dict[str, str]
    classifiers: frozenset[str]


class Claim(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Words that claim something the catalog must back (beyond genres)."""

    words: tuple[str, ...]
    backed_by: tuple[str, ...]


class GateFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """gate.toml: the reason gate's film talk, glue words, persons and labels."""

    first_person: tuple[str, ...]
    meta: tuple[str, ...]
    common_caps: frozenset[str]
    glue: frozenset[str]
    persons: frozenset[str]
    subject_cues: tuple[str, ...]
    film_talk: frozenset[str]
    generic: frozenset[str]
    review_words: frozenset[str]
    echo_labels: tuple[str, ...]
    claims: tuple[Claim, ...] = ()


class ChoicesFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """choices.toml: what the guided reason sentences know about English."""

    not_topics: frozenset[str]
    mass_nouns: frozenset[str]
    places: frozenset[str]
    subject_leads: frozenset[str]
    lower_leads: frozenset[str]
    ing_nouns: frozenset[str]
    ing_adjectives: frozenset[str]
    noun_plots: tuple[str, ...]
    noun_plot_links: tuple[str, ...]
