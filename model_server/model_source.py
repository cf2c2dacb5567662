"""Where the GGUF comes from: a local path, the embedded SmolLM2, or a URL fetched into the cache.

A fetched file is verified against the configured sha256 before it is used; it is stored under
its sha256, so a second start with the same settings does not download again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from model_server.gguf_file import sha256_file
from model_server.settings import Settings, embedded_model_path

log = logging.getLogger("model_server.source")

DOWNLOAD_TIMEOUT_S = 60  # per socket operation, not for the whole file


class ModelSourceError(ValueError):
    """The model cannot be obtained; one line for a person."""


def resolve_model(settings: Settings) -> tuple[Path, str | None]:
    """The local GGUF path to serve, and its sha256 when already known (fetched files)."""
    cache = Path(settings.cache_dir)
    if settings.url:
        return fetch(settings.url, settings.sha256.lower(), cache), settings.sha256.lower()
    if settings.path:
        return Path(settings.path).expanduser(), None
    return embedded_model_path(), None


def fetch(url: str, sha256: str, cache_dir: Path) -> Path:
    """Download `url` into `cache_dir/downloads/<sha256>.gguf` unless it is there already."""
    dest = cache_dir / "downloads" / f"{sha256}.gguf"
    if dest.is_file():
        log.info("model %s already fetched to %s", url, dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part{os.getpid()}")
    log.info("fetching model from %s into %s", url, dest)
    h = hashlib.sha256()
    size = 0
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp,
            open(tmp, "wb") as out,
        ):
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
                size += len(block)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise ModelSourceError(f"cannot fetch model from {url}: {reason}") from None
    got = h.hexdigest()
    if got != sha256:
        tmp.unlink(missing_ok=True)
        raise ModelSourceError(
            f"model fetched from {url} has sha256 {got}, expected {sha256}; not using it"
        )
    os.replace(tmp, dest)
    log.info("fetched %d bytes, sha256 verified", size)
    return dest


def cached_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of `path`, remembered per (path, size, mtime) so big models are hashed once."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_dir / "meta" / "sha256-index.json"
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(index.read_text())
    if key in known:
        return known[key]
    digest = sha256_file(path)
    known[key] = digest
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = index.with_name(f".{index.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=0))
        os.replace(tmp, index)
    except OSError as exc:  # a read-only cache only costs a re-hash next time
        log.warning("cannot write %s: %s", index, exc)
    return digest
