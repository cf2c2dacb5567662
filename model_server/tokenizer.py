"""The server's tokenizer, built with the `tokenizers` library from a GGUF's own vocabulary.

Engines never tokenize: ctransformers' 2023 BPE has no byte-level mapping and does not split
special tokens out of text, so every token id this server uses comes from here. Two vocabulary
kinds are supported, as llama.cpp reads them:
- "gpt2": byte-level BPE with merges (SmolLM2, Llama 3, Qwen); the pre-tokenizer regex follows
  `tokenizer.ggml.pre`.
- "llama": SentencePiece-style BPE with scores and byte fallback (Llama 2, Mistral); merges are
  derived from the scores, a merge ranking as high as the piece it produces.
Control and user-defined tokens (`<|im_start|>`, `<s>`) are added tokens, so they are split out
of text before the model sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.processors import TemplateProcessing

from model_server.gguf_file import GgufError, GgufMetadata

log = logging.getLogger("model_server.tokenizer")

# tokenizer.ggml.token_type values (llama.cpp's llama_token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPM_SPACE = "\u2581"  # "▁"
# Names that end a turn in the chat formats this server knows; generation stops on them.
END_OF_TURN_NAMES = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<|eom_id|>")

_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (byte-level BPE alphabet)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _byte_level_pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    if pre in ("llama-bpe", "llama3", "llama-v3", "smaug-bpe"):
        regex = _LLAMA3_SPLIT
    elif pre in ("qwen2", "deepseek-r1-qwen"):
        regex = _QWEN2_SPLIT
    else:
        if pre not in ("default", "gpt2", "gpt-2", "smollm", "starcoder", "refact"):
            log.warning("unknown pre-tokenizer %r; using GPT-2's split rules", pre)
        regex = _GPT2_SPLIT
    steps: list[pre_tokenizers.PreTokenizer] = []
    if pre == "smollm":
        # SmolLM splits every digit on its own before the GPT-2 rules.
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    steps.append(pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    return pre_tokenizers.Sequence(steps)


def _vocab_dict(tokens: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        vocab.setdefault(tok, i)  # a duplicate entry keeps its first id, as llama.cpp does
    return vocab


def _spm_merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Merges for a SentencePiece BPE vocabulary: every way to build a piece from two pieces,
    ranked by the piece's score (llama.cpp merges the adjacent pair whose result scores highest)."""
    vocab = _vocab_dict(tokens)
    ranked: list[tuple[float, int, int, str, str]] = []
    for i, piece in enumerate(tokens):
        if types[i] not in (NORMAL, USER_DEFINED) or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            li, ri = vocab.get(left), vocab.get(right)
            if li is not None and ri is not None:
                ranked.append((-scores[i], li, ri, left, right))
    ranked.sort()
    return [(left, right) for _, _, _, left, right in ranked]


def build_tokenizer(info: GgufMetadata) -> Tokenizer:
    """A `tokenizers.Tokenizer` equivalent to llama.cpp's tokenizer for this GGUF's vocabulary."""
    tokens = list(info.tokens)
    if info.compat_renamed_id is not None and info.compat_renamed_from:
        tokens[info.compat_renamed_id] = info.compat_renamed_from
    types = info.token_types
    if len(types) != len(tokens):
        raise GgufError(f"{info.path}: {len(tokens)} tokens but {len(types)} token types")

    if info.vocab_model == "gpt2":
        if not info.merges:
            raise GgufError(f"{info.path}: byte-level BPE vocabulary without merges")
        merges = [tuple(m.split(" ", 1)) for m in info.merges]
        tok = Tokenizer(
            models.BPE(
                vocab=_vocab_dict(tokens),
                merges=merges,  # type: ignore[arg-type]
                ignore_merges=info.pre in ("llama-bpe", "llama3", "llama-v3"),
            )
        )
        tok.pre_tokenizer = _byte_level_pre_tokenizer(info.pre)
        tok.decoder = decoders.ByteLevel()
    elif info.vocab_model == "llama":
        if info.scores is None or len(info.scores) != len(tokens):
            raise GgufError(f"{info.path}: SentencePiece vocabulary without one score per token")
        unk = tokens[info.unk_id] if info.unk_id is not None else None
        tok = Tokenizer(
            models.BPE(
                vocab=_vocab_dict(tokens),
                merges=_spm_merges(tokens, info.scores, types),  # type: ignore[arg-type]
                unk_token=unk,
                fuse_unk=True,
                byte_fallback=True,
            )
        )
        steps: list[normalizers.Normalizer] = []
        if info.add_space_prefix:
            steps.append(normalizers.Prepend(SPM_SPACE))
        steps.append(normalizers.Replace(" ", SPM_SPACE))
        tok.normalizer = normalizers.Sequence(steps)
        dec: list[decoders.Decoder] = [
            decoders.Replace(SPM_SPACE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
        ]
        if info.add_space_prefix:
            dec.append(decoders.Strip(" ", 1, 0))
        tok.decoder = decoders.Sequence(dec)
    else:
        raise GgufError(
            f"{info.path}: tokenizer model {info.vocab_model!r} is not supported (gpt2 or llama)"
        )

    added = [
        AddedToken(tokens[i], special=types[i] == CONTROL, normalized=False)
        for i in range(len(tokens))
        if types[i] in (CONTROL, USER_DEFINED) and tokens[i]
    ]
    if added:
        tok.add_special_tokens(added)
    if info.add_bos and info.bos_id is not None:
        bos = tokens[info.bos_id]
        tok.post_processor = TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, info.bos_id)]
        )
    return tok


