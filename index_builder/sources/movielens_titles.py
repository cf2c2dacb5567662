"""MovieLens' title strings split once, at index build, into the names people use.

MovieLens writes every name of a film into one string: the English title with its article moved
to the end, then alternate titles in brackets, "a.k.a." for other English names and the
original-language title last: "Postman, The (Postino, Il)", "Léon: The Professional (a.k.a. The
Professional) (Léon)", "Amelie (Fabuleux destin d'Amélie Poulain, Le)". This module turns such a
string into the display title (what an English-speaking film lover calls the film), the original
title and the alternate titles, by these rules in order:

1. The English title (MovieLens' main title), its article put back in front, is the display title.
2. A stylised spelling listed as an a.k.a. is the film's own spelling and wins: "Seven (a.k.a.
   Se7en)" -> "Se7en" (same letters, digits standing in for some).
3. A main title spelled without the accents of an alternate that contains it word for word takes
   them: "Amelie (Fabuleux destin d'Amélie Poulain, Le)" -> "Amélie", "Irreversible
   (Irréversible)" -> "Irréversible"; not "Exterminating Angel" from "Ángel exterminador" (another
   word in another language), and not romanised Japanese long vowels ("Rashômon", "Sanjûrô").

An alternate in brackets is the original-language title unless it reads as English ("Dumb &
Dumber (Dumb and Dumber)", "Sessions, The (Surrogate, The)"); when the main title carries a
foreign article and the bracket reads as English ("Boot, Das (Boat, The)"), the main title is
the original one.
4. Films English speakers call by their original title ("Il Postino", "La Haine", "Das Boot") are
   listed in data/titles/known_by_original.txt; for them the original title is the display title
   and the English one becomes an alternate. No rule can tell these from "The Seventh Seal" (known
   by its English title), so they are data, not code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import msgspec

from moviemind_core.catalog import articles, display_title, lookup_key
from moviemind_core.lexicon import lexicon

DEFAULT_KNOWN_BY_ORIGINAL = (
    Path(__file__).resolve().parents[2] / "data" / "titles" / "known_by_original.txt"
)

_AKA = re.compile(r"^a\.?k\.?a\.?\s+", re.IGNORECASE)
# A main title ending like this continues into its bracket: "Birdman: Or (The Unexpected Virtue
# of Ignorance)" is one title, not a title and an alternate.
_CONTINUES = re.compile(r"(?:[:\-,;]|\b[Oo]r)$")


class TitleForms(msgspec.Struct, frozen=True, kw_only=True):
    """The names of one film: what to show, its original title, and the other names it has."""

    title: str
    original_title: str | None = None
    alt_titles: tuple[str, ...] = ()


def _trailing_groups(text: str) -> tuple[str, list[str]]:
    """'A (b) (c)' -> ('A', ['b', 'c']): the bracketed groups at the end, balanced, in order."""
    groups: list[str] = []
    rest = text.rstrip()
    while rest.endswith(")"):
        depth = 0
        start = -1
        for i in range(len(rest) - 1, -1, -1):
            if rest[i] == ")":
                depth += 1
            elif rest[i] == "(":
                depth -= 1
                if depth == 0:
                    start = i
                    break
        # "(500) Days of Summer" and an unbalanced bracket are title, not alternates.
        if start <= 0 or rest[start - 1] != " ":
            break
        head = rest[:start].rstrip()
        if not head or _CONTINUES.search(head):
            break
        inner = rest[start + 1 : -1].strip()
        if inner:
            groups.insert(0, inner)
        rest = head
    return rest, groups


# Circumflex and macron mark long vowels in romanised Japanese ("Rashômon"), which English
# writing leaves out; acute, grave, diaeresis, cedilla and tilde are the title's own spelling.
_ROMANISATION_MARKS = frozenset({"\u0302", "\u0304"})


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _reads_english(title: str) -> bool:
    """`title` has a word only English titles use (titles.toml [english]) or a possessive."""
    english = lexicon().titles.english.words
    words = re.findall(r"[\w']+", title.lower())
    return any(w in english or w.endswith("'s") for w in words)


def _foreign_article(title: str) -> bool:
    """`title` starts with an article, and not an English one ("Das Boot", "L'Avventura")."""
    first = re.match(r"^(\w+'?)", title)
    return bool(
        first
        and first.group(1) in articles()
        and first.group(1) not in lexicon().titles.articles.english
        and (first.group(1).endswith("'") or " " in title)
    )


def _stylised(plain: str, styled: str) -> bool:
    """`styled` spells `plain` with digits for some letters: 'Se7en' for 'Seven'."""
    a, b = plain.lower(), styled.lower()
    if len(a) != len(b) or a == b:
        return False
    return all(x == y or (y.isdigit() and x.isalpha()) for x, y in zip(a, b, strict=True))


def _with_accents(title: str, sources: Iterable[str]) -> str:
    """Words of `title` written without accents take them from a source that holds the whole
    title word for word: 'Amelie' -> 'Amélie' from "Le fabuleux destin d'Amélie Poulain"."""
    accented: dict[str, str] = {}
    plain_title = f" {lookup_key(title)} "
    for source in sources:
        if plain_title not in f" {lookup_key(source)} ":
            continue
        for word in re.findall(r"\w+", source):
            marks = {c for c in unicodedata.normalize("NFKD", word) if unicodedata.combining(c)}
            if marks and not marks & _ROMANISATION_MARKS:
                accented.setdefault(_unaccented(word).lower(), word)

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        found = accented.get(word.lower())
        if found is None:
            return word
        # Keep the title's own capitals: "AMELIE" stays upper case, "Amelie" -> "Amélie".
        if word.isupper() and len(word) > 1:
            return found.upper()
        return found[0].upper() + found[1:] if word[0].isupper() else found.lower()

    return re.sub(r"\w+", fix, title) if accented else title


def load_known_by_original(path: Path = DEFAULT_KNOWN_BY_ORIGINAL) -> frozenset[tuple[str, int]]:
    """(lookup key, year) of films English speakers call by their original title; lines are
    'Il Postino (1994)'; blank lines and '#' comments are skipped."""
    from moviemind_core.catalog import split_title_year

    known: set[tuple[str, int]] = set()
    if not path.is_file():
        return frozenset()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        title, year = split_title_year(line)
        if year is None:
            raise ValueError(f"{path}: {line!r} has no year in brackets")
        known.add((lookup_key(title), year))
    return frozenset(known)


def split_movielens_title(
    raw: str, year: int | None = None, known_by_original: frozenset[tuple[str, int]] = frozenset()
) -> TitleForms:
    """The display title, original title and alternates of a MovieLens title without its year
    ("Hate (Haine, La)"); `known_by_original` as load_known_by_original returns it."""
    main, groups = _trailing_groups(raw.strip())
    main = display_title(main)
    akas: list[str] = []
    others: list[str] = []
    for g in groups:
        if _AKA.match(g):
            # "a.k.a. X, The" and several names in one bracket ("a.k.a. X; Y") both occur.
            akas.extend(display_title(p.strip()) for p in re.split(r"\s*;\s*", _AKA.sub("", g)))
        else:
            others.append(display_title(g))
    originals = [o for o in others if not _reads_english(o) and lookup_key(o) != lookup_key(main)]
    original = originals[-1] if originals else None
    if original is None and _foreign_article(main) and any(map(_reads_english, others)):
        original = main  # "Das Boot (The Boat)": MovieLens led with the original title

    title = main
    for aka in akas:
        if _stylised(main, aka):
            title = aka
            break
    title = _with_accents(title, [*others, *akas])
    if original and year is not None and (lookup_key(original), year) in known_by_original:
        title = original

    names: dict[str, str] = {lookup_key(title): title}
    for name in (main, *others, *akas):
        key = lookup_key(name)
        if key:
            names.setdefault(key, name)
    alternates = tuple(n for k, n in names.items() if k != lookup_key(title))
    return TitleForms(title=title, original_title=original, alt_titles=alternates)
