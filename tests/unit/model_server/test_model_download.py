"""The model file from the deployment's own bucket: upload command, signed download, sha256
check, resume with Range, orphaned partial files. A real S3 server (moto) on loopback, with a
recording proxy in front that can drop connections or ignore Range (tests/support/faulty_proxy.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from model_server.download import DownloadError, fetch, remove_orphans
from model_server.download_progress import Progress
from model_server.model_source import download_source
from model_server.s3_signing import S3Object, region_for, signed_headers
from model_server.settings import Settings, SettingsError, load_settings
from tests.support.faulty_proxy import FaultyProxy, faulty_proxy
from tests.support.model_server_helpers import model_env, run_cli, write_vocab_gguf
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server, start_s3_server

SIZE = 3_000_000  # a GGUF header and vocabulary, padded with incompressible bytes


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3_server(tmp_path_factory.mktemp("s3-logs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[FaultyProxy]:
    with faulty_proxy(s3.endpoint) as p:
        yield p


def gguf_like(path: Path, size: int = SIZE, seed: int = 1) -> Path:
    """A small file that starts like a GGUF (header, metadata, vocabulary) and is `size` long."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_vocab_gguf(
        path, arch="llama", model="gpt2", tokens=["a", "b", "ab"], types=[1, 1, 1], merges=["a b"]
    )
    head = path.read_bytes()
    rng = random.Random(seed)
    path.write_bytes(head + rng.randbytes(size - len(head)))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upload_env(s3: S3Server) -> dict[str, str]:
    env = model_env(Path("unused"))
    env.update(s3.env)
    return env


def settings_for(endpoint: str, url: str, digest: str, cache: Path, **extra: str) -> Settings:
    env = {
        "MOVIEMIND_MODEL_URL": url,
        "MOVIEMIND_MODEL_SHA256": digest,
        "MOVIEMIND_MODEL_S3_ENDPOINT": endpoint,
        "MOVIEMIND_MODEL_S3_ACCESS_KEY": ACCESS_KEY,
        "MOVIEMIND_MODEL_S3_SECRET_KEY": SECRET_KEY,
        "MOVIEMIND_MODEL_CACHE_DIR": str(cache),
        **extra,
    }
    return load_settings(env)


def put(s3: S3Server, bucket: str, key: str, body: bytes, digest: str) -> None:
    """An object as `weights upload` leaves it (metadata sha256), with any bytes."""
    s3.client().put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": digest})


def downloads(cache: Path) -> list[str]:
    folder = cache / "downloads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ---- upload -----------------------------------------------------------------------------------


def test_upload_command_stores_the_sha256_and_prints_the_settings(
    s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "tiny-7b.Q4_K_M.gguf")
    digest = sha(model)
    args = ["weights", "upload", str(model), "--bucket", bucket, "--endpoint", s3.endpoint]
    done = run_cli(args, upload_env(s3))
    assert done.returncode == 0, done.stderr
    key = "models/tiny-7b.Q4_K_M.gguf"
    assert f"MOVIEMIND_MODEL_URL=s3://{bucket}/{key}" in done.stdout
    assert f"MOVIEMIND_MODEL_SHA256={digest}" in done.stdout
    assert f'model_gguf_sha256 = "{digest}"' in done.stdout
    client = s3.client()
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == SIZE and head["Metadata"]["sha256"] == digest
    sidecar = client.get_object(Bucket=bucket, Key=key + ".sha256")["Body"].read().decode()
    assert sidecar == f"{digest}  tiny-7b.Q4_K_M.gguf\n"
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == model.read_bytes()

    again = run_cli(args, upload_env(s3))
    assert again.returncode == 0 and "already holds this file" in again.stdout

    other = gguf_like(tmp_path / "other" / "tiny-7b.Q4_K_M.gguf", seed=2)
    refused = run_cli([*args[:2], str(other), *args[3:]], upload_env(s3))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("model_server: error: ")
    assert "already holds another file" in refused.stderr and "Traceback" not in refused.stderr

    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello\n")
    bad = run_cli([*args[:2], str(not_gguf), *args[3:]], upload_env(s3))
    assert bad.returncode == 2 and "is not a GGUF file" in bad.stderr


# ---- download ---------------------------------------------------------------------------------


