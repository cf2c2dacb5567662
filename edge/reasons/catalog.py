"""Reasons from catalog data alone: shown first, and wherever no model reason passes the gate."""

from __future__ import annotations

from edge.index_store import Snapshot
from moviemind_core.catalog import Movie
from moviemind_core.lexicon import lexicon


def closest_liked(
    m: Movie, liked: list[Movie], snapshot: Snapshot, because: int | None = None
) -> Movie | None:
    """The liked movie a pick is closest to: the one the ranker credits (`because`), else the
    nearest by embedding; None without liked movies."""
    if not liked:
        return None
    credited = [lm for lm in liked if lm.id == because]
    if credited:
        return credited[0]
    vec = snapshot.bundle.vector(m.id)
    if vec is None:
        return liked[0]
    return max(liked, key=lambda lm: float(snapshot.bundle.vector(lm.id) @ vec))


def metadata_reason(m: Movie, best: Movie | None, query: str) -> str:
    """A reason built from catalog data alone. `best` is the liked movie the pick is closest to
    (`closest_liked`), if any."""
    parts = []
    # Formats the catalog files among genres (IMAX) are not a reason.
    genres = lexicon().spoken_genres(m.genres)
    if best is not None:
        shared = [g for g in genres if g in best.genres]
        parts.append(
            f"Close to {best.title}" + (f": also {', '.join(shared[:3]).lower()}" if shared else "")
        )
    elif query:
        parts.append(
            f"Matches \u201c{query[:60]}\u201d"
            + (f": {', '.join(genres[:3]).lower()}" if genres else "")
        )
    if m.keywords:
        parts.append(", ".join(m.keywords[:3]))
    if m.vote_count:
        parts.append(
            f"rated {m.vote_average:.1f}/10 by {m.vote_count} viewer"
            + ("s" if m.vote_count != 1 else "")
        )
    return "; ".join(parts) + "."
