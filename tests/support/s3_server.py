"""A real S3-compatible server on loopback for tests: moto's standalone server as a subprocess."""

from __future__ import annotations

import uuid
from pathlib import Path

from devstack.process import ServerProcess, child_env, free_port, python_module
from moviemind_core.storage import S3Settings

ACCESS_KEY = "test"
SECRET_KEY = "test"


class S3Server:
    """`python -m moto.server` on 127.0.0.1:port, a devstack ServerProcess (process group, log)."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # Keep the server's own clients away from any real account or config on this machine.
        aws = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        # moto answers ListBuckets on / once it is up.
        self.server = ServerProcess(
            "moto",
            python_module("moto.server", "-H", "127.0.0.1", "-p", str(self.port)),
            child_env(aws),
            self.port,
            log_dir,
            ready_path="/",
        ).start()

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
        return self.server.log()

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.server.wait_ready(timeout)

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
        self.server.stop()


def start_s3_server(log_dir: Path) -> S3Server:
    """Start moto on a free loopback port and wait until it answers."""
    s = S3Server(log_dir)
    try:
        s.wait_ready()
    except BaseException:
        s.stop()
        raise
    return s
