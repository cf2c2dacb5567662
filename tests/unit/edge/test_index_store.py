"""edge.index_store: a model directory updated to a new export is picked up without a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from edge.index_store import IndexStore
from moviemind_core.bundle import Bundle, write_bundle
from moviemind_core.storage import S3Settings

NEW_EXPORT_SHA = "cd" * 32
# Needs the exported MiniLM and the sample index (built by `make index`), so not in test-fast.
pytestmark = pytest.mark.slow


def test_a_new_model_export_is_used_for_the_next_bundle(
    models_dir: Path, sample_index: Path, tmp_path: Path
) -> None:
    # A model directory of our own: the files linked, the manifest copied so it can change.
    model_dir = tmp_path / "minilm"
    model_dir.mkdir()
    for f in (models_dir / "minilm").iterdir():
        if f.name != "manifest.json":
            os.symlink(f, model_dir / f.name)
    manifest = json.loads((models_dir / "minilm" / "manifest.json").read_text())
    (model_dir / "manifest.json").write_text(json.dumps(manifest))

    served = tmp_path / "served"
    served.symlink_to(sample_index)
    store = IndexStore(
        str(served),
        model_dir,
        cache_dir=tmp_path / "cache",
        s3=S3Settings(),
        embed_threads=1,
        query_variant="int8",
        bayes_votes=20.0,
    )
    assert store.refresh(), store.last_error

    # A new export: the documents' model has another sha256 (the query model is reused as is,
    # so no second 70 MB file is needed), and a bundle embedded with it is published.
    manifest["files"][manifest["variants"]["fp32"]] = NEW_EXPORT_SHA
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    src = Bundle.load(sample_index)
    n = 50
    write_bundle(
        tmp_path / "new-bundle",
        src.movies[:n],
        src.doc_hashes[:n],
        src.vectors[:n],
        embedder=msgspec.structs.replace(src.manifest.embedder, sha256=NEW_EXPORT_SHA),
        template_version=src.manifest.template_version,
        source=src.manifest.source,
    )
    served.unlink()
    served.symlink_to(tmp_path / "new-bundle")

    assert store.refresh(), store.last_error
    assert store.current is not None and len(store.current.bundle) == n
    assert store.current.embedder.manifest.sha256_of("fp32") == NEW_EXPORT_SHA
