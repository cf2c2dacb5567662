"""Start real servers (model server, edge) as subprocesses on loopback for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A subprocess serving HTTP on 127.0.0.1:port; stopped (and reaped) by stop()."""

    def __init__(
        self, name: str, args: list[str], env: Mapping[str, str], port: int, log_dir: Path
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 -- lives as long as the process
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, path: str = "/readyz", timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """Hard kill (a crashed region), no clean shutdown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def start_model_server(log_dir: Path, port: int | None = None, **env: str) -> Server:
    port = port or free_port()
    s = Server(
        "model_server",
        ["-m", "model_server"],
        {"MOVIEMIND_MODEL_PORT": str(port), "MOVIEMIND_MODEL_THREADS": "1", **env},
        port,
        log_dir,
    )
    try:
        s.wait_ready(timeout=180)
    except BaseException:
        s.stop()
        raise
    return s


def start_edge(
    log_dir: Path,
    upstreams: list[str],
    index: str = "var/index",
    port: int | None = None,
    wait: bool = True,
    **env: str,
) -> Server:
    port = port or free_port()
    base = {
        "MOVIEMIND_EDGE_PORT": str(port),
        "MOVIEMIND_EDGE_INDEX": index,
        "MOVIEMIND_EDGE_UPSTREAMS": ",".join(upstreams),
        "MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE": "0",
    }
    s = Server("edge", ["-m", "edge"], {**base, **env}, port, log_dir)
    if wait:
        try:
            s.wait_ready(timeout=120)
        except BaseException:
            s.stop()
            raise
    return s
