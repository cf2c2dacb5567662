"""A local moviemind stack on loopback for the load tests: model servers, delay proxies, an edge.

The processes are devstack ServerProcesses (own sessions, so a Ctrl-C in the terminal reaches only
the runner, which then stops them in order: `LocalStack.close`, called from a `finally`). They get
none of the runner's MOVIEMIND_* variables: a key meant for a deployment must not leak in.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import httpx

from devstack.process import ROOT, ServerProcess, free_port
from devstack.servers import edge_process, model_server_process
from loadtests.proxy import DelayProxy

__all__ = ["ROOT", "LocalStack"]


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
        self.models: dict[str, ServerProcess] = {}
        self.proxies: dict[str, DelayProxy] = {}
        self.edge: ServerProcess | None = None
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
            self.models[name] = model_server_process(
                self.log_dir, name=f"model-{name}", inherit_moviemind=False, **self.model_env
            ).start()
        for name, delay in self.regions:
            model = self.models[name]
            if delay is None:
                self.upstream_urls[name] = model.url
            else:
                proxy = DelayProxy("127.0.0.1", model.port, delay, name=name).start()
                self.proxies[name] = proxy
                self.upstream_urls[name] = proxy.url
        upstreams = list(self.upstream_urls.values()) or [f"http://127.0.0.1:{free_port()}"]
        self.edge = edge_process(
            self.log_dir,
            upstreams,
            str(self.served_index),
            inherit_moviemind=False,
            MOVIEMIND_EDGE_API_KEY=self.api_key,
            MOVIEMIND_EDGE_RELOAD_INTERVAL_S="0",
            MOVIEMIND_EDGE_INDEX_CACHE_DIR=str(self.work_dir / "edge-cache"),
            MOVIEMIND_EDGE_LOG_LEVEL="warning",
            **self.edge_env,
        ).start()
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
        self.models[name].restart()

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
