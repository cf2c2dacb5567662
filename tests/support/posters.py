"""A test catalog with posters and film links, and a loopback image server standing in for TMDB's
image host (the internet is closed here): the sample index with TMDB-like fields added."""

from __future__ import annotations

import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec

from moviemind_core.bundle import CATALOG, DATA_FILES, MANIFEST, CatalogFile, FileEntry, Manifest
from moviemind_core.embedder import sha256_file

IMAGE_PREFIX = "/t/p/w185"
MISSING = "/missing-poster.jpg"  # the image server answers 404 for it: the page's fallback


def poster_fields(movie_id: int) -> dict[str, object]:
    """The TMDB-like fields a test movie gets: about two in three have a poster (one in seven of
    those a broken one), every movie with a poster has a TMDB id, every other one an IMDb id."""
    fields: dict[str, object] = {}
    if movie_id % 3:
        fields["poster_path"] = MISSING if movie_id % 7 == 0 else f"/p{movie_id}.png"
        fields["tmdb_id"] = 100_000 + movie_id
    if movie_id % 2 == 0:
        fields["imdb_id"] = f"tt{movie_id:07d}"
    return fields


def catalog_with_posters(sample: Path, out: Path) -> Path:
    """A copy of the bundle at `sample` whose movies carry poster paths and TMDB/IMDb ids
    (poster_fields), its manifest resealed so the edge loads it like any built bundle."""
    shutil.copytree(sample, out)
    catalog = msgspec.msgpack.decode((out / CATALOG).read_bytes(), type=CatalogFile)
    catalog.movies = [
        msgspec.structs.replace(m, **poster_fields(m.id))  # type: ignore[arg-type]
        for m in catalog.movies
    ]
    (out / CATALOG).write_bytes(msgspec.msgpack.encode(catalog))
    manifest = msgspec.json.decode((out / MANIFEST).read_bytes(), type=Manifest)
    manifest.files = {
        name: FileEntry(sha256=sha256_file(out / name), bytes=(out / name).stat().st_size)
        for name in DATA_FILES
    }
    (out / MANIFEST).write_bytes(msgspec.json.encode(manifest))
    return out


def poster_png(width: int = 185, height: int = 278) -> bytes:
    """A small striped PNG, drawn without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes((40 + y // 3, 60, 120 + (y // 20) % 2 * 80) * width) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@contextmanager
def image_server() -> Iterator[tuple[str, list[str]]]:
    """(image base URL, paths requested so far): serves a PNG under IMAGE_PREFIX for any
    "/p*.png" path, 404 for anything else."""
    png = poster_png()
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            requested.append(self.path)
            name = self.path.removeprefix(IMAGE_PREFIX)
            if self.path.startswith(IMAGE_PREFIX + "/p") and name.endswith(".png"):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{IMAGE_PREFIX}", requested
    finally:
        server.shutdown()
        server.server_close()
