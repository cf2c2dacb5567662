"""A client-side text/event-stream decoder: `(event, data)` for each `event:` + `data:` block.

The edge's own decoder (edge/sse.py) reads the OpenAI stream inside the edge; this one is for the
clients the tests, benchmarks and load tests run against the edge's named events (`candidates`,
`token`, `recommendations`, `done`, `error`) and against the model server's OpenAI stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple


class SseEvent(NamedTuple):
    event: str  # "message" when the block names none
    data: str  # its data lines joined by "\n"


def sse_events(chunks: Iterable[bytes]) -> Iterator[SseEvent]:
    """Events from the byte chunks of a text/event-stream body, split anywhere (CRLF or LF).

    Comment lines (`:`) are skipped, a block without data yields nothing, and an unfinished last
    block (no blank line after it) is dropped, as the standard says.
    """
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
                    yield SseEvent(event, "\n".join(data))
                event, data = "message", []
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
