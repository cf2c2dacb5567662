"""The index bundle: build from real MiniLM embeddings, write, verify, load, search; incremental
rebuild; every way a bundle on disk can be broken; the `build` CLI.

Also home of `small_bundle()`, which test_publish.py and test_hot_swap.py use to get small real
indices cheaply: it seeds the vectors of unchanged documents from the sample index in var/index
(same embedder, same content hashes), so `build()` reuses them instead of embedding again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import msgspec
import numpy as np
import pytest

from index_builder.build import build
from index_builder.documents import TEMPLATE_VERSION, content_hash, document_text
from index_builder.sources import SourceStats
from moviemind_core.bundle import (
    CATALOG,
    DATA_FILES,
    INDEX,
    MANIFEST,
    NEIGHBOUR_WEIGHTS,
    NEIGHBOURS,
    TITLES,
    VECTORS,
    Bundle,
    BundleError,
    IndexOptions,
    Manifest,
    build_index,
    write_bundle,
)
from moviemind_core.catalog import Movie, lookup_key
from moviemind_core.embedder import Embedder, sha256_file
from tests.support.servers import ROOT

MODEL_DIR = ROOT / "var" / "models" / "minilm"
SAMPLE_INDEX = ROOT / "var" / "index"
SMALL = 200


# ---------------------------------------------------------------- helpers shared with other modules


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    """The fp32 MiniLM the sample index and the edge use (one per test process)."""
    return Embedder(MODEL_DIR, threads=1)


@lru_cache(maxsize=1)
def catalog() -> tuple[Movie, ...]:
    """The whole MovieLens sample catalog (a few seconds to read, so once per process)."""
    from index_builder.sources.movielens import iter_movielens

    return tuple(iter_movielens(SourceStats()))


def top_movies(n: int = SMALL) -> list[Movie]:
    """The n most-voted movies in id order: what `build --limit n` indexes."""
    top = sorted(catalog(), key=lambda m: (-m.vote_count, m.id))[:n]
    return sorted(top, key=lambda m: m.id)


@lru_cache(maxsize=1)
def _sample_vectors() -> dict[str, np.ndarray]:
    """content hash -> vector from var/index when it was built with this embedder, else {}."""
    if not (SAMPLE_INDEX / MANIFEST).is_file():
        return {}
    try:
        sample = Bundle.load(SAMPLE_INDEX)
    except BundleError:
        return {}
    if sample.manifest.embedder.sha256 != embedder().model_sha256:
        return {}
    return {h: sample.vectors[i].copy() for i, h in enumerate(sample.doc_hashes)}


def small_bundle(out: Path, movies: list[Movie] | None = None, *, dtype: str = "f16") -> Manifest:
    """A real bundle of `movies` (default: the 200 most voted) at `out`, built by `build()`.

    Vectors of documents the sample index already holds are seeded into `out` first, so
    `build()` reuses them; anything else is embedded for real.
    """
    movies = list(movies or top_movies())
    emb = embedder()
    seed = _sample_vectors()
    if seed and not (out / MANIFEST).is_file():
        hashes = [content_hash(document_text(m), emb.model_sha256) for m in movies]
        rows = [i for i, h in enumerate(hashes) if h in seed]
        if rows:
            sample_manifest = Bundle.load(SAMPLE_INDEX, verify=False).manifest
            write_bundle(
                out,
                [movies[i] for i in rows],
                [hashes[i] for i in rows],
                np.stack([seed[hashes[i]] for i in rows]),
                embedder=sample_manifest.embedder,
                template_version=TEMPLATE_VERSION,
                source="seed",
            )
    return build(movies, out, emb, source="movielens", dtype=dtype, log=lambda *_: None)


def rewrite(out: Path, bundle: Bundle, *, drop: int = 0, dtype: str = "f16") -> Manifest:
    """Write `bundle`'s content (minus its first `drop` movies) to `out` as a new version, no embedding."""
    return write_bundle(
        out,
        bundle.movies[drop:],
        bundle.doc_hashes[drop:],
        bundle.vectors[drop:],
        embedder=bundle.manifest.embedder,
        template_version=bundle.manifest.template_version,
        source=bundle.manifest.source,
        options=IndexOptions(dtype=dtype),  # type: ignore[arg-type]
    )


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Corrupt one byte in the middle of a file (same size, different sha256)."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def reseal(bundle_dir: Path, **changes) -> None:
    """Rewrite manifest.json so its sizes and sha256s match the files as they are now."""
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    for name in DATA_FILES:
        p = bundle_dir / name
        manifest["files"][name] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    manifest.update(changes)
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "index"
    small_bundle(out)
    return out


