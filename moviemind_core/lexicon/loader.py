"""Reading one lexicon version from its data folder (moviemind_core/lexicon/data/<version>/)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

from moviemind_core.lexicon.lexicon import Lexicon
from moviemind_core.lexicon.normalise import Normaliser
from moviemind_core.lexicon.schema import (
    ChoicesFile,
    GateFile,
    GenresFile,
    Manifest,
    MoodFile,
    Morphology,
    RelatedFile,
    ToneFile,
)

DATA = Path(__file__).resolve().parent / "data"
T = TypeVar("T")


def _read(folder: Path, name: str, kind: type[T]) -> T:
    path = folder / name
    try:
        return msgspec.toml.decode(path.read_bytes(), type=kind)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError) as e:
        raise ValueError(f"lexicon file {path}: {e}") from e


def versions(root: Path = DATA) -> list[str]:
    """The lexicon versions a data folder holds ("en-v1", ...)."""
    return sorted(p.name for p in root.iterdir() if (p / "manifest.toml").is_file())


def load(version: str, root: Path = DATA) -> Lexicon:
    """The lexicon `version` from `root`; ValueError names a missing or malformed file."""
    folder = root / version
    manifest = _read(folder, "manifest.toml", Manifest)
    if manifest.version != version:
        raise ValueError(f"{folder}/manifest.toml says version {manifest.version!r}")
    return Lexicon(
        manifest=manifest,
        normaliser=Normaliser(_read(folder, "morphology.toml", Morphology)),
        genres=_read(folder, "genres.toml", GenresFile),
        mood=_read(folder, "mood.toml", MoodFile),
        related=_read(folder, "related.toml", RelatedFile),
        tone=_read(folder, "tone.toml", ToneFile),
        gate=_read(folder, "gate.toml", GateFile),
        choices=_read(folder, "choices.toml", ChoicesFile),
    )
