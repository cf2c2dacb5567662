"""The one query object: what a request asks of the ranking, built the same way by the edge and
by the offline evaluation (`build_query`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np

from moviemind_core.bundle import Bundle
from moviemind_core.ranking.priors import Priors


class Filters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Hard filters on candidates. min_rating is on the 0..10 scale of vote_average."""

    year_min: int | None = None
    year_max: int | None = None
    # default_factory: Litestar's OpenAPI generator cannot hash a literal [] default.
    genres_any: list[str] = msgspec.field(default_factory=list)
    genres_none: list[str] = msgspec.field(default_factory=list)
    min_rating: float | None = None

    def is_empty(self) -> bool:
        return self == NO_FILTERS


NO_FILTERS = Filters()


class MoodRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed mood in the kernel's terms (the edge's parser fills it; the kernel never parses
    words): text to embed, phrases to push away, genres to leave out, and for the lexical half
    the catalog words each wanted word may appear as, and the words that mark an excluded theme."""

    wanted: str = ""
    excluded: tuple[str, ...] = ()
    genres_none: tuple[str, ...] = ()
    keyword_groups: tuple[frozenset[str], ...] = ()
    avoid_words: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class RankQuery:
    """Everything the pipeline needs for one request, as catalog rows and unit vectors."""

    k: int
    liked_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    profile: np.ndarray | None = None  # the liked movies' unit centroid
    mood: np.ndarray | None = None  # what is asked for in words
    negative: np.ndarray | None = None  # what is excluded in words
    avoid_rows: np.ndarray | None = None  # movies the catalog describes with an excluded word
    keyword_share: np.ndarray | None = None  # per row, share of the mood's words it is tagged with
    exclude_ids: frozenset[int] = frozenset()
    filters: Filters = NO_FILTERS


def taste_profile(liked_vectors: Sequence[np.ndarray] | np.ndarray) -> np.ndarray | None:
    """Unit vector of the liked movies' centroid (None without liked movies)."""
    if not len(liked_vectors):
        return None
    v = np.mean(liked_vectors, axis=0)
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def build_query(
    bundle: Bundle,
    priors: Priors,
    k: int,
    *,
    liked_ids: Iterable[int] = (),
    mood: MoodRequest | None = None,
    embed: Callable[[str], np.ndarray] | None = None,
    filters: Filters = NO_FILTERS,
    exclude: Iterable[int] = (),
) -> RankQuery:
    """The RankQuery for liked catalog ids, a parsed mood (embedded with `embed`) and filters.
    Liked movies are always excluded from the results; so is every id in `exclude`."""
    liked = [i for i in dict.fromkeys(liked_ids) if i in bundle.row_of]
    rows = np.asarray([bundle.row_of[i] for i in liked], dtype=np.int64)
    mood = mood or MoodRequest()
    if mood.genres_none:
        extra = [g for g in mood.genres_none if g not in filters.genres_none]
        filters = msgspec.structs.replace(filters, genres_none=[*filters.genres_none, *extra])
    if (mood.wanted or mood.excluded) and embed is None:
        raise ValueError("a mood with words needs an embedder")
    avoid = priors.rows_described_as(mood.avoid_words) if mood.avoid_words else None
    return RankQuery(
        k=k,
        liked_rows=rows,
        profile=taste_profile(bundle.vectors[rows]) if len(rows) else None,
        mood=embed(mood.wanted) if mood.wanted and embed else None,
        negative=embed(", ".join(mood.excluded)) if mood.excluded and embed else None,
        avoid_rows=avoid,
        keyword_share=priors.keyword_share(mood.keyword_groups),
        exclude_ids=frozenset(exclude) | frozenset(liked),
        filters=filters,
    )
