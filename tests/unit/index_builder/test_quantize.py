"""The int8 query encoder's recipe (index_builder/quantize.py): smoothing changes no product, the
calibration reads the project's notes, and the shipped encoder keeps its norms unfused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from index_builder.quantize import RECIPE, calibration_texts, ffn_outputs, smooth
from index_builder.sources.movielens import DEFAULT_NOTES_DIR
from moviemind_core.embedder import UNFUSED_AT_RUNTIME, Embedder

K, N = 16, 8


def ffn_model(weights: np.ndarray) -> onnx.ModelProto:
    """x (1, 3, K) -> the shape of one feed-forward output projection, named as the export names it."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, K])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node(
        "MatMul", ["x", "w"], ["y"], name="/encoder/layer.0/output/dense/MatMul"
    )
    graph = helper.make_graph([node], "ffn", [x], [y], [numpy_helper.from_array(weights, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_smoothing_moves_the_range_into_the_weights_without_changing_the_product() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(K, N)).astype(np.float32)
    x = rng.normal(size=(1, 3, K)).astype(np.float32)
    x[..., 5] *= 40.0  # one outlier channel, as the GELU output has
    model = ffn_model(w)
    before = run(model, x)
    amax = np.abs(x).reshape(-1, K).max(axis=0)
    smooth(model, [amax], 0.8)
    assert [n.op_type for n in model.graph.node] == ["Mul", "MatMul"]
    np.testing.assert_allclose(run(model, x), before, rtol=1e-5, atol=1e-5)
    # The outlier channel's input is scaled down the most: that is what int8 activations need.
    scale = numpy_helper.to_array(
        next(i for i in model.graph.initializer if i.name.endswith("smooth_scale"))
    )
    assert int(np.argmin(scale)) == 5


def test_smoothing_refuses_ranges_that_do_not_match_the_layers() -> None:
    model = ffn_model(np.ones((K, N), np.float32))
    with pytest.raises(ValueError, match="2 activation ranges for 1"):
        smooth(model, [np.ones(K), np.ones(K)], 0.8)


def test_calibration_reads_synopses_and_keywords_from_the_notes(tmp_path: Path) -> None:
    texts = list(calibration_texts(DEFAULT_NOTES_DIR, limit=40))
    assert 20 <= len(texts) <= 40
    assert any(len(t.split()) > 15 for t in texts)  # synopses
    assert any(", " in t and len(t.split()) < 15 for t in texts)  # keyword lists
    assert texts == list(calibration_texts(DEFAULT_NOTES_DIR, limit=40))  # same every run
    with pytest.raises(FileNotFoundError, match="no movie notes"):
        list(calibration_texts(tmp_path))


def test_shipped_int8_encoder_follows_the_recipe(models_dir: Path) -> None:
    minilm = models_dir / "minilm"
    manifest = json.loads((minilm / "manifest.json").read_text())
    assert manifest["quantization"] == RECIPE
    model = onnx.load(str(minilm / manifest["variants"]["int8"]), load_external_data=False)
    ops = [n.op_type for n in model.graph.node]
    assert "SkipLayerNormalization" not in ops and "BiasGelu" not in ops
    assert ops.count("LayerNormalization") == 12 and ops.count("QAttention") == 6
    assert "MatMulNBits" not in ops and len(ffn_outputs(model)) == 0  # all int8 now
    assert sum(n.name.endswith("/smooth") for n in model.graph.node) == 6


def test_embedder_keeps_the_norms_unfused_at_run_time(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session must not fuse the norms back: read the graph ONNX Runtime actually runs."""
    minilm = models_dir / "minilm"
    manifest = json.loads((minilm / "manifest.json").read_text())
    optimized = tmp_path / "optimized.onnx"
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(optimized)
    ort.InferenceSession(
        str(minilm / manifest["variants"]["int8"]),
        opts,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(UNFUSED_AT_RUNTIME),
    )
    ops = {n.op_type for n in onnx.load(str(optimized)).graph.node}
    assert "SkipLayerNormalization" not in ops and "BiasGelu" not in ops
    assert "LayerNormalization" in ops
    # And the Embedder opens the int8 session with exactly these options, the fp32 one without.
    seen: list[object] = []
    real = ort.InferenceSession

    def recording(*args, **kwargs):
        seen.append(kwargs.get("disabled_optimizers"))
        return real(*args, **kwargs)

    monkeypatch.setattr("moviemind_core.embedder.ort.InferenceSession", recording)
    embedder = Embedder(minilm, variant="int8")
    Embedder(minilm, variant="fp32")  # document batches keep the runtime's fusions
    assert seen == [list(UNFUSED_AT_RUNTIME), []]
    assert np.isclose(float(np.linalg.norm(embedder.embed_one("a quiet heist film"))), 1.0)
