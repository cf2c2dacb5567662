"""The int8 query encoder: MiniLM's fp32 ONNX export made fast for one short query at a time.

A ten-token query runs each weight matrix once, so its cost is the operators' fixed overhead and
the weights read, not arithmetic. The recipe (`RECIPE`, recorded in the embedder manifest):

1. ONNX Runtime's BERT optimizer fuses each layer's attention and GELU, but not the residual
   LayerNorms: ONNX Runtime 1.31's fused SkipLayerNormalization kernel took ~20 us for a 10x384
   input where Add + LayerNormalization took ~4 us, and BiasGelu ~20 us against ~15 us for
   Add + Gelu (`moviemind_core.embedder.UNFUSED_AT_RUNTIME` turns the runtime's re-fusion of both off).
2. SmoothQuant for the feed-forward output projections: their input (the GELU output) has a few
   channels far larger than the rest, which per-tensor int8 activations lose. Each channel j is
   divided by s_j = amax_x(j) ** a / amax_w(j) ** (1 - a) and the weight row multiplied by it (the
   product is unchanged in exact arithmetic); amax_x comes from the fp32 model on this project's
   own movie notes (data/movie_notes), a = 0.8, and s is floored at its 90th percentile so that
   only the loud channels move.
3. Dynamic int8, per output channel, for every matrix product and the attention.

Measured in-process on the 2-core Xeon of 2026-12-06 (`benchmarks/edge_bench.py` has the served
numbers), per ten-token query, back to back / after a 1 ms idle gap, against the previous recipe
(fused norms, feed-forward outputs as 8-bit blocks in MatMulNBits, 65 us each against 23 us in
int8): previous 1.99 / 2.03 ms, unfused norms alone 1.67 / 1.80 ms (the same results), this
recipe 1.32 / 1.47 ms. Accuracy against fp32: mean cosine 0.9956 on 330 search queries (was
0.9966), `/v1/search` top-10 92.8% the same (was 93.3%); on the embedder test's 30 mixed texts
(accents, CJK, one word) 0.9930 one at a time (was 0.9950). Without smoothing: 0.9938 on the
queries; a = 0.5: 0.9865; without the floor below, 0.9897 on the mixed texts.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RECIPE = "bert-unfused-norms-smoothquant-0.8-p90-int8-per-channel-v4"

# all-MiniLM-L6-v2's shape, which the attention fusion needs spelled out.
HEADS = 12
HIDDEN = 384
SMOOTHING = 0.8
SMOOTHING_FLOOR_PERCENTILE = 90
CALIBRATION_TEXTS = 600


def quantize_int8(src: Path, dst: Path, tokenizer: Path, notes_dir: Path, log=print) -> None:
    """Write the int8 query encoder for the fp32 export `src` to `dst` (the recipe above)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantization modules configure the root logger when imported and then log every
    # operator they pass over (hundreds of lines): keep them quiet, and put the level back.
    root_level = logging.getLogger().level
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    logging.getLogger().setLevel(max(root_level, logging.ERROR))
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=dst.parent) as tmp:
            fused, smoothed = Path(tmp) / "fused.onnx", Path(tmp) / "smoothed.onnx"
            fusion = FusionOptions("bert")
            fusion.enable_skip_layer_norm = False
            fusion.enable_bias_skip_layer_norm = False
            fusion.enable_bias_gelu = False
            optimizer.optimize_model(
                str(src),
                model_type="bert",
                num_heads=HEADS,
                hidden_size=HIDDEN,
                optimization_options=fusion,
            ).save_model_to_file(str(fused))
            model = onnx.load(str(fused))
            attention = sum(n.op_type == "Attention" for n in model.graph.node)
            log(f"  fused: {len(model.graph.node)} operators, {attention} attention blocks")
            texts = list(calibration_texts(notes_dir))
            amax = activation_ranges(model, ffn_outputs(model), texts, tokenizer)
            log(f"  calibrated {len(amax)} feed-forward outputs on {len(texts)} texts")
            smooth(model, amax, SMOOTHING)
            onnx.save(model, str(smoothed))
            quantize_dynamic(
                str(smoothed),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul", "Attention"],
                # The fused operators live in ONNX Runtime's domain, where shape inference gives up.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        logging.getLogger().setLevel(root_level)


def ffn_outputs(model) -> list:
    """The feed-forward output projections (MatMul nodes), first layer first."""
    return [
        n
        for n in model.graph.node
        if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name
    ]


def calibration_texts(notes_dir: Path, limit: int = CALIBRATION_TEXTS) -> Iterator[str]:
    """Synopses and keyword lists from the project's movie notes: long and query-length text."""
    from index_builder.sources.movielens import load_notes

    notes = sorted(load_notes(notes_dir).values(), key=lambda n: n.movie_id)
    if not notes:
        raise FileNotFoundError(f"no movie notes under {notes_dir} to calibrate the int8 encoder")
    picked = np.random.default_rng(0).permutation(len(notes))[: limit // 2]
    for i in picked.tolist():
        note = notes[i]
        if note.synopsis:
            yield note.synopsis
        if note.keywords:
            yield ", ".join(note.keywords)


def activation_ranges(
    model, nodes: list, texts: list[str], tokenizer_file: Path, max_length: int = 256
) -> list[np.ndarray]:
    """Per input channel of each node, the largest |activation| the fp32 model feeds it."""
    import onnx
    import onnxruntime as ort
    from tokenizers import Tokenizer

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = [n.input[0] for n in nodes]
    for name in names:
        probe.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    inputs = {i.name for i in session.get_inputs()}
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    amax: list[np.ndarray] = [np.zeros(0, np.float32) for _ in nodes]
    for text in texts:
        ids = np.asarray([tokenizer.encode(text).ids], np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        for i, act in enumerate(session.run(names, feeds)):
            seen = np.abs(act).reshape(-1, act.shape[-1]).max(axis=0)
            amax[i] = seen if not amax[i].size else np.maximum(amax[i], seen)
    # Three significant digits: the same scales on every CPU, whatever its float rounding.
    return [a.astype(np.float16).astype(np.float32) for a in amax]


def smooth(model, amax: list[np.ndarray], alpha: float) -> None:
    """Move each feed-forward output's activation range into its weights (SmoothQuant): the
    input is multiplied by 1/s per channel (one Mul) and the weight rows by s."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    nodes = ffn_outputs(model)
    if len(nodes) != len(amax):
        raise ValueError(f"{len(amax)} activation ranges for {len(nodes)} feed-forward outputs")
    order = list(graph.node)
    for node, a in zip(nodes, amax, strict=True):
        w = numpy_helper.to_array(weights[node.input[1]])
        w_max = np.abs(w).max(axis=1)
        s = np.maximum(a, 1e-5) ** alpha / np.maximum(w_max, 1e-5) ** (1 - alpha)
        # Only the loud channels are scaled down; the rest keep one common factor. Amplifying a
        # channel that was quiet on the calibration texts let it set the int8 range on other
        # input (mean cosine on the mixed texts 0.990 -> 0.993 with the floor).
        s = np.maximum(s, np.percentile(s, SMOOTHING_FLOOR_PERCENTILE)).astype(np.float32)
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], node.input[1]))
        inverse = node.name + "/smooth_scale"
        graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inverse))
        scaled = node.name + "/smoothed_input"
        mul = helper.make_node(
            "Mul", [node.input[0], inverse], [scaled], name=node.name + "/smooth"
        )
        node.input[0] = scaled
        order.insert(order.index(node), mul)
    del graph.node[:]
    graph.node.extend(order)
