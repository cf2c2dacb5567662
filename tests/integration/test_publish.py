"""Publishing bundles to a real S3-compatible server (moto on loopback) and an edge that serves,
hot-swaps and refuses bundles from it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from index_builder.publish import PublishError, list_versions, prune, publish
from moviemind_core.bundle import (
    DATA_FILES,
    MANIFEST,
    TITLES,
    VECTORS,
    Bundle,
    BundleError,
    Manifest,
)
from moviemind_core.storage import (
    LATEST,
    Latest,
    bundle_key,
    download_bundle,
    key,
    parse_s3_url,
    read_latest,
)
from tests.support.s3_server import S3Server, start_s3_server
from tests.support.servers import ROOT, Server, start_edge
from tests.unit.core.test_bundle import flip_byte, rewrite, small_bundle


def quiet(*_: object) -> None:
    pass


@pytest.fixture(scope="module")
def s3(logs: Path) -> Iterator[S3Server]:
    server = start_s3_server(logs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three small real bundles, each its own version: a (200 movies), b (199), c (198)."""
    root = tmp_path_factory.mktemp("publish")
    small_bundle(root / "a")
    base = Bundle.load(root / "a")
    rewrite(root / "b", base, drop=1)
    rewrite(root / "c", base, drop=2)
    return {name: root / name for name in ("a", "b", "c")}


def version_of(path: Path) -> str:
    return Bundle.load(path, verify=False).version


def prefixes(s3: S3Server, bucket: str, prefix: str) -> list[str]:
    return list_versions(s3.client(), bucket, prefix)


# ---------------------------------------------------------------- publish


