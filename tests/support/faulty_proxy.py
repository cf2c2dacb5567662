"""An HTTP proxy on loopback in front of a real server that records requests and injects faults.

Tests of the model download put it in front of the S3 server (moto): every request is forwarded
unchanged (Host header included, so signatures stay valid) and the proxy records the method,
path, Range header, status and body bytes it relayed. Faults, set while it runs:
`cut_after`: close the connection after N body bytes (one entry per response, in order);
`rate`: relay bodies at this many bytes per second; `strip_range`: drop Range/If-Range before
forwarding, as a server that ignores Range would answer.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass
class Seen:
    """One proxied request."""

    method: str
    path: str
    range: str | None
    status: int = 0
    body_bytes: int = 0
    cut: bool = False


class FaultyProxy:
    """`ThreadingHTTPServer` on 127.0.0.1 forwarding to `upstream` (http://host:port)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.seen: list[Seen] = []
        self.cut_after: list[int] = []
        self.rate: float | None = None
        self.strip_range = False
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                proxy._relay(self, "GET")

            def do_HEAD(self) -> None:  # noqa: N802
                proxy._relay(self, "HEAD")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def gets(self) -> list[Seen]:
        """The GET requests so far."""
        with self._lock:
            return [s for s in self.seen if s.method == "GET"]

    def body_bytes(self) -> int:
        """Body bytes relayed to clients so far, over all requests."""
        with self._lock:
            return sum(s.body_bytes for s in self.seen)

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def _relay(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        headers = {k: v for k, v in h.headers.items()}
        if self.strip_range:
            headers = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-range")}
        seen = Seen(method, h.path, h.headers.get("Range"))
        with self._lock:
            self.seen.append(seen)
            cut = self.cut_after.pop(0) if method == "GET" and self.cut_after else None
        # The Host header goes upstream unchanged, so a SigV4 signature over it still holds.
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        conn.putrequest(method, h.path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        seen.status = resp.status
        h.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                h.send_header(k, v)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        try:
            while method == "GET":
                want = CHUNK if cut is None else min(CHUNK, cut - seen.body_bytes)
                if want <= 0:
                    seen.cut = True
                    break
                block = resp.read(want)
                if not block:
                    break
                h.wfile.write(block)
                h.wfile.flush()
                with self._lock:
                    seen.body_bytes += len(block)
                if self.rate:
                    time.sleep(len(block) / self.rate)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a killed process)
        finally:
            conn.close()


@contextmanager
def faulty_proxy(upstream: str) -> Iterator[FaultyProxy]:
    """A FaultyProxy for the duration of a with-block."""
    proxy = FaultyProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
