"""The prompt sent to the model: a fixed system prompt, then the request trimmed to a token budget."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from moviemind_core.catalog import Movie
from moviemind_core.lexicon import lexicon

# Identical on every request, and first, so the model server's prefix cache always hits.
SYSTEM_PROMPT = (
    "You are moviemind, a movie recommender. Choose only from the numbered candidate movies the "
    "user gives you. For each pick write one line: the number in brackets, the title, a dash, "
    "then in your own words why this user will like it. Example:\n"
    "[4] Alien - a tense, slow-building horror story set on a spaceship.\n"
    "Best pick first. Write nothing else."
)


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class ApproxCounter:
    """Used when the model server offers no tokenizer: ~3.6 characters per token for English."""

    def count(self, text: str) -> int:
        return max(1, round(len(text) / 3.6))


class HFCounter:
    """Counts in the model's own tokens, from the tokenizer.json the model server serves."""

    def __init__(self, tokenizer_json: bytes) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_str(tokenizer_json.decode())
        self.tok.no_padding()
        self.tok.no_truncation()

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False).ids)


# ChatML adds "<|im_start|>role\n" and "<|im_end|>\n" around each message, plus the
# assistant header the server appends: a fixed allowance keeps the count honest.
TEMPLATE_OVERHEAD = 16


class BuiltPrompt(msgspec.Struct):
    messages: list[dict[str, str]]
    candidates: list[Movie]
    tokens: int
    dropped: int


_ALSO_KNOWN_AS = re.compile(r"^(?P<main>.*\S)\s+\((?:a\.k\.a\.\s*)?[^()]+\)$")


def short_title(title: str) -> str:
    """'Amelie (Fabuleux destin d'Amélie Poulain, Le)' -> 'Amelie': MovieLens appends alternative
    titles in parentheses; in a liked-movies line they cost tokens and tell the model nothing."""
    while m := _ALSO_KNOWN_AS.match(title):
        title = m.group("main")
    return title


def candidate_line(n: int, m: Movie, detail: int, with_year: bool = True) -> str:
    """'[3] Heat (1995): action, crime; heist, rivalry, los angeles'.

    Deliberately unlike the answer format (no dash, no sentence), so that a small model that
    copies its input produces lines the grounding can still tie to a candidate. Every token here
    is evaluated before the first answer token (it is past the cached prefix): genres and
    keywords are what a reason is made of; the director's name is left out (~5 tokens a line),
    and so is the year (6 tokens: digits are single tokens) unless `with_year`, which the edge
    sets for titles the catalog holds more than once.
    """
    head = f"[{n}] {m.title}" + (f" ({m.year})" if m.year and with_year else "")
    parts = []
    if detail >= 1 and m.genres:
        # With keywords to describe it, a movie's first two genres say enough.
        described = detail >= 2 and bool(m.keywords)
        parts.append(", ".join(m.genres[: 2 if described else 3]).lower())
    if detail >= 2 and (m.keywords or m.overview):
        parts.append(", ".join(m.keywords[:3]) if m.keywords else m.overview[:90])
    return head + (": " + "; ".join(parts) if parts else "")


