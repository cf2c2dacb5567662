"""An answer being written, and the gate's verdict on one model line."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.reason_gate import TRUNCATED, GateContext, check, clean
from moviemind_core.catalog import Movie
from moviemind_core.ranking import Scored


@dataclass
class Draft:
    """An answer being written: the picks in their shown order and the reasons that passed."""

    picks: list[Scored]
    reasons: dict[int, str] = field(default_factory=dict)
    raw: list[str] = field(default_factory=list)
    model: str | None = None
    dropped: list[str] = field(default_factory=list)


def judge(
    draft: Draft, movie: Movie, raw: str, finished: bool, ctx: GateContext
) -> tuple[str | None, str]:
    """(the rule that rejects `raw` as `movie`'s reason or None, the cleaned text)."""
    text = clean(raw, finished)
    verdict = check(text, movie, ctx, list(draft.reasons.values())) if text else TRUNCATED
    return verdict, text
