"""What the server needs to know about a GGUF file: architecture, vocabulary, chat template, sizes.

Reading a GGUF with `gguf.GGUFReader` takes seconds for a 49k-token vocabulary, so the extracted
`GgufMetadata` is cached on disk next to the compat copies, keyed by the file's sha256. Also the
steps every rewritten copy shares (compat.py, weights.py): atomic writing and copying the metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger("model_server.gguf")

GGUF_MAGIC = b"GGUF"
INFO_CACHE_VERSION = 2
# Written by `compat.rewrite`: which vocabulary entry was renamed so ctransformers' loader finds a
# literal "\n", and what it was called before, so the tokenizer can undo it.
COMPAT_RENAMED_ID = "moviemind.compat.renamed_token_id"
COMPAT_RENAMED_FROM = "moviemind.compat.renamed_token_from"
COMPAT_SOURCE_SHA256 = "moviemind.compat.source_sha256"


class GgufError(ValueError):
    """The file is missing, is not GGUF, or lacks what the server needs; one line for a person."""


class GgufMetadata(msgspec.Struct, kw_only=True):
    """Metadata and vocabulary extracted from one GGUF file."""

    path: str
    sha256: str
    file_size: int
    version: int
    architecture: str
    model_name: str
    context_length: int
    vocab_model: str  # tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str  # tokenizer.ggml.pre: which pre-tokenizer regex a byte-level BPE vocabulary uses
    tokens: list[str]
    token_types: list[int]
    scores: list[float] | None
    merges: list[str] | None
    bos_id: int | None
    eos_id: int | None
    eot_id: int | None
    unk_id: int | None
    add_bos: bool
    add_space_prefix: bool
    chat_template: str | None
    tensor_names: list[str]
    tensor_bytes: int  # all tensor data
    token_embd_bytes: int
    output_bytes: int  # a separate output.weight, 0 when tied to token_embd
    compat_renamed_id: int | None = None
    compat_renamed_from: str | None = None
    compat_source_sha256: str | None = None

    @property
    def has_output_weight(self) -> bool:
        """True when the file has its own output projection (not tied to the embeddings)."""
        return "output.weight" in self.tensor_names

    @property
    def decode_bytes_per_token(self) -> int:
        """Weight bytes one decode step reads: every matrix once; the embedding table only as the
        output projection when tied (a single embedding row per token is negligible)."""
        if self.output_bytes:
            return self.tensor_bytes - self.token_embd_bytes
        return self.tensor_bytes


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_gguf_header(path: Path) -> None:
    """Raise GgufError unless `path` is a readable file that starts with the GGUF magic."""
    if not path.exists():
        raise GgufError(f"model file {path} does not exist")
    if not path.is_file():
        raise GgufError(f"model path {path} is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise GgufError(f"model file {path} cannot be read: {exc.strerror}") from None
    if head[:4] != GGUF_MAGIC:
        raise GgufError(f"model file {path} is not a GGUF file (no GGUF magic at its start)")
    version = int.from_bytes(head[4:8], "little")
    if version not in (2, 3):
        raise GgufError(
            f"model file {path} is GGUF version {version}; versions 2 and 3 are supported"
        )


@contextlib.contextmanager
def rewriting(src: Path, dst: Path) -> Iterator[tuple[Any, Any]]:
    """(reader of `src`, writer of a copy with its architecture) for a block that fills the
    writer; `dst` is replaced atomically when the block ends without an error, and a partial
    file is never left behind."""
    import gguf

    check_gguf_header(src)
    reader = gguf.GGUFReader(src, "r")
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        raise GgufError(f"{src} has no general.architecture")
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(tmp, arch_field.contents())
    try:
        yield reader, writer
        writer.close()
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def copy_fields(
    reader: Any, writer: Any, replace: Mapping[str, Any] | None = None, drop_prefix: str = ""
) -> None:
    """Every metadata field of `reader` into `writer`, with the values in `replace` instead of
    the file's own, leaving out fields whose names start with `drop_prefix` (when given)."""
    import gguf

    replace = replace or {}
    for field in reader.fields.values():
        # GGUFWriter writes the version, the counts and the architecture itself.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        if drop_prefix and field.name.startswith(drop_prefix):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = replace[field.name] if field.name in replace else field.contents()
        writer.add_key_value(field.name, value, vtype, sub_type=sub_type)


