"""A scriptable OpenAI-compatible streaming server on loopback, for fault injection only.

It speaks HTTP/1.1 with keep-alive and the exact `chat.completion.chunk` SSE wire format, and
misbehaves on request: error statuses, hangs, sockets closed mid-stream, garbage. It runs its own
asyncio loop in a thread, so synchronous and asynchronous tests can both drive it. Integration
tests use the real model server; this stands in only where a real one cannot be made to fail.

    with OpenAIStub(Stream(["Hel", "lo"])) as stub:
        stub.script(Status(500), Hang())   # the next two chat requests; then the default again
        ... stub.url, stub.chat_requests, stub.connections ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "Garbage",
    "Hang",
    "OpenAIStub",
    "Recorded",
    "Status",
    "Stream",
    "blackhole",
    "closed_port_url",
]


@dataclass(frozen=True)
class Stream:
    """A normal stream of `tokens`; `die_after=K` closes the socket after K tokens instead."""

    tokens: tuple[str, ...] | list[str] = ("Hello", ",", " world")
    delay_s: float = 0.005
    finish_reason: str = "stop"
    usage: bool = True
    done: bool = True
    die_after: int | None = None
    # Send ": keep-alive" comments between chunks (clients must ignore them).
    comments: bool = True
    # End the body by closing the connection (no chunked encoding) instead of a chunked terminator.
    close_delimited: bool = False
    model: str | None = None


@dataclass(frozen=True)
class Status:
    """An error reply with `status` and an OpenAI-style error body."""

    status: int = 500
    message: str = "stub failure"
    retry_after: int | None = None


@dataclass(frozen=True)
class Hang:
    """Stall before the first token: after the 200 headers (and a role chunk), or before them."""

    after_headers: bool = True
    seconds: float = 30.0


@dataclass(frozen=True)
class Garbage:
    """Stream K tokens, then a line that is not valid JSON, then nothing."""

    tokens: tuple[str, ...] | list[str] = ("a", "b")
    payload: str = "{not json"


Behavior = Stream | Status | Hang | Garbage


@dataclass
class Recorded:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    connection: int
    at: float = 0.0  # time.monotonic() when it arrived (one clock for every process here)


@dataclass
class _Conn:
    id: int
    writer: asyncio.StreamWriter


@dataclass
class OpenAIStub:
    """The server. `default` answers every chat request not covered by `script(...)`."""

    default: Behavior = field(default_factory=Stream)
    models: tuple[str, ...] = ("stub-model",)
    # Advertised in /v1/models entries, e.g. {"continue_final_message": True} (prefill).
    capabilities: dict[str, bool] | None = None
    tokenizer: bytes | None = None
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self.connections = 0
        # Responses the client cut off (it closed the connection while we were answering).
        self.cut_off = 0
        self._queue: deque[Behavior] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    # ---- control (any thread) ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self, *behaviors: Behavior) -> None:
        """Queue behaviors for the next chat requests, one each, before `default` applies again."""
        with self._lock:
            self._queue.extend(behaviors)

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def start(self) -> OpenAIStub:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port or 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"openai-stub-{id(self)}", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("openai stub did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; afterwards the port refuses."""
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5)
        self._loop = None
        self._thread = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the server (stub loop) --------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        conn = _Conn(self.connections, writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                body = json.loads(raw) if raw else None
                self.requests.append(
                    Recorded(method, path, headers, body, conn.id, time.monotonic())
                )
                keep = await self._route(conn, method, path, body)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.cut_off += 1
            return
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(self, conn: _Conn, method: str, path: str, body: dict | None) -> bool:
        if method == "GET" and path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in self.models
            ]
            if self.capabilities is not None:
                for entry in data:
                    entry["capabilities"] = self.capabilities
            return await self._json(conn, 200, {"object": "list", "data": data})
        if method == "GET" and path == "/v1/tokenizer":
            if self.tokenizer is None:
                return await self._json(conn, 404, _error("not_found", "no tokenizer here"))
            return await self._raw(conn, 200, "application/json", self.tokenizer)
        if method == "POST" and path == "/v1/chat/completions":
            with self._lock:
                behavior = self._queue.popleft() if self._queue else self.default
            model = (body or {}).get("model") or (self.models[0] if self.models else "stub")
            include_usage = bool(((body or {}).get("stream_options") or {}).get("include_usage"))
            return await self._chat(conn, behavior, model, include_usage)
        return await self._json(conn, 404, _error("not_found", f"no route {method} {path}"))

    async def _json(self, conn: _Conn, status: int, obj: object, extra: str = "") -> bool:
        return await self._raw(conn, status, "application/json", json.dumps(obj).encode(), extra)

    async def _raw(
        self, conn: _Conn, status: int, ctype: str, body: bytes, extra: str = ""
    ) -> bool:
        head = (
            f"HTTP/1.1 {status} {_REASON.get(status, 'Status')}\r\n"
            f"content-type: {ctype}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
        )
        conn.writer.write(head.encode() + body)
        await conn.writer.drain()
        return True

    async def _chat(self, conn: _Conn, b: Behavior, model: str, include_usage: bool) -> bool:
        w = conn.writer
        if isinstance(b, Status):
            extra = f"retry-after: {b.retry_after}\r\n" if b.retry_after is not None else ""
            kind = "rate_limited" if b.status == 429 else "stub_error"
            return await self._json(conn, b.status, _error(kind, b.message), extra)
        if isinstance(b, Hang) and not b.after_headers:
            await asyncio.sleep(b.seconds)
            return False
        close_delimited = isinstance(b, Stream) and b.close_delimited
        framing = "connection: close\r\n" if close_delimited else "transfer-encoding: chunked\r\n"
        w.write(
            (
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                f"cache-control: no-cache\r\n{framing}\r\n"
            ).encode()
        )
        name = (b.model if isinstance(b, Stream) else None) or model
        cid = f"chatcmpl-stub{conn.id}"
        created = int(time.time())

        def frame(data: bytes) -> bytes:
            return data if close_delimited else b"%x\r\n%s\r\n" % (len(data), data)

        def event(payload: str) -> bytes:
            return frame(f"data: {payload}\n\n".encode())

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
            obj: dict = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if usage is not None:
                obj["choices"] = []
                obj["usage"] = usage
            return event(json.dumps(obj))

        w.write(chunk({"role": "assistant", "content": ""}))
        await w.drain()
        if isinstance(b, Hang):
            await asyncio.sleep(b.seconds)
            return False
        if isinstance(b, Garbage):
            for tok in b.tokens:
                w.write(chunk({"content": tok}))
            w.write(event(b.payload))
            await w.drain()
            await asyncio.sleep(0.05)
            return False
        for i, tok in enumerate(b.tokens):
            if b.die_after is not None and i >= b.die_after:
                await w.drain()
                w.close()  # FIN after the K tokens: they are delivered, the rest never comes
                return False
            if b.comments and i:
                w.write(frame(b": keep-alive\n\n"))
            w.write(chunk({"content": tok}))
            await w.drain()
            if b.delay_s:
                await asyncio.sleep(b.delay_s)
        if b.die_after is not None:
            w.close()
            return False
        w.write(chunk({}, finish=b.finish_reason))
        if b.usage and include_usage:
            n = len(b.tokens)
            w.write(
                chunk({}, usage={"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n})
            )
        if b.done:
            w.write(event("[DONE]"))
        if close_delimited:
            await w.drain()
            return False
        w.write(b"0\r\n\r\n")
        await w.drain()
        return True


_REASON = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _error(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}


def closed_port_url() -> str:
    """A loopback URL nobody listens on: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def blackhole():
    """A loopback URL whose connects hang (a listener that never accepts, backlog full)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # Fill the accept queue so further SYNs are dropped and connect() stalls.
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        for s in fillers:
            s.close()
        listener.close()
