"""`make demo`: start the model server (SmolLM2) and the edge on loopback, print the URL; Ctrl-C,
SIGTERM or SIGHUP stops both servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import webbrowser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_PORT = os.environ.get("MOVIEMIND_MODEL_PORT", "8001")
EDGE_PORT = os.environ.get("MOVIEMIND_EDGE_PORT", "8000")


def wait_ready(name: str, url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"error: the {name} exited with code {proc.returncode} (its output is above)"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"error: the {name} was not ready after {timeout:.0f}s ({url})")


def spawn(module: str, env: dict[str, str]) -> subprocess.Popen:
    # Own session: a terminal's Ctrl-C reaches only this script, which then stops each server
    # once (a second signal during uvicorn's shutdown prints a traceback).
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env=env, start_new_session=True
    )


def _interrupt(signum: int, _frame: object) -> None:
    # The servers run in their own sessions, so a service manager's, `timeout`'s or CI's SIGTERM
    # reaches only this script: turn it into the same path as Ctrl-C, which stops them.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("MOVIEMIND_EDGE_UPSTREAMS", f"http://127.0.0.1:{MODEL_PORT}")
    procs: list[subprocess.Popen] = []

    def stop(*_: object) -> None:
        # A second signal while the servers shut down must not cut their stop short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        engine = env.get("MOVIEMIND_MODEL_ENGINE") or "ctransformers"
        if (env.get("MOVIEMIND_MODEL_WEIGHTS") or "as_is") == "f16":
            engine += ", f16 weights"
        print(
            f"==> starting the model server (SmolLM2-135M-Instruct, {engine}) on 127.0.0.1:"
            + MODEL_PORT,
            flush=True,
        )
        procs.append(spawn("model_server", env))
        wait_ready("model server", f"http://127.0.0.1:{MODEL_PORT}/readyz", procs[-1], 300)
        print(
            "==> starting the edge (sample index var/index) on 127.0.0.1:" + EDGE_PORT, flush=True
        )
        procs.append(spawn("edge", env))
        wait_ready("edge", f"http://127.0.0.1:{EDGE_PORT}/readyz", procs[-1], 120)
        url = f"http://127.0.0.1:{EDGE_PORT}/"
        print(
            f"\n  moviemind is running: {url}\n  API: {url}schema   Ctrl-C stops both servers.\n",
            flush=True,
        )
        if os.environ.get("DISPLAY") or sys.platform == "darwin":
            webbrowser.open(url)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("error: a server stopped; shutting down the other", file=sys.stderr)
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
    finally:
        stop()


if __name__ == "__main__":
    main()
