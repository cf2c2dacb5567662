"""Bundles in S3-compatible object storage (Linode Object Storage, MinIO, AWS S3).

Layout under s3://BUCKET/PREFIX/:
    bundles/<version>/<file>   each bundle's files, manifest.json uploaded last
    latest.json                {"version", "manifest_sha256", "published_at"}: what edges serve
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import msgspec

from moviemind_core.bundle import MANIFEST, BundleError, Manifest, decode_manifest, verify_files
from moviemind_core.config import env_names, read_env, reject_unknown

LATEST = "latest.json"


S3_PREFIX = "MOVIEMIND_S3_"


class S3Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Connection settings, from MOVIEMIND_S3_ENDPOINT/_REGION/_ACCESS_KEY/_SECRET_KEY."""

    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        """Read MOVIEMIND_S3_* (moviemind_core.config); an unknown MOVIEMIND_S3_ name is an error."""
        env = os.environ if env is None else env
        reject_unknown(env, S3_PREFIX, env_names(cls).values())
        return read_env(cls, env, S3_PREFIX)

    def client(self):
        """A boto3 S3 client (path-style addressing works with every S3-compatible server)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )


class Latest(msgspec.Struct, kw_only=True):
    version: str
    manifest_sha256: str
    published_at: str


def parse_s3_url(url: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URL: {url!r} (expected s3://BUCKET/PREFIX)")
    return parsed.netloc, parsed.path.strip("/")


def key(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


def bundle_key(prefix: str, version: str, name: str) -> str:
    return key(prefix, "bundles", version, name)


def read_latest(client, bucket: str, prefix: str) -> Latest | None:
    """The published pointer, or None when nothing was published under this prefix yet."""
    from botocore.exceptions import ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=key(prefix, LATEST))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    try:
        return msgspec.json.decode(body, type=Latest)
    except msgspec.DecodeError as exc:
        raise BundleError(
            f"s3://{bucket}/{key(prefix, LATEST)} is not a valid pointer: {exc}"
        ) from exc


def download_bundle(client, bucket: str, prefix: str, latest: Latest, dest_root: Path) -> Path:
    """Download and verify one published version into dest_root/<version>; returns that directory."""
    dest = dest_root / latest.version
    if dest.is_dir():
        # A cached copy is reused only while it still verifies; a damaged one is fetched again.
        try:
            cached = (dest / MANIFEST).read_bytes()
            if hashlib.sha256(cached).hexdigest() == latest.manifest_sha256:
                verify_files(dest, decode_manifest(cached, str(dest)))
                return dest
        except (OSError, BundleError):
            pass
        shutil.rmtree(dest, ignore_errors=True)
    dest_root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{latest.version}-", dir=dest_root))
    try:
        raw = client.get_object(Bucket=bucket, Key=bundle_key(prefix, latest.version, MANIFEST))[
            "Body"
        ].read()
        if hashlib.sha256(raw).hexdigest() != latest.manifest_sha256:
            raise BundleError(f"manifest of {latest.version} does not match latest.json's sha256")
        manifest: Manifest = decode_manifest(raw, f"s3://{bucket}/{prefix} {latest.version}")
        for name in manifest.files:
            client.download_file(
                bucket, bundle_key(prefix, latest.version, name), str(stage / name)
            )
        verify_files(stage, manifest)
        (stage / MANIFEST).write_bytes(raw)
        os.rename(stage, dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return dest
