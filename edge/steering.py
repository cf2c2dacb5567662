"""Steering a model line away from known failures with OpenAI's `logit_bias`.

SmolLM2 writes "a hilarious comedy" about a war film, "I loved it", "[3]" and "released in ..."
often enough that most of its lines used to fail the reason gate. Banning those words' tokens
for a pick (a genre word the catalog does not give the pick, the user's voice, list and markup
characters) removes the failure before it is written; the gate still judges what comes out.
Only single-token spellings are banned: the first piece of a split word is usually a common
fragment ("com" of "comedy") that banning would cripple.
"""

from __future__ import annotations

import re

from tokenizers import Tokenizer

from edge.reason_gate import forbidden_words
from moviemind_core.catalog import Movie

BAN = -100.0  # OpenAI's value for "never"; the model server makes it absolute
# List markers, markup and exclamation: a reason is one plain sentence.
_MARKUP = re.compile(r"[!\[\]|*#…]")


class Steering:
    """Per-pick `logit_bias` maps in the model's own token ids."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        vocab_size = tokenizer.get_vocab_size()
        self._markup = frozenset(
            i for i in range(vocab_size) if _MARKUP.search(tokenizer.decode([i]) or "")
        )
        self._word_cache: dict[str, frozenset[int]] = {}

    def word_ids(self, word: str) -> frozenset[int]:
        """Token ids that spell `word` whole: lower and capitalised, with and without a space."""
        cached = self._word_cache.get(word)
        if cached is None:
            ids = set()
            for form in {word, word.capitalize(), " " + word, " " + word.capitalize()}:
                enc = self._tok.encode(form, add_special_tokens=False).ids
                if len(enc) == 1:
                    ids.add(enc[0])
            cached = self._word_cache[word] = frozenset(ids)
        return cached

    def bias_for(self, m: Movie) -> dict[str, float]:
        """The `logit_bias` request field for a reason about `m`."""
        banned = set(self._markup)
        for w in forbidden_words(m):
            banned |= self.word_ids(w)
        return {str(i): BAN for i in sorted(banned)}
