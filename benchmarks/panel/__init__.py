"""The film-lover panel: requests with the picks a film lover would accept (requests.toml), and
the two numbers reported per build (docs/benchmarks/eval.md):

- acceptance: the share of a request's top 10 that is in its accept list, averaged over requests;
- hub share: the share of all top-10 slots that go to one of the catalog's 30 most-rated movies
  that is not in that request's accept list (a famous film no one asked for).

`python -m benchmarks.panel` runs every request through the edge's own preparation and ranking.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from index_builder.sources.movielens_titles import split_movielens_title
from moviemind_core.bundle import Bundle, title_keys
from moviemind_core.catalog import lookup_key, split_title_year

PANEL = Path(__file__).with_name("requests.toml")
TOP = 10
HUBS = 30


class PanelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request of the panel: liked titles and/or a mood, and the acceptable picks."""

    id: str
    liked: list[str] = []
    query: str = ""
    accept: list[str] = []


class PanelFile(msgspec.Struct, frozen=True):
    version: int
    request: list[PanelRequest]


class RequestScore(msgspec.Struct, frozen=True):
    """One request's top 10 judged against its accept list."""

    id: str
    picks: list[str]
    accepted: int
    hubs: list[str]  # picks among the catalog's most-rated movies that are not acceptable

    @property
    def acceptance(self) -> float:
        return self.accepted / max(1, len(self.picks))


class PanelScore(msgspec.Struct, frozen=True):
    """The panel's two numbers over all requests."""

    requests: int
    acceptance: float
    hub_share: float
    per_request: list[RequestScore]


def load_panel(path: Path = PANEL) -> list[PanelRequest]:
    """The panel's requests (raises on an unknown field or a missing id)."""
    data = tomllib.loads(path.read_text())
    return msgspec.convert(data, PanelFile).request


def catalog_ids(bundle: Bundle, titles: Iterable[str]) -> set[int]:
    """Catalog ids of the titles; "Heat (1995)" matches that year only, "Heat" any year.
    Titles compare by their lookup keys, without a leading article or "a.k.a." ("Se7en" is
    "Seven (a.k.a. Se7en)", "The Intouchables" is "Intouchables"). Titles the catalog does not
    hold match nothing."""
    table = _keys_of(bundle)
    out: set[int] = set()
    for raw in titles:
        title, year = split_title_year(raw)
        for key in {v for k in _name_keys(title) for v in _variants(k)}:
            for mid in table.get(key, ()):
                m = bundle.movie(mid)
                if m is not None and (year is None or m.year == year):
                    out.add(mid)
    return out


_ARTICLES = ("the ", "a ", "an ")
_KEYS: dict[int, tuple[Bundle, dict[str, set[int]]]] = {}


def _name_keys(title: str) -> set[str]:
    """Lookup keys of every name in a title as MovieLens writes them ("Seven (a.k.a. Se7en)")."""
    forms = split_movielens_title(title)
    names = (forms.title, forms.original_title or "", *forms.alt_titles)
    return {lookup_key(n) for n in names} - {""}


def _variants(key: str) -> set[str]:
    out = {key}
    if key.startswith("a k a "):
        out.add(key[6:])
    for v in list(out):
        for art in _ARTICLES:
            if v.startswith(art):
                out.add(v[len(art) :])
    return out


def _keys_of(bundle: Bundle) -> dict[str, set[int]]:
    """Every catalog movie under each variant of each of its title keys (once per bundle)."""
    held = _KEYS.get(id(bundle))
    if held is not None and held[0] is bundle:
        return held[1]
    table: dict[str, set[int]] = {}
    for m in bundle.movies:
        # The record's own names, and a raw MovieLens title's too (catalogs built before titles
        # were split at build time).
        for key in title_keys(m) | _name_keys(m.title):
            for v in _variants(key):
                table.setdefault(v, set()).add(m.id)
    _KEYS[id(bundle)] = (bundle, table)
    return table


def most_rated(bundle: Bundle, n: int = HUBS) -> set[int]:
    """Ids of the catalog's n most-rated movies (the hubs a lazy ranker falls back on)."""
    order = sorted(bundle.movies, key=lambda m: (-m.vote_count, m.id))
    return {m.id for m in order[:n]}


def judge(bundle: Bundle, req: PanelRequest, picks: Sequence[int], hubs: set[int]) -> RequestScore:
    """Score one request's picks (movie ids, best first; only the first TOP count)."""
    accept = catalog_ids(bundle, req.accept)
    top = list(picks)[:TOP]
    names = [_name(bundle, i) for i in top]
    return RequestScore(
        id=req.id,
        picks=names,
        accepted=sum(i in accept for i in top),
        hubs=[_name(bundle, i) for i in top if i in hubs and i not in accept],
    )


def summarise(scores: Sequence[RequestScore]) -> PanelScore:
    """Mean acceptance over requests; hub share over all top-10 slots."""
    slots = sum(len(s.picks) for s in scores)
    return PanelScore(
        requests=len(scores),
        acceptance=round(sum(s.acceptance for s in scores) / max(1, len(scores)), 4),
        hub_share=round(sum(len(s.hubs) for s in scores) / max(1, slots), 4),
        per_request=list(scores),
    )


def _name(bundle: Bundle, movie_id: int) -> str:
    m = bundle.movie(movie_id)
    if m is None:
        return str(movie_id)
    return f"{m.title} ({m.year})" if m.year else m.title
