"""Sentence embeddings with all-MiniLM-L6-v2 on ONNX Runtime: the one embedder every tier uses.

The model directory is written by `python -m index_builder models`; see `EmbedderManifest`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np

# Imported here, not lazily: onnxruntime segfaults when it is first imported after usearch
# (moviemind_core.bundle imports this module first for that reason).
import onnxruntime as ort
from tokenizers import Tokenizer

Variant = Literal["fp32", "int8"]
MANIFEST_NAME = "manifest.json"


class EmbedderError(RuntimeError):
    """The model directory is missing, incomplete or does not match its manifest."""


class EmbedderManifest(msgspec.Struct, kw_only=True):
    """What `index_builder models` wrote, and what a bundle records to prove its vectors match."""

    name: str
    source: str
    source_sha256: str
    dim: int
    pooling: Literal["mean"] = "mean"
    normalize: bool = True
    max_length: int = 256
    tokenizer: str = "tokenizer.json"
    variants: dict[str, str] = {}
    # How the int8 variant was made (index_builder.models.INT8_RECIPE).
    quantization: str = ""
    files: dict[str, str] = {}

    def sha256_of(self, variant: str) -> str:
        """sha256 of a variant's ONNX file as recorded at export ("" when it has none)."""
        return self.files.get(self.variants.get(variant, ""), "")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_embedder_manifest(model_dir: Path) -> EmbedderManifest:
    """Read and decode a model directory's manifest, with a clear error when it is missing."""
    path = Path(model_dir) / MANIFEST_NAME
    if not path.is_file():
        raise EmbedderError(
            f"no embedder manifest at {path}; run `python -m index_builder models` (or `make models`)"
        )
    try:
        return msgspec.json.decode(path.read_bytes(), type=EmbedderManifest)
    except msgspec.DecodeError as exc:
        raise EmbedderError(f"embedder manifest {path} is invalid: {exc}") from exc


# ONNX Runtime's fused residual LayerNorm and bias-GELU kernels are slower than the operators
# they replace for a short query (index_builder/quantize.py has the numbers); the int8 query
# encoder ships them unfused and its session must not fuse them back. The fp32 export keeps the
# runtime's fusions: on its document batches they were the faster (640 documents in batches of
# 32: 4.33 s fused, 4.41 s unfused).
UNFUSED_AT_RUNTIME = ("SkipLayerNormFusion", "BiasGeluFusion")


class Embedder:
    """Tokenize with per-batch padding, run the ONNX encoder, mean-pool and L2-normalise."""

    def __init__(
        self,
        model_dir: Path | str,
        *,
        variant: Variant = "fp32",
        threads: int = 1,
        spin: bool = False,
        verify: bool = False,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.manifest = read_embedder_manifest(self.model_dir)
        if variant not in self.manifest.variants:
            raise EmbedderError(
                f"embedder variant {variant!r} not in {sorted(self.manifest.variants)} at {self.model_dir}"
            )
        self.variant: Variant = variant
        model_file = self.model_dir / self.manifest.variants[variant]
        tok_file = self.model_dir / self.manifest.tokenizer
        for f in (model_file, tok_file):
            if not f.is_file():
                raise EmbedderError(
                    f"embedder file missing: {f}; re-run `python -m index_builder models`"
                )
        self.model_sha256 = self.manifest.sha256_of(variant)
        if verify and sha256_file(model_file) != self.model_sha256:
            raise EmbedderError(f"{model_file} does not match the sha256 in its manifest")

        self.tokenizer = Tokenizer.from_file(str(tok_file))
        # The shipped tokenizer.json pads every input to 128 tokens, which makes a short query
        # cost ~7x more; pad to the longest item of each batch instead.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.manifest.max_length)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # ONNX Runtime's worker threads spin-wait between operators by default. A query is ~100
        # tiny operators: with 2 threads on a 2-core machine the spinning worker takes the core
        # the HTTP loop, the tokenizer and the ranking need, and each operator's join waits for
        # a worker the kernel has just descheduled (measured 2 threads 8.1 ms vs 1 thread 4.3 ms
        # per query, docs/benchmarks/edge.md). Off unless asked for (batch document embedding).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.session = ort.InferenceSession(
            str(model_file),
            sess_options=opts,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(UNFUSED_AT_RUNTIME) if variant == "int8" else [],
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.dim = self.manifest.dim
        self.threads = threads

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed texts; returns float32 (len(texts), dim), each row unit length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Sorting by length keeps per-batch padding small on mixed-length documents.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text; returns float32 (dim,)."""
        # encode(), not encode_batch(): the batch call hands one text to the tokenizers' rayon
        # thread pool, whose threads then spin beside ONNX Runtime (measured 0.48 vs 0.02 ms for
        # the tokenization alone on a busy 2-core machine).
        enc = self.tokenizer.encode(text)
        return self._run(
            np.asarray([enc.ids], np.int64), np.asarray([enc.attention_mask], np.int64)
        )[0]

    def count_tokens(self, text: str) -> int:
        """Tokens the encoder sees for this text (after truncation)."""
        return len(self.tokenizer.encode(text).ids)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encs = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encs], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        return self._run(ids, mask)

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Encoder, mean pooling over the mask, L2 normalisation."""
        feeds: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        if self.manifest.normalize:
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32, copy=False)