@pytest.fixture
def copy(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built bundle that a test may break."""
    dst = tmp_path / "index"
    shutil.copytree(built, dst)
    return dst


# ---------------------------------------------------------------- round trip and manifest


def test_round_trip_and_manifest_fields(built: Path) -> None:
    emb = embedder()
    movies = top_movies()
    bundle = Bundle.load(built)
    m = bundle.manifest
    assert len(bundle) == SMALL
    assert [x.id for x in bundle.movies] == [x.id for x in movies]
    assert bundle.movies == movies  # msgspec round trip keeps every field
    assert m.format == "moviemind-bundle" and m.format_version == 3
    assert m.counts["movies"] == SMALL and m.counts["vectors"] == SMALL
    assert m.counts["embedded"] + m.counts["reused"] == SMALL
    assert m.template_version == TEMPLATE_VERSION
    assert m.embedder.sha256 == emb.model_sha256 and m.embedder.dim == emb.dim == 384
    assert m.embedder.variant == "fp32" and m.embedder.pooling == "mean"
    assert m.index.dtype == "f16" and m.index.metric == "cos"
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{6}", m.version)
    built_at = datetime.fromisoformat(m.built_at)
    assert built_at.tzinfo is not None and abs(datetime.now(UTC) - built_at) < timedelta(hours=1)
    assert sorted(m.files) == sorted(DATA_FILES)
    for name, entry in m.files.items():
        assert entry.sha256 == sha256_file(built / name)
        assert entry.bytes == (built / name).stat().st_size
    # The stored hashes are the content hashes of the documents, and the vectors are unit rows.
    assert bundle.doc_hashes == [content_hash(document_text(x), emb.model_sha256) for x in movies]
    assert bundle.vectors.dtype == np.float32 and bundle.vectors.shape == (SMALL, 384)
    assert np.allclose(np.linalg.norm(bundle.vectors, axis=1), 1.0, atol=1e-4)
    # The title table finds MovieLens' "Matrix, The" by either spelling; the index holds every id.
    matrix = next(x for x in movies if x.id == 2571)
    assert matrix.title == "The Matrix"
    assert (
        bundle.titles[lookup_key("Matrix, The")][0]
        == bundle.titles[lookup_key("the matrix")][0]
        == 2571
    )
    assert len(bundle.index) == SMALL and all(x.id in bundle.index for x in movies[:20])
    # No staging directory is left behind by the atomic write.
    assert sorted(p.name for p in built.parent.iterdir()) == ["index"]


def test_vectors_are_real_embeddings(built: Path) -> None:
    """Whether seeded or embedded, each stored vector is what MiniLM says for the document now."""
    emb = embedder()
    bundle = Bundle.load(built)
    picks = [0, 57, 123, SMALL - 1]
    fresh = emb.embed([document_text(bundle.movies[i]) for i in picks])
    cos = np.sum(fresh * bundle.vectors[picks], axis=1)
    assert np.all(cos > 0.999), cos


@pytest.mark.parametrize("dtype", ["f32", "f16", "i8"])
def test_each_dtype_loads_and_searches(built: Path, tmp_path: Path, dtype: str) -> None:
    src = Bundle.load(built)
    manifest = rewrite(tmp_path / dtype, src, dtype=dtype)
    bundle = Bundle.load(tmp_path / dtype)
    assert manifest.index.dtype == dtype == bundle.manifest.index.dtype
    assert manifest.version != src.version
    # Every movie's own vector finds that movie first; i8 rounds each component of a unit
    # vector to 1/127, which can reorder the closest few, so there it must be among the top 3.
    within = 1 if dtype != "i8" else 3
    for row in range(0, SMALL, 10):
        hit = bundle.index.search(bundle.vectors[row], 3)
        assert bundle.movies[row].id in [int(k) for k in hit.keys[:within]], (row, hit.keys)
    # A text query gives the same best match as exact cosine over the stored vectors.
    q = embedder().embed_one("toys that come alive when nobody is watching, animated")
    exact = bundle.movies[int(np.argmax(bundle.vectors @ q))].id
    hits = bundle.index.search(q, 5)
    assert exact in [int(k) for k in hits.keys]
    titles = [bundle.movie(int(k)).title for k in hits.keys]
    assert any("Toy Story" in t for t in titles), titles


def test_versions_sort_in_build_order_within_one_second(built: Path, tmp_path: Path) -> None:
    """Publishing prunes the oldest versions by sorting them: quick rebuilds must sort in order."""
    src = Bundle.load(built)
    versions = [rewrite(tmp_path / f"v{i}", src).version for i in range(4)]
    assert sorted(versions) == versions and len(set(versions)) == 4


def test_f16_and_i8_are_smaller_than_f32(built: Path, tmp_path: Path) -> None:
    src = Bundle.load(built)
    sizes = {
        d: rewrite(tmp_path / d, src, dtype=d).files[INDEX].bytes for d in ("f32", "f16", "i8")
    }
    assert sizes["i8"] < sizes["f16"] < sizes["f32"], sizes


# ---------------------------------------------------------------- broken bundles


@pytest.mark.parametrize("name", DATA_FILES)
def test_corrupt_byte_is_rejected_naming_the_file(copy: Path, name: str) -> None:
    flip_byte(copy / name)
    with pytest.raises(BundleError) as err:
        Bundle.load(copy)
    assert name in str(err.value) and "sha256" in str(err.value)


@pytest.mark.parametrize("name", DATA_FILES)
def test_truncated_file_is_rejected(copy: Path, name: str) -> None:
    p = copy / name
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(BundleError, match="truncated") as err:
        Bundle.load(copy)
    assert name in str(err.value)


def test_missing_data_file_is_rejected(copy: Path) -> None:
    (copy / TITLES).unlink()
    with pytest.raises(BundleError, match=f"{re.escape(TITLES)} is missing"):
        Bundle.load(copy)


def test_missing_manifest_is_rejected(copy: Path) -> None:
    (copy / MANIFEST).unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        Bundle.load(copy)
    with pytest.raises(BundleError, match="is missing"):
        Bundle.load(copy.parent / "nowhere")


def test_wrong_format_version_is_rejected(copy: Path) -> None:
    reseal(copy, format_version=4)
    with pytest.raises(BundleError, match="format moviemind-bundle/4 is not moviemind-bundle/3"):
        Bundle.load(copy)


def test_a_format_1_bundle_is_rejected_with_the_command_that_rebuilds_it(copy: Path) -> None:
    reseal(copy, format_version=1)
    with pytest.raises(BundleError, match=r"added collaborative neighbours.*index_builder build"):
        Bundle.load(copy)


def test_a_format_2_bundle_is_rejected_naming_what_changed_and_the_rebuild_command(
    copy: Path,
) -> None:
    """A format-2 bundle (titles with MovieLens' bracketed alternates, no posters) is refused."""
    reseal(copy, format_version=2)
    with pytest.raises(BundleError) as err:
        Bundle.load(copy)
    message = str(err.value)
    assert "format moviemind-bundle/2 is not moviemind-bundle/3" in message
    assert "alternate titles" in message and "collaborative" not in message
    assert "python -m index_builder build --out" in message and "make index" in message


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        (np.full((3, 2), 0, np.int32), "do not fit"),  # wrong number of movies
        (np.full((SMALL, 2), SMALL, np.int32), "do not fit"),  # row out of range
        (np.full((SMALL, 2), 0, np.int64), "do not fit"),  # wrong dtype
    ],
)
def test_neighbour_lists_that_do_not_fit_the_catalog_are_rejected(
    copy: Path, rows: np.ndarray, why: str
) -> None:
    np.save(copy / NEIGHBOURS, rows)
    np.save(copy / NEIGHBOUR_WEIGHTS, np.zeros(rows.shape, np.float16))
    reseal(copy)
    with pytest.raises(BundleError, match=why):
        Bundle.load(copy)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json at all", b"[1, 2, 3]", b'{"format": "moviemind-bundle"}', b"\x00\xff" * 40],
)
def test_garbage_manifest_is_rejected(copy: Path, raw: bytes) -> None:
    (copy / MANIFEST).write_bytes(raw)
    with pytest.raises(BundleError, match="not a valid bundle manifest"):
        Bundle.load(copy)


