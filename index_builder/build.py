"""Build an index bundle from movies: documents -> embeddings (reused when unchanged) -> bundle."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from index_builder.collaborative import Neighbours
from index_builder.documents import TEMPLATE_VERSION, content_hash, document_text
from moviemind_core.bundle import (
    Bundle,
    BundleError,
    CollabInfo,
    EmbedderInfo,
    IndexOptions,
    Manifest,
    write_bundle,
)
from moviemind_core.catalog import Movie
from moviemind_core.embedder import Embedder
from moviemind_core.lexicon import canonical_genres


def previous_vectors(out: Path, embedder_sha: str, log=print) -> dict[str, np.ndarray]:
    """content hash -> vector from the bundle already at `out`, if it was built with this embedder."""
    if not (out / "manifest.json").is_file():
        return {}
    try:
        old = Bundle.load(out)
    except BundleError as exc:
        log(f"  previous bundle ignored: {exc}")
        return {}
    if old.manifest.embedder.sha256 != embedder_sha:
        log("  previous bundle used another embedder: embedding everything")
        return {}
    return {h: old.vectors[i] for i, h in enumerate(old.doc_hashes)}


def build(
    movies: Sequence[Movie],
    out: Path,
    embedder: Embedder,
    *,
    source: str,
    dtype: str = "f16",
    incremental: bool = True,
    batch_size: int = 64,
    template: str = TEMPLATE_VERSION,
    neighbours: Neighbours | None = None,
    collab: CollabInfo | None = None,
    log=print,
) -> Manifest:
    """Embed what changed, reuse the rest, write the bundle atomically; returns its manifest."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    # Genres as the lexicon's canonical ids ("Science Fiction" -> "Sci-Fi"): the edge never
    # sees a source's own spelling.
    movies = [msgspec.structs.replace(m, genres=canonical_genres(m.genres)) for m in movies]
    texts = [document_text(m, template) for m in movies]
    hashes = [content_hash(t, embedder.model_sha256, template) for t in texts]
    reuse = previous_vectors(out, embedder.model_sha256, log) if incremental else {}
    vectors = np.zeros((len(movies), embedder.dim), dtype=np.float32)
    todo = []
    for i, h in enumerate(hashes):
        vec = reuse.get(h)
        if vec is None:
            todo.append(i)
        else:
            vectors[i] = vec
    log(
        f"  {len(movies)} documents: {len(movies) - len(todo)} unchanged (vectors reused), {len(todo)} to embed"
    )
    # Chunks of similar length: the embedder sorts within a call, but a chunk drawn from the
    # whole catalog still pads most of its batches to its longest document.
    todo.sort(key=lambda i: len(texts[i]))
    t_embed = time.perf_counter()
    with tqdm(
        total=len(todo), unit="doc", desc="  embedding", file=sys.stderr, disable=not todo
    ) as bar:
        for start in range(0, len(todo), batch_size * 4):
            chunk = todo[start : start + batch_size * 4]
            vectors[chunk] = embedder.embed([texts[i] for i in chunk], batch_size=batch_size)
            bar.update(len(chunk))
    embed_s = time.perf_counter() - t_embed
    t_index = time.perf_counter()
    manifest = write_bundle(
        out,
        movies,
        hashes,
        vectors,
        embedder=EmbedderInfo(
            name=embedder.manifest.name,
            variant=embedder.variant,
            sha256=embedder.model_sha256,
            dim=embedder.dim,
            pooling=embedder.manifest.pooling,
        ),
        template_version=template,
        source=source,
        options=IndexOptions(dtype=dtype),  # type: ignore[arg-type]
        counts={"embedded": len(todo), "reused": len(movies) - len(todo)},
        neighbours=(neighbours.rows, neighbours.weights) if neighbours is not None else None,
        collab=collab,
    )
    index_s = time.perf_counter() - t_index
    total = time.perf_counter() - t0
    rate = f"{len(todo) / embed_s:.0f} docs/s" if todo and embed_s > 0 else "n/a"
    size = sum(f.bytes for f in manifest.files.values())
    log(
        f"built {out} version {manifest.version}: {len(movies)} movies, embedded {len(todo)} ({rate}), "
        f"index {dtype} in {index_s:.1f}s, {size / 1e6:.1f} MB, total {total:.1f}s"
    )
    return manifest
