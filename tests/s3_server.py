"""A real S3-compatible server on loopback for tests: moto's standalone server as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from moviemind_core.storage import S3Settings
from tests.servers import ROOT, free_port

ACCESS_KEY = "test"
SECRET_KEY = "test"


class S3Server:
    """`python -m moto.server` on 127.0.0.1:port; `stop()` kills its whole process group."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"moto-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open for the server's lifetime; closed in stop())
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # Keep the server's own clients away from any real account or config on this machine.
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def env(self) -> dict[str, str]:
        """The MOVIEMIND_S3_* variables that point a process at this server."""
        return {
            "MOVIEMIND_S3_ENDPOINT": self.endpoint,
            "MOVIEMIND_S3_REGION": "us-east-1",
            "MOVIEMIND_S3_ACCESS_KEY": ACCESS_KEY,
            "MOVIEMIND_S3_SECRET_KEY": SECRET_KEY,
        }

    @property
    def settings(self) -> S3Settings:
        return S3Settings.from_env(self.env)

    def client(self):
        return self.settings.client()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                # moto answers ListBuckets on / once it is up.
                if httpx.get(self.endpoint + "/", timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"moto server not ready after {timeout}s:\n{self.log()}")

    def create_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (a fresh name per test keeps tests independent on one server)."""
        name = name or f"mm-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under prefix, sorted."""
        out: list[str] = []
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        ):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def start_s3_server(log_dir: Path) -> S3Server:
    """Start moto on a free loopback port and wait until it answers."""
    s = S3Server(log_dir)
    try:
        s.wait_ready()
    except BaseException:
        s.stop()
        raise
    return s
