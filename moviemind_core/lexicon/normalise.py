"""The one normaliser: how text becomes words and how two words are found to mean the same.

Everything that compares words (the mood parser, the reason gate, the reason choices) goes
through one `Normaliser`, configured by a lexicon version's morphology.toml. It offers four
views of a word, each for one kind of comparison:

- `words`: words of any script with their apostrophes and hyphens ("Ramón", "it's", "sci-fi");
- `terms`: lower-case letter/digit runs, what a mood and a keyword are matched by;
- `forms` and `stems`: a word's simple forms ("zombies" -> "zombie") and its first letters
  ("captivating" ~ "captivated"), how a sentence is matched with catalog facts;
- `is_word`: whether a word, after common affixes, is one a vocabulary knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from moviemind_core.lexicon.schema import Morphology

# Letters of any script: "Ramón Menéndez" is two words, not "Ram", "n", "Men", "ndez".
WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-])*")
_TERM = re.compile(r"[a-z0-9]+")
# How deep `is_word` peels affixes: "un-forget-ting-ly" is three layers.
_MAX_AFFIX_DEPTH = 2
# Parts this short pass as words: abbreviations and fragments a model writes correctly.
_SHORT_PART = 3


class Normaliser:
    """Word forms and stems by one lexicon version's morphology."""

    def __init__(self, morphology: Morphology) -> None:
        self._m = morphology

    @staticmethod
    def words(text: str) -> list[str]:
        """The words of `text` as written (any script, inner apostrophes and hyphens kept)."""
        return WORD.findall(text)

    @staticmethod
    def terms(text: str) -> list[str]:
        """Lower-case letter and digit runs: "Slow-burn sci-fi" -> slow, burn, sci, fi."""
        return _TERM.findall(text.lower())

    def forms(self, word: str) -> set[str]:
        """`word` and its simple forms without a common suffix ("zombies" -> "zombie",
        "suspenseful" -> "suspense"), each keeping at least `min_base` letters."""
        out = {word}
        for suffix in self._m.form_suffixes:
            if word.endswith(suffix) and len(word) - len(suffix) >= self._m.min_base:
                out.add(word[: -len(suffix)])
        return out

    def stem(self, word: str) -> str:
        """The comparison key of one word: its first letters, lower case."""
        return word.lower()[: self._m.stem_length]

    def stems(self, text: str) -> set[str]:
        """The stems of the words of `text` long enough to say something."""
        return {self.stem(w) for w in WORD.findall(text) if len(w) >= self._m.min_stem_word}

    def is_word(self, part: str, vocabulary: frozenset[str], depth: int = 0) -> bool:
        """`part` (lower case) or what is left of it after common affixes is in `vocabulary`."""
        if part in vocabulary or (depth == 0 and len(part) <= _SHORT_PART):
            return True
        if depth > _MAX_AFFIX_DEPTH:
            return False
        for suf in self._m.word_suffixes:
            if part.endswith(suf) and len(part) - len(suf) >= _SHORT_PART:
                base = part[: -len(suf)]
                # The base as cut, with its silent e back, with a doubled consonant undone
                # ("stopp-ed"), and with y restored ("stud-i-ed").
                for b in (
                    base,
                    base + "e",
                    base[:-1] if base[-1:] == base[-2:-1] else "",
                    base[:-1] + "y" if base.endswith("i") else "",
                ):
                    if b and self.is_word(b, vocabulary, depth + 1):
                        return True
        return any(
            part.startswith(pre)
            and len(part) - len(pre) > _SHORT_PART
            and self.is_word(part[len(pre) :], vocabulary, depth + 1)
            for pre in self._m.word_prefixes
        )


def alternation(words: Iterable[str]) -> str:
    """A regex alternation matching any of `words` literally, longest first ("no more" is
    tried before "no")."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
