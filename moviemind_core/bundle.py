"""The index bundle: the one definition of the on-disk format, its writer and its reader.

A bundle is a directory:
    manifest.json    format version, build id, counts, embedder, index options, sha256 of each file
    catalog.msgpack  the movies (msgspec `Movie`) and each one's document content hash
    vectors.npy      float32 (n, dim) unit vectors, row i belongs to catalog movie i
    index.usearch    usearch HNSW index (cosine), keyed by movie id
    titles.msgpack   lookup_key(title) -> movie ids, most popular first
    neighbours.npy   int32 (n, N): catalog rows of each movie's collaborative neighbours, -1 = none
    neighbour_weights.npy  float16 (n, N): their weights (larger = stronger evidence)

Format 2 added the neighbour files; format 3 the catalog record's display title split from its
alternate and original titles, poster path and TMDB/IMDb ids. An older bundle is rejected with a
message naming the command that rebuilds it.

The manifest is written last, so a reader that sees a manifest sees complete files; every file
is checked against the manifest's sha256 and size before anything is used.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np

from moviemind_core.catalog import Movie, lookup_key, title_names

# Must come before any usearch import: onnxruntime segfaults when imported after usearch.
from moviemind_core.embedder import sha256_file

FORMAT = "moviemind-bundle"
FORMAT_VERSION = 3
# What each version added, for the message that refuses an older bundle.
FORMAT_CHANGES = {
    2: "collaborative neighbours",
    3: "display titles split from alternate titles, posters, TMDB and IMDb ids",
}
REBUILD_COMMAND = "python -m index_builder build --out DIR (make index for var/index)"
MANIFEST = "manifest.json"
CATALOG = "catalog.msgpack"
VECTORS = "vectors.npy"
INDEX = "index.usearch"
TITLES = "titles.msgpack"
NEIGHBOURS = "neighbours.npy"
NEIGHBOUR_WEIGHTS = "neighbour_weights.npy"
DATA_FILES = (CATALOG, VECTORS, INDEX, TITLES, NEIGHBOURS, NEIGHBOUR_WEIGHTS)

Dtype = Literal["f32", "f16", "i8"]


class BundleError(RuntimeError):
    """A bundle is missing, truncated, corrupt or of another format version."""


class FileEntry(msgspec.Struct, frozen=True):
    sha256: str
    bytes: int


class EmbedderInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    variant: str
    sha256: str
    dim: int
    pooling: str = "mean"


class IndexOptions(msgspec.Struct, frozen=True, kw_only=True):
    metric: str = "cos"
    dtype: Dtype = "f16"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64


class CollabInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where the neighbour lists came from: `none`, `ease`, `cosine` or `tmdb-lists`."""

    method: str = "none"
    # The learner's settings and the data it saw (ratings, users, cutoff), for reproducibility.
    params: dict[str, float | int | str] = {}
    covered: int = 0


class Manifest(msgspec.Struct, kw_only=True):
    format: str
    format_version: int
    version: str
    built_at: str
    source: str
    template_version: str
    counts: dict[str, int]
    embedder: EmbedderInfo
    index: IndexOptions
    files: dict[str, FileEntry]
    collab: CollabInfo = CollabInfo()


class CatalogFile(msgspec.Struct, kw_only=True):
    movies: list[Movie]
    doc_hashes: list[str]


def new_version() -> str:
    """A sortable, unique build id: UTC time plus a random suffix."""
    # Microseconds, so builds within the same second still sort in build order (pruning relies on it).
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + os.urandom(3).hex()


def title_keys(m: Movie) -> set[str]:
    """Every key a movie is found by: its display title, original title and alternate titles
    ("Amélie", "Le fabuleux destin d'Amélie Poulain"), split by the catalog source."""
    keys = {lookup_key(name) for name in title_names(m)}
    keys.discard("")
    return keys


