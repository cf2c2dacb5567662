"""The port's first tenant while the model file is fetched and prepared, then a pass-through.

A multi-GB download must not hold the port closed: Docker's health check, the autoheal timer and
the NodeBalancer all judge the server by its HTTP answers. This ASGI app answers at once:
`/healthz` 200 (the process is alive), `/readyz` and every API path 503 with how far the
download got, `/metrics` with the download gauges. When the preparation thread hands over the
real application, the gate runs that application's lifespan start-up (which starts loading the
engines) and from then on passes every request to it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from model_server.download_progress import Progress, ProgressCollector

log = logging.getLogger("model_server.startup")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_S = 10
LIFESPAN_TIMEOUT_S = 30.0


class StartupGate:
    """ASGI app: health answers during preparation, then everything goes to the real app."""

    def __init__(self, progress: Progress, on_startup: Callable[[], None]) -> None:
        self.progress = progress
        self._on_startup = on_startup  # starts the preparation thread
        self._app: ASGIApp | None = None
        self._inner: _Lifespan | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.registry = CollectorRegistry()
        Gauge("moviemind_model_ready", "1 once the model is loaded", registry=self.registry)
        self.registry.register(ProgressCollector(progress))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self._app
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "http":
            await self._answer(scope, send)
        else:  # a websocket: nothing serves one yet
            await send({"type": "websocket.close", "code": 1013})

    # ---- before the hand-over ------------------------------------------------------------------

    async def _answer(self, scope: Scope, send: Send) -> None:
        path = scope.get("path", "")
        headers: list[tuple[bytes, bytes]] = []
        if path == "/healthz":
            status, body, kind = 200, b'{"status":"ok"}', b"application/json"
        elif path == "/metrics":
            status, body, kind = 200, generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()
        else:
            status, kind = 503, b"application/json"
            body = msgspec.json.encode(
                {"error": {"type": "not_ready", "message": self.progress.message()}}
            )
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        headers += [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                try:
                    self._on_startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._closing = True
                self.progress.cancel()  # the download stops; its .part stays for the next start
                if self._inner is not None:
                    await self._inner.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ---- the hand-over -------------------------------------------------------------------------

    def hand_over(self, app: ASGIApp) -> bool:
        """Start `app`'s lifespan on the server's loop and route requests to it (called from
        the preparation thread; blocks until done). False when the server is shutting down."""
        if self._loop is None or self._closing:
            return False
        try:
            future = asyncio.run_coroutine_threadsafe(self._start(app), self._loop)
        except RuntimeError:  # the loop is closed: the server stopped meanwhile
            return False
        return future.result()

    async def _start(self, app: ASGIApp) -> bool:
        if self._closing:
            return False
        inner = _Lifespan(app)
        await inner.startup()
        self._inner = inner
        self._app = app
        log.info("model prepared; the application serves from now on")
        return True


class _Lifespan:
    """Drives one ASGI app's lifespan protocol (start-up now, shut-down later)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _exchange(self, message: Message, expect: str) -> None:
        await self._to_app.put(message)
        assert self._task is not None
        reply = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait(
            {reply, self._task}, timeout=LIFESPAN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if reply not in done:
            reply.cancel()
            raise RuntimeError(f"the application did not answer {message['type']}")
        answer = reply.result()
        if answer["type"] != expect:
            raise RuntimeError(answer.get("message") or f"{message['type']} failed")

    async def startup(self) -> None:
        """Run the app's start-up handlers; raises if they fail."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self._task = asyncio.create_task(
            self._app(scope, self._to_app.get, self._from_app.put)  # type: ignore[arg-type]
        )
        await self._exchange({"type": "lifespan.startup"}, "lifespan.startup.complete")

    async def shutdown(self) -> None:
        """Run the app's shut-down handlers (bounded in time)."""
        with contextlib.suppress(RuntimeError):
            await self._exchange({"type": "lifespan.shutdown"}, "lifespan.shutdown.complete")
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self._task, LIFESPAN_TIMEOUT_S)
