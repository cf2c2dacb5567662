"""How far the model's preparation got: read by /readyz and /metrics while a download runs.

One writer (the preparation thread) and many readers (request handlers on the event loop); a
lock keeps each reader's view of (phase, done, total, note) consistent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MB = 1_000_000


class Cancelled(Exception):
    """The server is shutting down; the partial download stays for the next start."""


class Progress:
    """Phase and byte counts of the model preparation, with a cancel flag for shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phase = "starting"
        self._done = 0
        self._total: int | None = None
        self._note = ""
        self._cancel = threading.Event()

    def set(
        self,
        phase: str,
        done: int = 0,
        total: int | None = None,
        note: str = "",
    ) -> None:
        """Enter a phase ("downloading model", "preparing model", ...)."""
        with self._lock:
            self._phase, self._done, self._total, self._note = phase, done, total, note

    def advance(self, done: int) -> None:
        """Bytes done so far in the current phase; raises Cancelled once shutdown began."""
        if self._cancel.is_set():
            raise Cancelled
        with self._lock:
            self._done = done
            self._note = ""

    def note(self, text: str) -> None:
        """A remark after the numbers, e.g. why the download waits before retrying."""
        with self._lock:
            self._note = text

    def cancel(self) -> None:
        """Ask the preparation thread to stop at its next block."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once shutdown asked the preparation to stop."""
        return self._cancel.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`; raise Cancelled if shutdown begins meanwhile."""
        if self._cancel.wait(seconds):
            raise Cancelled

    def snapshot(self) -> tuple[str, int, int | None, str]:
        """(phase, done, total, note) as of now."""
        with self._lock:
            return self._phase, self._done, self._total, self._note

    def message(self) -> str:
        """`downloading model: 42% (1850 of 4400 MB)`, for /readyz and the log."""
        phase, done, total, note = self.snapshot()
        if total:
            text = f"{phase}: {100 * done // total}% ({done // MB} of {total // MB} MB)"
        elif done:
            text = f"{phase}: {done // MB} MB"
        else:
            text = phase
        return f"{text}; {note}" if note else text


class ProgressCollector(Collector):
    """Prometheus view of a Progress: bytes done and expected of the model download."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Two gauges, read at scrape time."""
        phase, done, total, _ = self._progress.snapshot()
        downloading = phase.startswith("downloading")
        yield GaugeMetricFamily(
            "moviemind_model_download_bytes",
            "Bytes of the model file downloaded so far (0 when no download runs)",
            value=done if downloading else 0,
        )
        yield GaugeMetricFamily(
            "moviemind_model_download_size_bytes",
            "Size of the model file being downloaded (0 when no download runs or unknown)",
            value=(total or 0) if downloading else 0,
        )
