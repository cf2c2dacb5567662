"""The ranking's weights: one struct shared by the edge (MOVIEMIND_EDGE_RANK_*) and the evaluation."""

from __future__ import annotations

import msgspec


class RankingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Weights of the blended score; each is an edge setting (MOVIEMIND_EDGE_RANK_*).

    Defaults were chosen on the validation users of `index_builder eval` (docs/benchmarks/eval.md)
    and, for the coherence and calibration terms, on the film-lover panel (benchmarks/panel).
    """

    w_collab: float = 1.0
    w_similarity: float = 1.0
    w_quality: float = 0.6
    w_popularity: float = 0.2
    w_negative: float = 1.0
    # A stated mood is an explicit request: it must visibly shape the list, so it weighs more
    # than the liked movies' content. Set by hand (MovieLens has no moods to tune it on).
    w_mood: float = 1.5
    # Bayesian average: a movie's rating is pulled toward the catalog mean by this many votes.
    bayes_votes: float = 20.0
    # Candidates fetched per wanted result from each source (liked movies' content, the mood,
    # the best-liked overall), before filters.
    oversample: int = 20
    # Lexical half of the mood: added in full for a movie whose keywords or genres name every
    # word of the mood ("heist", "twist"), in part for some. The embedding alone ranks a
    # synopsis that never says "heist" above a heist film's "Genres: Crime." for some words.
    w_keywords: float = 0.3
    # 1.0 = no diversity; lower trades score for variety (maximal marginal relevance).
    mmr_lambda: float = 1.0
    # Collaborative evidence for a hub (a movie in many times the median number of neighbour
    # lists: Fargo is in 283 of 6,000) is divided by hubness ** this. Item-item neighbours of a
    # small ratings set point everyone at the popular titles of its years; their popularity is
    # already counted by w_popularity. 0 = no discount.
    hub_discount: float = 1.0
    # Similarity to a movie whose document is its genres alone ("Genres: Musical.") is cut by
    # this share: thousands of such movies share one vector, which matches any request naming
    # the genre better than a described film does. 0 = no cut.
    thin_discount: float = 0.2
    # Coherence with the liked movies: how much of their genres (rare genres count more) a
    # candidate shares, and how close its year is to one of theirs. A film lover who names
    # Casablanca and Roman Holiday wants romance of that era, not the best-rated film of 1994.
    # 0.25 with w_calibration 0.3: the best HR@10 + Recall@20 on the evaluation's validation users
    # among the pairs whose film-lover panel hub share is under 5% (docs/benchmarks/eval.md).
    w_coherence: float = 0.25
    # Era coherence: a Gaussian of this width (years) around the nearest liked movie's year.
    era_years: float = 15.0
    # Popularity calibration: a movie is marked down by this weight times its generic pull (its
    # popularity to the 10th power: only the catalog's most-rated carry weight, Priors.hub_pull)
    # times how little it coheres with the request. A hub that fits stays.
    w_calibration: float = 0.3
