"""Offline evaluation that cannot leak: `python -m index_builder eval`.

Protocol (per user with enough history, one case each):
- the user's liked movies (>= 4 stars) in time order; the held-out movie is the last one with at
  least `min_inputs` liked movies rated strictly before it (leave-last-out: the most training data
  stays); the input is the (up to) 10 most recent liked movies before it, the way a person names a
  few favourites;
- every rating of that user from the held-out movie's time on is removed from training, and the
  bundle evaluated (votes, averages, popularity, collaborative neighbours) is built from the
  training ratings alone;
- users are split in two disjoint halves: weights are tuned on the validation half only and every
  number in the report is measured on the test half;
- HR@10 and NDCG@10 of the held-out movie, Recall@20 of all the user's later liked movies, catalog
  coverage of the top 10s; each with its standard error over users. Only the input is excluded
  from the recommendations (no method sees the rest of the user's history).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import numpy as np

from index_builder.collaborative import CollabSettings, item_weights, learn_neighbours
from index_builder.interactions import Ratings, liked_in_time_order
from moviemind_core.bundle import Bundle, CollabInfo
from moviemind_core.ranking import Pipeline, Priors, RankingSettings, build_query

K = 10
K_RECALL = 20
LIKED_STARS = 4.0
MAX_INPUTS = 10


class Case(msgspec.Struct, frozen=True):
    user: int
    inputs: tuple[int, ...]  # movie ids, oldest first
    target: int
    later: tuple[int, ...]  # every liked movie from the target's time on (target included)
    cutoff: int
    split: str  # "validation" | "test"


class Score(msgspec.Struct, frozen=True):
    """A metric's mean and standard error over users."""

    mean: float
    se: float


class MethodResult(msgspec.Struct, frozen=True):
    hr10: Score
    ndcg10: Score
    recall20: Score
    coverage: float


class EvalReport(msgspec.Struct, kw_only=True):
    cases: dict[str, int]
    catalog: int
    ratings_train: int
    collab: dict[str, float | int | str]
    tuned: dict[str, float]
    tuning: list[tuple[dict[str, float], float]]
    results: dict[str, MethodResult]  # on the test users
    templates: dict[str, MethodResult] = {}  # content-only per document template (validation)
    learners: dict[str, MethodResult] = {}  # collaborative-only per learner (validation)

    def markdown(self) -> str:
        """The report as Markdown, for docs/benchmarks/eval.md."""

        def row(name: str, r: MethodResult) -> str:
            return (
                f"| {name} | {r.hr10.mean:.4f} ± {r.hr10.se:.4f} | {r.ndcg10.mean:.4f} ± "
                f"{r.ndcg10.se:.4f} | {r.recall20.mean:.4f} ± {r.recall20.se:.4f} | "
                f"{r.coverage:.3f} |"
            )

        head = (
            "| method | HR@10 | NDCG@10 | Recall@20 | coverage |\n| --- | --- | --- | --- | --- |"
        )
        lines = [
            f"Test users: {self.cases['test']}; validation users (tuning only): "
            f"{self.cases['validation']}; catalog {self.catalog} movies; "
            f"{self.ratings_train:,} training ratings. Mean ± standard error over users.",
            "",
            head,
            *(row(n, r) for n, r in self.results.items()),
            "",
            "Collaborative neighbours: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.collab.items())),
            "",
            "Blend weights chosen on the validation users: "
            + ", ".join(f"{k} {v}" for k, v in self.tuned.items()),
        ]
        if self.learners:
            lines += [
                "",
                "Collaborative learners, collaborative evidence only, validation users:",
                "",
                head,
                *(row(n, r) for n, r in self.learners.items()),
            ]
        if self.templates:
            lines += [
                "",
                "Document templates, content similarity only, validation users:",
                "",
                head,
                *(row(n, r) for n, r in self.templates.items()),
            ]
        return "\n".join(lines) + "\n"


