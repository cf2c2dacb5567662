"""The dev-stack tooling: server processes, the foreground runner of `make demo`, machine info,
percentiles, the SSE decoder and benchmark reports. Real processes on loopback, no mocks."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from devstack.foreground import demo_servers
from devstack.machine import CPU_FLAGS, cpu_model_and_flags, machine_info
from devstack.process import ROOT, ServerProcess, child_env, free_port, python_module
from devstack.report import (
    BenchReport,
    Heading,
    Table,
    blocks,
    read_report,
    render_markdown,
    write_report,
)
from devstack.report import main as report_main
from devstack.sse import sse_events
from devstack.stats import latency_summary, percentile

# A loopback HTTP server that first starts a grandchild (to check that the whole process group
# is stopped) and prints its pid; SIGTERM is ignored when IGNORE_TERM is set.
SERVER = textwrap.dedent(
    """
    import http.server, os, signal, subprocess, sys
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("grandchild", child.pid, flush=True)
    http.server.ThreadingHTTPServer(
        ("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler
    ).serve_forever()
    """
)


def http_server(log_dir: Path | None, **env: str) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-c", SERVER, str(port)]
    return ServerProcess("toy", argv, child_env(env), port, log_dir, ready_path="/")


def gone(pid: int, timeout: float = 5.0) -> bool:
    """True once pid no longer runs (absent, or a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def grandchild_pid(server: ServerProcess) -> int:
    for line in server.log().splitlines():
        if line.startswith("grandchild "):
            return int(line.split()[1])
    raise AssertionError(f"no grandchild line in the log:\n{server.log()}")


# ---- process ------------------------------------------------------------------------------------


def test_server_process_waits_logs_and_stops_its_whole_group(tmp_path: Path) -> None:
    server = http_server(tmp_path).start()
    try:
        server.wait_ready(30)
        assert server.running and server.log_path == tmp_path / f"toy-{server.port}.log"
        grandchild = grandchild_pid(server)
        assert not gone(grandchild, timeout=0.2)
        assert "GET / " in server.log()  # the readiness probe, in the server's own log
    finally:
        server.stop()
    assert not server.running and server.proc.returncode == -signal.SIGTERM
    assert gone(grandchild)
    server.stop()  # a second stop is harmless


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    server = http_server(tmp_path, IGNORE_TERM="1").start()
    try:
        server.wait_ready(30)
        grandchild = grandchild_pid(server)
        t0 = time.monotonic()
        server.stop(timeout=0.5)
        assert time.monotonic() - t0 < 5
    finally:
        server.kill()
    assert server.proc.returncode == -signal.SIGKILL
    assert gone(grandchild)


def test_restart_keeps_the_port_and_appends_to_the_log(tmp_path: Path) -> None:
    server = http_server(tmp_path).start()
    try:
        server.wait_ready(30)
        first = server.pid
        server.restart().wait_ready(30)
        assert server.pid != first and gone(first)
        assert server.log().count("grandchild ") == 2
    finally:
        server.stop()


def test_wait_ready_reports_an_exit_with_the_log_tail(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-c", "print('no model here'); raise SystemExit(3)"]
    server = ServerProcess("broken", argv, child_env({}), port, tmp_path).start()
    with pytest.raises(
        RuntimeError, match=r"broken exited with code 3; its log ends:\nno model here"
    ):
        server.wait_ready(30)
    server.stop()


def test_wait_ready_times_out_on_a_server_that_never_answers_200(tmp_path: Path) -> None:
    server = http_server(tmp_path)
    server.ready_path = "/no-such-file"  # SimpleHTTPRequestHandler answers 404
    server.start()
    try:
        with pytest.raises(RuntimeError, match="toy not ready after 1 s"):
            server.wait_ready(1)
    finally:
        server.stop()


def test_child_env_can_drop_the_callers_moviemind_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEMIND_EDGE_API_KEY", "deployment-secret")
    kept = child_env({"MOVIEMIND_EDGE_PORT": "1"})
    dropped = child_env({"MOVIEMIND_EDGE_PORT": "1"}, inherit_moviemind=False)
    assert kept["MOVIEMIND_EDGE_API_KEY"] == "deployment-secret"
    assert "MOVIEMIND_EDGE_API_KEY" not in dropped
    assert dropped["MOVIEMIND_EDGE_PORT"] == "1" and dropped["PYTHONUNBUFFERED"] == "1"
    assert python_module("edge") == [sys.executable, "-m", "edge"]


# ---- foreground (make demo) ---------------------------------------------------------------------

FOREGROUND = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from devstack.foreground import run_in_foreground
    from devstack.process import ServerProcess, child_env, free_port

    servers = []
    for name in ("first", "second"):
        port = free_port()
        argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        servers.append((ServerProcess(name, argv, child_env({}), port, Path(sys.argv[1]), ready_path="/"), 30))

    def ready():
        print("pids", *(s.pid for s, _ in servers), flush=True)
        if "kill-first" in sys.argv:  # a server dies by itself
            servers[0][0].kill()

    sys.exit(run_in_foreground(
        servers, on_ready=ready, poll_s=0.1, stop_when_orphaned="orphan" in sys.argv
    ))
    """
)


def start_foreground(
    tmp_path: Path, *extra: str, sigint_ignored: bool = False
) -> tuple[subprocess.Popen[str], list[int]]:
    """The runner in a child process; `sigint_ignored` starts it as a shell without job control
    starts a background job (`cmd &`): with SIGINT inherited as ignored."""

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-c", FOREGROUND, str(tmp_path), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint if sigint_ignored else None,  # noqa: PLW1509 (no threads here)
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("pids "):
            return proc, [int(p) for p in line.split()[1:]]
    raise AssertionError(f"the foreground runner never got ready:\n{''.join(seen)}")


@pytest.mark.parametrize(
    ("signum", "sigint_ignored"),
    [
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGINT, False),
        # Started in the background by a script or a CI runner: Ctrl-C must still stop it.
        (signal.SIGINT, True),
    ],
)
def test_foreground_runner_stops_every_server_on_a_stop_signal(
    tmp_path: Path, signum: signal.Signals, sigint_ignored: bool
) -> None:
    proc, pids = start_foreground(tmp_path, sigint_ignored=sigint_ignored)
    try:
        assert len(pids) == 2 and not any(gone(p, timeout=0.2) for p in pids)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "==> stopping" in out
    assert all(gone(p) for p in pids), f"a server outlived the runner: {out}"


def test_demo_servers_take_ports_and_settings_from_the_environment() -> None:
    (model, model_timeout), (edge, edge_timeout) = demo_servers(
        {"PATH": "/usr/bin", "MOVIEMIND_MODEL_ENGINE": "llama_cpp", "MOVIEMIND_EDGE_PORT": "9000"}
    )
    assert model.url == "http://127.0.0.1:8001" and edge.url == "http://127.0.0.1:9000"
    assert model.argv[1:] == ["-m", "model_server"] and edge.argv[1:] == ["-m", "edge"]
    assert edge.env["MOVIEMIND_EDGE_UPSTREAMS"] == "http://127.0.0.1:8001"
    assert model.env["MOVIEMIND_MODEL_ENGINE"] == "llama_cpp"  # the user's settings reach both
    assert model.log_path is None and edge.log_path is None  # output stays in the terminal
    assert model_timeout > edge_timeout > 0


def test_foreground_runner_stops_every_server_when_its_parent_dies(tmp_path: Path) -> None:
    # `timeout make demo` signals make alone; make dies without passing the signal on.
    parent = subprocess.Popen(
        ["sh", "-c", '"$@"; :', "sh", sys.executable, "-c", FOREGROUND, str(tmp_path), "orphan"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert parent.stdout is not None
    line = ""
    for line in parent.stdout:
        if line.startswith("pids "):
            break
    pids = [int(p) for p in line.split()[1:]]
    assert len(pids) == 2 and not any(gone(p, timeout=0.2) for p in pids)
    parent.kill()
    parent.wait(10)
    rest = parent.stdout.read()
    assert all(gone(p) for p in pids), f"a server outlived its launcher's parent: {rest}"
    assert "the process that started the demo is gone" in rest


def test_foreground_runner_stops_the_rest_when_a_server_dies(tmp_path: Path) -> None:
    proc, pids = start_foreground(tmp_path, "kill-first")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "error: the first stopped" in out
    assert all(gone(p) for p in pids)


# ---- machine, stats, SSE -------------------------------------------------------------------------

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7713 64-Core Processor
flags\t\t: fpu sse2 avx fma f16c
processor\t: 1
model name\t: AMD EPYC 7713 64-Core Processor
flags\t\t: fpu sse2 avx fma f16c
"""


def test_cpu_model_and_flags_from_cpuinfo() -> None:
    model, flags = cpu_model_and_flags(CPUINFO)
    assert model == "AMD EPYC 7713 64-Core Processor"
    assert flags == {"avx": True, "avx2": False, "avx512f": False, "fma": True, "f16c": True}
    line = machine_info().describe()
    assert "cores" in line and "Python" in line


def test_machine_info_of_this_machine() -> None:
    info = machine_info()
    assert set(info.flags) == set(CPU_FLAGS)
    assert 1 <= info.cores <= info.cpu_count == os.cpu_count()
    assert len(info.load_average) == 3 and info.python.startswith("3.")


def test_percentile_matches_numpy_and_says_when_there_is_nothing() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None
    assert math.isnan(percentile([], 50, math.nan))
    s = latency_summary(values)
    assert s["n"] == 6 and s["max"] == 9.0 and s["mean"] == pytest.approx(4.5)
    assert latency_summary([])["p50"] is None


def test_sse_decoder_splits_anywhere_and_keeps_named_events() -> None:
    body = (
        b'event: candidates\ndata: {"a": 1}\n\n: comment\r\n\r\nevent: token\r\ndata: {"text": "hi"}'
        b"\r\n\r\ndata: line1\ndata: line2\n\nevent: empty\n\nevent: done\ndata: {}\n\n"
        b"event: cut\ndata: never finished"
    )
    for size in (1, 7, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert list(sse_events(chunks)) == [
            ("candidates", '{"a": 1}'),
            ("token", '{"text": "hi"}'),
            ("message", "line1\nline2"),
            ("done", "{}"),
        ]


# ---- benchmark reports ------------------------------------------------------------------------------


def test_report_json_holds_everything_the_markdown_says(tmp_path: Path) -> None:
    report = BenchReport.begin("toy", "Toy benchmark", "python -m benchmarks.toy")
    report.finish(
        results={"p50_ms": 1.5, "series": [1.0, 2.0], "missing": None},
        blocks=blocks(
            "Intro line.",
            "",
            Table(["", "p50 ms", "p99 ms"], [["edge", 1.234, None], ["original", math.nan, 9]]),
            "",
            Heading("Part two"),
            "Closing line.",
        ),
    )
    json_path, md_path = write_report(report, tmp_path)
    doc = json.loads(json_path.read_text())
    assert doc["results"]["p50_ms"] == 1.5 and doc["machine"]["flags"].keys() == set(CPU_FLAGS)
    assert doc["load_end"] is not None and doc["duration_s"] is not None and "_t0" not in doc
    md = md_path.read_text()
    assert md.startswith("# Toy benchmark\n")
    assert "| edge | 1.23 | - |" in md and "| original | - | 9 |" in md
    assert "## Part two\nClosing line." in md
    assert f"- Machine: {report.machine.describe()}" in md
    assert render_markdown(read_report(json_path)) == md
    # Re-rendering from the JSON alone gives the same file.
    md_path.unlink()
    assert report_main([str(json_path)]) == 0
    assert md_path.read_text() == md


def test_report_renderer_refuses_a_file_that_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"name": 1}')
    assert report_main([str(bad)]) == 2
    assert "error:" in capsys.readouterr().err
