"""Signed GETs of one object in S3-compatible storage (Linode Object Storage) with the stdlib.

The model server reads exactly one object, once per model; AWS Signature Version 4 for a GET
is a few HMACs, so the server does not carry boto3 (and botocore's ~80 MB) for it. Requests use
path-style addressing (`{endpoint}/{bucket}/{key}`), which every S3-compatible server accepts.
The payload is not hashed (`UNSIGNED-PAYLOAD`): a GET has none, and the model's own sha256 is
checked after the download anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import msgspec

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
ALGORITHM = "AWS4-HMAC-SHA256"
DEFAULT_REGION = "us-east-1"


class S3Object(msgspec.Struct, kw_only=True, frozen=True):
    """Where one object lives and the key that may read it (both empty: an unsigned GET)."""

    endpoint: str  # scheme://host[:port], no path
    bucket: str
    key: str
    region: str = DEFAULT_REGION
    access_key: str = ""
    secret_key: str = ""

    @property
    def url(self) -> str:
        """Path-style HTTPS (or HTTP) URL of the object."""
        return f"{self.endpoint.rstrip('/')}/{quote(self.bucket)}/{quote(self.key, safe='/~')}"

    @property
    def display(self) -> str:
        """How logs and errors name the object."""
        return f"s3://{self.bucket}/{self.key} at {self.endpoint}"


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/key.gguf` -> (`bucket`, `some/key.gguf`); ValueError when malformed."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not s3://BUCKET/KEY")
    return parts.netloc, key


def region_for(endpoint: str) -> str:
    """The signing region an endpoint implies: Linode's cluster id (`us-ord-1` of
    `us-ord-1.linodeobjects.com`), else AWS's default, which MinIO and moto accept."""
    host = urlsplit(endpoint).hostname or ""
    if host.endswith(".linodeobjects.com"):
        return host.split(".", 1)[0]
    return DEFAULT_REGION


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def signed_headers(
    obj: S3Object,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date, X-Amz-Content-Sha256 and Authorization (SigV4) for a
    request without a query string; every given header is signed too."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = {
        "Host": _host_header(obj.url),
        "X-Amz-Date": amz_date,
        "X-Amz-Content-Sha256": UNSIGNED_PAYLOAD,
        **(headers or {}),
    }
    canonical = {name.lower(): " ".join(str(v).split()) for name, v in out.items()}
    names = sorted(canonical)
    path = urlsplit(
        obj.url
    ).path  # already percent-encoded once, as S3 expects (no double encoding)
    request = "\n".join(
        [
            method,
            path,
            "",  # no query string
            "".join(f"{n}:{canonical[n]}\n" for n in names),
            ";".join(names),
            UNSIGNED_PAYLOAD,
        ]
    )
    scope = f"{day}/{obj.region}/s3/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(f"AWS4{obj.secret_key}".encode(), day)
    for part in (obj.region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={obj.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out