def make_cases(ratings: Ratings, *, min_inputs: int = 3, seed: int = 7) -> list[Case]:
    """One case per eligible user, split half validation, half test (by a seeded shuffle)."""
    rng = np.random.default_rng(seed)
    cases = []
    for user, ids, times in liked_in_time_order(ratings, LIKED_STARS):
        # A held-out movie needs min_inputs liked movies strictly before its time.
        before = np.searchsorted(times, times, side="left")
        eligible = np.flatnonzero(before >= min_inputs)
        if not len(eligible):
            continue
        t = int(eligible[-1])
        cutoff = int(times[t])
        n_before = int(before[t])
        inputs = tuple(int(i) for i in ids[:n_before][-MAX_INPUTS:])
        later = tuple(int(i) for i in ids[n_before:])
        cases.append(Case(user, inputs, int(ids[t]), later, cutoff, ""))
    perm = rng.permutation(len(cases))
    half = len(cases) // 2
    return [
        msgspec.structs.replace(c, split="validation" if perm[i] < half else "test")
        for i, c in enumerate(cases)
    ]


def training_ratings(ratings: Ratings, cases: Sequence[Case]) -> Ratings:
    """All ratings except each case user's from the held-out time on."""
    cutoff = {c.user: c.cutoff for c in cases}
    users = np.fromiter(cutoff.keys(), np.int64, len(cutoff))
    limits = np.fromiter(cutoff.values(), np.int64, len(cutoff))
    order = np.argsort(users)
    users, limits = users[order], limits[order]
    pos = np.clip(np.searchsorted(users, ratings.user), 0, max(len(users) - 1, 0))
    is_case = users[pos] == ratings.user if len(users) else np.zeros(len(ratings), bool)
    keep = ~is_case | (ratings.time < limits[pos])
    return ratings.select(keep)


Method = Callable[[Case], list[int]]


def _score(values: list[float]) -> Score:
    a = np.asarray(values, dtype=np.float64)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0
    return Score(round(float(a.mean()), 5), round(se, 5))


def measure(method: Method, cases: Sequence[Case], catalog: int) -> MethodResult:
    """Run a method on every case; HR@10, NDCG@10, Recall@20, coverage."""
    hr, ndcg, recall = [], [], []
    shown: set[int] = set()
    for c in cases:
        ranked = method(c)[:K_RECALL]
        top = ranked[:K]
        shown.update(top)
        if c.target in top:
            hr.append(1.0)
            ndcg.append(1.0 / math.log2(top.index(c.target) + 2))
        else:
            hr.append(0.0)
            ndcg.append(0.0)
        later = set(c.later)
        recall.append(len(later & set(ranked)) / len(later))
    return MethodResult(_score(hr), _score(ndcg), _score(recall), round(len(shown) / catalog, 4))


class Methods:
    """Every evaluated method over one training bundle."""

    def __init__(self, bundle: Bundle, train: Ratings, collab: CollabSettings, seed: int) -> None:
        self.bundle = bundle
        self.train = train
        self.collab = collab
        self.rng = np.random.default_rng(seed)
        self.by_popularity = [
            m.id for m in sorted(bundle.movies, key=lambda m: (-m.vote_count, m.id))
        ]
        self._ease: np.ndarray | None = None
        self._priors: dict[float, Priors] = {}

    def random(self, c: Case) -> list[int]:
        picks = self.rng.choice(len(self.bundle), K_RECALL + len(c.inputs), replace=False)
        return [self.bundle.movies[i].id for i in picks if self.bundle.movies[i].id not in c.inputs]

    def popular(self, c: Case) -> list[int]:
        inputs = set(c.inputs)
        return [i for i in self.by_popularity[: K_RECALL + len(inputs)] if i not in inputs]

    def ranked(self, settings: RankingSettings) -> Method:
        """The edge's own ranking with the given weights: the RankQuery made by the same
        `build_query` call the edge makes (liked ids; MovieLens has no moods), run through the
        same Pipeline (moviemind_core.ranking)."""
        b = self.bundle
        priors = self.priors(settings.bayes_votes)
        pipeline = Pipeline(settings)

        def method(c: Case) -> list[int]:
            query = build_query(b, priors, K_RECALL, liked_ids=c.inputs, exclude=c.inputs)
            return [s.movie.id for s in pipeline.run(b, priors, query)]

        return method

    def priors(self, bayes_votes: float) -> Priors:
        """The bundle's priors (one per Bayesian prior strength, as the edge holds one)."""
        if bayes_votes not in self._priors:
            self._priors[bayes_votes] = Priors(self.bundle.movies, bayes_votes, self.bundle.vectors)
        return self._priors[bayes_votes]

    def ease_reference(self, c: Case) -> list[int]:
        """The untruncated learner over the same training ratings: a reference, not the edge."""
        if self._ease is None:
            self._ease = _dense_ease(self.train, self.bundle, self.collab)
        b = self.bundle
        rows = [b.row_of[i] for i in c.inputs if i in b.row_of]
        scores = self._ease[rows].sum(axis=0) if rows else np.zeros(len(b))
        scores[rows] = -np.inf
        top = np.argsort(-scores)[:K_RECALL]
        return [b.movies[r].id for r in top]


