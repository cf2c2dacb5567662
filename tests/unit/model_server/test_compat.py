"""The ctransformers compat rewrite, model fetching, and start-up failures (one line, exit 2)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_server.compat import compat_reasons
from model_server.engines.base import EngineConfig
from model_server.engines.ctransformers_engine import CTransformersEngine
from model_server.gguf_file import read_info
from model_server.model_source import ModelSourceError, cached_sha256, fetch
from model_server.sampling import SamplingOptions
from model_server.server import prepare
from model_server.settings import embedded_model_path, load_settings
from model_server.tokenizer import ServerTokenizer
from tests.support.model_server_helpers import (
    embedded_info,
    free_port,
    model_env,
    model_server,
    run_cli,
    shared_cache,
    write_vocab_gguf,
)

TEXTS = [
    "Hello, world!\nSecond line\n\n",
    "<|im_start|>user\nRecommend a movie like Alien 🎬<|im_end|>\n",
    "café 東京 1999",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def compat_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("compat") / "smollm2-compat.gguf"
    result = run_cli(["compat", str(embedded_model_path()), str(out)], model_env(out.parent))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_compat_cli_rewrites_what_ctransformers_needs(
    compat_copy: tuple[Path, str], cache: Path
) -> None:
    path, report = compat_copy
    original = embedded_info(cache)
    rewritten = read_info(path, cache)
    assert len(compat_reasons(original)) == 3
    assert compat_reasons(rewritten) == []
    assert "added output.weight" in report and "zero scores" in report and '"\\n"' in report
    assert rewritten.tensor_bytes == original.tensor_bytes + original.token_embd_bytes
    assert rewritten.compat_source_sha256 == original.sha256


def test_compat_copy_tokenizes_exactly_like_the_original(
    compat_copy: tuple[Path, str], cache: Path
) -> None:
    original = ServerTokenizer(embedded_info(cache))
    rewritten = ServerTokenizer(read_info(compat_copy[0], cache))
    assert rewritten.to_json() == original.to_json()
    for text in TEXTS:
        assert rewritten.encode(text) == original.encode(text)
    newline = original.encode("\n")
    assert rewritten.decode(newline) == "\n"


def test_compat_copy_loads_and_generates_under_ctransformers(
    compat_copy: tuple[Path, str], cache: Path
) -> None:
    tok = ServerTokenizer(read_info(compat_copy[0], cache))
    prompt = tok.encode("<|im_start|>user\nName a famous movie.<|im_end|>\n<|im_start|>assistant\n")
    engine = CTransformersEngine(
        EngineConfig(model_path=str(compat_copy[0]), context=256, threads=1)
    )
    engine.load()
    opts = SamplingOptions(max_tokens=8, temperature=0.0, end_ids=tok.end_ids)
    ours = list(engine.generate(prompt, opts))
    assert len(ours) == 8 and tok.decode(ours).strip()
    if importlib.util.find_spec("llama_cpp") is not None:
        # The same greedy tokens as current llama.cpp on the original, unmodified file.
        from model_server.engines.llama_cpp_engine import LlamaCppEngine

        ref = LlamaCppEngine(
            EngineConfig(model_path=str(embedded_model_path()), context=256, threads=1)
        )
        ref.load()
        assert list(ref.generate(prompt, opts)) == ours
        ref.close()


def test_server_start_rewrites_once_into_the_cache_and_says_so(
    tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedded_info(cache)
    shutil.copytree(cache / "meta", tmp_path / "meta")  # metadata cached; the rewrite is not
    settings = load_settings({"MOVIEMIND_MODEL_CACHE_DIR": str(tmp_path)})
    with caplog.at_level(logging.INFO, logger="model_server"):
        first = prepare(settings)
    sha = read_info(
        embedded_model_path(), tmp_path, cached_sha256(embedded_model_path(), tmp_path)
    ).sha256
    assert Path(first.engine_path) == tmp_path / "compat" / f"{sha}.gguf"
    assert any(
        "rewriting" in r.message and "for ctransformers" in r.message for r in caplog.records
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="model_server"):
        second = prepare(settings)
    assert second.engine_path == first.engine_path
    assert not any("rewriting" in r.message for r in caplog.records)
    assert any("using cached" in r.message for r in caplog.records)
    llama = prepare(
        load_settings(
            {"MOVIEMIND_MODEL_CACHE_DIR": str(tmp_path), "MOVIEMIND_MODEL_ENGINE": "llama_cpp"}
        )
    )
    assert Path(llama.engine_path) == embedded_model_path()  # llama.cpp loads the original


# ---- start-up failures ------------------------------------------------------------------------


def _one_line_exit_2(result, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("model_server: error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], result.stderr  # progress logs may precede
    assert fragment in errors[0]
    assert "Traceback" not in result.stderr


def test_missing_model_file(tmp_path: Path) -> None:
    result = run_cli([], model_env(tmp_path, path=tmp_path / "nope.gguf", port=1))
    _one_line_exit_2(result, "does not exist")


def test_file_that_is_not_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("not a model\n")
    _one_line_exit_2(run_cli([], model_env(tmp_path, path=bogus, port=1)), "is not a GGUF file")


def test_unsupported_architecture(tmp_path: Path) -> None:
    path = write_vocab_gguf(
        tmp_path / "mamba.gguf",
        arch="mamba",
        model="gpt2",
        tokens=["a", "b", "ab"],
        types=[1, 1, 1],
        merges=["a b"],
    )
    result = run_cli([], model_env(tmp_path, path=path, port=1))
    _one_line_exit_2(result, "architecture 'mamba'")


def test_bad_setting_and_missing_gguf_template(tmp_path: Path) -> None:
    _one_line_exit_2(run_cli([], model_env(tmp_path, slots="many")), "MOVIEMIND_MODEL_SLOTS")
    path = write_vocab_gguf(
        tmp_path / "plain.gguf",
        arch="llama",
        model="gpt2",
        tokens=["a", "b", "ab"],
        types=[1, 1, 1],
        merges=["a b"],
    )
    result = run_cli(
        [], model_env(tmp_path, path=path, chat_template="gguf", engine="llama_cpp", port=1)
    )
    _one_line_exit_2(result, "no tokenizer.chat_template")


# ---- fetching the model from a URL --------------------------------------------------------------


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    gets: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).gets.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (_CountingHandler,), {"gets": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, handler.gets
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_fetch_verifies_sha256_and_downloads_once(file_server, tmp_path: Path) -> None:
    base, root, gets = file_server
    model = write_vocab_gguf(
        root / "tiny.gguf", arch="llama", model="gpt2", tokens=["a", "b"], types=[1, 1], merges=[]
    )
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    got = fetch(f"{base}/tiny.gguf", sha, cache)
    assert got.read_bytes() == model.read_bytes() and got.name == f"{sha}.gguf"
    assert fetch(f"{base}/tiny.gguf", sha, cache) == got
    assert gets == ["/tiny.gguf"]  # the second start found it in the cache
    with pytest.raises(ModelSourceError, match="expected"):
        fetch(f"{base}/tiny.gguf", "0" * 64, cache)
    assert not (cache / "downloads" / f"{'0' * 64}.gguf").exists()
    assert list((cache / "downloads").glob(".*part*")) == []
    with pytest.raises(ModelSourceError, match="cannot download .* HTTP 404"):
        fetch(f"{base}/missing.gguf", "1" * 64, cache)


def test_server_fetches_its_model_from_a_url(file_server, tmp_path: Path, cache: Path) -> None:
    base, root, gets = file_server
    shutil.copy(embedded_model_path(), root / "SmolLM2-135M-Instruct.Q4_1.gguf")
    sha = embedded_info(cache).sha256
    url = f"{base}/SmolLM2-135M-Instruct.Q4_1.gguf"
    # The session's shared cache may hold this file from another test's download: this test
    # is about the download itself.
    (cache / "downloads" / f"{sha}.gguf").unlink(missing_ok=True)
    with model_server(cache, tmp_path, url=url, sha256=sha) as server:
        import httpx

        models = httpx.get(server.base + "/v1/models", timeout=10).json()
        assert models["data"][0]["id"] == "SmolLM2-135M-Instruct.Q4_1"
        assert "sha256 verified" in server.log()
    assert (cache / "downloads" / f"{sha}.gguf").is_file()
    # A URL source opens the port before downloading, so this one needs a port it can bind.
    bad = run_cli([], model_env(tmp_path / "cache2", url=url, sha256="f" * 64, port=free_port()))
    _one_line_exit_2(bad, "expected " + "f" * 64)
