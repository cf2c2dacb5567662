"""`make demo` (`python -m devstack.foreground`): the model server and the edge in this terminal
until Ctrl-C, SIGTERM or SIGHUP, or until the process that started it (make) is gone.

The one launcher of the demo. A service manager, `timeout` or CI stops a program with SIGTERM; the
servers run in their own sessions (so a Ctrl-C reaches only this process, which then stops each
one once), so this process must turn every stop signal into stopping them, or they outlive it.
`timeout make demo` signals make alone, which dies without passing it on: the launcher then
finds itself orphaned and stops the servers too.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType

from devstack.process import ServerProcess, child_env, python_module

DEMO_MODEL_PORT = "8001"
DEMO_EDGE_PORT = "8000"
MODEL_READY_TIMEOUT_S = 300.0
EDGE_READY_TIMEOUT_S = 120.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived (its number in `signum`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def demo_servers(
    environ: Mapping[str, str] | None = None,
) -> list[tuple[ServerProcess, float]]:
    """The model server and the edge as `make demo` runs them, each with its readiness timeout.

    Output goes to this terminal. Ports come from MOVIEMIND_MODEL_PORT / MOVIEMIND_EDGE_PORT
    (8001 / 8000); the edge's upstream is that model server unless MOVIEMIND_EDGE_UPSTREAMS says
    otherwise; every other MOVIEMIND_* setting in `environ` reaches both servers.
    """
    base = dict(os.environ if environ is None else environ)
    model_port = base.setdefault("MOVIEMIND_MODEL_PORT", DEMO_MODEL_PORT)
    edge_port = base.setdefault("MOVIEMIND_EDGE_PORT", DEMO_EDGE_PORT)
    base.setdefault("MOVIEMIND_EDGE_UPSTREAMS", f"http://127.0.0.1:{model_port}")
    env = child_env(base)
    return [
        (
            ServerProcess(
                "model server", python_module("model_server"), env, int(model_port), None
            ),
            MODEL_READY_TIMEOUT_S,
        ),
        (
            ServerProcess("edge", python_module("edge"), env, int(edge_port), None),
            EDGE_READY_TIMEOUT_S,
        ),
    ]


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise `Stopped`, and SIGINT KeyboardInterrupt.

    SIGINT is set explicitly: a program started in the background by a shell without job
    control (`cmd &` in a script, some CI runners) inherits SIGINT as ignored, and Python keeps
    it so; Ctrl-C or `kill -INT` would then leave the servers running.
    """

    def raise_stopped(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = {s: signal.signal(s, raise_stopped) for s in STOP_SIGNALS}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def say_now(message: str) -> None:
    """Print at once (the servers write to the same terminal)."""
    print(message, flush=True)


def run_in_foreground(
    servers: Sequence[tuple[ServerProcess, float]],
    *,
    on_ready: Callable[[], None] | None = None,
    say: Callable[[str], None] = say_now,
    poll_s: float = 0.5,
    stop_when_orphaned: bool = False,
) -> int:
    """Start the servers in order, each ready before the next; then call on_ready and block.

    Returns 0 once Ctrl-C, SIGTERM or SIGHUP stopped them (or, with stop_when_orphaned, once the
    parent process is gone), 1 when a server failed to start or exited by itself. Every server
    is stopped (SIGTERM, then SIGKILL) in reverse order before it returns, whatever happened.
    """
    started: list[ServerProcess] = []
    parent = os.getppid()
    with stop_signals_raise():
        try:
            for server, timeout in servers:
                say(f"==> starting the {server.name} on {server.url}")
                started.append(server.start())
                server.wait_ready(timeout)
            if on_ready is not None:
                on_ready()
            while all(s.running for s in started):
                if stop_when_orphaned and os.getppid() != parent:
                    say("\n==> stopping (the process that started the demo is gone)")
                    return 0
                time.sleep(poll_s)
            gone = next(s for s in started if not s.running)
            say(
                f"error: the {gone.name} stopped (exit code {gone.proc.returncode}); stopping the rest"
            )
            return 1
        except RuntimeError as exc:
            say(f"error: {exc}")
            return 1
        except (KeyboardInterrupt, Stopped) as exc:
            say(f"\n==> stopping ({'Ctrl-C' if isinstance(exc, KeyboardInterrupt) else exc})")
            return 0
        finally:
            # A second signal while stopping must not leave a server behind: ignore them now
            # (stop_signals_raise restores SIGTERM and SIGHUP, this restores SIGINT).
            previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            for server in reversed(started):
                server.stop()
            signal.signal(signal.SIGINT, previous_int)


def demo_banner(environ: Mapping[str, str]) -> str:
    """What the model server will run, in one line (engine and weights come from the settings)."""
    engine = environ.get("MOVIEMIND_MODEL_ENGINE") or "ctransformers"
    if (environ.get("MOVIEMIND_MODEL_WEIGHTS") or "as_is") == "f16":
        engine += ", f16 weights"
    return f"==> moviemind demo: SmolLM2-135M-Instruct ({engine}) + the edge over var/index"


def main() -> int:
    """`make demo`: both tiers on loopback until stopped; the URL printed (and opened on a desktop)."""
    servers = demo_servers()
    edge = servers[-1][0]

    def ready() -> None:
        url = edge.url + "/"
        say_now(
            f"\n  moviemind is running: {url}\n  API: {url}schema   Ctrl-C stops both servers.\n"
        )
        if os.environ.get("DISPLAY") or sys.platform == "darwin":
            webbrowser.open(url)

    say_now(demo_banner(os.environ))
    return run_in_foreground(servers, on_ready=ready, stop_when_orphaned=True)


if __name__ == "__main__":
    raise SystemExit(main())
