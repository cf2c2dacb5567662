"""Visitors' feedback as interaction data: `build --feedback URL` (a SQLite path or PostgreSQL URL).

Each visitor becomes one more "user" beside the ratings source: the movies they liked or chose
on the site, plus the liked movies of the requests those votes answered (what they told the
page they love). "seen" and "dislike" votes are not likes and are left out. A film enters only
when at least `min_support` distinct visitors have it, so a handful of votes (or one person with
a few browser profiles) cannot move it; visitors left with fewer than two films teach no
co-occurrence and are dropped. Feedback feeds the collaborative neighbours only: a like is not a
star rating, so votes, averages and popularity stay the ratings source's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

import msgspec
import numpy as np

from index_builder.interactions import Ratings
from moviemind_core.feedback import POSITIVE, FeedbackEvent, describe, open_store

# A visitor's interactions count as this many stars (above any --min-stars threshold).
LIKE_STARS = 5.0
DEFAULT_MIN_SUPPORT = 3


class FeedbackUse(msgspec.Struct, kw_only=True):
    """What a build took from the feedback store, for its log and for tests."""

    votes: int = 0  # every stored vote
    positive: int = 0  # like/chose votes for catalog movies
    visitors: int = 0  # visitors who contributed interactions
    interactions: int = 0  # visitor x movie pairs added
    movies: int = 0  # films with at least min_support visitors
    below_support: int = 0  # films left out for too few visitors

    def summary(self, min_support: int) -> str:
        return (
            f"feedback: {self.votes:,} votes, {self.positive:,} likes/choices of catalog movies; "
            f"used {self.interactions:,} interactions from {self.visitors:,} visitors on "
            f"{self.movies:,} movies (>= {min_support} visitors each; "
            f"{self.below_support:,} movies below that left out)"
        )


def feedback_ratings(
    events: Iterable[FeedbackEvent], catalog_ids: np.ndarray, min_support: int = DEFAULT_MIN_SUPPORT
) -> tuple[Ratings, FeedbackUse]:
    """Visitors' likes as Ratings rows (visitor i is user -(i + 1): never a source user id)."""
    catalog = set(np.asarray(catalog_ids, np.int64).tolist())
    use = FeedbackUse()
    liked: dict[str, dict[int, float]] = defaultdict(dict)  # visitor -> movie -> time
    for e in events:
        use.votes += 1
        if e.signal not in POSITIVE or e.movie_id not in catalog:
            continue
        use.positive += 1
        seen = liked[e.visitor]
        for movie in (e.movie_id, *e.liked_ids):
            if movie in catalog:
                seen[movie] = min(seen.get(movie, e.at), e.at)
    support = Counter(m for movies in liked.values() for m in movies)
    strong = {m for m, n in support.items() if n >= min_support}
    use.movies = len(strong)
    use.below_support = len(support) - len(strong)
    user: list[int] = []
    movie: list[int] = []
    when: list[float] = []
    for visitor in sorted(liked):
        kept = [(m, t) for m, t in sorted(liked[visitor].items()) if m in strong]
        if len(kept) < 2:
            continue
        use.visitors += 1
        for m, t in kept:
            user.append(-use.visitors)
            movie.append(m)
            when.append(t)
    use.interactions = len(user)
    ratings = Ratings(
        user=np.asarray(user, np.int64),
        movie=np.asarray(movie, np.int64),
        stars=np.full(len(user), LIKE_STARS, np.float32),
        time=np.asarray(when, np.float64).astype(np.int64),
    )
    return ratings, use


def read_feedback(
    url: str,
    catalog_ids: np.ndarray,
    min_support: int = DEFAULT_MIN_SUPPORT,
    log: Callable[[str], None] = print,
) -> tuple[Ratings, FeedbackUse]:
    """Read every vote from the store at `url` and turn it into interactions (logged)."""
    store = open_store(url)
    try:
        events = list(store.read())
    finally:
        store.close()
    ratings, use = feedback_ratings(events, catalog_ids, min_support)
    log(f"  {describe(url)}: {use.summary(min_support)}")
    return ratings, use


def combined(ratings: Ratings | None, extra: Ratings) -> Ratings:
    """The ratings source plus visitors' interactions (either may be empty)."""
    if ratings is None:
        return extra
    return Ratings(
        user=np.concatenate([ratings.user, extra.user]),
        movie=np.concatenate([ratings.movie, extra.movie]),
        stars=np.concatenate([ratings.stars, extra.stars]),
        time=np.concatenate([ratings.time, extra.time]),
    )


def with_feedback(
    ratings: Ratings | None, url: str | None, catalog_ids: np.ndarray, min_support: int
) -> Ratings | None:
    """`build`'s collaborative input: the ratings, plus the feedback at `url` when given."""
    if not url:
        return ratings
    extra, _ = read_feedback(url, catalog_ids, min_support)
    return combined(ratings, extra)