def _dense_ease(train: Ratings, bundle: Bundle, s: CollabSettings) -> np.ndarray:
    """The learner's full weight matrix (catalog rows x catalog rows; zero outside its items):
    the same weights the bundle's neighbour lists keep the top of."""
    full = np.zeros((len(bundle), len(bundle)), np.float32)
    learned = item_weights(train, bundle.ids, s, log=lambda _m: None)
    if learned is not None:
        weights, items = learned
        full[np.ix_(items, items)] = weights
    return full


# The single-signal methods measure one signal alone: without the coherence and popularity
# calibration terms, which read the liked movies' genres, years and popularity.
PLAIN = {"w_coherence": 0.0, "w_calibration": 0.0}

# Weights tried on the validation users (w_collab is fixed at 1: only ratios matter).
GRID = {
    "w_similarity": (0.0, 0.25, 0.5, 1.0, 2.0),
    "w_popularity": (0.0, 0.1, 0.2, 0.4, 0.8),
    "w_quality": (0.0, 0.3, 0.6, 1.2),
}


CONTENT_GRID = {
    "w_similarity": (1.0,),
    "w_popularity": (0.0, 0.1, 0.2, 0.4, 0.8, 1.6),
    "w_quality": (0.0, 0.1, 0.3, 1.0),
}


def tune(
    methods: Methods,
    cases: Sequence[Case],
    log=print,
    grid: dict[str, tuple[float, ...]] = GRID,
    fixed: dict[str, float] | None = None,
) -> tuple[RankingSettings, list]:
    """Grid search of the blend weights on validation cases, by HR@10 + Recall@20: one held-out
    movie per user is a noisy target (SE ~0.012 on 332 users), all later liked movies less so."""
    tried = []
    best: tuple[float, float, RankingSettings] | None = None
    for values in itertools.product(*grid.values()):
        weights = dict(zip(grid, values, strict=True))
        settings = RankingSettings(**weights, **(fixed or {}))
        r = measure(methods.ranked(settings), cases, len(methods.bundle))
        tried.append((weights, r.hr10.mean))
        key = (r.hr10.mean + r.recall20.mean, r.ndcg10.mean)
        if best is None or key > best[:2]:
            best = (*key, settings)
    assert best is not None
    log(f"  tuned on {len(cases)} validation users: HR@10+Recall@20 {best[0]:.4f} with {best[2]}")
    return best[2], tried