def test_manifest_without_a_file_entry_is_rejected(copy: Path) -> None:
    manifest = json.loads((copy / MANIFEST).read_text())
    del manifest["files"][VECTORS]
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"no entry for {re.escape(VECTORS)}"):
        Bundle.load(copy)


def test_vector_count_mismatch_is_rejected(copy: Path) -> None:
    """Files whose checksums match a manifest but which disagree with each other are still refused."""
    vectors = np.load(copy / VECTORS)
    np.save(copy / VECTORS, vectors[:-1])
    reseal(copy)
    with pytest.raises(BundleError, match=rf"{SMALL} movies but vectors \({SMALL - 1}, 384\)"):
        Bundle.load(copy)


def test_index_count_mismatch_is_rejected(copy: Path) -> None:
    bundle = Bundle.load(copy)
    from moviemind_core.bundle import build_index

    ids = np.asarray([m.id for m in bundle.movies[:-5]])
    build_index(ids, bundle.vectors[:-5], bundle.manifest.index).save(str(copy / INDEX))
    reseal(copy)
    with pytest.raises(BundleError, match=f"index holds {SMALL - 5} vectors, catalog {SMALL}"):
        Bundle.load(copy)


def test_undecodable_catalog_with_matching_checksum_is_rejected(copy: Path) -> None:
    (copy / CATALOG).write_bytes(msgspec.msgpack.encode({"movies": "nope"}))
    reseal(copy)
    with pytest.raises(BundleError, match="could not be read"):
        Bundle.load(copy)


