"""Tie every title in the model's answer to a candidate; drop what is not one; fill up to k."""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

import msgspec

from edge.catalog import Movie, lookup_key

_START = r"^\s*(?:[-*•]\s*)?(?:\d{1,2}[.)]\s*)?(?:\[(?P<num>\d{1,3})\]\s*)?(?:\*\*)?"
# A "(Year)" is the surest end of a title: titles themselves hold colons and dashes
# ("Mission: Impossible", "X-Men: First Class"), and small models often echo the candidate
# line's " | " separators, so whatever follows the year is the reason.
_WITH_YEAR = re.compile(
    _START
    + r"(?P<title>.*?)(?:\*\*)?\s*\((?P<year>\d{4})\)\s*(?:\*\*)?\s*(?:[-–—:|,.]\s*)?(?P<reason>.*)$"
)
# Without a year: a dash or bar separates title and reason; a colon only when there is neither.
_NO_YEAR = [
    re.compile(_START + r"(?P<title>[^\n]*?)(?:\*\*)?\s*(?:\s[-–—]\s*|\s*\|\s*)(?P<reason>.*)$"),
    re.compile(_START + r"(?P<title>[^\n]*?)(?:\*\*)?\s*:\s*(?P<reason>.*)$"),
]


class Pick(msgspec.Struct, frozen=True):
    movie: Movie
    reason: str | None
    from_model: bool


class Grounded(msgspec.Struct):
    picks: list[Pick]
    dropped: list[str]


def _match(
    title: str, year: int | None, candidates: Sequence[Movie], keys: list[str]
) -> int | None:
    key = lookup_key(title)
    if not key:
        return None
    exact = [i for i, k in enumerate(keys) if k == key]
    if exact:
        with_year = [i for i in exact if candidates[i].year == year]
        return (with_year or exact)[0]
    best, best_ratio = None, 0.0
    for i, k in enumerate(keys):
        ratio = SequenceMatcher(None, key, k).ratio()
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return best if best_ratio >= 0.85 else None


def parse_line(line: str) -> tuple[int | None, str, int | None, str] | None:
    """(candidate number, title, year, reason) from one answer line, or None."""
    m = _WITH_YEAR.match(line)
    for pattern in _NO_YEAR:
        if m:
            break
        m = pattern.match(line)
    if not m:
        # A bare "[3] Title" line with no reason.
        bare = re.match(r"^\s*(?:\d{1,2}[.)]\s*)?\[(\d{1,3})\]\s*(.+?)\s*$", line)
        if not bare:
            return None
        return int(bare.group(1)), bare.group(2), None, ""
    num = int(m.group("num")) if m.group("num") else None
    year = int(m.group("year")) if "year" in m.groupdict() and m.group("year") else None
    if num is None and year is None and not m.group("reason").strip():
        return None  # prose such as "Here are my picks:", not a pick
    return num, m.group("title").strip(" *\"'"), year, m.group("reason").strip()


def ground(
    text: str, candidates: Sequence[Movie], k: int, exclude: set[int] = frozenset()
) -> Grounded:
    """Picks in the model's order, only candidates, then retrieval order until there are k."""
    keys = [lookup_key(m.title) for m in candidates]
    picks: list[Pick] = []
    used: set[int] = set(exclude)
    dropped: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parsed = parse_line(line)
        if parsed is None:
            continue
        num, title, year, reason = parsed
        idx = _match(title, year, candidates, keys)
        if idx is None and num is not None and 1 <= num <= len(candidates) and not title:
            idx = num - 1
        if idx is None:
            if title:
                dropped.append(title)
            continue
        movie = candidates[idx]
        if movie.id in used:
            continue
        used.add(movie.id)
        picks.append(Pick(movie, reason[:300] or None, True))
        if len(picks) == k:
            break
    for movie in candidates:
        if len(picks) >= k:
            break
        if movie.id not in used:
            used.add(movie.id)
            picks.append(Pick(movie, None, False))
    return Grounded(picks=picks, dropped=dropped)
