"""Incremental Server-Sent Events decoder: bytes in, `data` payloads out.

Only what an OpenAI-compatible stream needs: `data:` fields (several in one event are joined with
"\\n", as the SSE spec says), comment lines (`: keepalive`) and other fields (`event:`, `id:`,
`retry:`) are ignored. Lines may end in LF, CRLF or CR, and may be split across network chunks.
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "SSEError"]


class SSEError(ValueError):
    """The byte stream is not valid SSE (or a line is unreasonably long)."""


class SSEDecoder:
    """Feed network chunks with `feed`; it returns the complete events' data, in order."""

    __slots__ = ("_buf", "_data", "_has_data", "_max_line", "_pending_cr")

    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._data: list[str] = []
        self._has_data = False
        # A CR at the very end of a chunk may be the first half of a CRLF split across chunks.
        self._pending_cr = False
        self._max_line = max_line_bytes

    def feed(self, chunk: bytes) -> list[str]:
        """Consume `chunk`; return the data of every event it completed (possibly none)."""
        if not chunk:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf
        buf += chunk
        events: list[str] = []
        start = 0
        n = len(buf)
        while start < n:
            # Find the nearest line terminator of either kind.
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, lf if lf >= 0 else n)
            if cr >= 0:
                end = cr
                nxt = cr + 1
                if nxt < n:
                    if buf[nxt] == 0x0A:
                        nxt += 1
                else:
                    self._pending_cr = True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            self._line(bytes(buf[start:end]), events)
            start = nxt
        del buf[:start]
        if len(buf) > self._max_line:
            raise SSEError(f"SSE line longer than {self._max_line} bytes")
        return events

    def _line(self, raw: bytes, events: list[str]) -> None:
        if not raw:
            # A blank line dispatches the event, if it carried any data.
            if self._has_data:
                events.append("\n".join(self._data))
                self._data.clear()
                self._has_data = False
            return
        if raw[0] == 0x3A:  # ":" starts a comment (keep-alives)
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SSEError(f"SSE line is not UTF-8: {exc}") from None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        # "event", "id", "retry" and unknown fields carry nothing an OpenAI stream needs.

    def flush(self) -> list[str]:
        """At end of stream: an event missing its final blank line (or newline) is still delivered.

        The SSE spec discards such an event; we keep it because some servers close right after
        `data: [DONE]` and the payload is complete. A payload truncated mid-line is delivered
        too, and then fails to parse as JSON, which is the right outcome for a cut stream.
        """
        events: list[str] = []
        if self._buf:
            self._line(bytes(self._buf), events)
            self._buf.clear()
        if self._has_data:
            events.append("\n".join(self._data))
            self._data.clear()
            self._has_data = False
        return events
