"""One loaded lexicon version: its data files plus the lookups derived from them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from moviemind_core.lexicon.normalise import Normaliser
from moviemind_core.lexicon.schema import (
    ChoicesFile,
    GateFile,
    Genre,
    GenresFile,
    Manifest,
    MoodFile,
    RelatedFile,
    ToneFile,
)


def genre_key(name: str) -> str:
    """How genre spellings are matched: lower case, letters and digits only ("Sci-Fi" =
    "scifi", "Children's" = "childrens", "Film Noir" = "film-noir")."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


class Lexicon:
    """Word knowledge of one language and version, read through one normaliser."""

    def __init__(
        self,
        manifest: Manifest,
        normaliser: Normaliser,
        genres: GenresFile,
        mood: MoodFile,
        related: RelatedFile,
        tone: ToneFile,
        gate: GateFile,
        choices: ChoicesFile,
    ) -> None:
        self.manifest = manifest
        self.normaliser = normaliser
        self.genres = genres.genre
        self.genre_pairs = genres.pair
        self.mood = mood
        self.tone = tone
        self.gate = gate
        self.choices = choices
        self._related = related.related
        self._by_key: dict[str, Genre] = {}
        self._by_phrase: dict[str, list[str]] = {}
        for g in self.genres:
            for spelling in g.spellings:
                if self._by_key.setdefault(genre_key(spelling), g) is not g:
                    raise ValueError(f"genre spelling {spelling!r} names two genres")
            for phrase in g.phrases:
                self._by_phrase.setdefault(phrase, []).append(g.id)
        self._not_genres = {genre_key(n) for n in genres.not_genres}
        # File order is specificity: the most telling genre first.
        self.specificity = {g.id: i for i, g in enumerate(self.genres)}
        backing: dict[str, set[str]] = {}
        for g in self.genres:
            for w in g.claims:
                backing.setdefault(w, set()).update(s.lower() for s in (*g.spellings, *g.backing))
        for c in gate.claims:
            for w in c.words:
                backing.setdefault(w, set()).update(c.backed_by)
        # A claim word -> genre names or keyword parts, any of which makes the claim true.
        self.claim_backing = {w: frozenset(b) for w, b in backing.items()}
        self.generic_stems = frozenset(normaliser.stem(w) for w in gate.generic)
        # Genres' own names are never what a film is about.
        self.not_topics = choices.not_topics | {
            s.lower() for g in self.genres if g.head or g.modifier for s in g.spellings
        }

    @property
    def version(self) -> str:
        """The data version this lexicon was loaded from ("en-v1")."""
        return self.manifest.version

    def genre(self, name: str) -> Genre | None:
        """The genre any catalog's spelling names, or None for one this lexicon lacks."""
        return self._by_key.get(genre_key(name))

    def spellings(self, name: str) -> tuple[str, ...]:
        """Every spelling of the genre `name` names, its canonical id first; `name` alone for a
        genre the lexicon lacks."""
        g = self.genre(name)
        return g.spellings if g is not None else (name,)

    def canonical_genre(self, name: str) -> str:
        """The canonical id of a genre name in any catalog's spelling ("Science Fiction" ->
        "Sci-Fi"); a name the lexicon lacks comes back trimmed, as the catalog spells it."""
        g = self.genre(name)
        return g.id if g is not None else name.strip()

    def canonical_genres(self, names: Iterable[str]) -> tuple[str, ...]:
        """Canonical ids of `names` in their order, each once, without placeholders such as
        MovieLens' "(no genres listed)"."""
        out = (
            self.canonical_genre(n)
            for n in names
            if n.strip() and genre_key(n) not in self._not_genres
        )
        return tuple(dict.fromkeys(out))

    def spoken_genres(self, names: Iterable[str]) -> list[str]:
        """The genres one may describe a film by: without screen formats filed among genres
        (MovieLens' IMAX)."""
        return [n for n in names if (g := self.genre(n)) is None or g.spoken]

    def genres_named(self, phrase: str) -> tuple[str, ...]:
        """Canonical ids of the genres a mood's phrase names ("cartoons" -> Animation)."""
        return tuple(self._by_phrase.get(phrase.lower(), ()))

    def genre_terms(self, names: Iterable[str]) -> set[str]:
        """Single words that name the genres `names` ("noir" for Film-Noir, "family" for
        Children); a genre the lexicon lacks is named by its own words."""
        out: set[str] = set()
        for n in names:
            g = self.genre(n)
            out.update(g.terms if g is not None else re.split(r"[-\s]+", n.lower()))
        return out

    def related(self, word: str) -> tuple[str, ...]:
        """The catalog words that mean `word` beyond its own forms ("gory" -> gore, bloody)."""
        return self._related.get(word, ())
