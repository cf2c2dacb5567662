"""A TCP proxy on loopback that adds a fixed one-way delay in each direction.

It stands in for the network between an edge and a model server in another region: with a
one-way delay d, a new connection costs 4 d before the first response byte (handshake round
trip, request, response) and a keep-alive request 2 d, while a stream's throughput is unchanged
(every chunk is forwarded d after it arrived, in order, without waiting for the previous one to
be acknowledged). It also counts HTTP/1.x request lines going upstream, so a report can show which
region served the traffic at any moment.

`python -m loadtests.proxy --target 127.0.0.1:8001 --delay-ms 60` runs one on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

_REQUEST_LINE = re.compile(
    rb"(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) (\S{1,2048}) HTTP/1\.[01]\r\n"
)
_CARRY = 2100  # bytes kept between chunks so a request line split across reads is still seen


@dataclass(frozen=True)
class ProxyEvent:
    """Something that happened at wall-clock time `t`: a request line, a connection, a refusal."""

    t: float
    # "request" (forwarded), "request_refused" (the target was down), "connect", "connect_failed"
    kind: str
    detail: str = ""


class DelayProxy:
    """Forward 127.0.0.1:<port> to `target`, delaying every chunk by `delay_s` each way.

    Runs its own asyncio loop in a daemon thread; `start()` returns once it listens.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay_s: float,
        *,
        name: str = "proxy",
        listen_port: int = 0,
    ) -> None:
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self.name = name
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.port = listen_port
        self._events: deque[ProxyEvent] = deque(maxlen=200_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        """Bind and serve in a background thread."""
        self._thread = threading.Thread(target=self._run, name=f"proxy-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"proxy {self.name} did not start")
        if self._error is not None:
            raise RuntimeError(f"proxy {self.name} could not listen: {self._error}")
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; joins the thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(5)
        self._thread.join(5)
        self._loop = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def events(self, kind: str | None = None, since: float = 0.0) -> list[ProxyEvent]:
        """Recorded events (optionally one kind, at or after `since`), oldest first."""
        return [e for e in list(self._events) if e.t >= since and (kind is None or e.kind == kind)]

    def count(
        self,
        kind: str = "request",
        since: float = 0.0,
        until: float = float("inf"),
        path_prefix: str = "",
    ) -> int:
        """How many events of `kind` happened in [since, until), requests filtered by path prefix."""
        return sum(
            1
            for e in list(self._events)
            if e.kind == kind and since <= e.t < until and e.detail.startswith(path_prefix)
        )

    # ---- inside the proxy's own loop ----------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._conns):
            w.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # cancelled only by stop()
            await self._proxy(client_r, client_w)

    async def _proxy(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._conns.add(client_w)
        # The client's request bytes start flowing now; the handshake to the far side costs a
        # round trip before any of them can be delivered, which the queue below accounts for.
        up_queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        # Request lines seen before the far side answered the handshake wait here for its verdict.
        state: dict = {"connected": None, "pending": []}
        reader_task = asyncio.create_task(self._read_into(client_r, up_queue, requests=state))
        server_w: asyncio.StreamWriter | None = None
        try:
            await asyncio.sleep(2 * self.delay_s)
            try:
                server_r, server_w = await asyncio.open_connection(*self.target)
            except OSError as exc:
                self._events.append(ProxyEvent(time.time(), "connect_failed", str(exc)[:200]))
                state["connected"] = False
                self._events.extend(
                    ProxyEvent(e.t, "request_refused", e.detail) for e in state["pending"]
                )
                return
            self._conns.add(server_w)
            self._events.append(ProxyEvent(time.time(), "connect"))
            state["connected"] = True
            self._events.extend(state["pending"])
            down_queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
            # Bytes the client sent during the handshake start their one-way trip only now.
            tasks = [
                reader_task,
                asyncio.create_task(
                    self._write_from(
                        up_queue, server_w, loop, not_before=loop.time() + self.delay_s
                    )
                ),
                asyncio.create_task(self._read_into(server_r, down_queue)),
                asyncio.create_task(self._write_from(down_queue, client_w, loop)),
            ]
            # Either side closing (or failing) ends the connection, as a router would see it.
            done, pending = await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
        finally:
            reader_task.cancel()
            for w in (client_w, server_w):
                if w is not None:
                    w.close()
                    self._conns.discard(w)

    async def _read_into(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue, *, requests: dict | None = None
    ) -> None:
        """Queue what `reader` sends, due `delay_s` from now; note request lines if `requests`."""
        loop = asyncio.get_running_loop()
        tail = b""
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((loop.time() + self.delay_s, data))
                if not data:
                    return
                if requests is not None:
                    buf = tail + data
                    last_end = 0
                    for m in _REQUEST_LINE.finditer(buf):
                        if m.end() > len(tail):  # not already counted in the previous chunk
                            line = f"{m.group(1).decode()} {m.group(2).decode(errors='replace')}"
                            event = ProxyEvent(time.time(), "request", line)
                            if requests["connected"] is None:
                                requests["pending"].append(event)
                            elif requests["connected"]:
                                self._events.append(event)
                        last_end = m.end()
                    tail = buf[max(last_end, len(buf) - _CARRY) :]
        except (ConnectionError, OSError):
            queue.put_nowait((loop.time() + self.delay_s, b""))

    @staticmethod
    async def _write_from(
        queue: asyncio.Queue,
        writer: asyncio.StreamWriter,
        loop: asyncio.AbstractEventLoop,
        not_before: float = 0.0,
    ) -> None:
        try:
            while True:
                due, data = await queue.get()
                wait = max(due, not_before) - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return


def main() -> None:
    """Run one proxy in the foreground until Ctrl-C."""
    ap = argparse.ArgumentParser(
        prog="python -m loadtests.proxy", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--delay-ms", type=float, default=60.0, help="one-way delay in milliseconds")
    ap.add_argument(
        "--port", type=int, default=0, help="listen port on 127.0.0.1 (0: any free one)"
    )
    args = ap.parse_args()
    host, _, port = args.target.rpartition(":")
    proxy = DelayProxy(
        host or "127.0.0.1", int(port), args.delay_ms / 1000, listen_port=args.port
    ).start()
    print(
        f"proxy {proxy.url} -> {args.target}, {args.delay_ms:g} ms each way (Ctrl-C stops)",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
