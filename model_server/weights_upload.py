"""`python -m model_server weights upload FILE --bucket B`: put a GGUF into the deployment's bucket.

Run once per model by the operator, from a machine with boto3 (the `build` or `edge` extra; the
model server itself reads the object with plain signed GETs). The command checks the GGUF
header, computes the sha256, uploads the file (multipart) with the sha256 as object metadata,
writes `KEY.sha256` beside it (`sha256sum -c` format), reads the object's size and metadata back,
and prints the settings and Terraform variables that point model servers at it. Credentials come
from MOVIEMIND_S3_ACCESS_KEY / MOVIEMIND_S3_SECRET_KEY (a read_write key, as for
`python -m index_builder publish`); `--endpoint` and `--region` default to MOVIEMIND_S3_*.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from model_server.download_progress import MB
from model_server.gguf_file import check_gguf_header, sha256_file
from model_server.s3_signing import region_for

PART_BYTES = 64 * MB  # multipart part size: 70 parts for a 4.4 GB file, well under 10,000


class UploadError(ValueError):
    """The upload cannot be done; one line for a person."""


def parser() -> argparse.ArgumentParser:
    """Arguments of `weights upload`."""
    p = argparse.ArgumentParser(
        prog="python -m model_server weights upload",
        description="Upload a GGUF to S3-compatible storage with its sha256 and print the "
        "settings that make model servers download it.",
    )
    p.add_argument("file", type=Path, help="the GGUF file")
    p.add_argument("--bucket", required=True, help="bucket name (it must exist)")
    p.add_argument("--key", default="", help="object key (default: models/<file name>)")
    p.add_argument("--endpoint", default="", help="default: MOVIEMIND_S3_ENDPOINT")
    p.add_argument("--region", default="", help="signing region (default: from the endpoint)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="overwrite an object with another sha256 under this key (servers pinned to the "
        "old sha256 then refuse it; a new key per model version is safer)",
    )
    return p


def main(argv: list[str], out: TextIO = sys.stdout) -> int:
    """Entry point of `weights upload`; returns the exit code."""
    args = parser().parse_args(argv)
    from moviemind_core.storage import S3Settings

    env = S3Settings.from_env()
    endpoint = (args.endpoint or env.endpoint or "").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise UploadError("give --endpoint https://... or set MOVIEMIND_S3_ENDPOINT")
    if not (env.access_key and env.secret_key):
        raise UploadError("set MOVIEMIND_S3_ACCESS_KEY and MOVIEMIND_S3_SECRET_KEY (read_write)")
    region = args.region or os.environ.get("MOVIEMIND_S3_REGION", "").strip()
    region = region or region_for(endpoint)
    settings = S3Settings(
        endpoint=endpoint, region=region, access_key=env.access_key, secret_key=env.secret_key
    )
    key = args.key or f"models/{args.file.name}"
    sha, size = upload(settings.client(), args.file, args.bucket, key, args.replace, out)
    url = f"s3://{args.bucket}/{key}"
    print(
        f"""
model server settings (the key they use needs read access to {args.bucket}):
  MOVIEMIND_MODEL_URL={url}
  MOVIEMIND_MODEL_SHA256={sha}
  MOVIEMIND_MODEL_S3_ENDPOINT={endpoint}
  MOVIEMIND_MODEL_S3_REGION={region}
terraform.tfvars:
  model_preset      = "custom"
  model_gguf_url    = "{url}"
  model_gguf_sha256 = "{sha}"
({size} bytes)""",
        file=out,
    )
    return 0


def upload(
    client: Any, path: Path, bucket: str, key: str, replace: bool, out: TextIO
) -> tuple[str, int]:
    """Upload `path` to s3://bucket/key with its sha256 (skipped when the same file is there)."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    if not path.is_file():
        raise UploadError(f"{path} does not exist")
    check_gguf_header(path)
    size = path.stat().st_size
    print(f"computing the sha256 of {path} ({size // MB} MB)", file=out, flush=True)
    sha = sha256_file(path)
    where = f"s3://{bucket}/{key}"
    try:
        existing = _head(client, bucket, key)
        if existing is not None:
            there = existing.get("Metadata", {}).get("sha256", "")
            if there == sha and existing.get("ContentLength") == size:
                print(f"{where} already holds this file (sha256 {sha}); not uploading", file=out)
                _put_sidecar(client, bucket, key, sha, path.name)
                return sha, size
            if not replace:
                raise UploadError(
                    f"{where} already holds another file (sha256 {there or 'unknown'}); use "
                    "another --key (one per model version) or pass --replace"
                )
        print(f"uploading to {where}", file=out, flush=True)
        client.upload_file(
            str(path),
            bucket,
            key,
            ExtraArgs={"Metadata": {"sha256": sha}, "ContentType": "application/octet-stream"},
            Config=TransferConfig(multipart_chunksize=PART_BYTES, multipart_threshold=PART_BYTES),
            Callback=_Meter(size, out),
        )
        _put_sidecar(client, bucket, key, sha, path.name)
        stored = _head(client, bucket, key) or {}
    except (ClientError, BotoCoreError) as exc:
        raise UploadError(f"cannot upload to {where}: {exc}") from None
    if stored.get("ContentLength") != size or stored.get("Metadata", {}).get("sha256") != sha:
        raise UploadError(f"{where} does not read back as uploaded (size or sha256 differ)")
    print(f"uploaded {where} ({size} bytes, sha256 {sha})", file=out)
    return sha, size


def _head(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _put_sidecar(client: Any, bucket: str, key: str, sha: str, name: str) -> None:
    # The sha256sum format, so `sha256sum -c` checks a copy fetched by hand.
    body = f"{sha}  {name}\n".encode()
    client.put_object(Bucket=bucket, Key=f"{key}.sha256", Body=body, ContentType="text/plain")


class _Meter:
    """boto3 progress callback: one line per 10% (called from several upload threads)."""

    def __init__(self, total: int, out: TextIO) -> None:
        self._total = max(total, 1)
        self._done = 0
        self._shown = -1
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self._lock:
            self._done += sent
            tenth = 10 * self._done // self._total
            if tenth != self._shown:
                self._shown = tenth
                print(
                    f"  {10 * tenth}% ({self._done // MB} of {self._total // MB} MB)",
                    file=self._out,
                    flush=True,
                )
