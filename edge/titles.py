"""Resolve what a person typed ("troy (2004)", "Matrix, The", "godfahter") to catalog movies."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher

import msgspec
import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.catalog import Movie, articles, lookup_key, split_title_year, title_names


class Resolved(msgspec.Struct, frozen=True):
    """A typed title tied to a catalog movie; `note` says how when it was not an exact match."""

    input: str
    id: int
    title: str
    year: int | None
    note: str | None = None
    # Other catalog movies with this title (most popular first) when the input did not say which.
    alternatives: tuple[int, ...] = ()
    # The match may not be the film the person meant: the title was completed or corrected, or
    # the only film of that name here is one few people know ("the only 'Parasite' ... 1982").
    weak: bool = False


_ARTICLES = ("the ", "a ", "an ")
# Every article the catalog's titles may start with, as lookup keys spell them ("l'" -> "l "):
# "Haine" finds "La Haine", "Fabuleux destin d'Amelie Poulain" finds "Le fabuleux destin...".
_ANY_ARTICLE = tuple(sorted({lookup_key(a) + " " for a in articles()} - {" "}, key=len))[::-1]
NOTE_COMPLETED = "completed a partial title"
NOTE_CLOSEST = "closest title match"


def _bare(key: str) -> str:
    """The key without a leading article: people type "godfather" for "The Godfather"."""
    for art in _ARTICLES:
        if key.startswith(art):
            return key[len(art) :]
    return key


def _articleless(key: str) -> str:
    """The key without a leading article of any language the catalog's titles use."""
    for art in _ANY_ARTICLE:
        if key.startswith(art) and len(key) > len(art):
            return key[len(art) :]
    return key


