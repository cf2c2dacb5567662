"""The served index: load, verify, hot-swap atomically, keep the old one when a new one is bad."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.reason_gate import known_words
from edge.titles import TitleIndex
from moviemind_core.bundle import Bundle, BundleError, read_bundle_manifest
from moviemind_core.catalog import Movie
from moviemind_core.embedder import Embedder, EmbedderError, read_embedder_manifest
from moviemind_core.ranking import Priors
from moviemind_core.storage import S3Settings, download_bundle, parse_s3_url, read_latest

log = logging.getLogger("moviemind.edge.index")


@dataclass(frozen=True)
class Snapshot:
    """Everything one request needs, from one bundle version; never mutated once published."""

    bundle: Bundle
    priors: Priors
    titles: TitleIndex
    embedder: Embedder  # embeds queries; may be a faster variant than the documents'
    vocabulary: frozenset[str] = frozenset()  # words the reason gate knows exist

    @property
    def version(self) -> str:
        return self.bundle.version

    @functools.cached_property
    def people(self) -> frozenset[str]:
        """Names of the catalog's directors and cast, lower case (built on first use, ~10 ms)."""
        return catalog_people(self.bundle.movies)


class IndexStore:
    """Holds the current Snapshot; `refresh()` loads a newer bundle when one appears."""

    def __init__(
        self,
        source: str,
        model_dir: Path,
        *,
        cache_dir: Path,
        s3: S3Settings,
        embed_threads: int,
        query_variant: str = "bundle",
        bayes_votes: float,
        on_result=None,
    ) -> None:
        self.source = source
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.s3 = s3
        self.embed_threads = embed_threads
        self.query_variant = query_variant
        self.bayes_votes = bayes_votes
        self.on_result = on_result or (lambda result: None)
        self.current: Snapshot | None = None
        self.last_error: str | None = None
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    @property
    def is_remote(self) -> bool:
        return self.source.startswith("s3://")

    def _embedder(self, variant: str) -> Embedder:
        """The query embedder for `variant`, rebuilt when the model directory holds a new export.

        The manifest is re-read on every bundle load (a small JSON file), so models updated in
        place are used for the next bundle instead of having it rejected until a restart.
        """
        on_disk = read_embedder_manifest(self.model_dir)
        cached = self._embedders.get(variant)
        if cached is None or cached.manifest != on_disk:
            self._embedders[variant] = Embedder(
                self.model_dir,
                variant=variant,  # type: ignore[arg-type]
                threads=self.embed_threads,
            )
        return self._embedders[variant]

    def _locate(self) -> tuple[str, Path] | None:
        """(version, local dir) of the newest bundle the source offers, downloading it if remote."""
        if not self.is_remote:
            path = Path(self.source)
            return read_bundle_manifest(path).version, path
        bucket, prefix = parse_s3_url(self.source)
        client = self.s3.client()
        latest = read_latest(client, bucket, prefix)
        if latest is None:
            raise BundleError(f"nothing published at {self.source} yet (no latest.json)")
        if self.current is not None and latest.version == self.current.version:
            return None
        return latest.version, download_bundle(client, bucket, prefix, latest, self.cache_dir)

    def refresh(self) -> bool:
        """Load a newer bundle if there is one; True when the served index changed."""
        with self._lock:  # one loader at a time (poller and SIGHUP may race)
            try:
                found = self._locate()
                if found is None or (self.current is not None and found[0] == self.current.version):
                    # The source offers what is already served (e.g. latest rolled back after a bad
                    # publish): an earlier failure no longer describes it, so /readyz stops reporting it.
                    self.last_error = None
                    return False
                version, path = found
                snapshot = self._load(path)
            except (BundleError, EmbedderError, OSError, ValueError) as exc:
                self.last_error = str(exc)
                serving = self.current.version if self.current else "nothing"
                log.error("index not loaded, still serving %s: %s", serving, exc)
                self.on_result("rejected")
                return False
            except Exception as exc:  # a storage client error must not kill the poller
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "index refresh failed, still serving the previous one: %s", self.last_error
                )
                self.on_result("error")
                return False
            old = self.current
            self.current = snapshot  # the swap: one reference assignment
            self.last_error = None
            log.info(
                "serving index %s (%d movies)%s",
                snapshot.version,
                len(snapshot.bundle),
                f", replaced {old.version}" if old else "",
            )
            self.on_result("loaded")
            return True

    def _load(self, path: Path) -> Snapshot:
        bundle = Bundle.load(path)
        info = bundle.manifest.embedder
        query = info.variant if self.query_variant == "bundle" else self.query_variant
        embedder = self._embedder(query)
        # Only the query variant is loaded: the documents' model is checked by the sha256 the
        # export's manifest records for it. A match proves the model directory is the export the
        # documents came from, so its other variant embeds queries into the same space (int8:
        # mean cosine 0.996 to fp32, and a one-text batch quantizes the same way every time).
        ours = embedder.manifest.sha256_of(info.variant)
        if ours != info.sha256:
            raise BundleError(
                f"bundle {bundle.version} was embedded with {info.name} {info.variant} sha256 "
                f"{info.sha256[:12]}, but this edge's model is {ours[:12] or 'missing'}; "
                "rebuild the index or update the edge's models"
            )
        return Snapshot(
            bundle,
            Priors(bundle.movies, self.bayes_votes, bundle.vectors),
            TitleIndex(bundle.movies, bundle.titles),
            embedder,
            catalog_vocabulary(bundle.movies, embedder.tokenizer.get_vocab()),
        )


def catalog_vocabulary(movies: Iterable[Movie], word_pieces: Iterable[str]) -> frozenset[str]:
    """Every word of the catalog's text plus MiniLM's whole-word pieces: what the reason gate
    accepts as real words (about 31,000 for the sample catalog, built in 50 ms)."""
    texts = (
        t
        for m in movies
        for t in (m.title, m.overview, " ".join(m.keywords), " ".join(m.cast), m.director or "")
    )
    return known_words(texts, word_pieces)


def catalog_people(movies: Iterable[Movie]) -> frozenset[str]:
    """Every director's and cast member's name, lower case: a keyword that is one ("john
    hughes") is not a topic a movie is about."""
    names = (n for m in movies for n in (*m.cast, *(m.director or "").split(",")))
    return frozenset(n.strip().lower() for n in names if n.strip())
