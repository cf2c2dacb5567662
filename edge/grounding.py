"""Tie every title in the model's answer to a candidate; drop what is not one; fill up to k.

Small models do not follow formats faithfully: they echo candidate lines ("[3] Heat (1995) |
Action, Crime"), drop the number, bold the title or invent a movie. So each line is matched by
content: the candidate number when the line also names that candidate, else the first candidate
title the line contains, else a close fuzzy match of the title-looking part.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

import msgspec

from moviemind_core.catalog import Movie, lookup_key

_NUM = re.compile(r"^\s*(?:[-*•]\s*)?(?:\d{1,2}[.)]\s*)?\[(\d{1,3})\]")
_LEAD = re.compile(r"^\s*(?:[-*•]\s*)?(?:\d{1,2}[.)]\s*)?(?:\[\d{1,3}\]\s*)?")
_TITLE_PART = re.compile(r"^(?P<title>.+?)\s*(?:\((?P<year>\d{4})\)|\s[-–—|]\s|:\s|$)")
_SEPARATORS = re.compile(r"^\s*(?:\(\d{4}\))?\s*(?:[-–—|:]\s*)?")


class Pick(msgspec.Struct, frozen=True):
    movie: Movie
    reason: str | None
    from_model: bool


class Grounded(msgspec.Struct):
    picks: list[Pick]
    dropped: list[str]


def _reason(line: str, title: str) -> str:
    """What follows the title on the line, without separators and echoed metadata."""
    idx = line.lower().find(title.lower())
    rest = line[idx + len(title) :] if idx >= 0 else _LEAD.sub("", line)
    rest = _SEPARATORS.sub("", rest.replace("**", "")).strip()
    # An echoed candidate line ("Action, Crime | dir. X | ...") is metadata, not a reason.
    if "|" in rest:
        rest = rest.split("|")[-1].strip() if " - " not in rest else rest.split(" - ", 1)[1]
    return rest.strip(" -–—:*\"'")[:300]


def match_line(
    line: str, candidates: Sequence[Movie], keys: Sequence[str]
) -> tuple[int | None, str]:
    """(candidate index or None, the title-looking text) for one answer line."""
    text = lookup_key(line.replace("**", ""))
    padded = f" {text} "
    num = _NUM.match(line)
    if num:
        i = int(num.group(1)) - 1
        if 0 <= i < len(candidates) and keys[i] and f" {keys[i]} " in padded:
            return i, candidates[i].title
    contained = [i for i, k in enumerate(keys) if len(k) >= 3 and f" {k} " in padded]
    if contained:
        # The title a line starts with is its pick; later ones are the model comparing or
        # rambling. At one position the longer title wins ("aliens" over "alien"); same-titled
        # candidates ("Heat" 1995 and 1986): the year on the line decides, then retrieval order.
        years = {int(y) for y in re.findall(r"\b(?:18|19|20)\d\d\b", line)}
        i = min(
            contained,
            key=lambda i: (
                padded.find(f" {keys[i]} "),
                -len(keys[i]),
                candidates[i].year not in years,
                i,
            ),
        )
        return i, candidates[i].title
    m = _TITLE_PART.match(_LEAD.sub("", line).replace("**", "").strip())
    title = m.group("title").strip(" \"'") if m else ""
    key = lookup_key(title)
    if len(key) < 3:
        return None, title
    best, best_ratio = None, 0.0
    for i, k in enumerate(keys):
        ratio = SequenceMatcher(None, key, k).ratio()
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return (best if best_ratio >= 0.85 else None), title


def ground(
    text: str, candidates: Sequence[Movie], k: int, exclude: set[int] = frozenset()
) -> Grounded:
    """Picks in the model's order, only candidates, then retrieval order until there are k."""
    keys = [lookup_key(m.title) for m in candidates]
    picks: list[Pick] = []
    used: set[int] = set(exclude)
    dropped: list[str] = []
    for line in text.splitlines():
        if not line.strip() or len(picks) >= k:
            continue
        idx, title = match_line(line, candidates, keys)
        if idx is None:
            # Only lines that look like a pick count as dropped titles, not chatter.
            if (
                title
                and title not in dropped
                and (_NUM.match(line) or re.search(r"\(\d{4}\)", line))
            ):
                dropped.append(title)
            continue
        movie = candidates[idx]
        if movie.id in used:
            continue
        used.add(movie.id)
        picks.append(Pick(movie, _reason(line, title) or None, True))
    for movie in candidates:
        if len(picks) >= k:
            break
        if movie.id not in used:
            used.add(movie.id)
            picks.append(Pick(movie, None, False))
    return Grounded(picks=picks, dropped=dropped)