def _trigrams(key: str) -> set[str]:
    padded = f"  {key} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class TitleIndex:
    """Exact, prefix and typo-tolerant lookup over a bundle's title table."""

    def __init__(self, movies: list[Movie], titles: dict[str, list[int]]) -> None:
        self.by_id = {m.id: m for m in movies}
        self.titles = titles
        self.keys = sorted(titles)
        self.grams: dict[str, list[str]] = {}
        for key in self.keys:
            for g in _trigrams(key):
                self.grams.setdefault(g, []).append(key)
        # Autocomplete sorts by popularity on every keystroke: look it up, do not recompute it.
        self.popularity = {
            key: max((self.by_id[i].vote_count for i in ids if i in self.by_id), default=0)
            for key, ids in titles.items()
        }
        # Trigrams in more titles than this ("the", " th") say little about which title was
        # meant and cost the most to count; typo matching skips them when rarer ones exist.
        self._common = max(50, len(self.keys) // 20)
        # Keys by their form without a leading article, for inputs that leave it out ("Haine"
        # -> "la haine"); the most popular title first. Other languages' articles only for
        # films with an original-language title: "Hard" is not "Die Hard".
        articleless: dict[str, set[str]] = {}
        for m in movies:
            strip = _articleless if m.original_title else _bare
            for name in title_names(m):
                key = lookup_key(name)
                if key in self.titles and strip(key) != key:
                    articleless.setdefault(strip(key), set()).add(key)
        self.articleless = {
            k: sorted(keys, key=lambda k: (-self.popularity[k], k))
            for k, keys in articleless.items()
        }
        # A film fewer people rated than the catalog's median is one a person naming it may not
        # have meant (the sample's only "Parasite" is a 1982 film one person rated).
        counts = sorted(m.vote_count for m in movies)
        self.obscure_below = counts[len(counts) // 2] if counts else 0
        self.year_max = max((m.year for m in movies if m.year), default=None)

    def _best(self, ids: list[int], year: int | None) -> tuple[Movie, bool] | None:
        """Most popular movie among ids (already ordered), preferring the year when given."""
        movies = [self.by_id[i] for i in ids if i in self.by_id]
        if year is not None:
            same = [m for m in movies if m.year == year]
            if same:
                return same[0], len(same) > 1
        return (movies[0], len(movies) > 1) if movies else None

    def fuzzy_keys(
        self, key: str, limit: int = 5, cutoff: float = 0.75, *, prefix: bool = False
    ) -> list[str]:
        """Title keys close to key: trigram candidates, then edit similarity. With `prefix`,
        key is the start of a title being typed and is compared with titles' starts."""
        grams = _trigrams(key)
        postings = [self.grams[g] for g in grams if g in self.grams]
        rare = [p for p in postings if len(p) <= self._common]
        counts: Counter[str] = Counter()
        for posting in rare or postings:
            counts.update(posting)
        needed = max(1, len(rare or postings) // 3)
        # The key is difflib's second sequence, whose analysis it caches across candidates.
        # Also without articles on both sides: "godfahter" is close to "(the) godfather".
        whole = SequenceMatcher(None, "", key)
        bare = whole if _bare(key) == key else SequenceMatcher(None, "", _bare(key))
        scored = []
        for cand, shared in counts.most_common(50):
            if shared < needed:
                break
            best = 0.0
            for matcher, target in ((whole, cand), (bare, _bare(cand))):
                n = len(matcher.b) + 2
                matcher.set_seq1(target[:n] if prefix else target)
                # Cheap upper bounds first; ratio() only for candidates that could pass.
                if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff:
                    best = max(best, matcher.ratio())
            if best >= cutoff:
                scored.append((best, cand))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [c for _, c in scored[:limit]]

    def resolve(self, text: str) -> Resolved | None:
        """The catalog movie a person most likely meant, or None."""
        raw = text.strip()
        if not raw:
            return None
        title, year = split_title_year(raw)
        key = lookup_key(title)
        if not key:
            return None  # only punctuation or a year: every key would "match" as a prefix
        note = None
        ids = self.titles.get(key) or self.titles.get("the " + key) or self._any_article(key)
        if ids is None and len(_bare(key)) >= 3 and key not in ("the", "a", "an"):
            # Completing "x" or "the" to the most popular title would be a guess, not a match.
            # "shawshank" -> "the shawshank redemption": the article is usually left out.
            prefixed = self._prefix_keys(key, 1) or self._prefix_keys("the " + key, 1)
            if prefixed:
                ids = self.titles[prefixed[0]]
                note = NOTE_COMPLETED
        if ids is None:
            close = self.fuzzy_keys(key, limit=1)
            if not close:
                return None
            ids = self.titles[close[0]]
            note = NOTE_CLOSEST
        best = self._best(ids, year)
        if best is None:
            return None
        movie, ambiguous = best
        alternatives: tuple[int, ...] = ()
        weak = note is not None
        if year is not None and movie.year != year:
            note = f"no {year} release in the catalog; took {movie.year}"
            if self.year_max is not None and year > self.year_max:
                note = f"no {year} release in the catalog (films up to {self.year_max}); took {movie.year}"
            weak = True
        elif ambiguous and note is None:
            note = "several movies have this title; took the most popular"
            if year is None:
                alternatives = tuple(i for i in ids if i in self.by_id and i != movie.id)
        elif note is None and year is None and movie.vote_count < self.obscure_below:
            # The person named a title, not a year: the one film of that name here is little
            # known, and may not be the one they meant (a newer film the catalog lacks).
            note = f"the only ‘{movie.title}’ in this catalog: {movie.year or 'year unknown'}"
            weak = True
        return Resolved(
            input=text,
            id=movie.id,
            title=movie.title,
            year=movie.year,
            note=note,
            alternatives=alternatives,
            weak=weak,
        )

    def _any_article(self, key: str) -> list[int] | None:
        """Ids of the most popular title that is `key` with or without any leading article."""
        found = self.articleless.get(_articleless(key))
        return self.titles[found[0]] if found else None

    def _prefix_keys(self, key: str, limit: int) -> list[str]:
        """Keys that start with key (whole words first), most popular first."""
        start = bisect.bisect_left(self.keys, key)
        found = []
        for k in self.keys[start : start + 2000]:
            if not k.startswith(key):
                break
            found.append(k)
        found.sort(key=lambda k: (k[len(key) : len(key) + 1] not in ("", " "), -self.popularity[k]))
        return found[:limit]

    def search(self, text: str, limit: int = 10) -> list[Movie]:
        """Autocomplete: titles starting with the text, then word-prefix and typo matches."""
        title, year = split_title_year(text)
        key = lookup_key(title)
        if not key:
            return []
        found: list[Movie] = []
        seen: set[int] = set()

        def add_key(k: str) -> None:
            for i in self.titles[k]:
                m = self.by_id.get(i)
                if m and i not in seen and (year is None or m.year == year):
                    seen.add(i)
                    found.append(m)

        for k in self._prefix_keys(key, limit * 4):
            add_key(k)
        if len(found) < limit and len(key) >= 3:
            # A word inside the title ("godfather" -> "The Godfather: Part II").
            words = [k for k in self.grams.get(key[:3], ()) if f" {key}" in f" {k}"]
            words.sort(key=lambda k: -self.popularity[k])
            for k in words[: limit * 2]:
                add_key(k)
        if len(found) < limit and len(key) >= 4:
            for k in self.fuzzy_keys(key, limit=limit, prefix=True):
                add_key(k)
        return found[:limit]


def affinity(bundle: Bundle, row: int, context_rows: Sequence[int]) -> float:
    """How strongly a movie goes with others: collaborative weight between them (either
    direction, normalised per list) plus content similarity to their centroid."""
    if not len(context_rows):
        return 0.0
    ctx = np.asarray(context_rows, dtype=np.int64)
    collab = 0.0
    if bundle.neighbour_rows.shape[1]:
        top = float(bundle.neighbour_weights[row].max(initial=0.0)) or 1.0
        mine = bundle.neighbour_rows[row]
        collab += float(bundle.neighbour_weights[row][np.isin(mine, ctx)].sum()) / top
        theirs = bundle.neighbour_rows[ctx]
        weights = bundle.neighbour_weights[ctx]
        tops = np.maximum(weights.max(axis=1, keepdims=True), 1e-9)
        collab += float((np.where(theirs == row, weights, 0.0) / tops).sum())
    centroid = bundle.vectors[ctx].mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    content = float(bundle.vectors[row] @ centroid / norm) if norm else 0.0
    return collab + content


def pick_in_context(bundle: Bundle, resolved: Resolved, context_rows: Sequence[int]) -> Resolved:
    """Among movies sharing a title, the one closest to the other liked movies, with a note
    naming them; the most popular stays when there is no context or it says nothing."""
    if not resolved.alternatives or not len(context_rows):
        return resolved
    options = [resolved.id, *resolved.alternatives]
    rows = [bundle.row_of[i] for i in options if i in bundle.row_of]
    scores = [affinity(bundle, r, context_rows) for r in rows]
    best = int(np.argmax(scores))
    if best == 0 or scores[best] <= scores[0]:
        return resolved
    m = bundle.movies[rows[best]]
    names = [bundle.movies[r].title for r in list(context_rows)[:2]]
    return Resolved(
        input=resolved.input,
        id=m.id,
        title=m.title,
        year=m.year,
        note=(
            f"several movies have this title; took the {m.year} one, closest to the other liked "
            f"movies ({' and '.join(names)})"
        ),
    )
