"""Where the GGUF comes from: a local path, the embedded SmolLM2, or a URL fetched into the cache.

A URL is `https://...` (a plain GET) or `s3://BUCKET/KEY` in the deployment's own Object
Storage bucket (SigV4-signed GETs, model_server/s3_signing.py). Either way the file is
downloaded resumably and verified against the configured sha256 before it is used
(model_server/download.py); it is stored under its sha256, so a later start does not download
again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from model_server.download import DownloadError, Source, fetch
from model_server.download_progress import Progress
from model_server.gguf_file import sha256_file
from model_server.s3_signing import S3Object, parse_s3_url, region_for, signed_headers
from model_server.settings import Settings, embedded_model_path

log = logging.getLogger("model_server.source")

__all__ = ["ModelSourceError", "cached_sha256", "download_source", "fetch", "resolve_model"]

# A download problem is a model source problem; `python -m model_server` reports both as one line.
ModelSourceError = DownloadError


def download_source(settings: Settings) -> Source:
    """The URL to GET for `settings.url`, signed when it names an object in S3 storage."""
    if not settings.url.startswith("s3://"):
        return Source(url=settings.url, display=settings.url)
    bucket, key = parse_s3_url(settings.url)
    obj = S3Object(
        endpoint=settings.s3_endpoint.rstrip("/"),
        bucket=bucket,
        key=key,
        region=settings.s3_region or region_for(settings.s3_endpoint),
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
    )
    signer = partial(_sign, obj) if obj.access_key else None
    return Source(url=obj.url, display=obj.display, signer=signer)


def _sign(obj: S3Object, method: str, headers: Mapping[str, str]) -> Mapping[str, str]:
    return signed_headers(obj, method, headers)


def needs_download(settings: Settings) -> bool:
    """True when the model comes from a URL (it may take minutes, or be cached already)."""
    return bool(settings.url)


def resolve_model(settings: Settings, progress: Progress | None = None) -> tuple[Path, str | None]:
    """The local GGUF path to serve, and its sha256 when already known (fetched files)."""
    cache = Path(settings.cache_dir)
    if settings.url:
        sha = settings.sha256.lower()
        path = fetch(
            download_source(settings), sha, cache, progress, attempts=settings.download_attempts
        )
        return path, sha
    if settings.path:
        return Path(settings.path).expanduser(), None
    return embedded_model_path(), None


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
