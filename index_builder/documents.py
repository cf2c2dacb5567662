"""The text each movie is embedded as. Each template has a version; the bundle records which.

The templates were compared with `python -m index_builder eval --templates ...` (content-only
HR@10 on validation users; docs/benchmarks/eval.md). `doc-v1` led with the title, so similarity
followed title words ("Holiday" for "Roman Holiday"); `doc-v2` describes the movie and leaves
the title and year out; `doc-v3` describes first and names the movie last.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from moviemind_core.catalog import Movie


def _description(m: Movie) -> list[str]:
    parts = []
    if m.genres:
        parts.append("Genres: " + ", ".join(m.genres) + ".")
    if m.keywords:
        parts.append("Keywords: " + ", ".join(m.keywords) + ".")
    if m.overview:
        parts.append(m.overview.strip())
    if m.director:
        parts.append(f"Directed by {m.director}.")
    if m.cast:
        parts.append("Starring " + ", ".join(m.cast) + ".")
    return parts


def _v1(m: Movie) -> str:
    head = f"{m.title} ({m.year})." if m.year else f"{m.title}."
    return " ".join([head, *_description(m)])


def _v2(m: Movie) -> str:
    return " ".join(_description(m)) or f"{m.title}."


def _v3(m: Movie) -> str:
    return " ".join([*_description(m), f"({m.title})"])


TEMPLATES: dict[str, Callable[[Movie], str]] = {"doc-v1": _v1, "doc-v2": _v2, "doc-v3": _v3}
TEMPLATE_VERSION = "doc-v2"


def document_text(m: Movie, template: str = TEMPLATE_VERSION) -> str:
    """The movie as one paragraph in the given template (default: the one bundles use)."""
    try:
        return TEMPLATES[template](m)
    except KeyError:
        raise ValueError(
            f"unknown document template {template!r}; one of {sorted(TEMPLATES)}"
        ) from None


def content_hash(text: str, embedder_sha256: str, template: str = TEMPLATE_VERSION) -> str:
    """Identifies a document's vector: same text, template and embedder -> same vector."""
    h = hashlib.sha256()
    for part in (template, embedder_sha256, text):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]
