"""A minimal text/event-stream reader for the load-test client (no Locust import here)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def sse_events(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from an iterator of byte chunks of a text/event-stream body."""
    buf = b""
    event, data = "message", []
    for chunk in chunks:
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl].rstrip(b"\r").decode("utf-8", "replace"), buf[nl + 1 :]
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = "message", []
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