def test_publish_uploads_every_file_then_latest(
    s3: S3Server, bundles: dict[str, Path], tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    lines: list[str] = []
    latest = publish(bundles["a"], f"s3://{bucket}/movies/prod", s3.settings, log=lines.append)
    version = version_of(bundles["a"])
    raw_manifest = (bundles["a"] / MANIFEST).read_bytes()
    assert latest.version == version
    assert latest.manifest_sha256 == hashlib.sha256(raw_manifest).hexdigest()
    expected = sorted(
        [f"movies/prod/bundles/{version}/{n}" for n in (*DATA_FILES, MANIFEST)]
        + ["movies/prod/latest.json"]
    )
    assert s3.keys(bucket) == expected
    client = s3.client()
    # Every object is byte for byte the local file; latest.json decodes as the pointer type.
    for name in (*DATA_FILES, MANIFEST):
        body = client.get_object(Bucket=bucket, Key=bundle_key("movies/prod", version, name))[
            "Body"
        ].read()
        assert body == (bundles["a"] / name).read_bytes(), name
    pointer = json.loads(
        client.get_object(Bucket=bucket, Key="movies/prod/latest.json")["Body"].read()
    )
    assert pointer["version"] == version and pointer["manifest_sha256"] == latest.manifest_sha256
    assert read_latest(client, bucket, "movies/prod") == latest
    assert any(f"latest -> {version}" in line for line in lines), lines
    # What an edge does: download, verify, load.
    got = download_bundle(client, bucket, "movies/prod", latest, tmp_path / "cache")
    assert got == tmp_path / "cache" / version
    assert Bundle.load(got).movies == Bundle.load(bundles["a"]).movies
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [version]  # no staging dir left


def test_nothing_published_reads_as_none(s3: S3Server) -> None:
    bucket = s3.create_bucket()
    assert read_latest(s3.client(), bucket, "empty") is None


def test_publish_to_bucket_root(s3: S3Server, bundles: dict[str, Path]) -> None:
    bucket = s3.create_bucket()
    publish(bundles["a"], f"s3://{bucket}", s3.settings, log=quiet)
    assert f"bundles/{version_of(bundles['a'])}/manifest.json" in s3.keys(bucket)
    assert read_latest(s3.client(), bucket, "").version == version_of(bundles["a"])


def test_publishing_again_with_keep_1_prunes_the_older_version(
    s3: S3Server, bundles: dict[str, Path]
) -> None:
    bucket = s3.create_bucket()
    va, vb = version_of(bundles["a"]), version_of(bundles["b"])
    assert va < vb  # versions sort by build time
    publish(bundles["a"], f"s3://{bucket}/p", s3.settings, keep=1, log=quiet)
    lines: list[str] = []
    publish(bundles["b"], f"s3://{bucket}/p", s3.settings, keep=1, log=lines.append)
    assert prefixes(s3, bucket, "p") == [vb]
    assert not [k for k in s3.keys(bucket) if va in k]
    assert read_latest(s3.client(), bucket, "p").version == vb
    assert any("pruned 1 old version(s)" in line for line in lines), lines


def test_prune_never_deletes_what_latest_points_at(s3: S3Server, bundles: dict[str, Path]) -> None:
    """After a rollback (latest moved back to an older version), pruning keeps that version."""
    bucket = s3.create_bucket()
    client = s3.client()
    va, vb, vc = (version_of(bundles[n]) for n in ("a", "b", "c"))
    for name in ("a", "b", "c"):
        publish(bundles[name], f"s3://{bucket}/p", s3.settings, keep=10, log=quiet)
    rollback = client.get_object(Bucket=bucket, Key=bundle_key("p", va, MANIFEST))["Body"].read()
    pointer = Latest(
        version=va, manifest_sha256=hashlib.sha256(rollback).hexdigest(), published_at="now"
    )
    client.put_object(Bucket=bucket, Key=key("p", LATEST), Body=msgspec.json.encode(pointer))
    removed = prune(client, bucket, "p", keep=1, current=vc)
    assert removed == 1
    assert prefixes(s3, bucket, "p") == [va, vc]  # b pruned; a is latest, c is current
    assert prune(client, bucket, "p", keep=0, current=vc) == 0


def test_publish_refuses_a_corrupt_bundle_before_uploading(
    s3: S3Server, bundles: dict[str, Path], tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    bad = tmp_path / "bad"
    shutil.copytree(bundles["a"], bad)
    flip_byte(bad / VECTORS)
    with pytest.raises(BundleError, match=VECTORS):
        publish(bad, f"s3://{bucket}/p", s3.settings, log=quiet)
    (bad / VECTORS).write_bytes(b"")  # truncated, too
    with pytest.raises(BundleError, match="truncated"):
        publish(bad, f"s3://{bucket}/p", s3.settings, log=quiet)
    assert s3.keys(bucket) == []


def test_storage_errors_are_publish_errors(s3: S3Server, bundles: dict[str, Path]) -> None:
    with pytest.raises(PublishError, match="NoSuchBucket|does not exist"):
        publish(bundles["a"], "s3://no-such-bucket-here/p", s3.settings, log=quiet)


def test_download_refuses_a_manifest_that_does_not_match_latest(
    s3: S3Server, bundles: dict[str, Path], tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    latest = publish(bundles["a"], f"s3://{bucket}/p", s3.settings, log=quiet)
    forged = Latest(
        version=latest.version, manifest_sha256="0" * 64, published_at=latest.published_at
    )
    with pytest.raises(BundleError, match="does not match latest.json"):
        download_bundle(s3.client(), bucket, "p", forged, tmp_path / "cache")
    assert not (tmp_path / "cache" / latest.version).exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://b/p", ("b", "p")),
        ("s3://b/a/b/", ("b", "a/b")),
        ("s3://b", ("b", "")),
        ("s3://b/", ("b", "")),
    ],
)
def test_parse_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize("url", ["http://b/p", "s3://", "b/p", "", "s3:/b/p"])
def test_parse_s3_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="not an s3:// URL"):
        parse_s3_url(url)