def run_eval(
    ratings: Ratings,
    build_bundle: Callable[[Ratings, str, CollabSettings], Path],
    *,
    collab: CollabSettings | None = None,
    templates: Sequence[str] = (),
    collab_variants: Sequence[CollabSettings] = (),
    min_inputs: int = 3,
    seed: int = 7,
    max_users: int = 0,
    log=print,
) -> EvalReport:
    """Split users, build a bundle from training ratings only, tune on validation, report test.

    `build_bundle(train_ratings, template, collab)` writes a bundle and returns its directory.
    """
    from index_builder.documents import TEMPLATE_VERSION

    collab = collab or CollabSettings()
    cases = make_cases(ratings, min_inputs=min_inputs, seed=seed)
    if max_users and len(cases) > max_users:
        keep = np.random.default_rng(seed).choice(len(cases), max_users, replace=False)
        cases = [cases[i] for i in sorted(keep)]
    val = [c for c in cases if c.split == "validation"]
    test = [c for c in cases if c.split == "test"]
    if not val or not test:
        raise ValueError(f"too few eligible users to split ({len(cases)})")
    train = training_ratings(ratings, cases)
    log(
        f"eval: {len(cases)} users ({len(val)} validation, {len(test)} test); "
        f"{len(train):,} of {len(ratings):,} ratings are training data"
    )
    bundle = Bundle.load(build_bundle(train, TEMPLATE_VERSION, collab))
    methods = Methods(bundle, train, collab, seed)
    learners: dict[str, MethodResult] = {}
    collab_only = RankingSettings(
        w_collab=1.0, w_similarity=0.0, w_quality=0.0, w_popularity=0.0, hub_discount=0.0, **PLAIN
    )
    shipped = (bundle.neighbour_rows, bundle.neighbour_weights)
    for variant in collab_variants:
        n = learn_neighbours(train, bundle.ids, variant, log=lambda _m: None)
        bundle.neighbour_rows, bundle.neighbour_weights = n.rows, n.weights.astype(np.float32)
        name = _learner_name(variant)
        learners[name] = r = measure(methods.ranked(collab_only), val, len(bundle))
        log(f"  learner {name}: collaborative-only HR@10 {r.hr10.mean:.4f} (validation)")
    bundle.neighbour_rows, bundle.neighbour_weights = shipped
    tuned, tried = tune(methods, val, log)
    tuned_content, _ = tune(methods, val, log, CONTENT_GRID, {"w_collab": 0.0, **PLAIN})
    content = RankingSettings(
        w_collab=0.0, w_similarity=1.0, w_quality=0.0, w_popularity=0.0, **PLAIN
    )
    default = RankingSettings()
    runs: dict[str, Method] = {
        "random": methods.random,
        "most popular (input excluded)": methods.popular,
        f"content similarity only ({TEMPLATE_VERSION})": methods.ranked(content),
        "content + quality/popularity priors (no co-ratings; tuned)": methods.ranked(tuned_content),
        f"collaborative only ({collab.method}, top {collab.top_n})": methods.ranked(collab_only),
        f"EASE reference (full matrix, lambda {collab.ease_lambda:g})": methods.ease_reference,
        "edge blend without the hub and thin-document discounts": methods.ranked(
            msgspec.structs.replace(default, hub_discount=0.0, thin_discount=0.0)
        ),
        "edge blend without coherence and popularity calibration (before issue 21)": (
            methods.ranked(msgspec.structs.replace(default, **PLAIN))
        ),
        "edge blend (shipped defaults)": methods.ranked(default),
        "edge blend (tuned on validation)": methods.ranked(tuned),
    }
    results: dict[str, MethodResult] = {}
    for name, method in runs.items():
        t0 = time.perf_counter()
        results[name] = r = measure(method, test, len(bundle))
        log(
            f"  {name:<48} HR@10 {r.hr10.mean:.4f}±{r.hr10.se:.4f}  NDCG@10 {r.ndcg10.mean:.4f}  "
            f"Recall@20 {r.recall20.mean:.4f}  coverage {r.coverage:.3f}  "
            f"({time.perf_counter() - t0:.1f}s)"
        )
    by_template: dict[str, MethodResult] = {}
    for template in templates:
        b = Bundle.load(build_bundle(train, template, collab))
        by_template[template] = r = measure(
            Methods(b, train, collab, seed).ranked(content), val, len(b)
        )
        log(f"  template {template}: content-only HR@10 {r.hr10.mean:.4f} (validation)")
    info: CollabInfo = bundle.manifest.collab
    return EvalReport(
        cases={"validation": len(val), "test": len(test)},
        catalog=len(bundle),
        ratings_train=len(train),
        collab={"method": info.method, **info.params},
        tuned={k: getattr(tuned, k) for k in GRID},
        tuning=tried,
        results=results,
        templates=by_template,
        learners=learners,
    )


def _learner_name(s: CollabSettings) -> str:
    name = f"{s.method}, top {s.top_n}"
    if s.method == "ease":
        name += f", lambda {s.ease_lambda:g}"
    if s.min_stars:
        name += f", ratings >= {s.min_stars:g} stars"
    return name
