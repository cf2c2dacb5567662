"""A resumable, verified download of the model file into the cache.

The file goes to `downloads/<sha256>.gguf.part` first. A restart (or a dropped connection)
continues that file with an HTTP Range request instead of starting a multi-GB download again;
`<sha256>.gguf.part.json` remembers which object (URL, ETag, size) the bytes came from, and
`If-Range` makes the server send the whole object (200) if it changed since. A reply that is not
the range asked for (a 200, or a 206 with another Content-Range) starts over from byte 0.
Only a file whose sha256 matches is renamed to `downloads/<sha256>.gguf`; a mismatch deletes it.
A lock file keeps two processes sharing one cache from writing the same `.part`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import msgspec

from model_server.download_progress import MB, Progress

log = logging.getLogger("model_server.download")

TIMEOUT_S = 60  # per socket operation, not for the whole file
BLOCK = 1 << 20
LOG_EVERY_S = 30.0
LOG_EVERY_FRACTION = 0.05
BACKOFF_MAX_S = 60.0
LEGACY_PART_AGE_S = 600  # `.<sha>.gguf.part<pid>` of older versions: untouched this long = dead
# Statuses worth retrying: the server or something in between is busy or restarting.
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")

# Extra request headers for one request (method, headers) -> headers; signs S3 requests.
HeaderSigner = Callable[[str, Mapping[str, str]], Mapping[str, str]]


class DownloadError(ValueError):
    """The model cannot be downloaded; one line for a person."""


class _Transient(Exception):
    """Worth another attempt: a dropped connection, a timeout, a 5xx."""


class PartInfo(msgspec.Struct, kw_only=True):
    """What the bytes in a `.part` file are a prefix of."""

    url: str
    etag: str = ""
    size: int = 0


class Source(msgspec.Struct, kw_only=True, frozen=True):
    """A URL to GET and how to name it in messages; `signer` adds per-request headers."""

    url: str
    display: str
    signer: HeaderSigner | None = None


def fetch(
    source: Source | str,
    sha256: str,
    cache_dir: Path,
    progress: Progress | None = None,
    attempts: int = 10,
) -> Path:
    """`cache_dir/downloads/<sha256>.gguf`, downloaded (or resumed) and verified if not there.
    `source` may be a plain URL."""
    if isinstance(source, str):
        source = Source(url=source, display=source)
    progress = progress or Progress()
    folder = cache_dir / "downloads"
    dest = folder / f"{sha256}.gguf"
    if dest.is_file():
        log.info("model %s already downloaded to %s", source.display, dest)
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"{sha256}.lock"
    with _locked(lock, progress):
        try:
            if dest.is_file():  # another process finished it while this one waited
                return dest
            remove_orphans(folder, keep=sha256)
            _Download(source, sha256, dest, progress, attempts).run()
        finally:
            # The lock file goes with the last file it guards; a kept .part keeps it.
            if not dest.with_name(dest.name + ".part").exists():
                with contextlib.suppress(OSError):
                    lock.unlink()
    return dest


@contextlib.contextmanager
def _locked(path: Path, progress: Progress) -> Iterator[None]:
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is downloading into %s; waiting for it", path.parent)
            progress.set("waiting for another process downloading the model")
            while True:
                progress.wait(1.0)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_orphans(folder: Path, keep: str) -> list[Path]:
    """Delete partial downloads nobody will finish: other models' `.part` files (not locked by a
    live process) and older versions' per-process `.<sha>.gguf.part<pid>` files."""
    removed: list[Path] = []
    now = time.time()
    for path in folder.iterdir():
        name = path.name
        legacy = re.fullmatch(r"\.([0-9a-f]{64})\.gguf\.part\d+", name)
        if legacy:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > LEGACY_PART_AGE_S:
                    path.unlink()
                    removed.append(path)
            continue
        current = re.fullmatch(r"([0-9a-f]{64})\.gguf\.part", name)
        if not current or current[1] == keep:
            continue
        lock = folder / f"{current[1]}.lock"
        with open(lock, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process is downloading that model
            for stale in (path, path.with_name(name + ".json"), lock):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
                    removed.append(stale)
    for path in removed:
        if path.suffix != ".lock":
            log.info("removed an abandoned partial download %s", path)
    return removed


class _Download:
    """One file: attempts, resume, hashing, progress; `run` leaves `dest` verified or raises."""

    def __init__(
        self, source: Source, sha256: str, dest: Path, progress: Progress, attempts: int
    ) -> None:
        self.source = source
        self.sha256 = sha256
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.meta = dest.with_name(dest.name + ".part.json")
        self.progress = progress
        self.attempts = attempts
        self.hasher = hashlib.sha256()
        self.hashed = 0  # bytes of .part that `hasher` has seen
        self.info = PartInfo(url=source.url)
        self.transferred = 0  # body bytes received over the network by this process
        self._last_log = (0.0, -1.0)

    def run(self) -> None:
        self._adopt_part()
        attempt = 0
        # A complete .part (the process stopped between the last byte and the rename) needs
        # no request at all.
        while not (self.info.size and self.hashed == self.info.size):
            attempt += 1
            try:
                self._attempt()
                break
            except _Transient as exc:
                if attempt >= self.attempts:
                    raise DownloadError(
                        f"cannot download the model from {self.source.display}: {exc} "
                        f"({attempt} attempts); the next start resumes from "
                        f"{self._size_of_part() // MB} MB"
                    ) from None
                delay = min(BACKOFF_MAX_S, 2.0 ** (attempt - 1))
                log.warning(
                    "download of %s interrupted at %d MB: %s; retrying in %.0f s "
                    "(attempt %d of %d)",
                    self.source.display,
                    self._size_of_part() // MB,
                    exc,
                    delay,
                    attempt + 1,
                    self.attempts,
                )
                self.progress.note(f"{exc}; retrying in {delay:.0f} s")
                self.progress.wait(delay)
        self._verify()

    # ---- the partial file ----------------------------------------------------------------------

    def _size_of_part(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    def _adopt_part(self) -> None:
        """Continue a `.part` left by an earlier start, if it is from the same URL."""
        size = self._size_of_part()
        if not size:
            return
        try:
            info = msgspec.json.decode(self.meta.read_bytes(), type=PartInfo)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            info = None
        if info is None or info.url != self.source.url or (info.size and size > info.size):
            log.info("discarding %s: not a prefix of %s", self.part, self.source.display)
            self._restart()
            return
        self.info = info
        log.info(
            "resuming the download of %s from %d MB (%s)",
            self.source.display,
            size // MB,
            self.part,
        )
        # The digest covers the whole file, so the bytes already here are read once more
        # (local disk, ~1 GB/s) instead of downloaded again.
        self.progress.set("checking the partial download", 0, size)
        with open(self.part, "rb") as f:
            while block := f.read(BLOCK):
                self.hasher.update(block)
                self.hashed += len(block)
                self.progress.advance(self.hashed)

    def _restart(self) -> None:
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)
        self.hasher = hashlib.sha256()
        self.hashed = 0
        self.info = PartInfo(url=self.source.url)

    def _save_info(self) -> None:
        self.meta.write_bytes(msgspec.json.encode(self.info))

    # ---- one request -----------------------------------------------------------------------------

    def _request(self, offset: int) -> urllib.request.Request:
        headers: dict[str, str] = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.info.etag:
                headers["If-Range"] = self.info.etag
        req = urllib.request.Request(self.source.url, method="GET", headers=headers)
        if self.source.signer is not None:
            # Credentials never follow a redirect to another host.
            for name, value in self.source.signer("GET", headers).items():
                if name.lower() not in {h.lower() for h in headers}:
                    req.add_unredirected_header(name, value)
        return req

    def _attempt(self) -> None:
        offset = self.hashed
        try:
            resp = urllib.request.urlopen(self._request(offset), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            code = _s3_error_code(exc)
            exc.close()
            if exc.code == 416 and offset:
                log.warning("server refused the range from byte %d; starting over", offset)
                self._restart()
                raise _Transient("range not satisfiable") from None
            if exc.code in TRANSIENT_STATUS:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
            message = _http_error_message(self.source.display, exc.code, exc.reason, code)
            raise DownloadError(message) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _Transient(_reason(exc)) from None
        with resp:
            self._check_stored_sha256(resp.headers)
            total = self._accept(resp, offset)
            self._stream(resp, total)

    def _check_stored_sha256(self, headers: Mapping[str, str]) -> None:
        """`weights upload` stores the sha256 as object metadata: a different one means the
        bucket holds another model than configured; say so before downloading gigabytes."""
        stored = (headers.get("x-amz-meta-sha256") or "").strip().lower()
        if stored and stored != self.sha256:
            self._restart()
            raise DownloadError(
                f"{self.source.display} was uploaded with sha256 {stored}, but "
                f"MOVIEMIND_MODEL_SHA256 is {self.sha256}: the bucket holds another model "
                "than configured; nothing downloaded"
            )

    def _accept(self, resp: http.client.HTTPResponse, offset: int) -> int | None:
        """Check the reply against the range asked for; return the object's full size."""
        etag = resp.headers.get("ETag", "") or ""
        length = resp.headers.get("Content-Length")
        if resp.status == 206:
            match = _CONTENT_RANGE.fullmatch((resp.headers.get("Content-Range") or "").strip())
            if match and int(match[1]) == offset and offset > 0:
                total = int(match[3])
                if self.info.size and total != self.info.size:
                    log.warning("object size changed since the partial download; starting over")
                else:
                    log.info(
                        "server sent bytes %s-%s of %s: resuming at %d MB",
                        match[1],
                        match[2],
                        match[3],
                        offset // MB,
                    )
                    self.info = PartInfo(
                        url=self.source.url, etag=etag or self.info.etag, size=total
                    )
                    self._save_info()
                    self._check_space(total - offset)
                    return total
            else:
                log.warning(
                    "asked for bytes %d- but got Content-Range %r; starting over",
                    offset,
                    resp.headers.get("Content-Range"),
                )
            self._restart()
            raise _Transient("unexpected Content-Range")
        if resp.status != 200:
            raise _Transient(f"unexpected HTTP {resp.status}")
        if offset:
            log.warning(
                "server ignored the Range request (HTTP 200 for bytes %d-): "
                "starting the download over",
                offset,
            )
            self._restart()
        total = int(length) if length and length.isdigit() else None
        if total:
            self._check_space(total)
        self.info = PartInfo(url=self.source.url, etag=etag, size=total or 0)
        self._save_info()
        log.info(
            "downloading %s (%s) into %s",
            self.source.display,
            f"{total // MB} MB" if total else "size unknown",
            self.part,
        )
        return total

    def _check_space(self, needed: int) -> None:
        """Fail at once, not hours later, when the rest of the file cannot fit."""
        free = shutil.disk_usage(self.part.parent).free
        if free < needed:
            raise DownloadError(
                f"not enough disk space in {self.part.parent} for the model: "
                f"{needed // MB} MB more needed, {free // MB} MB free"
            )

    def _stream(self, resp: IO[bytes], total: int | None) -> None:
        self.progress.set("downloading model", self.hashed, total)
        started = time.monotonic()
        start_bytes = self.hashed
        try:
            with open(self.part, "ab") as out:
                if out.tell() != self.hashed:  # the file is what was hashed, nothing else
                    out.truncate(self.hashed)
                while True:
                    try:
                        block = resp.read(BLOCK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Transient(_reason(exc)) from None
                    if not block:
                        break
                    out.write(block)
                    self.hasher.update(block)
                    self.hashed += len(block)
                    self.transferred += len(block)
                    self.progress.advance(self.hashed)
                    self._log_progress(total, started, start_bytes)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DownloadError(
                    f"disk full while downloading the model into {self.part}"
                ) from None
            raise DownloadError(f"cannot write {self.part}: {exc}") from None
        if total is not None and self.hashed < total:
            raise _Transient(f"connection closed at byte {self.hashed} of {total}")

    def _log_progress(self, total: int | None, started: float, start_bytes: int) -> None:
        now = time.monotonic()
        last_time, last_fraction = self._last_log
        fraction = self.hashed / total if total else 0.0
        if now - last_time < LOG_EVERY_S and fraction - last_fraction < LOG_EVERY_FRACTION:
            return
        self._last_log = (now, fraction)
        rate = (self.hashed - start_bytes) / max(now - started, 1e-3)
        left = f", about {(total - self.hashed) / rate:.0f} s left" if total and rate else ""
        log.info("%s, %.1f MB/s%s", self.progress.message(), rate / MB, left)

    # ---- the end ---------------------------------------------------------------------------------

    def _verify(self) -> None:
        got = self.hasher.hexdigest()
        if got != self.sha256:
            self._restart()
            raise DownloadError(
                f"model downloaded from {self.source.display} has sha256 {got}, expected "
                f"{self.sha256}; deleted it (re-upload the file or fix MOVIEMIND_MODEL_SHA256)"
            )
        os.replace(self.part, self.dest)
        self.meta.unlink(missing_ok=True)
        log.info(
            "downloaded %d MB (%d MB over the network by this process), sha256 verified",
            self.hashed // MB,
            self.transferred // MB,
        )


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, socket.timeout | TimeoutError):
        return f"no data for {TIMEOUT_S} s"
    text = str(reason).strip() or type(reason).__name__
    return " ".join(text.split())


def _s3_error_code(exc: urllib.error.HTTPError) -> str:
    """`SignatureDoesNotMatch`, `AccessDenied`, ... from an S3 error body; "" otherwise."""
    try:
        body = exc.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""
    match = re.search(r"<Code>([A-Za-z0-9]{1,64})</Code>", body)
    return match[1] if match else ""


def _http_error_message(display: str, code: int, reason: str, s3_code: str = "") -> str:
    hint = {
        401: "the key was refused: check MOVIEMIND_MODEL_S3_ACCESS_KEY and _SECRET_KEY",
        403: "access denied: check the key's bucket permission (MOVIEMIND_MODEL_S3_ACCESS_KEY, "
        "_SECRET_KEY, _REGION) or the object's ACL",
        404: "no such object: upload it with `python -m model_server weights upload` "
        "or fix MOVIEMIND_MODEL_URL",
    }.get(code, "")
    what = f"HTTP {code} {reason}" + (f" {s3_code}" if s3_code else "")
    return f"cannot download the model from {display}: {what}" + (f" ({hint})" if hint else "")