def build_prompt(
    liked: Sequence[Movie],
    query: str,
    candidates: Sequence[Movie],
    k: int,
    counter: TokenCounter,
    budget: int,
    needs_year: Callable[[Movie], bool] = lambda m: True,
) -> BuiltPrompt:
    """Fit the request into `budget` tokens: as many fully described candidates as fit (never
    fewer than k); only when k of them do not fit, shorter candidate lines."""
    liked_txt = "; ".join(
        short_title(m.title) + (f" ({m.year})" if m.year else "") for m in liked[:8]
    )
    # The request line comes first: with the system prompt it forms a prefix every request with
    # the same k shares, so the model server's prefix cache skips it too. Only what describes
    # this user and their candidates is evaluated per request (time to first token).
    head = [f"Pick the {k} best candidates for me."]
    if liked_txt:
        head.append(f"I enjoyed: {liked_txt}.")
    if query.strip():
        head.append(f"Mood: {query.strip()[:300]}")
    head.append("Candidates:")
    system_tokens = counter.count(SYSTEM_PROMPT)
    fixed = system_tokens + counter.count("\n".join(head)) + TEMPLATE_OVERHEAD

    chosen: list[str] = []
    for detail in (2, 1, 0):
        lines = [candidate_line(i + 1, m, detail, needs_year(m)) for i, m in enumerate(candidates)]
        costs = [counter.count(line) + 1 for line in lines]
        used = fixed
        chosen = []
        for line, cost in zip(lines, costs, strict=True):
            if used + cost > budget and len(chosen) >= k:
                break
            chosen.append(line)
            used += cost
        if used <= budget or detail == 0:
            break
    user = "\n".join([*head, *chosen])
    return BuiltPrompt(
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
        candidates=list(candidates[: len(chosen)]),
        tokens=used,
        dropped=len(candidates) - len(chosen),
    )


# ---- guided reasons: the ranker has picked; the model writes one sentence per pick ----------

# Fixed and first, like SYSTEM_PROMPT, so the model server's prefix cache always holds it.
REASON_SYSTEM_PROMPT = (
    "You are moviemind, a movie recommender. Given a movie picked for the user, write one "
    "sentence, under 25 words, on why they will enjoy it. Use only the facts given."
)
# How the edge starts a pick's sentence, tried in this order while the pick's token budget
# lasts. A sentence begun by the edge cannot turn into a list, a numbered line or the user's
# voice, which is most of what SmolLM2 writes when it starts a line itself.
REASON_OPENINGS = ("{title} is a", "Watch {title} for its", "{title} offers")
# A reason is one sentence: the model server stops at its end (and at a line break).
REASON_STOPS = [".", "!", "?", "\n"]


def display_label(m: Movie) -> str:
    """'Gladiator (2000)': the short title and year, as the answer lines name a pick."""
    return short_title(m.title) + (f" ({m.year})" if m.year else "")


def reason_facts(m: Movie, plot: bool = True) -> str:
    """What a reason about `m` is made of: its label, genres, keywords and (unless `plot` is
    False) plot, one per line."""
    lines = [display_label(m)]
    genres = lexicon().spoken_genres(m.genres)  # not IMAX: a screen format, not a genre
    if genres:
        lines.append("Genres: " + ", ".join(genres[:3]).lower())
    if m.keywords:
        lines.append("Keywords: " + ", ".join(m.keywords[:5]))
    if m.overview and plot:
        lines.append("Plot: " + m.overview[:400])
    return "\n".join(lines)


def build_reason_messages(
    liked: Sequence[Movie], query: str, pick: Movie, plot: bool = True
) -> list[dict[str, str]]:
    """System and user messages asking why this user will enjoy `pick`. Every pick of a request
    shares everything up to "Pick:", so the model server's prefix cache evaluates that once and
    each later call only its own pick's facts. Without `plot` (guided choice: the sentences to
    choose from carry it) each pick costs about 60 fewer prompt tokens."""
    head = []
    if liked:
        head.append("I enjoyed: " + "; ".join(display_label(m) for m in liked[:8]) + ".")
    if query.strip():
        head.append(f"Mood: {query.strip()[:300]}")
    user = "\n".join(head) + "\n\nPick: " + reason_facts(pick, plot) + "\nWhy will I enjoy it?"
    return [
        {"role": "system", "content": REASON_SYSTEM_PROMPT},
        {"role": "user", "content": user.lstrip()},
    ]


def choice_opening(m: Movie) -> str:
    """How the edge starts a pick's sentence under guided choice: "Fargo is" (the choices start
    with their own article, " a" or " an")."""
    return f"{short_title(m.title)} is"


def reason_openings(m: Movie) -> list[str]:
    """The sentence starts the edge writes for `m`, in the order they are tried."""
    return [o.format(title=short_title(m.title)) for o in REASON_OPENINGS]