class ServerTokenizer:
    """Encoding, the per-token bytes used to stream text, and the ids that end generation."""

    def __init__(self, info: GgufMetadata):
        self.info = info
        self.hf = build_tokenizer(info)
        tokens = list(info.tokens)
        if info.compat_renamed_id is not None and info.compat_renamed_from:
            tokens[info.compat_renamed_id] = info.compat_renamed_from
        self.tokens = tokens
        self.vocab_size = len(tokens)
        self.bos_id = info.bos_id
        self.eos_id = info.eos_id
        self.add_bos = info.add_bos and info.bos_id is not None
        self._bytes = self._token_bytes(info.vocab_model, tokens, info.token_types)
        # SentencePiece marks word starts with a space; the first word of a reply has none.
        self.strip_first_space = info.vocab_model == "llama" and info.add_space_prefix
        ends = {i for i in (info.eos_id, info.eot_id) if i is not None}
        vocab = _vocab_dict(tokens)
        ends.update(vocab[n] for n in END_OF_TURN_NAMES if n in vocab)
        self.end_ids = frozenset(ends)

    @staticmethod
    def _token_bytes(kind: str, tokens: list[str], types: list[int]) -> list[bytes]:
        out: list[bytes] = []
        if kind == "gpt2":
            inverse = {c: b for b, c in byte_to_unicode().items()}
            for tok, typ in zip(tokens, types, strict=True):
                if typ == CONTROL:
                    out.append(b"")
                elif typ == USER_DEFINED:
                    out.append(tok.encode())
                else:
                    try:
                        out.append(bytes(inverse[c] for c in tok))
                    except KeyError:  # not a byte-level string; show it as written
                        out.append(tok.encode())
        else:
            for tok, typ in zip(tokens, types, strict=True):
                if typ == CONTROL:
                    out.append(b"")
                elif typ == BYTE and len(tok) == 6 and tok.startswith("<0x"):
                    out.append(bytes([int(tok[3:5], 16)]))
                else:
                    out.append(tok.replace(SPM_SPACE, " ").encode())
        return out

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Token ids of `text`, special tokens split out; BOS first when the vocabulary asks for it
        (pass `add_bos=False` for a fragment, or when `text` already starts with the BOS token)."""
        if add_bos is None:
            add_bos = self.add_bos and not (
                self.bos_id is not None and text.startswith(self.tokens[self.bos_id])
            )
        return self.hf.encode(text, add_special_tokens=bool(add_bos and self.add_bos)).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each fragment (no BOS), encoded in one call."""
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a generated token contributes to the reply (b"" for control tokens)."""
        if 0 <= token_id < len(self._bytes):
            return self._bytes[token_id]
        return b""

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a whole sequence of generated ids."""
        dec = IncrementalDecoder(self)
        return "".join(dec.feed(i) for i in ids) + dec.flush()

    def to_json(self) -> str:
        """The tokenizer as a Hugging Face `tokenizer.json` document."""
        return self.hf.to_str()


class IncrementalDecoder:
    """Turns generated token ids into text piece by piece, holding back incomplete UTF-8."""

    def __init__(self, tokenizer: ServerTokenizer, reply_start: bool = True):
        """`reply_start`: the ids begin a reply (False when they continue a prefilled message,
        whose first space separates words and must be kept)."""
        self._tok = tokenizer
        self._pending = b""
        self._first = tokenizer.strip_first_space and reply_start

    def feed(self, token_id: int) -> str:
        """Text that is complete after this token (may be empty)."""
        data = self._pending + self._tok.token_bytes(token_id)
        if not data:
            return ""
        cut = _complete_utf8_prefix(data)
        self._pending = data[cut:]
        text = data[:cut].decode("utf-8", errors="replace")
        if self._first and text:
            self._first = False
            if text.startswith(" "):
                text = text[1:]
        return text

    def flush(self) -> str:
        """Whatever is still held back, with broken sequences replaced."""
        data, self._pending = self._pending, b""
        return data.decode("utf-8", errors="replace")


def _complete_utf8_prefix(data: bytes) -> int:
    """Length of the longest prefix of `data` that does not end inside a UTF-8 sequence."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        if b & 0x80 == 0:
            return n
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return n if back >= need else n - back
    return n