def test_download_refuses_a_damaged_object(
    s3: S3Server, bundles: dict[str, Path], tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    manifest = upload_tampered(s3, bucket, "p", bundles["a"], TITLES)
    latest = read_latest(s3.client(), bucket, "p")
    assert latest is not None and latest.version == manifest.version
    with pytest.raises(BundleError, match=f"{TITLES} does not match its sha256"):
        download_bundle(s3.client(), bucket, "p", latest, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # the staging directory is removed


def test_a_damaged_cached_download_is_fetched_again(
    s3: S3Server, bundles: dict[str, Path], tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    latest = publish(bundles["a"], f"s3://{bucket}/p", s3.settings, log=quiet)
    cache = tmp_path / "cache"
    got = download_bundle(s3.client(), bucket, "p", latest, cache)
    flip_byte(got / VECTORS)
    with pytest.raises(BundleError):
        Bundle.load(got)
    again = download_bundle(s3.client(), bucket, "p", latest, cache)
    assert again == got
    assert Bundle.load(again).version == latest.version


# ---------------------------------------------------------------- CLI


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "index_builder", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_publish(s3: S3Server, bundles: dict[str, Path]) -> None:
    bucket = s3.create_bucket()
    ok = _cli("publish", "--bundle", str(bundles["a"]), "--url", f"s3://{bucket}/cli", env=s3.env)
    assert ok.returncode == 0, ok.stderr
    version = version_of(bundles["a"])
    assert f"published {version} to s3://{bucket}/cli" in ok.stdout
    assert read_latest(s3.client(), bucket, "cli").version == version

    bad = _cli("publish", "--bundle", str(bundles["a"]), "--url", "http://not-s3/x", env=s3.env)
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not an s3:// URL"), bad.stderr

    missing = _cli(
        "publish", "--bundle", str(bundles["a"]), "--url", "s3://no-such-bucket-here/p", env=s3.env
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith(
        "error: publishing to s3://no-such-bucket-here/p failed"
    )
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1

    not_a_bundle = _cli(
        "publish", "--bundle", str(ROOT / "tests"), "--url", f"s3://{bucket}/x", env=s3.env
    )
    assert not_a_bundle.returncode == 2 and "manifest.json is missing" in not_a_bundle.stderr
    assert not [k for k in s3.keys(bucket) if k.startswith("x/")]


# ---------------------------------------------------------------- an edge serving from S3


def readyz(edge: Server) -> tuple[int, dict]:
    r = httpx.get(edge.url + "/readyz", timeout=5)
    return r.status_code, r.json()


def wait_for(edge: Server, predicate, what: str, timeout: float = 45.0) -> dict:
    """Poll /readyz until predicate(body) holds (bounded); fails with the edge's log otherwise."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        if edge.proc.poll() is not None:
            raise AssertionError(f"edge exited:\n{edge.log()}")
        try:
            _, body = readyz(edge)
            if predicate(body):
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last /readyz {body}\n{edge.log()}")


def search_ids(edge: Server, q: str = "space adventure with robots") -> list[int]:
    r = httpx.get(edge.url + "/v1/search", params={"q": q, "k": 5}, timeout=15)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 5
    return [hit["id"] for hit in results]


def upload_tampered(
    s3: S3Server, bucket: str, prefix: str, bundle_dir: Path, bad_file: str
) -> Manifest:
    """Publish like `publish` does, but with one data file altered in storage: a damaged upload."""
    client = s3.client()
    manifest = Bundle.load(bundle_dir).manifest
    raw = (bundle_dir / MANIFEST).read_bytes()
    for name in DATA_FILES:
        body = (bundle_dir / name).read_bytes()
        if name == bad_file:
            body = (
                body[: len(body) // 2]
                + bytes([body[len(body) // 2] ^ 0xFF])
                + body[len(body) // 2 + 1 :]
            )
        client.put_object(Bucket=bucket, Key=bundle_key(prefix, manifest.version, name), Body=body)
    client.put_object(Bucket=bucket, Key=bundle_key(prefix, manifest.version, MANIFEST), Body=raw)
    pointer = Latest(
        version=manifest.version,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        published_at="now",
    )
    client.put_object(Bucket=bucket, Key=key(prefix, LATEST), Body=msgspec.json.encode(pointer))
    return manifest


def test_edge_serves_swaps_and_refuses_bundles_from_s3(
    s3: S3Server, bundles: dict[str, Path], logs: Path, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    url = f"s3://{bucket}/edge"
    va, vb, vc = (version_of(bundles[n]) for n in ("a", "b", "c"))
    a_only = Bundle.load(bundles["a"], verify=False).movies[0].id  # dropped from b and c
    edge = start_edge(
        logs,
        ["http://127.0.0.1:9"],  # no model server: these checks need only the index
        index=url,
        wait=False,
        MOVIEMIND_EDGE_RELOAD_INTERVAL_S="1",
        MOVIEMIND_EDGE_INDEX_CACHE_DIR=str(tmp_path / "cache"),
        **s3.env,
    )
    try:
        # Nothing published yet: alive, not ready, and says why.
        body = wait_for(edge, lambda b: b.get("index_error"), "the edge to report an empty prefix")
        status, body = readyz(edge)
        assert status == 503 and body["ready"] is False and body["index_version"] is None
        assert "nothing published" in body["index_error"]
        r = httpx.get(edge.url + "/v1/search", params={"q": "x"}, timeout=5)
        assert r.status_code == 503 and r.json()["error"]["type"] == "not_ready"

        # First version published -> ready on it.
        publish(bundles["a"], url, s3.settings, log=quiet)
        body = wait_for(edge, lambda b: b["index_version"] == va, f"version {va}")
        assert body["ready"] is True and body["movies"] == 200 and body["index_error"] is None
        assert len(search_ids(edge)) == 5
        assert httpx.get(f"{edge.url}/v1/movies/{a_only}", timeout=5).status_code == 200

        # A new version -> the edge switches within a few poll intervals.
        publish(bundles["b"], url, s3.settings, log=quiet)
        body = wait_for(edge, lambda b: b["index_version"] == vb, f"version {vb}", timeout=30)
        assert body["movies"] == 199 and body["index_error"] is None
        assert httpx.get(f"{edge.url}/v1/movies/{a_only}", timeout=5).status_code == 404

        # A newer version whose vectors were damaged in storage -> rejected, b keeps serving.
        upload_tampered(s3, bucket, "edge", bundles["c"], VECTORS)
        body = wait_for(
            edge,
            lambda b: b["index_error"] and VECTORS in b["index_error"],
            "index_error naming the file",
        )
        assert body["index_version"] == vb and body["ready"] is True and body["movies"] == 199
        assert "sha256" in body["index_error"]
        assert "index not loaded, still serving " + vb in edge.log()
        assert len(search_ids(edge)) == 5
        assert not (tmp_path / "cache" / vc).exists()  # nothing half-downloaded is kept
        metrics = httpx.get(edge.url + "/metrics", timeout=5).text
        assert 'moviemind_edge_index_reloads_total{result="rejected"}' in metrics

        # latest.json that is not a pointer at all -> also rejected, still serving b.
        s3.client().put_object(Bucket=bucket, Key="edge/latest.json", Body=b"{not json")
        body = wait_for(
            edge,
            lambda b: b["index_error"] and "not a valid pointer" in b["index_error"],
            "bad pointer",
        )
        assert body["index_version"] == vb

        # Roll latest back to the version being served: nothing to load, and the stale error clears.
        raw_b = (bundles["b"] / MANIFEST).read_bytes()
        back = Latest(
            version=vb, manifest_sha256=hashlib.sha256(raw_b).hexdigest(), published_at="now"
        )
        s3.client().put_object(
            Bucket=bucket, Key="edge/latest.json", Body=msgspec.json.encode(back)
        )
        body = wait_for(
            edge, lambda b: b["index_error"] is None, "the error to clear after a rollback"
        )
        assert body["index_version"] == vb

        # The damaged version repaired in storage (re-published) -> picked up.
        publish(bundles["c"], url, s3.settings, log=quiet)
        body = wait_for(edge, lambda b: b["index_version"] == vc, f"version {vc}", timeout=30)
        assert body["movies"] == 198 and body["index_error"] is None
        assert len(search_ids(edge)) == 5
        assert "Traceback" not in edge.log()
    finally:
        edge.stop()
