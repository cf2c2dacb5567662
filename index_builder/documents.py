"""The text each movie is embedded as. Bump TEMPLATE_VERSION whenever the wording changes."""

from __future__ import annotations

import hashlib

from moviemind_core.catalog import Movie

TEMPLATE_VERSION = "doc-v1"


def document_text(m: Movie) -> str:
    """One paragraph: title and year, genres, keywords, synopsis, people."""
    head = f"{m.title} ({m.year})." if m.year else f"{m.title}."
    parts = [head]
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
    return " ".join(parts)


def content_hash(text: str, embedder_sha256: str) -> str:
    """Identifies a document's vector: same text, template and embedder -> same vector."""
    h = hashlib.sha256()
    for part in (TEMPLATE_VERSION, embedder_sha256, text):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]
