"""`make demo`'s launcher (devstack.foreground) with the real servers: Ctrl-C and SIGTERM stop both,
even when it was started in the background with SIGINT ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The field after the parenthesised command name (which may hold spaces) is the state,
            # then the parent pid.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_both_servers(
    sample_index: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOVIEMIND_")},
        "MOVIEMIND_MODEL_PORT": str(free_port()),
        "MOVIEMIND_EDGE_PORT": str(free_port()),
        "MOVIEMIND_MODEL_THREADS": "1",
        "MOVIEMIND_EDGE_INDEX": str(sample_index),
        "DISPLAY": "",
    }
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        # Started as a script's `cmd &` starts it: SIGINT inherited as ignored.
        demo = subprocess.Popen(
            [sys.executable, "-m", "devstack.foreground"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
            preexec_fn=ignore_sigint,  # noqa: PLW1509 (no threads here)
        )
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while "moviemind is running" not in log.read_text():
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        servers = children(demo.pid)
        assert len(servers) == 2, servers
        demo.send_signal(signum)
        demo.wait(40)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in servers if alive(p)], log.read_text()
        assert "stopping" in log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
        for p in servers:
            if alive(p):
                os.kill(p, signal.SIGKILL)
