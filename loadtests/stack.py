"""A local moviemind stack on loopback for the load tests: model servers, delay proxies, an edge.

Every process is started in its own session so a Ctrl-C in the terminal reaches only the runner,
which then stops them in order (`LocalStack.close`, called from a `finally`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from loadtests.proxy import DelayProxy

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The runner's environment without any MOVIEMIND_* setting, plus `extra`.

    The model server refuses unknown MOVIEMIND_MODEL_* names and a stray MOVIEMIND_EDGE_API_KEY
    meant for a deployment must not leak into the local edge.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEMIND_")}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of a process's main thread.

    The edge embeds and searches on its event-loop thread, so the share of runnable time it got
    a CPU converts wall-clock timings measured inside it into CPU time on a busy machine.
    """
    on_cpu, waiting, *_ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Proc:
    """One server subprocess on 127.0.0.1:port with its log file."""

    def __init__(
        self, name: str, module: str, env: dict[str, str], port: int, log_dir: Path
    ) -> None:
        self.name = name
        self.module = module
        self.env = env
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> Proc:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=ROOT,
            env=clean_env(self.env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self.proc.returncode if self.proc else None
                raise RuntimeError(
                    f"{self.name} exited with code {code}; its log ends:\n{self.tail()}"
                )
            try:
                if httpx.get(self.url + path, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"{self.name} not ready after {timeout:.0f} s; its log ends:\n{self.tail()}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crashed machine: no clean shutdown."""
        if self.running:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; always reaps and closes the log."""
        if self.running:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


class LocalStack:
    """Model servers (optionally behind delay proxies) and one edge, all on 127.0.0.1.

    regions: list of (name, one-way delay in seconds or None for a direct connection); an empty
    list starts no model server (the edge then points at a closed port, enough for /v1/search).
    """

    def __init__(
        self,
        work_dir: Path,
        index_dir: Path,
        regions: list[tuple[str, float | None]],
        *,
        model_env: dict[str, str] | None = None,
        edge_env: dict[str, str] | None = None,
        log=print,
    ) -> None:
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.index_source = index_dir
        self.served_index = work_dir / "served-index"
        self.regions = regions
        self.model_env = model_env or {}
        self.edge_env = edge_env or {}
        self.api_key = secrets.token_urlsafe(16)
        self.models: dict[str, Proc] = {}
        self.proxies: dict[str, DelayProxy] = {}
        self.edge: Proc | None = None
        self.upstream_urls: dict[str, str] = {}
        self._log = log

    def start(self) -> LocalStack:
        """Start everything and wait until the edge is ready; cleans up if anything fails."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        # The edge serves a copy, so the index-swap phase can rebuild it without touching var/index.
        if self.served_index.exists():
            shutil.rmtree(self.served_index)
        shutil.copytree(self.index_source, self.served_index)
        for name, _delay in self.regions:
            port = free_port()
            env = {
                "MOVIEMIND_MODEL_PORT": str(port),
                "MOVIEMIND_MODEL_THREADS": "1",
                **self.model_env,
            }
            self.models[name] = Proc(
                f"model-{name}", "model_server", env, port, self.log_dir
            ).start()
        for name, delay in self.regions:
            model = self.models[name]
            if delay is None:
                self.upstream_urls[name] = model.url
            else:
                proxy = DelayProxy("127.0.0.1", model.port, delay, name=name).start()
                self.proxies[name] = proxy
                self.upstream_urls[name] = proxy.url
        upstreams = list(self.upstream_urls.values()) or [f"http://{LOOPBACK}:{free_port()}"]
        edge_port = free_port()
        env = {
            "MOVIEMIND_EDGE_PORT": str(edge_port),
            "MOVIEMIND_EDGE_INDEX": str(self.served_index),
            "MOVIEMIND_EDGE_UPSTREAMS": ",".join(upstreams),
            "MOVIEMIND_EDGE_API_KEY": self.api_key,
            "MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE": "0",
            "MOVIEMIND_EDGE_RELOAD_INTERVAL_S": "0",
            "MOVIEMIND_EDGE_INDEX_CACHE_DIR": str(self.work_dir / "edge-cache"),
            "MOVIEMIND_EDGE_LOG_LEVEL": "warning",
            **self.edge_env,
        }
        self.edge = Proc("edge", "edge", env, edge_port, self.log_dir).start()
        for name, model in self.models.items():
            self._log(f"  waiting for model server {name} on {model.url}")
            model.wait_ready(240)
        self._log(f"  waiting for the edge on {self.edge.url}")
        self.edge.wait_ready(180)

    @property
    def edge_url(self) -> str:
        assert self.edge is not None
        return self.edge.url

    def kill_model(self, name: str) -> None:
        self.models[name].kill()

    def restart_model(self, name: str) -> None:
        """Start the model server of `name` again on the same port (does not wait)."""
        old = self.models[name]
        old.stop()
        self.models[name] = Proc(old.name, old.module, old.env, old.port, self.log_dir).start()

    def readyz(self) -> dict:
        return httpx.get(self.edge_url + "/readyz", timeout=5, trust_env=False).json()

    def metrics_text(self) -> str:
        return httpx.get(self.edge_url + "/metrics", timeout=5, trust_env=False).text

    def close(self) -> None:
        """Stop the edge, the proxies and the model servers; safe to call twice."""
        if self.edge is not None:
            self.edge.stop()
        for proxy in self.proxies.values():
            proxy.stop()
        for model in self.models.values():
            model.stop()
        # The logs and samples stay for a post-mortem; the 25 MB index copy does not.
        shutil.rmtree(self.served_index, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
