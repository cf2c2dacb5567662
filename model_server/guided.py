"""Guided choice: generation that can only spell one of a given list of strings.

vLLM calls it `guided_choice`. The model still chooses, token by token, which string it writes
(and so how it continues), but it cannot write anything else: a small model asked for one of a
few well-formed sentences returns one of them, whole, with no drift.

Matching is on the bytes each token adds to the reply, so any tokenizer works (byte-level BPE
and SentencePiece with byte fallback alike). Where the tokenizer's own spelling of a choice is
known, only that spelling is offered; otherwise any byte-exact spelling is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np


class _Vocabulary(Protocol):
    vocab_size: int

    def token_bytes(self, token_id: int) -> bytes: ...


class TokenTable:
    """Every vocabulary entry by the bytes it adds to the reply: built once per tokenizer."""

    def __init__(self, token_bytes: Sequence[bytes]):
        by_bytes: dict[bytes, list[int]] = {}
        for tid, data in enumerate(token_bytes):
            if data:  # control tokens add nothing and can never advance a choice
                by_bytes.setdefault(data, []).append(tid)
        self.by_bytes = {k: np.asarray(v, dtype=np.int64) for k, v in by_bytes.items()}
        self.max_len = max((len(k) for k in by_bytes), default=1)
        self.token_bytes = token_bytes

    @classmethod
    def of(cls, tokenizer: _Vocabulary) -> TokenTable:
        """The table of a tokenizer's whole vocabulary (model_server.tokenizer.ServerTokenizer)."""
        return cls([tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)])


Encoder = Callable[[list[str]], list[list[int]]]


class ChoiceSpec:
    """The strings a generation may write, with the table that spells them (shared, read-only)."""

    def __init__(
        self,
        choices: Iterable[str],
        table: TokenTable,
        encode: Encoder | None = None,
        strip_first_space: bool = False,
    ):
        texts = list(dict.fromkeys(c for c in choices if c))  # duplicates only cost time
        self.choices = tuple(t.encode() for t in texts)
        self.table = table
        # A SentencePiece reply's first token carries a space the client never sees.
        self.strip_first_space = strip_first_space
        # Where the tokenizer itself would end each token of each choice. Any byte-exact spelling
        # would do, but a small model steered off its usual spelling ("Rom" "an" for "Roman")
        # writes worse: only the tokenizer's own spelling is offered where it is known.
        self.boundaries: tuple[frozenset[int] | None, ...] = (
            _boundaries(texts, self.choices, table, encode)
            if encode is not None
            else (None,) * len(self.choices)
        )


def _boundaries(
    texts: list[str], choices: tuple[bytes, ...], table: TokenTable, encode: Encoder
) -> tuple[frozenset[int] | None, ...]:
    # SentencePiece puts a space before the first word it encodes: " a Roman" is encoded as
    # "a Roman" (then the space is the tokenizer's), and "Yes" at a reply's start as " Yes".
    bare = [t[1:] if t.startswith(" ") and len(t) > 1 else t for t in texts]
    spelled = [encode(texts), encode(bare)]
    out: list[frozenset[int] | None] = []
    for i, choice in enumerate(choices):
        found = None
        for ids in (spelled[0][i], spelled[1][i]):
            pieces = [table.token_bytes[t] if t < len(table.token_bytes) else b"" for t in ids]
            joined = b"".join(pieces)
            extra = len(joined) - len(choice)
            if extra in (0, 1) and joined[extra:] == choice and joined[:extra] in (b"", b" "):
                ends, at = set(), -extra
                for p in pieces:
                    at += len(p)
                    if at > 0:
                        ends.add(at)
                found = frozenset(ends)
                break
        out.append(found)
    return tuple(out)


class ChoiceState:
    """Where one generation stands in its choices: the bytes written and the choices still open."""

    def __init__(self, spec: ChoiceSpec):
        self.spec = spec
        self.alive: list[int] = list(range(len(spec.choices)))  # indexes of the open choices
        self.pos = 0  # bytes of the reply written so far (every open choice starts with them)

    @property
    def complete(self) -> bool:
        """Some open choice is fully written."""
        return any(len(self.spec.choices[i]) == self.pos for i in self.alive)

    @property
    def exhausted(self) -> bool:
        """Nothing more can be written: every open choice is complete (or none is left)."""
        return all(len(self.spec.choices[i]) == self.pos for i in self.alive)

    def allowed(self) -> np.ndarray:
        """Ids of the tokens that keep the reply on some open choice."""
        spec, pos = self.spec, self.pos
        table = spec.table
        first = pos == 0 and spec.strip_first_space
        seen: set[bytes] = set()
        found: list[np.ndarray] = []
        for i in self.alive:
            choice, ends = spec.choices[i], spec.boundaries[i]
            stop = min(len(choice), pos + table.max_len)
            cuts = (
                range(pos + 1, stop + 1) if ends is None else (e for e in ends if pos < e <= stop)
            )
            for end in cuts:
                piece = choice[pos:end]
                if piece in seen:
                    continue
                seen.add(piece)
                for key in (piece, b" " + piece) if first else (piece,):
                    ids = table.by_bytes.get(key)
                    if ids is not None:
                        found.append(ids)
        if not found:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(found))

    def advance(self, token_id: int) -> None:
        """Record a generated token; choices it does not continue are closed."""
        table = self.spec.table
        data = table.token_bytes[token_id] if token_id < len(table.token_bytes) else b""
        if not data:
            return
        choices, pos = self.spec.choices, self.pos
        # A reply's first token may carry the space SentencePiece adds; the choices never have it.
        if (
            pos == 0
            and self.spec.strip_first_space
            and data.startswith(b" ")
            and not any(choices[i].startswith(data) for i in self.alive)
        ):
            data = data[1:]
        end = pos + len(data)
        self.alive = [i for i in self.alive if choices[i][pos:end] == data]
        self.pos = end


def constrain(logits: np.ndarray, state: ChoiceState, end_ids: Iterable[int]) -> np.ndarray:
    """`logits` with every token that leaves the choices set to -inf (a new array). An end id
    stays allowed where a choice is complete; when nothing else is allowed, only end ids are."""
    allowed = state.allowed()
    if state.complete or allowed.size == 0:
        ends = np.fromiter(end_ids, dtype=np.int64)
        allowed = np.concatenate([allowed, ends]) if allowed.size else ends
    allowed = allowed[allowed < logits.shape[0]]
    out = np.full(logits.shape, -np.inf, dtype=np.float32)
    if allowed.size == 0:
        return np.asarray(logits, dtype=np.float32)  # no end id known: leave the model free
    out[allowed] = logits[allowed]
    if not np.isfinite(out[allowed]).any():
        # logit_bias banned every way forward: the choices win over the bias.
        out[allowed] = 0.0
    return out