def build_title_table(movies: Sequence[Movie]) -> dict[str, list[int]]:
    """lookup_key -> ids, most popular first, so an ambiguous title resolves to the best known;
    keys of display, original and alternate titles alike."""
    table: dict[str, list[Movie]] = {}
    for m in movies:
        for k in title_keys(m):
            table.setdefault(k, []).append(m)
    # A film shown under a name comes before one that only has it as an alternate: "The
    # Postman" is Costner's 1997 film before "Il Postino" (released in English as The Postman).
    return {
        k: [
            m.id
            for m in sorted(
                v, key=lambda m: (lookup_key(m.title) != k, -m.vote_count, -m.popularity, m.id)
            )
        ]
        for k, v in table.items()
    }


SEED_SERIAL = 1024  # vectors added single-threaded before a parallel build (see build_index)


def build_index(ids: np.ndarray, vectors: np.ndarray, options: IndexOptions, threads: int = 0):
    """An HNSW index over the vectors, keyed by movie id."""
    from usearch.index import Index

    index = Index(
        ndim=vectors.shape[1],
        metric=options.metric,
        dtype=options.dtype,
        connectivity=options.connectivity,
        expansion_add=options.expansion_add,
        expansion_search=options.expansion_search,
    )
    keys = ids.astype(np.uint64)
    # Concurrent inserts into a tiny graph race: 5 of 30 four-thread builds of 200 vectors had
    # searches return fewer than k results or miss a vector's own key (measured; 0 of 30 with
    # one thread). The first SEED_SERIAL vectors go in one at a time, the rest in parallel.
    seed = min(len(keys), SEED_SERIAL)
    if seed:
        index.add(keys[:seed], vectors[:seed], threads=1)
    if len(keys) > seed:
        index.add(keys[seed:], vectors[seed:], threads=threads)
    return index