def test_signed_download_from_the_bucket_is_verified_and_kept(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    put(s3, bucket, "models/m.gguf", model.read_bytes(), sha(model))
    cache = tmp_path / "cache"
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/models/m.gguf", sha(model), cache)
    progress = Progress()
    got = fetch(download_source(settings), sha(model), cache, progress)
    assert got == cache / "downloads" / f"{sha(model)}.gguf"
    assert got.read_bytes() == model.read_bytes()
    assert downloads(cache) == [got.name]  # no .part, .json or lock left
    (first,) = proxy.gets()
    assert first.path == f"/{bucket}/models/m.gguf" and first.range is None
    assert progress.message() == "downloading model: 100% (3 of 3 MB)"
    # A second start uses the verified copy without a request.
    assert fetch(download_source(settings), sha(model), cache) == got
    assert len(proxy.gets()) == 1


def test_corrupt_object_is_deleted_with_a_clear_error(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    body = bytearray(model.read_bytes())
    body[SIZE // 2] ^= 0xFF  # one flipped bit in storage; the stored sha256 is the right one
    put(s3, bucket, "m.gguf", bytes(body), sha(model))
    cache = tmp_path / "cache"
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", sha(model), cache)
    with pytest.raises(DownloadError) as err:
        fetch(download_source(settings), sha(model), cache)
    message = str(err.value)
    assert f"has sha256 {hashlib.sha256(body).hexdigest()}, expected {sha(model)}" in message
    assert "deleted" in message
    assert downloads(cache) == []  # neither the file nor a .part is kept


def test_object_uploaded_for_another_sha256_fails_before_downloading(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    put(s3, bucket, "m.gguf", model.read_bytes(), sha(model))
    cache = tmp_path / "cache"
    wanted = "ab" * 32
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", wanted, cache)
    with pytest.raises(DownloadError, match=f"uploaded with sha256 {sha(model)}.*nothing"):
        fetch(download_source(settings), wanted, cache)
    assert downloads(cache) == []


def test_a_missing_object_is_named_with_the_upload_command(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/nope.gguf", "0" * 64, tmp_path)
    with pytest.raises(DownloadError, match="HTTP 404.*no such object.*weights upload"):
        fetch(download_source(settings), "0" * 64, tmp_path, attempts=1)


def test_dropped_connection_resumes_with_a_range_request(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    put(s3, bucket, "m.gguf", model.read_bytes(), sha(model))
    cache = tmp_path / "cache"
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", sha(model), cache)
    proxy.cut_after = [1_000_000]
    with mock.patch("model_server.download.BACKOFF_MAX_S", 0.01):
        got = fetch(download_source(settings), sha(model), cache, attempts=3)
    assert got.read_bytes() == model.read_bytes()
    first, second = proxy.gets()
    assert first.range is None and first.cut and first.body_bytes == 1_000_000
    assert second.range == "bytes=1000000-" and second.status == 206
    assert second.body_bytes == SIZE - 1_000_000
    assert proxy.body_bytes() == SIZE  # nothing was downloaded twice
    assert downloads(cache) == [got.name]


def test_a_new_process_resumes_the_part_file_of_one_that_gave_up(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    digest = sha(model)
    put(s3, bucket, "m.gguf", model.read_bytes(), digest)
    cache = tmp_path / "cache"
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", digest, cache)
    proxy.cut_after = [1_250_000]
    with pytest.raises(DownloadError, match="next start resumes from 1 MB"):
        fetch(download_source(settings), digest, cache, attempts=1)
    part = cache / "downloads" / f"{digest}.gguf.part"
    assert part.stat().st_size == 1_250_000
    assert (cache / "downloads" / f"{digest}.gguf.part.json").is_file()

    got = fetch(download_source(settings), digest, cache)
    assert got.read_bytes() == model.read_bytes()
    assert proxy.gets()[-1].range == "bytes=1250000-" and proxy.gets()[-1].status == 206
    assert proxy.body_bytes() == SIZE
    assert downloads(cache) == [got.name]


def test_server_that_ignores_range_means_starting_over(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    put(s3, bucket, "m.gguf", model.read_bytes(), sha(model))
    cache = tmp_path / "cache"
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", sha(model), cache)
    proxy.cut_after = [700_000]
    proxy.strip_range = True  # upstream answers 200 with the whole object
    with mock.patch("model_server.download.BACKOFF_MAX_S", 0.01):
        got = fetch(download_source(settings), sha(model), cache, attempts=3)
    assert got.read_bytes() == model.read_bytes()  # not the first 700 kB twice
    second = proxy.gets()[1]
    assert second.range == "bytes=700000-" and second.status == 200
    assert second.body_bytes == SIZE


def test_orphaned_partial_downloads_are_removed(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    put(s3, bucket, "m.gguf", model.read_bytes(), sha(model))
    cache = tmp_path / "cache"
    folder = cache / "downloads"
    folder.mkdir(parents=True)
    old_model = "c" * 64
    legacy = folder / f".{old_model}.gguf.part4242"  # what the previous code left per process
    legacy.write_bytes(b"x" * 1000)
    os.utime(legacy, (time.time() - 3600, time.time() - 3600))
    (folder / f"{old_model}.gguf.part").write_bytes(b"y" * 1000)
    (folder / f"{old_model}.gguf.part.json").write_text("{}")
    kept = folder / f"{'d' * 64}.gguf"  # a verified model of an earlier release stays
    kept.write_bytes(b"z")
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", sha(model), cache)
    got = fetch(download_source(settings), sha(model), cache)
    assert downloads(cache) == sorted([got.name, kept.name])


def test_a_part_being_written_by_a_live_process_is_not_removed(tmp_path: Path) -> None:
    import fcntl

    folder = tmp_path / "downloads"
    folder.mkdir()
    other = "e" * 64
    (folder / f"{other}.gguf.part").write_bytes(b"1")
    with open(folder / f"{other}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert remove_orphans(folder, keep="f" * 64) == []
    assert remove_orphans(folder, keep="f" * 64) != []
    assert list(folder.iterdir()) == []


# ---- a server that checks signatures ----------------------------------------------------------


@pytest.fixture(scope="module")
def s3_checking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """moto with request authentication on: after the first three (IAM set-up) actions, every
    S3 request must carry a valid SigV4 signature of a key moto's IAM knows.
    Yields (endpoint, {"access": ..., "secret": ..., "bucket": ...})."""
    import json

    import boto3
    from botocore.config import Config

    from devstack.process import ServerProcess, child_env, free_port, python_module

    port = free_port()
    env = child_env(
        {
            "AWS_ACCESS_KEY_ID": "setup",
            "AWS_SECRET_ACCESS_KEY": "setup",
            "AWS_DEFAULT_REGION": "us-east-1",
            "INITIAL_NO_AUTH_ACTION_COUNT": "3",
        }
    )
    server = ServerProcess(
        "moto-auth",
        python_module("moto.server", "-H", "127.0.0.1", "-p", str(port)),
        env,
        port,
        tmp_path_factory.mktemp("moto-auth"),
        ready_path="/moto-api/data.json",  # not an AWS action, so not counted
    ).start()
    try:
        server.wait_ready(60)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="operator")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
        policy["Statement"][0]["Resource"] = "*"
        iam.put_user_policy(UserName="operator", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            config=Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket="mm-models")
        client.put_object(
            Bucket="mm-models",
            Key="models/m.gguf",
            Body=gguf_like(tmp_path_factory.mktemp("model") / "m.gguf").read_bytes(),
        )
        yield endpoint, {"access": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        server.stop()


def checked_settings(endpoint: str, cache: Path, access: str, secret: str) -> Settings:
    env = {
        "MOVIEMIND_MODEL_URL": "s3://mm-models/models/m.gguf",
        "MOVIEMIND_MODEL_SHA256": sha(gguf_like(cache.parent / "expected.gguf")),
        "MOVIEMIND_MODEL_S3_ENDPOINT": endpoint,
        "MOVIEMIND_MODEL_CACHE_DIR": str(cache),
    }
    if access:
        env |= {"MOVIEMIND_MODEL_S3_ACCESS_KEY": access, "MOVIEMIND_MODEL_S3_SECRET_KEY": secret}
    return load_settings(env)


def test_a_server_that_checks_signatures_accepts_them_also_for_a_resumed_range(
    s3_checking: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    endpoint, key = s3_checking
    with faulty_proxy(endpoint) as proxy:
        settings = checked_settings(proxy.endpoint, tmp_path / "c", key["access"], key["secret"])
        proxy.cut_after = [500_000]
        with mock.patch("model_server.download.BACKOFF_MAX_S", 0.01):
            got = fetch(download_source(settings), settings.sha256, tmp_path / "c", attempts=2)
        assert sha(got) == settings.sha256
        assert [(g.range, g.status) for g in proxy.gets()] == [(None, 200), ("bytes=500000-", 206)]


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [("wrong-secret", "HTTP 403 Forbidden SignatureDoesNotMatch (access denied"), ("", "HTTP 403")],
)
def test_a_wrong_or_missing_key_is_refused_with_a_hint(
    s3_checking: tuple[str, dict[str, str]], tmp_path: Path, secret: str, fragment: str
) -> None:
    endpoint, key = s3_checking
    settings = checked_settings(endpoint, tmp_path / "c", key["access"] if secret else "", secret)
    with pytest.raises(DownloadError) as err:
        fetch(download_source(settings), settings.sha256, tmp_path / "c")
    assert fragment.lower() in str(err.value).lower()
    assert "MOVIEMIND_MODEL_S3_ACCESS_KEY" in str(err.value)
    assert downloads(tmp_path / "c") == []


# ---- signing and settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", ["https://us-ord-1.linodeobjects.com", "http://127.0.0.1:9000"]
)
def test_sigv4_signature_matches_botocore(endpoint: str) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    obj = S3Object(
        endpoint=endpoint,
        bucket="mm-models",
        key="models/Mistral 7B+v0.1~x=y.gguf",
        region=region_for(endpoint),
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    now = dt.datetime(2026, 12, 5, 23, 0, 0, tzinfo=dt.UTC)
    extra = {"Range": "bytes=1048576-", "If-Range": '"9b2cf535f27731c974343645a3985328"'}
    mine = signed_headers(obj, "GET", extra, now=now)
    request = AWSRequest(method="GET", url=obj.url, headers=dict(extra))
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = S3SigV4Auth(Credentials(obj.access_key, obj.secret_key), "s3", obj.region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        signer.add_auth(request)
    assert mine["Authorization"] == request.headers["Authorization"]
    assert mine["X-Amz-Date"] == request.headers["X-Amz-Date"] == "20261205T230000Z"


def test_region_comes_from_a_linode_endpoint() -> None:
    assert region_for("https://us-ord-1.linodeobjects.com") == "us-ord-1"
    assert region_for("https://fr-par-1.linodeobjects.com/") == "fr-par-1"
    assert region_for("http://127.0.0.1:9000") == "us-east-1"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"URL": "s3://bucket/m.gguf", "SHA256": "a" * 64}, "S3_ENDPOINT must be"),
        (
            {"URL": "s3://bucket/m.gguf", "SHA256": "a" * 64, "S3_ENDPOINT": "ftp://x"},
            "S3_ENDPOINT must be",
        ),
        ({"URL": "s3://bucket", "SHA256": "a" * 64, "S3_ENDPOINT": "https://x"}, "s3://BUCKET/KEY"),
        (
            {
                "URL": "s3://bucket/m.gguf",
                "SHA256": "a" * 64,
                "S3_ENDPOINT": "https://us-ord-1.linodeobjects.com",
                "S3_ACCESS_KEY": "k",
            },
            "S3_SECRET_KEY, or neither",
        ),
        ({"URL": "https://h/m.gguf", "SHA256": "a" * 64, "S3_ENDPOINT": "https://x"}, "not an s3"),
        ({"URL": "s3://bucket/m.gguf"}, "SHA256 must be"),
        ({"DOWNLOAD_ATTEMPTS": "0"}, "MOVIEMIND_MODEL_DOWNLOAD_ATTEMPTS"),
    ],
)
def test_object_storage_settings_are_checked_at_start(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(fragment)):
        load_settings({f"MOVIEMIND_MODEL_{k}": v for k, v in env.items()})


def test_a_bad_object_storage_setting_stops_the_server_with_one_line(tmp_path: Path) -> None:
    done = run_cli([], model_env(tmp_path, url="s3://mm-models/m.gguf", sha256="a" * 64))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("model_server: error: MOVIEMIND_MODEL_URL is an s3:// URL, so ")
    assert "MOVIEMIND_MODEL_S3_ENDPOINT must be" in line


def test_docker_health_check_is_liveness_with_a_short_start_period() -> None:
    """The download runs behind an open port, so the image's health check needs no grace period
    sized for a multi-GB download (it was 600 s, and a restart began the file again)."""
    text = (Path(__file__).resolve().parents[3] / "model_server" / "Dockerfile").read_text()
    check = re.search(r"^HEALTHCHECK (.*?)\n(?!\s)", text.replace("\\\n", " "), re.M | re.S)
    assert check, "model_server/Dockerfile has a HEALTHCHECK"
    assert "/healthz" in check[1] and "/readyz" not in check[1]
    start = re.search(r"--start-period=(\d+)s", check[1])
    assert start and int(start[1]) <= 120


def test_a_model_that_cannot_fit_on_disk_fails_before_downloading(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    import shutil

    bucket = s3.create_bucket()
    model = gguf_like(tmp_path / "m.gguf")
    put(s3, bucket, "m.gguf", model.read_bytes(), sha(model))
    cache = tmp_path / "cache"
    settings = settings_for(proxy.endpoint, f"s3://{bucket}/m.gguf", sha(model), cache)
    full = shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)  # type: ignore[attr-defined]
    with (
        mock.patch("model_server.download.shutil.disk_usage", return_value=full),
        pytest.raises(DownloadError, match="not enough disk space.*3 MB more needed, 0 MB free"),
    ):
        fetch(download_source(settings), sha(model), cache)
    assert downloads(cache) == []