def read_info(path: Path, cache_dir: Path | None = None, sha256: str | None = None) -> GgufMetadata:
    """`GgufMetadata` of `path`, using (and filling) the on-disk cache when `cache_dir` is set."""
    path = Path(path)
    check_gguf_header(path)
    digest = sha256 or sha256_file(path)
    cached = _cache_path(cache_dir, digest) if cache_dir else None
    if cached and cached.is_file():
        try:
            info = msgspec.msgpack.decode(cached.read_bytes(), type=GgufMetadata)
            return msgspec.structs.replace(info, path=str(path))
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("ignoring unreadable metadata cache %s", cached)
    info = _read_with_gguf(path, digest)
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(msgspec.msgpack.encode(info))
        os.replace(tmp, cached)
    return info


def _cache_path(cache_dir: Path, digest: str) -> Path:
    return Path(cache_dir) / "meta" / f"{digest}.v{INFO_CACHE_VERSION}.msgpack"


def _read_with_gguf(path: Path, digest: str) -> GgufMetadata:
    import gguf

    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as exc:  # the reader raises bare ValueError/struct errors on damaged files
        raise GgufError(f"model file {path} is not a readable GGUF file: {exc}") from None

    def get(key: str, default: object = None) -> object:
        field = reader.get_field(key)
        return field.contents() if field is not None else default

    arch = get("general.architecture")
    if not isinstance(arch, str):
        raise GgufError(f"model file {path} has no general.architecture")
    tokens = get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise GgufError(f"model file {path} has no tokenizer vocabulary (tokenizer.ggml.tokens)")
    token_types = get("tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab_model = get("tokenizer.ggml.model", "llama")
    tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    sizes = {t.name: int(t.n_bytes) for t in reader.tensors}
    scores = get("tokenizer.ggml.scores")
    merges = get("tokenizer.ggml.merges")

    def opt_int(key: str) -> int | None:
        value = get(key)
        return int(value) if value is not None else None

    return GgufMetadata(
        path=str(path),
        sha256=digest,
        file_size=path.stat().st_size,
        version=int(get("GGUF.version", 3)),
        architecture=arch,
        model_name=str(get("general.name", "") or ""),
        context_length=int(get(f"{arch}.context_length", 0) or 0),
        vocab_model=str(vocab_model),
        pre=str(get("tokenizer.ggml.pre", "default") or "default"),
        tokens=[str(t) for t in tokens],
        token_types=[int(t) for t in token_types],  # type: ignore[union-attr]
        scores=[float(s) for s in scores] if isinstance(scores, list) else None,
        merges=[str(m) for m in merges] if isinstance(merges, list) else None,
        bos_id=opt_int("tokenizer.ggml.bos_token_id"),
        eos_id=opt_int("tokenizer.ggml.eos_token_id"),
        eot_id=opt_int("tokenizer.ggml.eot_token_id"),
        unk_id=opt_int("tokenizer.ggml.unknown_token_id"),
        add_bos=bool(get("tokenizer.ggml.add_bos_token", vocab_model == "llama")),
        add_space_prefix=bool(get("tokenizer.ggml.add_space_prefix", vocab_model == "llama")),
        chat_template=get("tokenizer.chat_template"),  # type: ignore[arg-type]
        tensor_names=[t.name for t in reader.tensors],
        tensor_bytes=tensor_bytes,
        token_embd_bytes=sizes.get("token_embd.weight", 0),
        output_bytes=sizes.get("output.weight", 0),
        compat_renamed_id=opt_int(COMPAT_RENAMED_ID),
        compat_renamed_from=get(COMPAT_RENAMED_FROM),  # type: ignore[arg-type]
        compat_source_sha256=get(COMPAT_SOURCE_SHA256),  # type: ignore[arg-type]
    )
