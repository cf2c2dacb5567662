"""Rewrite a GGUF so ctransformers 0.2.27 (a llama.cpp from 2023) can load it.

Its loader insists on three things newer converters no longer write:
- a `tokenizer.ggml.scores` array (byte-level BPE vocabularies have none; the values are
  irrelevant because this server tokenizes itself),
- an `output.weight` tensor (models such as SmolLM2 tie it to `token_embd.weight`; the copy
  costs the embedding table's size on disk and nothing at decode time, which reads it anyway),
- a vocabulary entry that is literally "\\n" (byte-level BPE spells it "Ċ"); the entry that
  encodes the newline byte is renamed, and the rename is recorded so `tokenizer.py` undoes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model_server.gguf_file import (
    COMPAT_RENAMED_FROM,
    COMPAT_RENAMED_ID,
    COMPAT_SOURCE_SHA256,
    GgufError,
    GgufMetadata,
    check_gguf_header,
    copy_fields,
    rewriting,
    sha256_file,
)

log = logging.getLogger("model_server.compat")
# gguf's writer logs every file it writes at INFO; the rewrite logs once itself.
logging.getLogger("gguf").setLevel(logging.WARNING)

BYTE_LEVEL_NEWLINE = "\u010a"  # "Ċ": GPT-2's printable stand-in for byte 0x0A


def compat_reasons(info: GgufMetadata) -> list[str]:
    """Why ctransformers cannot load this file as it is (empty: it can)."""
    reasons = []
    if info.scores is None:
        reasons.append("no tokenizer.ggml.scores")
    if not info.has_output_weight:
        reasons.append("output.weight tied to token_embd.weight")
    if "\n" not in info.tokens:
        reasons.append('no vocabulary entry "\\n"')
    return reasons


def rewrite(src: Path, dst: Path, source_sha256: str | None = None) -> list[str]:
    """Write a ctransformers-loadable copy of `src` to `dst` (atomically); return what changed."""
    import gguf

    src, dst = Path(src), Path(dst)
    changes: list[str] = []
    with rewriting(src, dst) as (reader, writer):
        tensors = {t.name: t for t in reader.tensors}
        tokens_field = reader.get_field(gguf.Keys.Tokenizer.LIST)
        if tokens_field is None:
            raise GgufError(f"{src} has no tokenizer vocabulary")
        tokens: list[str] = tokens_field.contents()
        renamed_id: int | None = None
        if "\n" not in tokens:
            if BYTE_LEVEL_NEWLINE not in tokens:
                raise GgufError(f'{src}: no "\\n" or byte-level newline entry to rename')
            renamed_id = tokens.index(BYTE_LEVEL_NEWLINE)
            tokens = list(tokens)
            tokens[renamed_id] = "\n"
            changes.append(f'renamed token {renamed_id} "Ċ" to "\\n"')

        # A rewrite of a rewrite records only its own changes.
        copy_fields(
            reader, writer, {gguf.Keys.Tokenizer.LIST: tokens}, drop_prefix="moviemind.compat."
        )
        if reader.get_field(gguf.Keys.Tokenizer.SCORES) is None:
            writer.add_key_value(
                gguf.Keys.Tokenizer.SCORES,
                [0.0] * len(tokens),
                gguf.GGUFValueType.ARRAY,
                sub_type=gguf.GGUFValueType.FLOAT32,
            )
            changes.append(f"added {len(tokens)} zero scores")
        if renamed_id is not None:
            writer.add_uint32(COMPAT_RENAMED_ID, renamed_id)
            writer.add_string(COMPAT_RENAMED_FROM, BYTE_LEVEL_NEWLINE)
        if source_sha256:
            writer.add_string(COMPAT_SOURCE_SHA256, source_sha256)

        order = list(reader.tensors)
        add_output = "output.weight" not in tensors
        if add_output:
            if "token_embd.weight" not in tensors:
                raise GgufError(f"{src} has neither output.weight nor token_embd.weight")
            changes.append("added output.weight as a copy of token_embd.weight")
        for t in order:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
        if add_output:
            emb = tensors["token_embd.weight"]
            writer.add_tensor_info(
                "output.weight", emb.data.shape, emb.data.dtype, emb.data.nbytes, emb.tensor_type
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in order:
            writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
        if add_output:
            writer.write_tensor_data(
                tensors["token_embd.weight"].data, tensor_endianess=reader.endianess
            )
    return changes


def ensure_compatible(info: GgufMetadata, cache_dir: Path) -> Path:
    """Path of a file ctransformers can load: the original, or a cached rewrite keyed by sha256."""
    reasons = compat_reasons(info)
    if not reasons:
        return Path(info.path)
    out = Path(cache_dir) / "compat" / f"{info.sha256}.gguf"
    if out.is_file():
        log.info("using cached ctransformers-compatible copy %s of %s", out, info.path)
        return out
    log.info("rewriting %s for ctransformers (%s) into %s", info.path, "; ".join(reasons), out)
    rewrite(Path(info.path), out, source_sha256=info.sha256)
    return out


def main(src: str, dst: str) -> int:
    """`python -m model_server compat IN.gguf OUT.gguf`: rewrite and report what changed."""
    src_path = Path(src)
    check_gguf_header(src_path)
    changes = rewrite(src_path, Path(dst), source_sha256=sha256_file(src_path))
    print(f"wrote {dst}: " + ("; ".join(changes) if changes else "no changes were needed"))
    return 0
