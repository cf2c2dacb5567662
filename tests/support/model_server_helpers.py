"""Shared helpers for the model server tests: real servers on loopback, synthetic GGUF files."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import numpy as np

from model_server.engines.base import Engine, EngineConfig

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
READY_TIMEOUT_S = 180


def shared_cache(tmp_path_factory) -> Path:
    """One MOVIEMIND_MODEL_CACHE_DIR for the whole test session: the GGUF metadata and the
    ctransformers copy of SmolLM2 are computed once (reading a GGUF takes seconds)."""
    path = tmp_path_factory.getbasetemp() / "model_server_cache"
    path.mkdir(exist_ok=True)
    return path


def embedded_info(cache_dir: Path):
    """GgufMetadata of the embedded SmolLM2, through the cache."""
    from model_server.gguf_file import read_info
    from model_server.model_source import cached_sha256
    from model_server.settings import embedded_model_path

    path = embedded_model_path()
    return read_info(path, cache_dir, cached_sha256(path, cache_dir))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """A `python -m model_server` subprocess and how to reach it."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, token: str):
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header when the server has a token."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, labels: str = "") -> float:
        """Current value of one metric sample (0 when absent)."""
        text = httpx.get(self.base + "/metrics", timeout=10).text
        key = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0

    def wait_metric(self, name: str, want: float, labels: str = "", timeout: float = 30) -> float:
        """Poll until the metric equals `want` (bounded); return the last value seen."""
        deadline = time.monotonic() + timeout
        value = self.metric(name, labels)
        while value != want and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.metric(name, labels)
        return value


def model_env(cache_dir: Path, **settings: object) -> dict[str, str]:
    """Process environment with MOVIEMIND_MODEL_* settings (keys given in lower case)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEMIND_MODEL_")}
    env["MOVIEMIND_MODEL_CACHE_DIR"] = str(cache_dir)
    env.setdefault("MOVIEMIND_MODEL_THREADS", "1")  # robust on a shared 2-core machine
    for key, value in settings.items():
        env[f"MOVIEMIND_MODEL_{key.upper()}"] = str(value)
    return env


@contextlib.contextmanager
def model_server(cache_dir: Path, log_dir: Path, **settings: object) -> Iterator[RunningServer]:
    """Start a server with these settings, wait until /readyz is 200, stop it afterwards."""
    port = free_port()
    env = model_env(cache_dir, port=port, **settings)
    log_path = log_dir / f"model_server_{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [PYTHON, "-m", "model_server"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(proc, port, log_path, str(settings.get("token", "")))
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"model server exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(server.base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"model server not ready in {READY_TIMEOUT_S} s:\n{server.log()}"
                )
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def run_cli(
    args: Sequence[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `python -m model_server ARGS` to completion."""
    return subprocess.run(
        [PYTHON, "-m", "model_server", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sse_data(lines: Sequence[str]) -> list[str]:
    """The `data:` payloads of SSE lines."""
    return [line[len("data: ") :] for line in lines if line.startswith("data: ")]


# ---- an engine without a model ----------------------------------------------------------------


class ScriptedEngine(Engine):
    """Emits token ids from a fixed script, slowly; `load` waits until it is allowed to finish."""

    name = "scripted"

    def __init__(self, script: Sequence[int], delay_s: float, loaded: threading.Event, vocab: int):
        super().__init__(EngineConfig(model_path="-", context=2048, threads=1))
        self._script = list(script)
        self._delay = delay_s
        self._loaded = loaded
        self._vocab = vocab
        self._step = 0
        self.closed = 0  # close() calls

    def load(self) -> None:
        assert self._loaded.wait(30)

    def _eval(self, ids: Sequence[int], n_past: int) -> None:
        time.sleep(self._delay)
        self._step = n_past + len(ids)

    def _logits(self) -> np.ndarray:
        logits = np.zeros(self._vocab, dtype=np.float32)
        logits[self._script[self._step % len(self._script)]] = 1.0
        return logits

    def close(self) -> None:
        self.closed += 1


# ---- synthetic GGUF files -----------------------------------------------------------------------

LLAMA_HPARAMS = {
    "context_length": 512,
    "embedding_length": 64,
    "block_count": 1,
    "feed_forward_length": 128,
    "attention.head_count": 4,
    "attention.head_count_kv": 4,
    "rope.dimension_count": 16,
}


def write_vocab_gguf(
    path: Path,
    *,
    arch: str,
    model: str,
    tokens: Sequence[str],
    types: Sequence[int],
    scores: Sequence[float] | None = None,
    merges: Sequence[str] | None = None,
    bos: int | None = None,
    eos: int | None = None,
    unk: int | None = None,
    add_bos: bool | None = None,
    add_space_prefix: bool | None = None,
    chat_template: str | None = None,
) -> Path:
    """A GGUF with architecture hyper-parameters and a vocabulary but no tensors: enough for
    this server's tokenizer and for llama.cpp's `vocab_only` loading."""
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    for key, value in LLAMA_HPARAMS.items():
        writer.add_uint32(f"{arch}.{key}", value)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_tokenizer_model(model)
    writer.add_token_list(list(tokens))
    writer.add_token_types(list(types))
    if scores is not None:
        writer.add_token_scores(list(scores))
    if merges is not None:
        writer.add_token_merges(list(merges))
    if bos is not None:
        writer.add_bos_token_id(bos)
    if eos is not None:
        writer.add_eos_token_id(eos)
    if unk is not None:
        writer.add_unk_token_id(unk)
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)
    if add_space_prefix is not None:
        writer.add_add_space_prefix(add_space_prefix)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return path


def train_spm_vocab(corpus: str, n_merges: int) -> tuple[list[str], list[float], list[int]]:
    """A small SentencePiece-style BPE vocabulary learnt from `corpus` (Llama layout: <unk>, <s>,
    </s>, 256 byte pieces, then characters and merged pieces scored by merge order)."""
    space = "\u2581"
    words: dict[tuple[str, ...], int] = {}
    for word in corpus.replace("\n", " ").split(" "):
        if word:
            key = tuple(space + word)
            words[key] = words.get(key, 0) + 1
    pieces: list[str] = []
    for w in words:
        for ch in w:
            if ch not in pieces:
                pieces.append(ch)
    merged: list[str] = []
    for _ in range(n_merges):
        pairs: dict[tuple[str, str], int] = {}
        for w, count in words.items():
            for a, b in zip(w, w[1:], strict=False):
                pairs[(a, b)] = pairs.get((a, b), 0) + count
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        new = best[0] + best[1]
        if new in pieces or new in merged:
            break
        merged.append(new)
        rewritten: dict[tuple[str, ...], int] = {}
        for w, count in words.items():
            out: list[str] = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            rewritten[tuple(out)] = rewritten.get(tuple(out), 0) + count
        words = rewritten
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    # Merged pieces first with decreasing scores, then single characters (SentencePiece order).
    for rank, piece in enumerate(merged):
        tokens.append(piece)
        types.append(1)
        scores.append(-float(rank))
    for i, ch in enumerate(pieces):
        tokens.append(ch)
        types.append(1)
        scores.append(-float(len(merged) + i))
    return tokens, scores, types
