"""The model server and the edge as loopback subprocesses, with the settings local runs share.

`start_*` start and (by default) wait for /readyz, stopping the process again if it never gets
there; `*_process` only build one, for a caller that starts several and waits for them together.
Keyword arguments are MOVIEMIND_* settings and override the defaults here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from devstack.process import ServerProcess, child_env, free_port, python_module

MODEL_READY_TIMEOUT_S = 180.0
EDGE_READY_TIMEOUT_S = 120.0


def model_server_process(
    log_dir: Path | None,
    port: int | None = None,
    *,
    name: str = "model_server",
    inherit_moviemind: bool = True,
    **settings: str,
) -> ServerProcess:
    """`python -m model_server` on a free (or the given) port, 1 thread unless told otherwise."""
    port = port or free_port()
    env = {"MOVIEMIND_MODEL_PORT": str(port), "MOVIEMIND_MODEL_THREADS": "1", **settings}
    return ServerProcess(
        name,
        python_module("model_server"),
        child_env(env, inherit_moviemind=inherit_moviemind),
        port,
        log_dir,
    )


def edge_process(
    log_dir: Path | None,
    upstreams: list[str],
    index: str = "var/index",
    port: int | None = None,
    *,
    name: str = "edge",
    inherit_moviemind: bool = True,
    **settings: str,
) -> ServerProcess:
    """`python -m edge` on a free (or the given) port serving `index`, rate limit off.

    Its feedback store and spool live in a directory of its own (beside its log, or a temporary
    one), never in the checkout's var/feedback, unless `settings` name them.
    """
    port = port or free_port()
    feedback = (log_dir or Path(tempfile.mkdtemp(prefix="moviemind-"))) / f"feedback-{port}"
    env = {
        "MOVIEMIND_EDGE_PORT": str(port),
        "MOVIEMIND_EDGE_INDEX": index,
        "MOVIEMIND_EDGE_UPSTREAMS": ",".join(upstreams),
        "MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE": "0",
        "MOVIEMIND_EDGE_FEEDBACK_URL": str(feedback / "feedback.sqlite3"),
        "MOVIEMIND_EDGE_FEEDBACK_SPOOL": str(feedback / "spool.jsonl"),
        **settings,
    }
    return ServerProcess(
        name,
        python_module("edge"),
        child_env(env, inherit_moviemind=inherit_moviemind),
        port,
        log_dir,
    )


def start(server: ServerProcess, wait: bool, timeout: float) -> ServerProcess:
    """Start `server`; with wait, block until it is ready (stopping it if it never is)."""
    server.start()
    if wait:
        try:
            server.wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
    return server


def start_model_server(
    log_dir: Path, port: int | None = None, wait: bool = True, **settings: str
) -> ServerProcess:
    """A running model server (the embedded SmolLM2), ready unless wait=False."""
    return start(model_server_process(log_dir, port, **settings), wait, MODEL_READY_TIMEOUT_S)


def start_edge(
    log_dir: Path,
    upstreams: list[str],
    index: str = "var/index",
    port: int | None = None,
    wait: bool = True,
    **settings: str,
) -> ServerProcess:
    """A running edge on `index` with these upstreams, ready unless wait=False."""
    return start(
        edge_process(log_dir, upstreams, index, port, **settings), wait, EDGE_READY_TIMEOUT_S
    )
