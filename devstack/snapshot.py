"""The edge's served index, loaded in-process the way the edge loads it (for in-process benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.index_store import Snapshot
    from edge.settings import EdgeSettings


def load_snapshot(
    settings: EdgeSettings,
    index: str | None = None,
    model_dir: str | None = None,
    *,
    threads: int = 1,
    query_variant: str | None = None,
    cache_dir: str | None = None,
) -> Snapshot:
    """The Snapshot an edge with `settings` would serve (index, model dir and query embedder
    overridable); RuntimeError with the store's own message when it does not load."""
    from edge.index_store import IndexStore

    store = IndexStore(
        index or settings.index,
        Path(model_dir or settings.model_dir),
        cache_dir=Path(cache_dir or settings.index_cache_dir),
        s3=settings.s3,
        embed_threads=threads,
        query_variant=query_variant or settings.query_variant,
        bayes_votes=settings.ranking.bayes_votes,
    )
    if not store.refresh() or store.current is None:
        raise RuntimeError(f"the index did not load in-process: {store.last_error}")
    return store.current