def test_write_bundle_refuses_inconsistent_input_and_keeps_the_old_bundle(copy: Path) -> None:
    before = Bundle.load(copy)
    with pytest.raises(ValueError, match="same length"):
        write_bundle(
            copy,
            before.movies,
            before.doc_hashes[:-1],
            before.vectors,
            embedder=before.manifest.embedder,
            template_version="doc-v1",
            source="x",
        )
    dup = [*before.movies[:-1], before.movies[0]]
    with pytest.raises(ValueError, match="unique"):
        write_bundle(
            copy,
            dup,
            before.doc_hashes,
            before.vectors,
            embedder=before.manifest.embedder,
            template_version="doc-v1",
            source="x",
        )
    assert Bundle.load(copy).version == before.version
    assert sorted(p.name for p in copy.parent.iterdir()) == ["index"]


# ---------------------------------------------------------------- incremental rebuild


def test_incremental_rebuild_embeds_only_the_changed_movie(copy: Path) -> None:
    before = Bundle.load(copy)
    movies = list(before.movies)
    changed = 17
    movies[changed] = msgspec.structs.replace(
        movies[changed], overview="A lighthouse keeper befriends a whale during a winter storm."
    )
    manifest = build(movies, copy, embedder(), source="movielens", log=lambda *_: None)
    after = Bundle.load(copy)
    assert manifest.counts["embedded"] == 1 and manifest.counts["reused"] == SMALL - 1
    assert manifest.version != before.version
    same = [i for i in range(SMALL) if i != changed]
    assert np.array_equal(after.vectors[same], before.vectors[same])  # bit for bit, not re-embedded
    assert after.doc_hashes[changed] != before.doc_hashes[changed]
    expected = embedder().embed_one(document_text(movies[changed]))
    assert float(after.vectors[changed] @ expected) > 0.9999
    assert float(after.vectors[changed] @ before.vectors[changed]) < 0.99
    # A rebuild with nothing changed embeds nothing.
    again = build(movies, copy, embedder(), source="movielens", log=lambda *_: None)
    assert again.counts["embedded"] == 0 and again.counts["reused"] == SMALL


