"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temp dir, on a free port.

Needs Debian's `postgresql` package (its binaries live in /usr/lib/postgresql/N/bin, off PATH).
PostgreSQL refuses to run as root, so under root (CI containers) the cluster belongs to and runs
as `nobody` through `runuser`. Without initdb the fixture fails with the package to install:
skipping would let a machine without PostgreSQL pass the database tests by not running them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import free_port

USER = "moviemind"
RUN_AS = "nobody"


def bin_dir() -> Path:
    """The directory with initdb/pg_ctl: on PATH, else the newest Debian install."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not candidates:
        pytest.fail(
            "PostgreSQL's initdb was not found (on PATH or in /usr/lib/postgresql/*/bin): "
            "install Debian's `postgresql` package (apt-get install postgresql) for the "
            "feedback database tests",
            pytrace=False,
        )
    return Path(candidates[-1]).parent


class PostgresCluster:
    """A cluster in its own directory; `stop()`/`start()` simulate the database going away."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0
        # Not pytest's tmp_path: under root that lives in a 0700 directory `nobody` cannot enter.
        self.dir = Path(tempfile.mkdtemp(prefix="moviemind-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"
        if self.as_root:
            shutil.chown(self.dir, RUN_AS)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            cwd=self.dir,  # a directory `nobody` may enter, whatever the caller's is
            timeout=120,
        )
        if check and done.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}\n{log}")
        return done

    def init(self) -> PostgresCluster:
        """initdb with trust authentication for the local test user (loopback only)."""
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        return self

    def start(self) -> None:
        """Start (or restart) on the same port and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
            " -c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: as if it crashed)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """A started throwaway cluster, destroyed (stopped, files removed) on exit."""
    cluster = PostgresCluster().init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A running throwaway PostgreSQL; its `url` reaches the `postgres` database."""
    with running_postgres() as cluster:
        yield cluster


def new_database(cluster: PostgresCluster, name: str) -> str:
    """A fresh empty database in the cluster (dropped first if a rerun left it); its URL."""
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.url.rsplit("/", 1)[0] + "/" + name
