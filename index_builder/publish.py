"""Upload a bundle to S3-compatible object storage and move the `latest` pointer to it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from moviemind_core.bundle import MANIFEST, Bundle
from moviemind_core.storage import (
    LATEST,
    Latest,
    S3Settings,
    bundle_key,
    key,
    parse_s3_url,
    read_latest,
)


class PublishError(ValueError):
    """The object store refused or could not be reached (a ValueError so the CLI prints one line)."""


def publish(bundle_dir: Path, url: str, s3: S3Settings, *, keep: int = 3, log=print) -> Latest:
    """Verify the bundle, upload its files (manifest last), then point latest.json at it."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_url(url)
    bundle = Bundle.load(bundle_dir)  # refuses a corrupt or partial bundle before any upload
    try:
        return _upload(bundle, bundle_dir, bucket, prefix, s3, keep=keep, log=log)
    except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
        raise PublishError(f"publishing to s3://{bucket}/{prefix} failed: {exc}") from exc


def _upload(
    bundle: Bundle, bundle_dir: Path, bucket: str, prefix: str, s3: S3Settings, *, keep: int, log
) -> Latest:
    version = bundle.version
    client = s3.client()
    raw_manifest = (bundle_dir / MANIFEST).read_bytes()
    names = sorted(bundle.manifest.files)
    for i, name in enumerate(names, 1):
        path = bundle_dir / name
        log(f"  [{i}/{len(names) + 1}] {name} ({path.stat().st_size / 1e6:.1f} MB)")
        client.upload_file(str(path), bucket, bundle_key(prefix, version, name))
    log(f"  [{len(names) + 1}/{len(names) + 1}] {MANIFEST}")
    client.put_object(Bucket=bucket, Key=bundle_key(prefix, version, MANIFEST), Body=raw_manifest)
    latest = Latest(
        version=version,
        manifest_sha256=hashlib.sha256(raw_manifest).hexdigest(),
        published_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    client.put_object(
        Bucket=bucket,
        Key=key(prefix, LATEST),
        Body=msgspec.json.encode(latest),
        ContentType="application/json",
    )
    removed = prune(client, bucket, prefix, keep=keep, current=version)
    log(
        f"published {version} to s3://{bucket}/{prefix} ({len(names) + 1} files); "
        f"latest -> {version}; pruned {removed} old version(s)"
    )
    return latest


def list_versions(client, bucket: str, prefix: str) -> list[str]:
    """Published versions under prefix, oldest first (versions sort by build time)."""
    versions: set[str] = set()
    paginator = client.get_paginator("list_objects_v2")
    base = key(prefix, "bundles") + "/"
    for page in paginator.paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
        for cp in page.get("CommonPrefixes", []):
            versions.add(cp["Prefix"][len(base) :].strip("/"))
    return sorted(versions)


def prune(client, bucket: str, prefix: str, *, keep: int, current: str) -> int:
    """Delete all but the newest `keep` versions; never the one latest.json points at."""
    versions = list_versions(client, bucket, prefix)
    latest = read_latest(client, bucket, prefix)
    protected = {current, latest.version if latest else current}
    doomed = [v for v in versions[: max(0, len(versions) - keep)] if v not in protected]
    for v in doomed:
        objs = client.list_objects_v2(Bucket=bucket, Prefix=key(prefix, "bundles", v) + "/")
        for obj in objs.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    return len(doomed)
