"""The spool: feedback the database could not take, as append-only JSON lines on local disk.

Each append is one write of whole lines followed by fsync, so an acknowledged append survives a
crash of the edge or the machine. A crash during an append can leave a torn last line; reading
skips it (and counts it). Replay reads the file in order and only truncates it after everything
was applied; a crash in between replays some lines twice, which the store's upsert makes harmless.
A visitor's deletion is a line too, so it happens after the votes spooled before it.
Appends and a replay hold an advisory lock (`.lock` beside the file), so two edge processes
sharing a spool cannot clear lines the other appended after the replay read them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec

from moviemind_core.feedback import FeedbackEvent


class SpoolLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One spooled operation: a vote, or the deletion of a visitor's data."""

    event: FeedbackEvent | None = None
    delete: str | None = None


_decoder = msgspec.json.Decoder(SpoolLine)
_encoder = msgspec.json.Encoder()


class SpoolFull(Exception):
    """The spool reached its size limit; the operation was not written."""


class Spool:
    """An append-only, fsync'd JSON-lines file with a size limit."""

    def __init__(self, path: Path | str, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.torn = 0  # unreadable lines skipped by replays so far
        self._end_torn_line()
        self.pending = self._count_lines()

    def _end_torn_line(self) -> None:
        """A crash mid-append leaves a last line without its newline: end it, so the next
        append starts a line of its own (the torn one is then skipped on replay)."""
        size = self.size()
        if size == 0:
            return
        with self.path.open("rb+") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())

    def _count_lines(self) -> int:
        try:
            with self.path.open("rb") as f:
                return sum(1 for raw in f if raw.strip())
        except FileNotFoundError:
            return 0

    def size(self) -> int:
        """Bytes on disk (0 when there is no file)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, lines: list[SpoolLine]) -> None:
        """Write the lines and fsync; SpoolFull (nothing written) past the size limit."""
        if not lines:
            return
        data = b"".join(_encoder.encode(line) + b"\n" for line in lines)
        with self.locked():
            if self.size() + len(data) > self.max_bytes:
                raise SpoolFull(f"spool {self.path} would exceed {self.max_bytes} bytes")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        self.pending += len(lines)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool's advisory lock (blocking; call off the event loop)."""
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read(self) -> Iterator[SpoolLine]:
        """Every readable line in order; torn or foreign lines are skipped and counted."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            for raw in f:
                if not raw.strip():
                    continue
                try:
                    yield _decoder.decode(raw)
                except msgspec.DecodeError:
                    self.torn += 1

    def clear(self) -> None:
        """Empty the file once everything in it was applied (fsync'd, like an append)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.pending = 0