def write_bundle(
    out_dir: Path | str,
    movies: Sequence[Movie],
    doc_hashes: Sequence[str],
    vectors: np.ndarray,
    *,
    embedder: EmbedderInfo,
    template_version: str,
    source: str,
    options: IndexOptions | None = None,
    counts: dict[str, int] | None = None,
    threads: int = 0,
    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
    collab: CollabInfo | None = None,
) -> Manifest:
    """Write a complete bundle to out_dir, replacing what was there only once it is whole.

    `neighbours` is (rows int32 (n, N), weights (n, N)); None writes empty lists (N = 0).
    """
    options = options or IndexOptions()
    out_dir = Path(out_dir)
    if len(movies) != len(doc_hashes) or len(movies) != len(vectors):
        raise ValueError("movies, doc_hashes and vectors must have the same length")
    if neighbours is None:
        neighbours = (np.zeros((len(movies), 0), np.int32), np.zeros((len(movies), 0), np.float16))
    nbr_rows, nbr_weights = neighbours
    if nbr_rows.shape != nbr_weights.shape or nbr_rows.shape[:1] != (len(movies),):
        raise ValueError("neighbour rows and weights must both be (movies, N)")
    if nbr_rows.size and (nbr_rows.max() >= len(movies) or nbr_rows.min() < -1):
        raise ValueError("neighbour rows must be catalog rows or -1")
    ids = np.asarray([m.id for m in movies], dtype=np.int64)
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("movie ids must be unique")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.stage-", dir=out_dir.parent))
    try:
        (stage / CATALOG).write_bytes(
            msgspec.msgpack.encode(CatalogFile(movies=list(movies), doc_hashes=list(doc_hashes)))
        )
        np.save(stage / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
        build_index(ids, vectors, options, threads).save(str(stage / INDEX))
        (stage / TITLES).write_bytes(msgspec.msgpack.encode(build_title_table(movies)))
        np.save(stage / NEIGHBOURS, np.ascontiguousarray(nbr_rows, dtype=np.int32))
        np.save(stage / NEIGHBOUR_WEIGHTS, np.ascontiguousarray(nbr_weights, dtype=np.float16))
        files = {
            name: FileEntry(sha256=sha256_file(stage / name), bytes=(stage / name).stat().st_size)
            for name in DATA_FILES
        }
        manifest = Manifest(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            version=new_version(),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            source=source,
            template_version=template_version,
            counts={"movies": len(movies), "vectors": int(len(vectors)), **(counts or {})},
            embedder=embedder,
            index=options,
            files=files,
            collab=collab or CollabInfo(),
        )
        (stage / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
        _swap_into_place(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return manifest


def _swap_into_place(stage: Path, out_dir: Path) -> None:
    # Two renames: a reader sees either the old bundle or the new one, never a mix, except
    # for the instant between them, when it sees no bundle and keeps what it has.
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{time.time_ns()}")
        os.rename(out_dir, old)
    os.rename(stage, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_bundle_manifest(bundle_dir: Path | str) -> Manifest:
    """Decode and check a bundle's manifest (format and version), without reading data files."""
    path = Path(bundle_dir) / MANIFEST
    if not path.is_file():
        raise BundleError(f"no bundle at {bundle_dir}: {MANIFEST} is missing")
    return decode_manifest(path.read_bytes(), str(path))


def decode_manifest(raw: bytes, where: str = MANIFEST) -> Manifest:
    """Decode manifest bytes with a clear error for anything that is not a bundle manifest."""
    try:
        manifest = msgspec.json.decode(raw, type=Manifest)
    except msgspec.DecodeError as exc:
        raise BundleError(f"{where} is not a valid bundle manifest: {exc}") from exc
    if manifest.format != FORMAT or manifest.format_version != FORMAT_VERSION:
        added = "; ".join(
            f"format {v} added {what}"
            for v, what in FORMAT_CHANGES.items()
            if manifest.format_version < v <= FORMAT_VERSION
        )
        raise BundleError(
            f"{where}: format {manifest.format}/{manifest.format_version} is not "
            f"{FORMAT}/{FORMAT_VERSION}" + (f" ({added})" if added else "") + "; rebuild the "
            f"index with this version: {REBUILD_COMMAND}"
        )
    missing = [f for f in DATA_FILES if f not in manifest.files]
    if missing:
        raise BundleError(f"{where} lists no entry for {', '.join(missing)}")
    return manifest


def verify_files(bundle_dir: Path, manifest: Manifest) -> None:
    """Check every data file's size and sha256 against the manifest."""
    for name, entry in manifest.files.items():
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir} is incomplete: {name} is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise BundleError(
                f"bundle {bundle_dir}: {name} is {size} bytes, manifest says {entry.bytes} (truncated?)"
            )
        if sha256_file(path) != entry.sha256:
            raise BundleError(f"bundle {bundle_dir}: {name} does not match its sha256 (corrupt)")


class Bundle:
    """A loaded, verified bundle: movies, vectors, the ANN index and the title table."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        movies: list[Movie],
        doc_hashes: list[str],
        vectors: np.ndarray,
        index,
        titles: dict[str, list[int]],
        neighbour_rows: np.ndarray | None = None,
        neighbour_weights: np.ndarray | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.movies = movies
        self.doc_hashes = doc_hashes
        self.vectors = vectors
        self.index = index
        self.titles = titles
        n = len(movies)
        self.neighbour_rows = (
            neighbour_rows if neighbour_rows is not None else np.zeros((n, 0), np.int32)
        )
        # float32 once at load: the edge sums these per request.
        self.neighbour_weights = (
            neighbour_weights.astype(np.float32)
            if neighbour_weights is not None
            else np.zeros((n, 0), np.float32)
        )
        # The typical strength of a movie's best neighbour: the unit collaborative evidence is
        # measured in, so a liked movie with few ratings (weak, noisy weights) counts for less.
        best = self.neighbour_weights[:, 0] if self.neighbour_weights.shape[1] else np.zeros(0)
        self.collab_unit = float(best[best > 0].mean()) if (best > 0).any() else 1.0
        # How many neighbour lists each movie is in, over the median of those in any: a "hub"
        # (Fargo, Amelie: co-rated with everything of their years) is in ten times as many.
        listed = self.neighbour_rows[self.neighbour_rows >= 0]
        counts = np.bincount(listed.ravel(), minlength=len(movies)).astype(np.float32)
        median = float(np.median(counts[counts > 0])) if (counts > 0).any() else 1.0
        self.hubness = np.maximum(counts / median, 1.0).astype(np.float32)
        self.row_of: dict[int, int] = {m.id: i for i, m in enumerate(movies)}
        self.ids = np.fromiter((m.id for m in movies), dtype=np.int64, count=len(movies))
        self._by_id = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[self._by_id]

    @property
    def version(self) -> str:
        return self.manifest.version

    def __len__(self) -> int:
        return len(self.movies)

    def movie(self, movie_id: int) -> Movie | None:
        row = self.row_of.get(movie_id)
        return None if row is None else self.movies[row]

    def rows_of(self, movie_ids: np.ndarray) -> np.ndarray:
        """Rows of catalog ids (every id must be in the bundle: the index holds only those)."""
        return self._by_id[np.searchsorted(self._sorted_ids, movie_ids)]

    def vector(self, movie_id: int) -> np.ndarray | None:
        row = self.row_of.get(movie_id)
        return None if row is None else self.vectors[row]

    @classmethod
    def load(cls, bundle_dir: Path | str, *, verify: bool = True) -> Bundle:
        """Load a bundle, checking every file against the manifest first."""
        from usearch.index import Index

        bundle_dir = Path(bundle_dir)
        manifest = read_bundle_manifest(bundle_dir)
        if verify:
            verify_files(bundle_dir, manifest)
        try:
            catalog = msgspec.msgpack.decode((bundle_dir / CATALOG).read_bytes(), type=CatalogFile)
            vectors = np.load(io.BytesIO((bundle_dir / VECTORS).read_bytes()), allow_pickle=False)
            titles = msgspec.msgpack.decode(
                (bundle_dir / TITLES).read_bytes(), type=dict[str, list[int]]
            )
            index = Index.restore(str(bundle_dir / INDEX), view=False)
            nbr_rows = np.load(
                io.BytesIO((bundle_dir / NEIGHBOURS).read_bytes()), allow_pickle=False
            )
            nbr_weights = np.load(
                io.BytesIO((bundle_dir / NEIGHBOUR_WEIGHTS).read_bytes()), allow_pickle=False
            )
        except (msgspec.DecodeError, ValueError, OSError, RuntimeError) as exc:
            raise BundleError(f"bundle {bundle_dir} could not be read: {exc}") from exc
        if index is None:
            raise BundleError(f"bundle {bundle_dir}: {INDEX} is not a usearch index")
        n = len(catalog.movies)
        if vectors.shape != (n, manifest.embedder.dim) or len(catalog.doc_hashes) != n:
            raise BundleError(
                f"bundle {bundle_dir}: {n} movies but vectors {vectors.shape}, "
                f"{len(catalog.doc_hashes)} hashes"
            )
        if len(index) != n:
            raise BundleError(f"bundle {bundle_dir}: index holds {len(index)} vectors, catalog {n}")
        if (
            nbr_rows.ndim != 2
            or nbr_rows.shape != nbr_weights.shape
            or nbr_rows.shape[0] != n
            or nbr_rows.dtype != np.int32
            or (nbr_rows.size and (nbr_rows.max() >= n or nbr_rows.min() < -1))
        ):
            raise BundleError(
                f"bundle {bundle_dir}: neighbour lists {nbr_rows.shape} {nbr_rows.dtype} do not "
                f"fit a catalog of {n} movies"
            )
        return cls(
            bundle_dir,
            manifest,
            catalog.movies,
            catalog.doc_hashes,
            vectors,
            index,
            titles,
            nbr_rows,
            nbr_weights,
        )
