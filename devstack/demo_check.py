"""`make test`'s demo check: the README's first command as a new user runs it, in a copy of the tree.

    python -m devstack.demo_check [--keep]

1. Copies the working tree (tracked and untracked files, nothing ignored: no .venv, no var/) to a
   temporary directory, as a fresh clone would be.
2. Runs `make demo` there in the background the way a script or CI runner does (`cmd &`: SIGINT
   inherited as ignored): `scripts/setup.sh demo` alone makes its .venv (pip's cache keeps this to
   minutes), the models are exported, the sample index built, both servers started.
3. Asks one `/v1/recommend` and requires model-written reasons.
4. Stops it as Ctrl-C does (SIGINT to the job's process group), starts it again and stops it with
   SIGTERM to the launcher, then once more with SIGTERM to make alone (`timeout make demo`); each
   time no server may be left listening.
Prints progress and ends with a one-line summary; exits 1 on any failure with the log's tail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devstack.process import LOOPBACK, ROOT, free_port

FIRST_START_TIMEOUT_S = 1200.0
RESTART_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
READY_LINE = "moviemind is running"
PICKS = 2


class DemoCheckFailed(Exception):
    """The demo did not do what the README promises; the message says what."""


def copy_tree(dest: Path) -> int:
    """Copy what a fresh clone holds (plus uncommitted changes) to dest; returns the file count."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    count = 0
    for raw in listed:
        if not raw:
            continue
        src = ROOT / raw.decode()
        if src.is_symlink() or not src.is_file():
            continue  # deleted but not yet committed, or a developer's link
        target = dest / raw.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        count += 1
    return count


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((LOOPBACK, port)) == 0


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DemoRun:
    """One `make demo` in the copy, in its own process group (a terminal's foreground job)."""

    def __init__(self, tree: Path, env: dict[str, str], log: Path) -> None:
        self.tree = tree
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 -- closed in stopped()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["make", "demo"],
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ignore_sigint,  # noqa: PLW1509 -- no threads in this process
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float) -> float:
        """Seconds until the launcher said the demo is running; echoes the log's steps meanwhile."""
        deadline = self.started + timeout
        shown = 0
        while True:
            lines = self.text().splitlines()
            for line in lines[shown:]:
                if line.startswith(("==>", "built ")):
                    print(f"    [{time.monotonic() - self.started:5.0f} s] {line}", flush=True)
            shown = len(lines)
            if any(READY_LINE in line for line in lines):
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                raise DemoCheckFailed(f"make demo exited with code {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise DemoCheckFailed(f"make demo was not serving after {timeout:.0f} s")
            time.sleep(1)

    def launcher_pid(self) -> int:
        """The pid of `python -m devstack.foreground` (make's child)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and b"devstack.foreground" in cmdline:
                return int(entry.name)
        raise DemoCheckFailed("no `python -m devstack.foreground` under make demo")

    def stopped(self, ports: list[int]) -> None:
        """Wait for make to exit and every port to close."""
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise DemoCheckFailed(
                f"make demo still running {STOP_TIMEOUT_S:.0f} s after the signal"
            ) from exc
        finally:
            self._log.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while (still := [p for p in ports if listening(p)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        if still:
            raise DemoCheckFailed(f"a server is still listening on {still} after the demo stopped")

    def kill(self) -> None:
        """After a failure: stop the demo the way a user would, then anything of the copy left.

        The servers run in sessions of their own, so killing make's process group alone would
        leave them serving: ask the launcher first, then SIGKILL every process of the copy.
        """
        if self.proc.poll() is None:
            with contextlib.suppress(DemoCheckFailed, ProcessLookupError):
                os.kill(self.launcher_pid(), signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT_S / 2)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in processes_under(self.tree):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


def processes_under(tree: Path) -> list[int]:
    """Pids of processes whose program or working directory lies in `tree` (the copy's .venv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for link in ("exe", "cwd"):
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / link)).is_relative_to(tree):
                    found.append(int(entry.name))
                    break
    return found


def recommend(edge_port: int) -> dict:
    """One recommendation with model reasons, as the page asks for it (non-streamed)."""
    # Two picks: the edge gives all reasons one time budget, and a loaded machine must still fit
    # at least one model reason in it.
    body = json.dumps({"liked": ["Heat", "Alien"], "query": "tense", "k": PICKS}).encode()
    req = urllib.request.Request(
        f"http://{LOOPBACK}:{edge_port}/v1/recommend",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=120) as r:
        return json.load(r)


def check_answer(doc: dict) -> int:
    """The number of model-written reasons; DemoCheckFailed unless the answer is a real one."""
    recs = doc.get("recommendations") or []
    if len(recs) != PICKS or doc.get("degraded"):
        raise DemoCheckFailed(
            f"expected {PICKS} undegraded recommendations, got {json.dumps(doc)[:600]}"
        )
    by_model = sum(1 for r in recs if r.get("reason_source") == "model" and r.get("reason"))
    if by_model == 0:
        raise DemoCheckFailed(f"no reason came from the model: {json.dumps(doc)[:600]}")
    return by_model


def run_check(tree: Path) -> str:
    """The whole check in `tree`; returns the summary line."""
    model_port, edge_port = free_port(), free_port()
    ports = [model_port, edge_port]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOVIEMIND_", "VIRTUAL_ENV"))}
    env.update(MOVIEMIND_MODEL_PORT=str(model_port), MOVIEMIND_EDGE_PORT=str(edge_port), DISPLAY="")
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    times: list[str] = []

    steps = [
        ("Ctrl-C (SIGINT to its process group)", None, FIRST_START_TIMEOUT_S),
        ("SIGTERM to the launcher", "launcher", RESTART_TIMEOUT_S),
        ("SIGTERM to make alone", "make", RESTART_TIMEOUT_S),
    ]
    for n, (how, target, timeout) in enumerate(steps, 1):
        print(f"==> demo check {n}/3: make demo, then {how}", flush=True)
        run = DemoRun(tree, env, tree / f"demo-check-{n}.log")
        try:
            took = run.wait_serving(timeout)
            times.append(f"{took:.0f} s")
            print(f"    serving after {took:.0f} s", flush=True)
            if n == 1:
                reasons = check_answer(recommend(edge_port))
                print(
                    f"    /v1/recommend: {PICKS} picks, {reasons} with a model reason", flush=True
                )
            if target is None:
                os.killpg(run.proc.pid, signal.SIGINT)
            elif target == "launcher":
                os.kill(run.launcher_pid(), signal.SIGTERM)
            else:
                os.kill(run.proc.pid, signal.SIGTERM)
            run.stopped(ports)
            print("    stopped; nothing listening", flush=True)
        except BaseException:
            run.kill()
            raise
    return (
        f"demo check passed: serving after {times[0]} from nothing (then {', '.join(times[1:])}),"
        f" model reasons answered, Ctrl-C / SIGTERM / SIGTERM to make left no server listening"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make demo as a new user runs it")
    parser.add_argument("--keep", action="store_true", help="keep the copy (and its .venv)")
    args = parser.parse_args(argv)
    tree = Path(tempfile.mkdtemp(prefix="moviemind-demo-check."))
    ok = False
    try:
        print(f"==> demo check: copying the tree ({copy_tree(tree)} files) to {tree}", flush=True)
        print(run_check(tree), flush=True)
        ok = True
    except DemoCheckFailed as exc:
        logs = sorted(tree.glob("demo-check-*.log"))
        tail = logs[-1].read_text(errors="replace")[-6000:] if logs else ""
        print(f"{tail}\ndemo check FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tree, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
