"""One server subprocess on a loopback port: its own process group, a log file, readiness, a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_S = 10.0
LOG_TAIL_CHARS = 4000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def child_env(extra: Mapping[str, str], *, inherit_moviemind: bool = True) -> dict[str, str]:
    """This process's environment plus `extra`, unbuffered output.

    inherit_moviemind=False drops every MOVIEMIND_* variable first: a tier rejects names it does
    not know, and a setting meant for a deployment (an API key) must not leak into a local stack.
    """
    env = {
        k: v for k, v in os.environ.items() if inherit_moviemind or not k.startswith("MOVIEMIND_")
    }
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def python_module(module: str, *args: str) -> list[str]:
    """The command line running `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


class ServerProcess:
    """A subprocess serving HTTP on 127.0.0.1:port.

    It runs in its own session (process group): a terminal's Ctrl-C reaches only the parent, which
    stops it once, and `stop()`/`kill()` reach its children too. Output goes to
    `<log_dir>/<name>-<port>.log` (appended across restarts), or to this terminal when log_dir is
    None.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        port: int,
        log_dir: Path | None,
        *,
        ready_path: str = "/readyz",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self.ready_path = ready_path
        self.log_path: Path | None = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / f"{name}-{port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServerProcess:
        """Spawn the process (does not wait for readiness); returns self."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        out: IO[bytes] | None = None
        if self.log_path is not None:
            self._log = out = open(self.log_path, "ab")  # noqa: SIM115 -- closed by stop()
        self._proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
        )
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The running (or last) process; an error before start()."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of the log file ('' when output goes to the terminal or nothing was written)."""
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 120.0, path: str | None = None) -> None:
        """Poll GET <path> (default its ready_path) until 200; RuntimeError with the log if it
        exits or is not ready in time."""
        url = self.url + (path or self.ready_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise RuntimeError(f"{self.name} exited with code {code}{self._log_note()}")
            # trust_env=False: a proxy configured for package downloads must not sit on loopback.
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({url}){self._log_note()}")

    def _log_note(self) -> str:
        if self.log_path is None:
            return " (its output is above)"
        return f"; its log ends:\n{self.log()}"

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a crashed machine: no clean shutdown."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self._close_log()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM to the process group, SIGKILL after `timeout`; always reaps; safe to repeat."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def restart(self) -> ServerProcess:
        """Stop, then start again with the same command, settings and port (does not wait)."""
        self.stop()
        return self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
