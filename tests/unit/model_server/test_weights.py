"""MOVIEMIND_MODEL_WEIGHTS=f16: the cached f16 copy is the same model and both engines run it."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_server.engines.base import EngineConfig
from model_server.engines.ctransformers_engine import CTransformersEngine
from model_server.gguf_file import read_info
from model_server.sampling import SamplingOptions
from model_server.server import prepare
from model_server.settings import embedded_model_path, load_settings
from model_server.tokenizer import ServerTokenizer
from model_server.weights import f16_key, write_f16
from tests.support.model_server_helpers import embedded_info, shared_cache

PROMPT = "<|im_start|>user\nName a famous movie.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def f16_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("f16") / "smollm2-f16.gguf"
    converted = write_f16(embedded_model_path(), out)
    assert converted > 0
    return out


def test_f16_copy_holds_the_same_weights_and_vocabulary(f16_copy: Path, cache: Path) -> None:
    import gguf
    from gguf.quants import dequantize

    original = gguf.GGUFReader(embedded_model_path(), "r")
    copy = gguf.GGUFReader(f16_copy, "r")
    src = {t.name: t for t in original.tensors}
    assert sorted(src) == sorted(t.name for t in copy.tensors)
    quantized = 0
    for t in copy.tensors:
        before = src[t.name]
        if before.tensor_type == gguf.GGMLQuantizationType.F32:
            assert t.tensor_type == gguf.GGMLQuantizationType.F32
            assert np.array_equal(np.asarray(t.data), np.asarray(before.data))
            continue
        quantized += 1
        assert t.tensor_type == gguf.GGMLQuantizationType.F16, t.name
        exact = dequantize(before.data, before.tensor_type)
        ours = np.asarray(t.data, dtype=np.float32).reshape(exact.shape)
        # f16 keeps 11 significant bits: relative error at most 2^-11 (plus f16's tiny floor).
        assert np.all(np.abs(ours - exact) <= np.abs(exact) * 2.0**-11 + 6e-8), t.name
    assert quantized >= 200  # SmolLM2's Q4_1 file: 210 Q4_1 tensors and one Q8_0
    copied = ServerTokenizer(read_info(f16_copy, cache))
    reference = ServerTokenizer(embedded_info(cache))
    assert copied.to_json() == reference.to_json()


def test_both_engines_generate_from_the_f16_copy(
    tmp_path: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedded_info(cache)
    shutil.copytree(cache / "meta", tmp_path / "meta")
    env = {"MOVIEMIND_MODEL_CACHE_DIR": str(tmp_path), "MOVIEMIND_MODEL_WEIGHTS": "f16"}
    sha = embedded_info(cache).sha256
    with caplog.at_level(logging.INFO, logger="model_server"):
        prepared = prepare(load_settings(env))
    # ctransformers needs its compat rewrite, applied to the f16 copy and cached under its key.
    assert Path(prepared.engine_path) == tmp_path / "compat" / f"{f16_key(sha)}.gguf"
    assert (tmp_path / "f16" / f"{f16_key(sha)}.gguf").is_file()
    assert any("writing an f16 copy" in r.message for r in caplog.records)

    tok = ServerTokenizer(prepared.info)
    prompt = tok.encode(PROMPT)
    opts = SamplingOptions(max_tokens=8, temperature=0.0, end_ids=tok.end_ids)
    engine = CTransformersEngine(
        EngineConfig(model_path=prepared.engine_path, context=256, threads=1)
    )
    engine.load()
    ours = list(engine.generate(prompt, opts))
    assert len(ours) == 8 and tok.decode(ours).strip()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="model_server"):
        llama = prepare(load_settings({**env, "MOVIEMIND_MODEL_ENGINE": "llama_cpp"}))
    assert Path(llama.engine_path) == tmp_path / "f16" / f"{f16_key(sha)}.gguf"
    assert any("using cached f16 copy" in r.message for r in caplog.records)
    assert not any("writing an f16 copy" in r.message for r in caplog.records)
    if importlib.util.find_spec("llama_cpp") is not None:
        from model_server.engines.llama_cpp_engine import LlamaCppEngine

        ref = LlamaCppEngine(EngineConfig(model_path=llama.engine_path, context=256, threads=1))
        ref.load()
        # Two llama.cpp generations on the same f16 weights agree on the greedy answer.
        assert list(ref.generate(prompt, opts)) == ours
        ref.close()
