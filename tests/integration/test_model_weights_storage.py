"""`python -m model_server` with its model in the deployment's bucket (issue 20, defect 7).

Real processes on loopback: moto as the S3 server, the model server, and a recording proxy
between them that can slow the download down (tests/support/faulty_proxy.py). The embedded
SmolLM2 (98 MB) is uploaded with `python -m model_server weights upload`, then:
the port opens at once and /readyz reports the download while /healthz says alive; a server
killed mid-download resumes the `.part` with a Range request; a corrupt object stops the server
with one line and leaves nothing in the cache.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from model_server.settings import embedded_model_path
from tests.support.faulty_proxy import FaultyProxy, faulty_proxy
from tests.support.model_server_helpers import (
    PYTHON,
    REPO,
    free_port,
    model_env,
    run_cli,
    shared_cache,
)
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server, start_s3_server

PROGRESS = re.compile(r"downloading model: (\d+)% \((\d+) of (\d+) MB\)")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3_server(tmp_path_factory.mktemp("s3-logs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def uploaded(s3: S3Server) -> tuple[str, str]:
    """(s3:// URL, sha256) of the embedded SmolLM2, uploaded the documented way."""
    bucket = s3.create_bucket()
    env = model_env(Path("unused"))
    env.update(s3.env)
    args = ["weights", "upload", str(embedded_model_path()), "--bucket", bucket]
    done = run_cli([*args, "--endpoint", s3.endpoint], env, timeout=300)
    assert done.returncode == 0, done.stderr
    url = re.search(r"MOVIEMIND_MODEL_URL=(\S+)", done.stdout)[1]
    sha = re.search(r"MOVIEMIND_MODEL_SHA256=(\S+)", done.stdout)[1]
    return url, sha


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's model cache (the ctransformers rewrite of SmolLM2 is made once), without
    any downloaded file."""
    path = shared_cache(tmp_path_factory)
    shutil.rmtree(path / "downloads", ignore_errors=True)
    return path


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[FaultyProxy]:
    with faulty_proxy(s3.endpoint) as p:
        yield p


class Started:
    """A `python -m model_server` process started without waiting for readiness."""

    def __init__(self, cache: Path, log_dir: Path, **settings: object) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"model_server_{self.port}.log"
        env = model_env(cache, port=self.port, **settings)
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "model_server"],
                cwd=REPO,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> httpx.Response | None:
        """GET path, or None while nothing listens."""
        try:
            return httpx.get(self.base + path, timeout=5)
        except httpx.TransportError:
            return None

    def wait_for(
        self, path: str, predicate: Callable[[httpx.Response], bool], timeout: float = 120
    ) -> httpx.Response:
        """Poll path until predicate(response) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            r = self.get(path)
            if r is not None and predicate(r):
                return r
            time.sleep(0.1)
        raise AssertionError(f"{path} never matched in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        """Terminate (then kill) the process if it still runs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


def s3_settings(url: str, sha: str, endpoint: str) -> dict[str, str]:
    return {
        "url": url,
        "sha256": sha,
        "s3_endpoint": endpoint,
        "s3_access_key": ACCESS_KEY,
        "s3_secret_key": SECRET_KEY,
    }


def test_health_answers_during_a_slow_download_and_a_killed_server_resumes_it(
    uploaded: tuple[str, str], proxy: FaultyProxy, cache: Path, tmp_path: Path
) -> None:
    url, sha = uploaded
    size = embedded_model_path().stat().st_size
    proxy.rate = 6_000_000  # bytes/s: about 16 s for the whole file
    first = Started(cache, tmp_path, **s3_settings(url, sha, proxy.endpoint))
    try:
        # The port opens before the model is there: alive, not ready.
        first.wait_for("/healthz", lambda r: r.status_code == 200, timeout=30)
        ready = first.wait_for(
            "/readyz",
            lambda r: (m := PROGRESS.search(r.text)) is not None and int(m[1]) >= 10,
            timeout=60,
        )
        assert ready.status_code == 503 and ready.headers["retry-after"]
        error = ready.json()["error"]
        assert error["type"] == "not_ready"
        percent, done_mb, total_mb = (int(x) for x in PROGRESS.search(error["message"]).groups())
        assert total_mb == size // 1_000_000 and 0 < done_mb < total_mb and percent < 100
        assert first.get("/healthz").status_code == 200  # Docker's check: alive throughout
        assert first.get("/v1/models").status_code == 503
        metrics = first.get("/metrics").text
        assert "moviemind_model_ready 0.0" in metrics
        downloaded = float(re.search(r"^moviemind_model_download_bytes (\S+)", metrics, re.M)[1])
        assert downloaded > 0
        first.proc.send_signal(signal.SIGKILL)  # as an autoheal restart or a crash would
        first.proc.wait(15)
    finally:
        first.stop()
    part = cache / "downloads" / f"{sha}.gguf.part"
    kept = part.stat().st_size
    assert 0 < kept < size

    proxy.rate = None
    second = Started(cache, tmp_path, **s3_settings(url, sha, proxy.endpoint))
    try:
        second.wait_for("/readyz", lambda r: r.status_code == 200, timeout=180)
        models = second.get("/v1/models").json()
        assert models["data"][0]["id"] == "SmolLM2-135M-Instruct.Q4_1"
        done = httpx.post(
            second.base + "/v1/completions",
            json={"prompt": "A good movie is", "max_tokens": 3, "temperature": 0},
            timeout=60,
        )
        assert done.status_code == 200 and done.json()["choices"][0]["text"]
    finally:
        second.stop()
    resumed = proxy.gets()[-1]
    assert resumed.range == f"bytes={kept}-" and resumed.status == 206
    assert resumed.body_bytes == size - kept  # only the missing bytes crossed the network
    assert "sha256 verified" in second.log()
    final = cache / "downloads" / f"{sha}.gguf"
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]
    assert hashlib.sha256(final.read_bytes()).hexdigest() == sha


def test_a_corrupt_object_stops_the_server_with_one_line_and_keeps_nothing(
    s3: S3Server, proxy: FaultyProxy, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    good = embedded_model_path().read_bytes()[:4_000_000]
    sha = hashlib.sha256(good).hexdigest()
    bad = bytearray(good)
    bad[-1] ^= 1
    s3.client().put_object(Bucket=bucket, Key="m.gguf", Body=bytes(bad), Metadata={"sha256": sha})
    cache = tmp_path / "cache"
    server = Started(cache, tmp_path, **s3_settings(f"s3://{bucket}/m.gguf", sha, proxy.endpoint))
    try:
        assert server.proc.wait(60) == 2
    finally:
        server.stop()
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert lines[-1].startswith("model_server: error: model downloaded from s3://")
    assert f"expected {sha}; deleted it" in lines[-1]
    assert "Traceback" not in server.log()
    assert list((cache / "downloads").iterdir()) == []