def test_incremental_rebuild_over_a_corrupt_bundle_embeds_again(copy: Path) -> None:
    movies = list(Bundle.load(copy).movies[:8])
    flip_byte(copy / VECTORS)
    lines: list[str] = []
    manifest = build(movies, copy, embedder(), source="movielens", log=lines.append)
    assert any("previous bundle ignored" in line and VECTORS in line for line in lines), lines
    assert manifest.counts["embedded"] == 8
    assert len(Bundle.load(copy)) == 8


# ---------------------------------------------------------------- CLI


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "index_builder", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_build_then_rebuild_over_a_corrupt_bundle(tmp_path: Path) -> None:
    out = tmp_path / "cli-index"
    first = _cli("build", "--out", str(out), "--limit", "50", "--threads", "1")
    assert first.returncode == 0, first.stderr
    assert re.search(
        rf"built {re.escape(str(out))} version \S+: 50 movies, embedded 50", first.stdout
    ), first.stdout
    assert "50 documents: 0 unchanged (vectors reused), 50 to embed" in first.stdout
    bundle = Bundle.load(out)
    assert len(bundle) == 50 and bundle.manifest.counts["embedded"] == 50
    assert [m.id for m in bundle.movies] == [m.id for m in top_movies(50)]

    flip_byte(out / INDEX)
    second = _cli("build", "--out", str(out), "--limit", "20", "--threads", "1")
    assert second.returncode == 0, second.stderr
    assert "previous bundle ignored" in second.stdout and INDEX in second.stdout, second.stdout
    assert "Traceback" not in second.stderr
    rebuilt = Bundle.load(out)
    assert rebuilt.version != bundle.version and rebuilt.manifest.counts["embedded"] == 20


def test_cli_build_errors_are_one_line(tmp_path: Path) -> None:
    missing = _cli(
        "build",
        "--out",
        str(tmp_path / "x"),
        "--limit",
        "5",
        "--models",
        str(tmp_path / "no-models"),
    )
    assert missing.returncode != 0
    assert missing.stderr.strip().startswith("error:") and "Traceback" not in missing.stderr, (
        missing.stderr
    )
    assert not (tmp_path / "x").exists()


def test_parallel_index_builds_of_a_small_catalog_are_complete(built: Path) -> None:
    """usearch's concurrent inserts into a tiny graph used to leave ~1 build in 6 whose searches
    returned fewer than k results; build_index seeds the graph in one thread first."""
    src = Bundle.load(built)
    keys = np.asarray([m.id for m in src.movies], dtype=np.uint64)
    rows = list(range(0, len(keys), 5))
    for _ in range(20):
        index = build_index(keys, src.vectors, IndexOptions(dtype="f16"), threads=4)
        found = index.search(src.vectors[rows], 3)
        assert (found.counts == 3).all()
        assert [int(k[0]) for k in found.keys] == [int(keys[r]) for r in rows]
