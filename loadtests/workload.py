"""What the simulated users ask for, drawn from the served catalog itself, seeded.

Search queries combine the catalog's own genres, keywords and mood words; title lookups type
prefixes of real titles; recommend requests like 1-3 well-known titles and sometimes add a mood.
The result is a small JSON file the Locust processes read, so every run with the same index and
seed sends the same mix.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import msgspec

# Words people type about how a film should feel; kept only when the catalog's keywords use them.
_MOODS = (
    "feel-good",
    "dark",
    "funny",
    "heartwarming",
    "tense",
    "gritty",
    "uplifting",
    "romantic",
    "scary",
    "quirky",
    "thought-provoking",
    "suspenseful",
    "violent",
    "sad",
    "inspirational",
    "atmospheric",
    "satirical",
    "nostalgic",
    "mind-bending",
    "light-hearted",
    "bittersweet",
)
_SEARCH_TEMPLATES = (
    "{kw}",
    "{genre} {kw}",
    "{mood} {genre}",
    "{mood} {genre} about {kw}",
    "a {genre} with {kw}",
    "something like {title}",
    "{kw} and {kw2}",
)


class Workload(msgspec.Struct, kw_only=True):
    """Inputs for the Locust users; every list is non-empty."""

    seed: int
    index_version: str
    search_queries: list[str]
    title_prefixes: list[str]
    liked_sets: list[list[str]]
    moods: list[str]


def _movies(index_dir: Path) -> tuple[list[dict], str]:
    raw = msgspec.msgpack.decode((index_dir / "catalog.msgpack").read_bytes())
    manifest = json.loads((index_dir / "manifest.json").read_text())
    movies = raw["movies"] if isinstance(raw, dict) else raw
    return [m for m in movies if m.get("title")], str(manifest.get("version", "?"))


def build_workload(index_dir: Path, seed: int = 7, n: int = 600) -> Workload:
    """Queries, prefixes and liked sets from the bundle in `index_dir` (catalog.msgpack)."""
    movies, version = _movies(index_dir)
    if not movies:
        raise ValueError(f"{index_dir}: the catalog has no movies")
    rng = random.Random(seed)
    popular = sorted(movies, key=lambda m: (-int(m.get("vote_count") or 0), m["id"]))[
        : max(50, min(2000, len(movies)))
    ]
    kw_counts = Counter(k.lower() for m in movies for k in m.get("keywords") or ())
    genres = sorted(
        {g for m in movies for g in m.get("genres") or () if g and not g.startswith("(")}
    ) or ["drama"]
    moods = [w for w in _MOODS if any(w in k for k in kw_counts)] or list(_MOODS[:5])
    keywords = [k for k, _ in kw_counts.most_common(400)] or [g.lower() for g in genres]

    queries: list[str] = []
    for _ in range(n):
        m = rng.choice(popular)
        own = [k.lower() for k in m.get("keywords") or ()] or keywords
        text = rng.choice(_SEARCH_TEMPLATES).format(
            kw=rng.choice(own),
            kw2=rng.choice(keywords),
            genre=rng.choice(list(m.get("genres") or ()) or genres).lower(),
            mood=rng.choice(moods),
            title=m["title"],
        )
        queries.append(" ".join(text.split())[:200])

    prefixes: list[str] = []
    for _ in range(n):
        title = rng.choice(popular)["title"]
        # People type the start of the title, often without a leading article or capitals.
        title = (
            re.sub(r"^(the|a|an) ", "", title, flags=re.IGNORECASE) if rng.random() < 0.3 else title
        )
        cut = rng.randint(min(3, len(title)), max(3, min(len(title), 14)))
        prefix = title[:cut].strip() or title
        prefixes.append(prefix.lower() if rng.random() < 0.6 else prefix)

    liked_sets = [
        [m["title"] for m in rng.sample(popular[:1000], rng.randint(1, 3))] for _ in range(n // 2)
    ]
    return Workload(
        seed=seed,
        index_version=version,
        search_queries=queries,
        title_prefixes=prefixes,
        liked_sets=liked_sets,
        moods=moods,
    )


def save_workload(workload: Workload, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.encode(workload))
    return path


def load_workload(path: Path) -> Workload:
    return msgspec.json.decode(path.read_bytes(), type=Workload)
