"""An f16 copy of a quantized GGUF, for CPUs where quantized prompt evaluation is slow.

Prompt evaluation is compute-bound. On a CPU without AVX2 (this project's 2-core test machine
has AVX, FMA and F16C but no AVX2) llama.cpp's quantized dot products run 128 bits wide, while
its f16 matrix multiply uses 256-bit FMA: SmolLM2-135M evaluates a prompt about 2x faster from
f16 weights (llama_cpp engine, docs/benchmarks/model_server.md). Decoding reads every weight per
token, so the f16 copy costs decode speed on a model large enough to be bandwidth-bound (a 7B
model would read 14 GB per token instead of 4.4 GB); it is an opt-in for small models.

The copy is the same model: every quantized tensor is dequantized exactly and stored as f16
(rounding to 11 significant bits), f32 tensors are kept as they are, the metadata is unchanged
except `general.file_type`. It is written once into the cache, keyed by the source's sha256.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from model_server.gguf_file import GgufError, GgufMetadata, copy_fields, rewriting

log = logging.getLogger("model_server.weights")
logging.getLogger("gguf").setLevel(logging.WARNING)

FORMAT = "f16-v1"  # bump when the conversion changes, so old cached copies are not reused
MOSTLY_F16 = 1  # llama.cpp's LLAMA_FTYPE_MOSTLY_F16


def f16_key(source_sha256: str) -> str:
    """Cache key (and stand-in sha256) of the f16 copy of the file with this sha256."""
    return hashlib.sha256(f"{source_sha256}:{FORMAT}".encode()).hexdigest()


def write_f16(src: Path, dst: Path) -> int:
    """Write an f16 copy of `src` to `dst` (atomically); return how many tensors changed type."""
    import gguf
    from gguf.quants import dequantize

    keep = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    with rewriting(src, dst) as (reader, writer):
        converted = [t for t in reader.tensors if t.tensor_type not in keep]
        copy_fields(reader, writer, {gguf.Keys.General.FILE_TYPE: MOSTLY_F16})
        for t in reader.tensors:
            if t.tensor_type in keep:
                writer.add_tensor_info(
                    t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type
                )
            else:
                # Logical shape, outermost dimension first (numpy order), as the writer expects.
                shape = tuple(int(d) for d in reversed(t.shape))
                nbytes = int(np.prod(shape)) * 2
                writer.add_tensor_info(
                    t.name, shape, np.dtype(np.float16), nbytes, gguf.GGMLQuantizationType.F16
                )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in reader.tensors:  # one tensor in memory at a time: a 7B model fits too
            if t.tensor_type in keep:
                writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
                continue
            try:
                values = dequantize(t.data, t.tensor_type)
            except NotImplementedError:
                raise GgufError(
                    f"{src}: tensor {t.name} has type {t.tensor_type.name}, which cannot be "
                    "converted to f16"
                ) from None
            writer.write_tensor_data(values.astype(np.float16))
    return len(converted)


def ensure_f16(info: GgufMetadata, cache_dir: Path) -> Path:
    """Path of the cached f16 copy of `info`'s file, written on first use."""
    out = Path(cache_dir) / "f16" / f"{f16_key(info.sha256)}.gguf"
    if out.is_file():
        log.info("using cached f16 copy %s of %s", out, info.path)
        return out
    log.info("writing an f16 copy of %s into %s (once; later starts reuse it)", info.path, out)
    n = write_f16(Path(info.path), out)
    log.info(
        "f16 copy written: %d tensors converted, %.0f MB (the original is %.0f MB)",
        n,
        out.stat().st_size / 1e6,
        info.file_size / 1e6,
    )
    return out
